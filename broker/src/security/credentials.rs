//! The SCRAM credential store: per user and mechanism, a salt, a StoredKey, a ServerKey
//! and an iteration count. Never a password.
//!
//! Credentials are events in the metadata log ([`MetadataEvent::ScramCredentialSet`] and
//! [`MetadataEvent::ScramCredentialDeleted`]), fsynced before a change is acknowledged and
//! replayed into this store at start-up; `riffle users add` appends the same events to a
//! stopped broker's data directory. SASL exchanges read the store; only
//! [`Cluster::alter_scram_credentials`](crate::cluster::Cluster::alter_scram_credentials)
//! and replay write it.
//!
//! An unknown user must look like a known one with a wrong password: the store makes up a
//! credential for any name ([`CredentialStore::fake_credential`]) whose salt is an HMAC of
//! the name under a key drawn at start-up, so asking twice shows the same salt, as for a
//! real user. The key is not persisted: across a broker restart an unknown user's salt
//! changes where a real user's does not, which an attacker able to restart the broker
//! could notice; one able to do that has the data directory anyway.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::RwLock;

use riffle_storage::RwLockRecover;
use serde::{Deserialize, Serialize};

use super::random::{RandomUnavailable, random_bytes};
use super::scram::{ITERATIONS_DEFAULT, ITERATIONS_MAX, ITERATIONS_MIN, ScramMechanism};
use crate::metadata_log::MetadataEvent;

/// Bytes of salt `riffle users add` and the SCRAM client draw for a new credential (Kafka
/// uses about 26: the text of a 130-bit random number).
pub const SALT_BYTES: usize = 32;
/// Longest salt AlterUserScramCredentials accepts; Kafka has no limit, but a credential's
/// salt is sent to every client that names the user.
pub const SALT_MAX_BYTES: usize = 1024;

/// Why a credential may not be stored: Kafka's UNACCEPTABLE_CREDENTIAL cases (an empty
/// user name, iterations out of range) and Riffle's checks of the salt and salted password
/// a client sends. Shared by AlterUserScramCredentials and `riffle users add`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnacceptableCredential {
    /// SASL has no way to log in with an empty name.
    #[error("the user name must not be empty")]
    EmptyUserName,
    /// Fewer than [`ITERATIONS_MIN`] or more than [`ITERATIONS_MAX`].
    #[error(
        "{0} iterations is out of range: a credential needs {ITERATIONS_MIN} to {ITERATIONS_MAX}"
    )]
    Iterations(i64),
    /// An empty salt, or one longer than [`SALT_MAX_BYTES`].
    #[error("a salt of {0} bytes is out of range: a credential needs 1 to {SALT_MAX_BYTES}")]
    SaltLength(usize),
    /// A salted password that is not one output of the mechanism's hash, so no client's
    /// PBKDF2 could have made it.
    #[error("a {mechanism} salted password has {expected} bytes, not {actual}")]
    SaltedPasswordLength {
        /// The mechanism it was sent for.
        mechanism: ScramMechanism,
        /// The mechanism's hash length.
        expected: usize,
        /// What was sent.
        actual: usize,
    },
}

/// Checks a user name a credential is stored under.
///
/// # Errors
/// [`UnacceptableCredential::EmptyUserName`].
pub fn check_user_name(user: &str) -> Result<(), UnacceptableCredential> {
    match user.is_empty() {
        true => Err(UnacceptableCredential::EmptyUserName),
        false => Ok(()),
    }
}

/// Checks an iteration count against Kafka's limits and returns it as stored.
///
/// # Errors
/// [`UnacceptableCredential::Iterations`] outside [`ITERATIONS_MIN`]..=[`ITERATIONS_MAX`].
pub fn check_iterations(iterations: i64) -> Result<u32, UnacceptableCredential> {
    u32::try_from(iterations)
        .ok()
        .filter(|iterations| (ITERATIONS_MIN..=ITERATIONS_MAX).contains(iterations))
        .ok_or(UnacceptableCredential::Iterations(iterations))
}

/// One user's credential for one mechanism, as the server keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt for `Hi`.
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`: checks a client's proof.
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's final message.
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

impl ScramCredential {
    /// The credential for `password` (its UTF-8 bytes, as Kafka uses them).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        ScramCredential::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// The credential for a password a client already salted and sent, after checking
    /// what it sent (AlterUserScramCredentials carries `Hi(password, salt, iterations)`,
    /// not the password; KIP-554).
    ///
    /// # Errors
    /// [`UnacceptableCredential`] for iterations out of range, an empty or oversized salt,
    /// or a salted password of the wrong length for `mechanism`.
    pub fn from_client_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i64,
    ) -> Result<ScramCredential, UnacceptableCredential> {
        let iterations = check_iterations(iterations)?;
        if salt.is_empty() || salt.len() > SALT_MAX_BYTES {
            return Err(UnacceptableCredential::SaltLength(salt.len()));
        }
        if salted_password.len() != mechanism.output_bytes() {
            return Err(UnacceptableCredential::SaltedPasswordLength {
                mechanism,
                expected: mechanism.output_bytes(),
                actual: salted_password.len(),
            });
        }
        Ok(ScramCredential::from_salted_password(
            mechanism,
            salt.to_vec(),
            salted_password,
            iterations,
        ))
    }

    /// The credential for a password already salted as `Hi(password, salt, iterations)`.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }
}

/// Shows the iterations only: the salt and keys stay out of logs.
impl fmt::Debug for ScramCredential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ScramCredential")
            .field("salt", &"[hidden]")
            .field("stored_key", &"[hidden]")
            .field("server_key", &"[hidden]")
            .field("iterations", &self.iterations)
            .finish()
    }
}

/// One change to the store, as the Alter API and the CLI ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialChange {
    /// Add or replace `user`'s credential for `mechanism`.
    Set {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The new credential.
        credential: ScramCredential,
    },
    /// Remove `user`'s credential for `mechanism`.
    Delete {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

impl CredentialChange {
    /// The user it changes.
    pub fn user(&self) -> &str {
        match self {
            CredentialChange::Set { user, .. } | CredentialChange::Delete { user, .. } => user,
        }
    }

    /// The metadata event that records it.
    pub fn to_event(&self) -> MetadataEvent {
        match self.clone() {
            CredentialChange::Set {
                user,
                mechanism,
                credential,
            } => MetadataEvent::ScramCredentialSet {
                user,
                mechanism,
                credential,
            },
            CredentialChange::Delete { user, mechanism } => {
                MetadataEvent::ScramCredentialDeleted { user, mechanism }
            }
        }
    }
}

/// One user's credentials, as Describe and `riffle users list` show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCredentials {
    /// The user.
    pub user: String,
    /// Each mechanism the user has a credential for, with its iterations, in Kafka's
    /// mechanism order.
    pub mechanisms: Vec<(ScramMechanism, u32)>,
}

/// Every user's SCRAM credentials.
pub struct CredentialStore {
    /// By user, then mechanism. Read by every SASL exchange and Describe, written by
    /// replay and by `Cluster::alter_scram_credentials` after its metadata append, under
    /// the cluster's metadata-log lock (lock order: metadata log, then this). Held only for
    /// a map lookup or update, never across the fsync.
    credentials: RwLock<BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>>,
    /// Key of the HMAC that makes an unknown user's salt; drawn at start-up, never stored.
    fake_salt_key: [u8; 32],
}

impl CredentialStore {
    /// An empty store with a fresh key for fake salts.
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub fn new() -> Result<CredentialStore, RandomUnavailable> {
        Ok(CredentialStore {
            credentials: RwLock::new(BTreeMap::new()),
            fake_salt_key: random_bytes()?,
        })
    }

    /// `user`'s credential for `mechanism`, if it has one.
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.read().get(user)?.get(&mechanism).cloned()
    }

    /// Whether `user` has a credential for `mechanism`.
    pub fn contains(&self, user: &str, mechanism: ScramMechanism) -> bool {
        self.read()
            .get(user)
            .is_some_and(|mechanisms| mechanisms.contains_key(&mechanism))
    }

    /// `user`'s mechanisms and iterations; `None` when it has no credential.
    pub fn describe(&self, user: &str) -> Option<UserCredentials> {
        let credentials = self.read();
        let mechanisms = credentials.get(user)?;
        Some(describe(user, mechanisms))
    }

    /// Every user with a credential, by name.
    pub fn users(&self) -> Vec<UserCredentials> {
        self.read()
            .iter()
            .map(|(user, mechanisms)| describe(user, mechanisms))
            .collect()
    }

    /// Applies a credential event (at replay, or after it was appended); other events are
    /// ignored. Deleting a credential that does not exist is a no-op.
    pub fn apply(&self, event: &MetadataEvent) {
        let mut credentials = self.credentials.write_or_recover();
        match event {
            MetadataEvent::ScramCredentialSet {
                user,
                mechanism,
                credential,
            } => {
                let mechanisms = credentials.entry(user.clone()).or_default();
                mechanisms.insert(*mechanism, credential.clone());
            }
            MetadataEvent::ScramCredentialDeleted { user, mechanism } => {
                if let Some(mechanisms) = credentials.get_mut(user) {
                    mechanisms.remove(mechanism);
                    if mechanisms.is_empty() {
                        credentials.remove(user);
                    }
                }
            }
            _ => {}
        }
    }

    /// A credential for a user who has none, so an exchange can go on as for a real user
    /// and fail only at the proof: the same salt for the same name every time (until the
    /// broker restarts), the default iterations, and keys nobody's password derives.
    pub fn fake_credential(&self, user: &str, mechanism: ScramMechanism) -> ScramCredential {
        let derive = |purpose: &str| {
            let input = [
                purpose.as_bytes(),
                mechanism.name().as_bytes(),
                user.as_bytes(),
            ]
            .join(&0);
            mechanism.hmac(&self.fake_salt_key, &input)
        };
        let mut salt = derive("salt");
        salt.truncate(SALT_BYTES);
        ScramCredential {
            salt,
            stored_key: derive("stored key"),
            server_key: derive("server key"),
            iterations: ITERATIONS_DEFAULT,
        }
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>>
    {
        self.credentials.read_or_recover()
    }
}

fn describe(user: &str, mechanisms: &BTreeMap<ScramMechanism, ScramCredential>) -> UserCredentials {
    UserCredentials {
        user: user.to_string(),
        mechanisms: mechanisms
            .iter()
            .map(|(mechanism, credential)| (*mechanism, credential.iterations))
            .collect(),
    }
}

/// Byte fields as standard base64 strings in the metadata log's JSON.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(user: &str, mechanism: ScramMechanism, password: &str) -> MetadataEvent {
        let credential = ScramCredential::from_password(mechanism, password, vec![7; 16], 4096);
        CredentialChange::Set {
            user: user.into(),
            mechanism,
            credential,
        }
        .to_event()
    }

    #[test]
    fn events_set_replace_and_delete_credentials() {
        // Set, replace and delete events leave exactly the credentials they describe.
        let store = CredentialStore::new().expect("random");
        store.apply(&set("alice", ScramMechanism::Sha512, "one"));
        store.apply(&set("alice", ScramMechanism::Sha256, "two"));
        store.apply(&set("bob", ScramMechanism::Sha256, "three"));
        store.apply(&set("bob", ScramMechanism::Sha256, "four"));
        let replaced =
            ScramCredential::from_password(ScramMechanism::Sha256, "four", vec![7; 16], 4096);
        assert_eq!(store.get("bob", ScramMechanism::Sha256), Some(replaced));
        let alice = store.describe("alice").expect("alice");
        assert_eq!(
            alice.mechanisms,
            [
                (ScramMechanism::Sha256, 4096),
                (ScramMechanism::Sha512, 4096)
            ]
        );
        store.apply(&MetadataEvent::ScramCredentialDeleted {
            user: "bob".into(),
            mechanism: ScramMechanism::Sha256,
        });
        store.apply(&MetadataEvent::ScramCredentialDeleted {
            user: "nobody".into(),
            mechanism: ScramMechanism::Sha256,
        });
        assert!(store.describe("bob").is_none());
        let users: Vec<_> = store.users().into_iter().map(|user| user.user).collect();
        assert_eq!(users, ["alice"]);
    }

    #[test]
    fn fake_credentials_are_stable_per_name_and_shaped_like_real_ones() {
        // An unknown user's salt is the same on every ask and differs between names, and
        // its keys and iterations have a real credential's shape.
        let store = CredentialStore::new().expect("random");
        for mechanism in ScramMechanism::ALL {
            let first = store.fake_credential("mallory", mechanism);
            assert_eq!(first, store.fake_credential("mallory", mechanism));
            assert_ne!(first.salt, store.fake_credential("trudy", mechanism).salt);
            assert_eq!(first.salt.len(), SALT_BYTES);
            assert_eq!(first.stored_key.len(), mechanism.output_bytes());
            assert_eq!(first.server_key.len(), mechanism.output_bytes());
            assert_eq!(first.iterations, ITERATIONS_DEFAULT);
        }
        let other_store = CredentialStore::new().expect("random");
        assert_ne!(
            store
                .fake_credential("mallory", ScramMechanism::Sha256)
                .salt,
            other_store
                .fake_credential("mallory", ScramMechanism::Sha256)
                .salt
        );
    }

    #[test]
    fn a_client_salted_password_makes_the_same_credential_as_the_password() {
        // What a client sends (Hi of the password) gives the keys the password gives here.
        for mechanism in ScramMechanism::ALL {
            let salt = vec![3; SALT_BYTES];
            let salted = mechanism.salted_password(b"secret", &salt, 8192);
            let sent =
                ScramCredential::from_client_salted_password(mechanism, &salt, &salted, 8192);
            let local = ScramCredential::from_password(mechanism, "secret", salt, 8192);
            assert_eq!(sent, Ok(local));
        }
    }

    #[test]
    fn client_salted_passwords_are_checked() {
        // Iterations outside Kafka's range, an empty or oversized salt and a salted password
        // of another hash's length are refused, each with its reason.
        let mechanism = ScramMechanism::Sha512;
        let salted = vec![0; mechanism.output_bytes()];
        let salt = [1; 16];
        let check = |salt: &[u8], salted: &[u8], iterations| {
            ScramCredential::from_client_salted_password(mechanism, salt, salted, iterations)
                .map(|credential| credential.iterations)
        };
        assert_eq!(check(&salt, &salted, 4096), Ok(4096));
        assert_eq!(check(&salt, &salted, 16384), Ok(16384));
        for iterations in [4095, 16385, -1, i64::from(u32::MAX) + 1] {
            let refused = Err(UnacceptableCredential::Iterations(iterations));
            assert_eq!(check(&salt, &salted, iterations), refused);
        }
        assert_eq!(
            check(&[], &salted, 4096),
            Err(UnacceptableCredential::SaltLength(0))
        );
        let long_salt = vec![1; SALT_MAX_BYTES + 1];
        assert_eq!(
            check(&long_salt, &salted, 4096),
            Err(UnacceptableCredential::SaltLength(SALT_MAX_BYTES + 1))
        );
        assert_eq!(
            check(&salt, &salted[..32], 4096),
            Err(UnacceptableCredential::SaltedPasswordLength {
                mechanism,
                expected: 64,
                actual: 32
            })
        );
        assert_eq!(
            check_user_name(""),
            Err(UnacceptableCredential::EmptyUserName)
        );
        assert_eq!(check_user_name("alice"), Ok(()));
    }

    #[test]
    fn debug_output_hides_salt_and_keys() {
        // A credential in a log line shows its iterations and nothing secret.
        let credential =
            ScramCredential::from_password(ScramMechanism::Sha256, "pw", vec![1; 4], 4096);
        let shown = format!("{credential:?}");
        assert!(shown.contains("4096") && shown.contains("[hidden]"));
        assert!(!shown.contains("[1,"), "{shown}");
    }
}
