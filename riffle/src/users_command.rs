//! `riffle users add|list|remove`: SCRAM users in a stopped broker's data directory, as
//! Kafka's `kafka-storage format --add-scram` writes them before a controller starts.
//!
//! Each command opens the directory as the broker does (its lock, then the metadata log),
//! replays the credentials and appends the change as the same events AlterUserScramCredentials
//! writes, fsynced. A running broker holds the directory's lock, so the command refuses and
//! points at AlterUserScramCredentials instead. A directory that was stopped cleanly is left
//! marked clean, so the next start still skips recovery.
//!
//! The password comes from `--password-file` or stdin (a prompt without echo on a terminal);
//! one trailing line ending is dropped, as `echo` and editors add one. It is salted here
//! (PBKDF2 with a random salt) and never printed, logged or stored.

use std::fmt;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use riffle_storage::{DataDir, StorageError};

use crate::groups_command::format_table;
use riffle_server::cluster::now_ms;
use riffle_server::metadata_log::{METADATA_TOPIC, MetadataLog, MetadataLogError};
use riffle_server::security::credentials::{
    CredentialChange, CredentialStore, SALT_BYTES, ScramCredential, UnacceptableCredential,
    UserCredentials, check_iterations, check_user_name,
};
use riffle_server::security::random::{RandomUnavailable, random_bytes};
use riffle_server::security::scram::{ITERATIONS_DEFAULT, ScramMechanism};

/// Longest password accepted, so a wrong `--password-file` (a log, a device) fails fast
/// instead of filling memory.
const PASSWORD_MAX_BYTES: u64 = 64 * 1024;

/// `riffle users`: what to do.
#[derive(Debug, Args)]
pub struct UsersArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UsersCommand,
}

/// The data directory every `riffle users` subcommand works on.
#[derive(Debug, Args)]
pub struct DataDirArg {
    /// The stopped broker's data directory.
    #[arg(long, env = "RIFFLE_DATA_DIR")]
    pub data_dir: PathBuf,
}

/// The `riffle users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user's SCRAM credential for a mechanism, or replace it.
    Add {
        /// The user name clients log in with.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long)]
        mechanism: ScramMechanism,
        /// A file holding the password; without it the password is read from stdin.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// PBKDF2 iterations, 4096 to 16384.
        #[arg(long, default_value_t = ITERATIONS_DEFAULT)]
        iterations: u32,
        /// The data directory.
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// List each user's mechanisms and iterations.
    List {
        /// The data directory.
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Remove a user's credential for one mechanism, or all of its credentials.
    Remove {
        /// The user name.
        name: String,
        /// Only this mechanism's credential; without it, every one the user has.
        #[arg(long)]
        mechanism: Option<ScramMechanism>,
        /// The data directory.
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

/// Where the password is read from, as error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `--password-file`.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl fmt::Display for PasswordSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::File(path) => write!(formatter, "{}", path.display()),
            PasswordSource::Stdin => formatter.write_str("stdin"),
        }
    }
}

/// Why a `riffle users` command failed. No variant carries the password.
#[derive(Debug, thiserror::Error)]
pub enum UsersCommandError {
    /// A broker (or another command) holds the directory's lock.
    #[error(
        "the data directory {} is in use, most likely by a running broker: stop it first, \
         or change users while it runs with AlterUserScramCredentials (e.g. kafka-configs \
         --alter --add-config 'SCRAM-SHA-512=[password=...]')",
        .0.display()
    )]
    DirectoryInUse(PathBuf),
    /// `list` or `remove` on a directory that does not exist.
    #[error("there is no data directory at {}", .0.display())]
    NoDataDirectory(PathBuf),
    /// The directory could not be opened, flushed or marked clean.
    #[error("cannot use the data directory {}: {source}", path.display())]
    Storage {
        /// The data directory.
        path: PathBuf,
        /// What storage said.
        #[source]
        source: StorageError,
    },
    /// The metadata log could not be read or written.
    #[error("cannot use the metadata log in {}: {source}", path.display())]
    MetadataLog {
        /// The data directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: MetadataLogError,
    },
    /// The password file or stdin could not be read.
    #[error("cannot read the password from {from}: {source}")]
    PasswordUnreadable {
        /// Where it was read from.
        from: PasswordSource,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Kafka salts the password's UTF-8 bytes, so it must be text.
    #[error("the password from {0} is not valid UTF-8")]
    PasswordNotUtf8(PasswordSource),
    /// Nothing, or only a line ending, was read.
    #[error("the password from {0} is empty")]
    EmptyPassword(PasswordSource),
    /// More than one line: most likely the wrong file.
    #[error("the password from {0} has more than one line")]
    MultiLinePassword(PasswordSource),
    /// Longer than [`PASSWORD_MAX_BYTES`].
    #[error("the password from {0} is longer than {PASSWORD_MAX_BYTES} bytes")]
    PasswordTooLong(PasswordSource),
    /// The user name or iterations break Kafka's rules.
    #[error(transparent)]
    Unacceptable(#[from] UnacceptableCredential),
    /// `remove` of a user without credentials.
    #[error("user '{0}' has no SCRAM credentials")]
    UnknownUser(String),
    /// `remove --mechanism` of a credential the user does not have.
    #[error("user '{user}' has no {mechanism} credential")]
    UnknownCredential {
        /// The user.
        user: String,
        /// The mechanism asked for.
        mechanism: ScramMechanism,
    },
    /// No random salt.
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

/// Runs `riffle users ...`: prints what was done on stdout, or the error on stderr.
pub fn run(args: UsersArgs) -> ExitCode {
    let result = match args.command {
        UsersCommand::Add {
            name,
            mechanism,
            password_file,
            iterations,
            data_dir,
        } => {
            let source = match password_file {
                Some(path) => PasswordSource::File(path),
                None => PasswordSource::Stdin,
            };
            // Refuse bad arguments before anyone types a password.
            check_user_name(&name)
                .and_then(|()| check_iterations(i64::from(iterations)))
                .map_err(UsersCommandError::from)
                .and_then(|_| read_password(&source, &name))
                .and_then(|password| {
                    add(&data_dir.data_dir, &name, mechanism, &password, iterations)
                })
        }
        UsersCommand::List { data_dir } => list(&data_dir.data_dir),
        UsersCommand::Remove {
            name,
            mechanism,
            data_dir,
        } => remove(&data_dir.data_dir, &name, mechanism),
    };
    crate::cli_support::finish(result)
}

/// `riffle users add`: stores `name`'s credential for `mechanism`, replacing one it had.
///
/// # Errors
/// A bad name or iterations, a directory in use or unwritable, no random source.
pub fn add(
    data_dir: &Path,
    name: &str,
    mechanism: ScramMechanism,
    password: &str,
    iterations: u32,
) -> Result<String, UsersCommandError> {
    check_user_name(name)?;
    let iterations = check_iterations(i64::from(iterations))?;
    let salt: [u8; SALT_BYTES] = random_bytes()?;
    // Salt before taking the directory, so the lock is held only for the write.
    let credential = ScramCredential::from_password(mechanism, password, salt.to_vec(), iterations);
    let metadata = OfflineMetadata::open(data_dir, Missing::Create)?;
    let replaced = metadata.credentials.contains(name, mechanism);
    metadata.apply(&[CredentialChange::Set {
        user: name.to_string(),
        mechanism,
        credential,
    }])?;
    metadata.close()?;
    let done = match replaced {
        true => "replaced",
        false => "added",
    };
    Ok(format!(
        "{done} the {mechanism} credential of user '{name}' ({iterations} iterations)\n"
    ))
}

/// `riffle users list`: one line per user and mechanism, under a header.
///
/// # Errors
/// A missing directory, or one in use or unreadable.
pub fn list(data_dir: &Path) -> Result<String, UsersCommandError> {
    let metadata = OfflineMetadata::open(data_dir, Missing::Refuse)?;
    let users = metadata.credentials.users();
    metadata.close()?;
    Ok(format_table(
        &["USER", "MECHANISM", "ITERATIONS"],
        &list_rows(&users),
    ))
}

fn list_rows(users: &[UserCredentials]) -> Vec<Vec<String>> {
    users
        .iter()
        .flat_map(|user| {
            user.mechanisms.iter().map(|(mechanism, iterations)| {
                vec![
                    user.user.clone(),
                    mechanism.to_string(),
                    iterations.to_string(),
                ]
            })
        })
        .collect()
}

/// `riffle users remove`: deletes `name`'s credential for `mechanism`, or all of them.
///
/// # Errors
/// A user or credential that does not exist; a missing directory, or one in use or
/// unwritable.
pub fn remove(
    data_dir: &Path,
    name: &str,
    mechanism: Option<ScramMechanism>,
) -> Result<String, UsersCommandError> {
    let metadata = OfflineMetadata::open(data_dir, Missing::Refuse)?;
    let held: Vec<ScramMechanism> = metadata
        .credentials
        .describe(name)
        .map(|user| user.mechanisms.iter().map(|(held, _)| *held).collect())
        .unwrap_or_default();
    let removed: Vec<ScramMechanism> = match mechanism {
        _ if held.is_empty() => return Err(UsersCommandError::UnknownUser(name.to_string())),
        Some(mechanism) if !held.contains(&mechanism) => {
            return Err(UsersCommandError::UnknownCredential {
                user: name.to_string(),
                mechanism,
            });
        }
        Some(mechanism) => vec![mechanism],
        None => held,
    };
    let changes: Vec<CredentialChange> = removed
        .iter()
        .map(|mechanism| CredentialChange::Delete {
            user: name.to_string(),
            mechanism: *mechanism,
        })
        .collect();
    metadata.apply(&changes)?;
    metadata.close()?;
    let names: Vec<&str> = removed.iter().map(|mechanism| mechanism.name()).collect();
    Ok(format!(
        "removed the {} credential of user '{name}'\n",
        names.join(" and ")
    ))
}

/// What to do when the data directory does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Make it: users may be added before a broker's first start.
    Create,
    /// Fail: there is nothing to list or remove, and a typo should not make a directory.
    Refuse,
}

/// A stopped broker's data directory, opened as the broker opens it, with the credentials
/// its metadata log holds.
struct OfflineMetadata {
    path: PathBuf,
    /// Held until [`OfflineMetadata::close`]: the lock that keeps a broker out meanwhile.
    data_dir: DataDir,
    log: MetadataLog,
    credentials: CredentialStore,
    /// Whether the directory may be marked clean again when done: it was stopped cleanly,
    /// or held nothing but the metadata log, which `close` flushes.
    leave_clean: bool,
}

impl OfflineMetadata {
    fn open(path: &Path, missing: Missing) -> Result<OfflineMetadata, UsersCommandError> {
        if missing == Missing::Refuse && !path.is_dir() {
            return Err(UsersCommandError::NoDataDirectory(path.to_path_buf()));
        }
        let storage_error = |source| match source {
            StorageError::Locked { .. } => UsersCommandError::DirectoryInUse(path.to_path_buf()),
            source => UsersCommandError::Storage {
                path: path.to_path_buf(),
                source,
            },
        };
        let data_dir = DataDir::open(path).map_err(storage_error)?;
        let (log, events) = MetadataLog::open(&data_dir).map_err(|source| match source {
            MetadataLogError::Storage(source) => storage_error(source),
            source => UsersCommandError::MetadataLog {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let only_metadata = data_dir
            .list_partitions()
            .map_err(storage_error)?
            .iter()
            .all(|(topic, _)| topic == METADATA_TOPIC);
        let leave_clean = data_dir.was_clean_shutdown() || (events.is_empty() && only_metadata);
        let credentials = CredentialStore::new()?;
        for event in &events {
            credentials.apply(event);
        }
        Ok(OfflineMetadata {
            path: path.to_path_buf(),
            data_dir,
            log,
            credentials,
            leave_clean,
        })
    }

    /// Appends the changes as one batch, fsynced, then applies them to the store.
    fn apply(&self, changes: &[CredentialChange]) -> Result<(), UsersCommandError> {
        let events: Vec<_> = changes.iter().map(CredentialChange::to_event).collect();
        self.log.append_all(&events, now_ms()).map_err(|source| {
            UsersCommandError::MetadataLog {
                path: self.path.clone(),
                source,
            }
        })?;
        for event in &events {
            self.credentials.apply(event);
        }
        Ok(())
    }

    /// Flushes the metadata log and, where the directory was clean, marks it clean again,
    /// as the broker's shutdown does; then releases the lock.
    fn close(self) -> Result<(), UsersCommandError> {
        let storage_error = |source| UsersCommandError::Storage {
            path: self.path.clone(),
            source,
        };
        self.log.flush().map_err(storage_error)?;
        if self.leave_clean {
            self.data_dir.mark_clean_shutdown().map_err(storage_error)?;
        }
        Ok(())
    }
}

/// Reads the password for `user` from `source`: the whole file or piped stdin, or one line
/// typed at a terminal without echo.
///
/// # Errors
/// An unreadable source, or a password [`password_from_bytes`] refuses.
pub fn read_password(source: &PasswordSource, user: &str) -> Result<String, UsersCommandError> {
    let unreadable = |error| UsersCommandError::PasswordUnreadable {
        from: source.clone(),
        source: error,
    };
    let mut bytes = Vec::new();
    match source {
        PasswordSource::File(path) => {
            let file = std::fs::File::open(path).map_err(unreadable)?;
            file.take(PASSWORD_MAX_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(unreadable)?;
        }
        PasswordSource::Stdin if io::stdin().is_terminal() => {
            let mut stderr = io::stderr();
            write!(stderr, "Password for user '{user}': ")
                .and_then(|()| stderr.flush())
                .map_err(unreadable)?;
            let _echo_off = terminal::EchoOff::on_stdin().map_err(unreadable)?;
            let mut line = String::new();
            io::stdin().read_line(&mut line).map_err(unreadable)?;
            bytes = line.into_bytes();
        }
        PasswordSource::Stdin => {
            io::stdin()
                .take(PASSWORD_MAX_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(unreadable)?;
        }
    }
    password_from_bytes(source, bytes)
}

/// The password in `bytes`: one trailing `\n` or `\r\n` dropped, then refused if empty,
/// longer than [`PASSWORD_MAX_BYTES`], not UTF-8, or still spanning lines.
///
/// # Errors
/// The [`UsersCommandError`] password variant that says which.
pub fn password_from_bytes(
    source: &PasswordSource,
    mut bytes: Vec<u8>,
) -> Result<String, UsersCommandError> {
    if bytes.len() as u64 > PASSWORD_MAX_BYTES {
        return Err(UsersCommandError::PasswordTooLong(source.clone()));
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    let password =
        String::from_utf8(bytes).map_err(|_| UsersCommandError::PasswordNotUtf8(source.clone()))?;
    if password.is_empty() {
        return Err(UsersCommandError::EmptyPassword(source.clone()));
    }
    if password.contains(['\n', '\r']) {
        return Err(UsersCommandError::MultiLinePassword(source.clone()));
    }
    Ok(password)
}

/// Terminal echo, turned off while a password is typed.
mod terminal {
    use std::io;
    use std::mem::MaybeUninit;

    /// Echo off on stdin until dropped; the newline the user types is still echoed, so
    /// what is printed next starts on a line of its own.
    pub struct EchoOff {
        saved: libc::termios,
    }

    impl EchoOff {
        pub fn on_stdin() -> io::Result<EchoOff> {
            let mut saved = MaybeUninit::<libc::termios>::uninit();
            // SAFETY: tcgetattr writes a whole termios through the pointer when it returns 0,
            // and the struct is read only then.
            let saved = unsafe {
                if libc::tcgetattr(libc::STDIN_FILENO, saved.as_mut_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                saved.assume_init()
            };
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            quiet.c_lflag |= libc::ECHONL;
            // SAFETY: `quiet` is a valid termios read from this terminal.
            if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(EchoOff { saved })
        }
    }

    impl Drop for EchoOff {
        fn drop(&mut self) {
            // SAFETY: `saved` is the termios tcgetattr read from this terminal.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_server::security::ScramClient;
    use riffle_server::security::sasl::{self, SaslStep};
    use riffle_server::testing::open_test_cluster;

    fn temp_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("riffle-users-test-")
            .tempdir()
            .expect("create a temp dir")
    }

    fn from_bytes(bytes: &[u8]) -> Result<String, UsersCommandError> {
        password_from_bytes(&PasswordSource::Stdin, bytes.to_vec())
    }

    #[test]
    fn one_trailing_line_ending_is_dropped_and_bad_passwords_are_refused() {
        // `echo`'s newline and a Windows line ending go; an empty, multi-line, non-UTF-8 or
        // oversized password is refused with its own error, which never shows it.
        assert_eq!(from_bytes(b"secret\n").ok().as_deref(), Some("secret"));
        assert_eq!(from_bytes(b"secret\r\n").ok().as_deref(), Some("secret"));
        assert_eq!(from_bytes(b" s p \t").ok().as_deref(), Some(" s p \t"));
        assert!(matches!(
            from_bytes(b"\n"),
            Err(UsersCommandError::EmptyPassword(_))
        ));
        assert!(matches!(
            from_bytes(b""),
            Err(UsersCommandError::EmptyPassword(_))
        ));
        assert!(matches!(
            from_bytes(b"secret\n\n"),
            Err(UsersCommandError::MultiLinePassword(_))
        ));
        assert!(matches!(
            from_bytes(b"sec\xffret"),
            Err(UsersCommandError::PasswordNotUtf8(_))
        ));
        let long = vec![b'a'; PASSWORD_MAX_BYTES as usize + 1];
        assert!(matches!(
            from_bytes(&long),
            Err(UsersCommandError::PasswordTooLong(_))
        ));
        let file = PasswordSource::File("pw.txt".into());
        let message = password_from_bytes(&file, b"one\ntwo".to_vec())
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert_eq!(message, "the password from pw.txt has more than one line");
    }

    #[test]
    fn a_password_file_is_read_whole() {
        // The file's one line is the password; a missing file names itself in the error.
        let dir = temp_dir();
        let path = dir.path().join("alice.password");
        std::fs::write(&path, "alice-secret\n").expect("write the file");
        let source = PasswordSource::File(path.clone());
        assert_eq!(
            read_password(&source, "alice").ok().as_deref(),
            Some("alice-secret")
        );
        let missing = PasswordSource::File(dir.path().join("nope"));
        let error = read_password(&missing, "alice").err();
        assert!(
            matches!(error, Some(UsersCommandError::PasswordUnreadable { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn an_added_user_logs_in_on_the_broker_that_starts_next() {
        // `add` on a directory no broker has used yet: the broker that then opens it has
        // the credential, a SCRAM exchange with the password succeeds, and the directory
        // is clean (no recovery warning for a fresh directory).
        let dir = temp_dir();
        let data_dir = dir.path().join("data");
        let output = add(
            &data_dir,
            "alice",
            ScramMechanism::Sha512,
            "alice-secret",
            4096,
        )
        .expect("add alice");
        assert_eq!(
            output,
            "added the SCRAM-SHA-512 credential of user 'alice' (4096 iterations)\n"
        );
        assert!(!output.contains("alice-secret"));
        assert!(data_dir.join(".riffle-clean-shutdown").exists());
        let cluster = open_test_cluster(&data_dir);
        let stored = cluster.credentials().get("alice", ScramMechanism::Sha512);
        assert_eq!(
            stored.map(|credential| credential.salt.len()),
            Some(SALT_BYTES)
        );
        for (password, logs_in) in [("alice-secret", true), ("alice-secret\n", false)] {
            let mut client =
                ScramClient::new(ScramMechanism::Sha512, "alice", password).expect("random");
            let mut server = sasl::start(&cluster, sasl::SCRAM_SHA_512).expect("SCRAM-SHA-512");
            let SaslStep::Continue(server_first) = server.step(&client.first_message()) else {
                panic!("server-first");
            };
            let client_final = client.final_message(&server_first).expect("client-final");
            let done = matches!(server.step(&client_final), SaslStep::Done { .. });
            assert_eq!(done, logs_in, "{password:?}");
        }
    }

    #[test]
    fn list_and_remove_show_and_delete_what_add_stored() {
        // Users are listed per mechanism by name; removing one mechanism keeps the other,
        // removing without one takes all, and unknown users or credentials are errors.
        let dir = temp_dir();
        let data_dir = dir.path();
        add(data_dir, "bob", ScramMechanism::Sha256, "b", 4096).expect("add");
        add(data_dir, "alice", ScramMechanism::Sha512, "a", 8192).expect("add");
        add(data_dir, "alice", ScramMechanism::Sha256, "a", 4096).expect("add");
        let replaced = add(data_dir, "bob", ScramMechanism::Sha256, "b2", 4096).expect("add");
        assert!(replaced.starts_with("replaced"), "{replaced}");
        assert_eq!(
            list(data_dir).expect("list"),
            "USER   MECHANISM      ITERATIONS\n\
             alice  SCRAM-SHA-256  4096\n\
             alice  SCRAM-SHA-512  8192\n\
             bob    SCRAM-SHA-256  4096\n"
        );
        let removed = remove(data_dir, "alice", Some(ScramMechanism::Sha512)).expect("remove");
        assert_eq!(
            removed,
            "removed the SCRAM-SHA-512 credential of user 'alice'\n"
        );
        assert!(matches!(
            remove(data_dir, "alice", Some(ScramMechanism::Sha512)),
            Err(UsersCommandError::UnknownCredential { .. })
        ));
        remove(data_dir, "bob", None).expect("remove bob");
        assert!(matches!(
            remove(data_dir, "bob", None),
            Err(UsersCommandError::UnknownUser(_))
        ));
        assert_eq!(
            list(data_dir).expect("list"),
            "USER   MECHANISM      ITERATIONS\nalice  SCRAM-SHA-256  4096\n"
        );
    }

    #[test]
    fn bad_names_iterations_and_missing_directories_are_refused() {
        // Kafka's rules for the name and iterations, and no directory made by list/remove.
        let dir = temp_dir();
        let data_dir = dir.path();
        let refused = |result: Result<String, UsersCommandError>| match result {
            Err(UsersCommandError::Unacceptable(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(
            refused(add(data_dir, "", ScramMechanism::Sha256, "pw", 4096)),
            UnacceptableCredential::EmptyUserName
        );
        for iterations in [4095, 16385] {
            assert_eq!(
                refused(add(data_dir, "a", ScramMechanism::Sha256, "pw", iterations)),
                UnacceptableCredential::Iterations(i64::from(iterations))
            );
        }
        let missing = data_dir.join("missing");
        assert!(matches!(
            list(&missing),
            Err(UsersCommandError::NoDataDirectory(_))
        ));
        assert!(matches!(
            remove(&missing, "a", None),
            Err(UsersCommandError::NoDataDirectory(_))
        ));
        assert!(!missing.exists());
    }

    #[test]
    fn a_directory_a_broker_holds_is_refused_and_left_alone() {
        // While a broker has the directory open, add, list and remove fail with
        // DirectoryInUse and a message that says what to do; nothing is written.
        let dir = temp_dir();
        let cluster = open_test_cluster(dir.path());
        let error = add(dir.path(), "alice", ScramMechanism::Sha512, "pw", 4096).err();
        let message = error.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(
            matches!(error, Some(UsersCommandError::DirectoryInUse(_))),
            "{error:?}"
        );
        assert!(message.contains("stop it first"), "{message}");
        assert!(matches!(
            list(dir.path()),
            Err(UsersCommandError::DirectoryInUse(_))
        ));
        assert!(matches!(
            remove(dir.path(), "alice", None),
            Err(UsersCommandError::DirectoryInUse(_))
        ));
        assert!(cluster.credentials().users().is_empty());
        drop(cluster);
        assert!(
            open_test_cluster(dir.path())
                .credentials()
                .users()
                .is_empty()
        );
    }

    #[test]
    fn a_cleanly_stopped_directory_stays_clean_and_an_unclean_one_stays_unclean() {
        // After a clean shutdown the marker is back once the user is added, so the next
        // start skips recovery; after a crash it is not invented.
        let dir = temp_dir();
        let marker = dir.path().join(".riffle-clean-shutdown");
        let cluster = open_test_cluster(dir.path());
        cluster.shutdown().expect("clean shutdown");
        drop(cluster);
        assert!(marker.exists());
        add(dir.path(), "alice", ScramMechanism::Sha512, "pw", 4096).expect("add");
        assert!(marker.exists(), "the clean marker is kept");
        list(dir.path()).expect("list");
        assert!(marker.exists(), "list keeps the clean marker");

        let crashed = open_test_cluster(dir.path());
        drop(crashed);
        assert!(!marker.exists());
        add(dir.path(), "bob", ScramMechanism::Sha512, "pw", 4096).expect("add");
        assert!(!marker.exists(), "an unclean directory stays unclean");
    }
}
