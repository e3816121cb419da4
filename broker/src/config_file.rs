//! `riffle serve --config FILE`: settings from a Kafka `server.properties`, under Kafka's
//! names, below the flags and the `RIFFLE_*` environment variables.
//!
//! [`parse_serve`] is the entry point: it parses the flags, reads the file named by
//! `--config` ([`FileSettings::load`]), turns each property Riffle has a flag for into
//! that flag's value (checked by the flag's own parser, so a bad value names the
//! property), drops those the command line or environment set, and parses the flags again
//! with the rest appended. Properties Kafka has but Riffle has no use for (ZooKeeper, KRaft,
//! replication, thread pools, socket buffers) are listed in one warning, so a stock Kafka
//! file starts; a name Kafka does not have either ([`kafka_properties`]) is an error.
//!
//! | property | flag |
//! |---|---|
//! | `listeners`, `advertised.listeners` (less the `controller.listener.names`) | `--listeners`, `--advertised-listeners` |
//! | `listener.security.protocol.map` | `--listener-security-protocol-map` |
//! | `log.dirs`, else `log.dir` (one directory) | `--data-dir` |
//! | `node.id`, else `broker.id` | `--node-id` |
//! | `log.retention.ms`, else `.minutes`, else `.hours` | `--log-retention-ms` |
//! | `log.roll.ms`, else `log.roll.hours` | `--log-segment-ms` |
//! | `log.flush.interval.ms` | `--flush-policy interval --flush-interval-ms` |
//! | `log.flush.interval.messages=1` | `--flush-policy acks-all` |
//! | `authorizer.class.name` (`StandardAuthorizer` or `AclAuthorizer`) | `--authorizer acl` |
//! | `sasl.enabled.mechanisms` (those Riffle implements) | `--sasl-enabled-mechanisms` |
//! | `ssl.keystore.location` (`ssl.keystore.type=PEM`) | `--ssl-certificate` and `--ssl-key` |
//! | `ssl.truststore.location` (`ssl.truststore.type=PEM`) | `--ssl-truststore` |
//! | the names in [`SAME_VALUE`] | their flag, the value as written |
//! | Riffle's own names in [`RIFFLE_PROPERTIES`] (`riffle.http.listen`) | their flag, the value as written |

pub mod kafka_properties;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::builder::Resettable;
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{ArgMatches, Command, FromArgMatches, Id};
use tracing::{info, warn};

use crate::config::BrokerConfig;
use crate::listener::ListenerError;
use crate::properties::{Properties, PropertiesError, Property};
use kafka_properties::{KAFKA_BROKER_PROPERTIES, is_kafka_broker_property};

/// Kafka properties whose value a flag takes as written: (property, clap argument id).
pub const SAME_VALUE: &[(&str, &str)] = &[
    (
        "allow.everyone.if.no.acl.found",
        "allow_everyone_if_no_acl_found",
    ),
    ("auto.create.topics.enable", "auto_create_topics"),
    (
        "connection.failed.authentication.delay.ms",
        "connection_failed_authentication_delay_ms",
    ),
    ("connections.max.idle.ms", "connections_max_idle_ms"),
    ("fetch.max.bytes", "fetch_max_bytes"),
    (
        "group.initial.rebalance.delay.ms",
        "group_initial_rebalance_delay_ms",
    ),
    (
        "group.max.session.timeout.ms",
        "group_max_session_timeout_ms",
    ),
    ("group.max.size", "group_max_size"),
    (
        "group.min.session.timeout.ms",
        "group_min_session_timeout_ms",
    ),
    ("log.cleaner.backoff.ms", "log_cleaner_backoff_ms"),
    (
        "log.flush.offset.checkpoint.interval.ms",
        "recovery_point_checkpoint_interval_ms",
    ),
    ("log.initial.task.delay.ms", "log_initial_task_delay_ms"),
    ("log.retention.bytes", "retention_bytes"),
    (
        "log.retention.check.interval.ms",
        "retention_check_interval_ms",
    ),
    ("log.segment.bytes", "segment_bytes"),
    ("max.connections", "max_connections"),
    ("max.connections.per.ip", "max_connections_per_ip"),
    (
        "max.connections.per.ip.overrides",
        "max_connections_per_ip_overrides",
    ),
    (
        "max.incremental.fetch.session.cache.slots",
        "max_incremental_fetch_session_cache_slots",
    ),
    ("message.max.bytes", "max_message_bytes"),
    ("num.partitions", "default_partitions"),
    ("offsets.retention.minutes", "offsets_retention_minutes"),
    (
        "sasl.server.max.receive.size",
        "sasl_server_max_receive_bytes",
    ),
    ("socket.request.max.bytes", "max_request_bytes"),
    ("ssl.client.auth", "ssl_client_auth"),
    ("super.users", "super_users"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "transaction_abort_timed_out_interval_ms",
    ),
    ("transaction.max.timeout.ms", "transaction_max_timeout_ms"),
    (
        "transactional.id.expiration.ms",
        "transactional_id_expiration_ms",
    ),
];

/// Riffle's own properties, for settings Kafka has no name for: (property, clap argument
/// id); the flag takes the value as written. The `riffle.` prefix keeps them apart from
/// any name Kafka may add.
pub const RIFFLE_PROPERTIES: &[(&str, &str)] = &[("riffle.http.listen", "http_listen")];

/// Properties that set no flag themselves but shape others' values.
const READ_BY_OTHERS: &[&str] = &[
    "controller.listener.names",
    "ssl.keystore.type",
    "ssl.truststore.type",
];

/// The flags that choose where the broker listens: one the command line or environment
/// sets replaces the file's listener settings that describe another set of listeners.
const LISTEN: &[&str] = &["listen", "advertise"];
const LISTEN_OR_LISTENERS: &[&str] = &["listen", "advertise", "listeners"];

/// Kafka's authorizers that implement the ACL model Riffle's `--authorizer acl` does.
const ACL_AUTHORIZERS: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

/// Why `--config` cannot be used. Every variant names the file, and all but the last the
/// property.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file cannot be read or parsed.
    #[error("--config: {0}")]
    File(#[from] PropertiesError),
    /// A name that is neither a Kafka broker property nor Riffle's, most likely misspelt.
    #[error(
        "{}: line {line}: unknown property {key}{}",
        path.display(),
        suggestion.map(|name| format!(" (did you mean {name}?)")).unwrap_or_default()
    )]
    UnknownProperty {
        /// The file.
        path: PathBuf,
        /// Where.
        line: usize,
        /// The name as written.
        key: String,
        /// The closest known name, if one is close.
        suggestion: Option<&'static str>,
    },
    /// A value the flag behind the property refuses.
    #[error("{}: line {line}: invalid value '{value}' for {key}: {reason}", path.display())]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// Where.
        line: usize,
        /// The property.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Kafka setting Riffle cannot honour, and would be wrong to ignore.
    #[error("{}: line {line}: {key} is not supported: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Where.
        line: usize,
        /// The property.
        key: String,
        /// What to do instead.
        reason: &'static str,
    },
    /// Two names for one setting with different values.
    #[error(
        "{}: {first} (line {first_line}) and {second} (line {second_line}) disagree; set one of them",
        path.display()
    )]
    Conflict {
        /// The file.
        path: PathBuf,
        /// One property.
        first: &'static str,
        /// Its line.
        first_line: usize,
        /// The other.
        second: &'static str,
        /// Its line.
        second_line: usize,
    },
    /// The file's listener settings do not make listeners.
    #[error("{}: {properties}: {error}", path.display())]
    Listeners {
        /// The file.
        path: PathBuf,
        /// The listener properties the file set.
        properties: String,
        /// What is wrong.
        error: ListenerError,
    },
    /// The file's settings and the flags together are refused by the flags' own rules.
    #[error("{}: with the settings from this file ({settings}), {message}", path.display())]
    Combination {
        /// The file.
        path: PathBuf,
        /// The file's settings in use, as `property (--flag)`.
        settings: String,
        /// What the command line parser said.
        message: String,
    },
    /// The command line itself does not parse.
    #[error("{0}")]
    Command(String),
}

/// One flag value that comes from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The clap argument id of the flag.
    pub arg: &'static str,
    /// The value to give it.
    pub value: String,
    /// The property it comes from, as written in the file.
    pub key: String,
    /// Its line.
    pub line: usize,
    /// Flags that, set on the command line or in the environment, make this setting moot.
    pub superseded_by: &'static [&'static str],
}

impl Setting {
    fn new(arg: &'static str, value: impl Into<String>, property: &Property) -> Setting {
        Setting {
            arg,
            value: value.into(),
            key: property.key.clone(),
            line: property.line,
            superseded_by: &[],
        }
    }
}

/// What a file asks for, read and mapped, before it meets the flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSettings {
    /// The file.
    pub path: PathBuf,
    /// The flag values it gives, in file order.
    pub settings: Vec<Setting>,
    /// Kafka properties it sets that mean nothing to Riffle.
    pub no_effect: Vec<String>,
    /// Listeners left out because `controller.listener.names` names them.
    pub controller_listeners: Vec<String>,
}

/// What `--config` did, for the log once logging is set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Properties in use.
    pub applied: Vec<String>,
    /// Properties the command line or environment overrode.
    pub overridden: Vec<String>,
    /// Kafka properties that mean nothing to Riffle.
    pub no_effect: Vec<String>,
    /// Listeners left out as KRaft controller listeners.
    pub controller_listeners: Vec<String>,
}

impl FileReport {
    /// Logs what the file set, what the flags overrode and, in one warning, what it set
    /// that has no effect.
    pub fn log(&self) {
        let path = self.path.display();
        info!(
            file = %path,
            applied = %self.applied.join(", "),
            overridden = %self.overridden.join(", "),
            "read the config file"
        );
        if !self.controller_listeners.is_empty() {
            warn!(
                "{path}: listener {} is a KRaft controller listener (controller.listener.names): \
                 not opened, Riffle has no controller",
                self.controller_listeners.join(", ")
            );
        }
        if !self.no_effect.is_empty() {
            warn!("{path}: no effect in Riffle: {}", self.no_effect.join(", "));
        }
    }
}

/// Parses the `serve` flags in `args` (program name first) with `command`; with `--config`,
/// reads the file and parses again with its settings under the flags and environment.
///
/// # Errors
/// A [`ConfigFileError`] naming the file, and the property at fault where there is one.
pub fn parse_serve(
    command: &Command,
    args: Vec<OsString>,
) -> Result<(BrokerConfig, Option<FileReport>), ConfigFileError> {
    let matches = get_matches(command, &args).map_err(ConfigFileError::Command)?;
    let config = from_matches(&matches)?;
    let Some(path) = config.config.clone() else {
        return Ok((config, None));
    };
    let file = FileSettings::load(&path)?;
    for setting in &file.settings {
        check_value(command, &file.path, setting)?;
    }
    let (applied, overridden): (Vec<&Setting>, Vec<&Setting>) = file
        .settings
        .iter()
        .partition(|setting| !overrides(&matches, setting));
    let mut merged_args = args;
    merged_args.extend(applied.iter().map(|setting| flag_arg(command, setting)));
    let merged =
        get_matches(command, &merged_args).map_err(|message| ConfigFileError::Combination {
            path: path.clone(),
            settings: describe(command, &applied),
            message,
        })?;
    let config = from_matches(&merged)?;
    check_listeners(&config, &path, &applied)?;
    let keys = |settings: &[&Setting]| {
        let mut keys: Vec<String> = settings.iter().map(|s| s.key.clone()).collect();
        keys.dedup();
        keys
    };
    let report = FileReport {
        path,
        applied: keys(&applied),
        overridden: keys(&overridden),
        no_effect: file.no_effect,
        controller_listeners: match applied.iter().any(|setting| setting.arg == "listeners") {
            true => file.controller_listeners,
            false => Vec::new(),
        },
    };
    Ok((config, Some(report)))
}

fn get_matches(command: &Command, args: &[OsString]) -> Result<ArgMatches, String> {
    command
        .clone()
        .try_get_matches_from(args)
        .map_err(|error| clap_message(&error))
}

fn from_matches(matches: &ArgMatches) -> Result<BrokerConfig, ConfigFileError> {
    BrokerConfig::from_arg_matches(matches)
        .map_err(|error| ConfigFileError::Command(clap_message(&error)))
}

/// Whether the command line or environment set the setting's flag, or one that makes it moot.
fn overrides(matches: &ArgMatches, setting: &Setting) -> bool {
    let explicit = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    explicit(setting.arg) || setting.superseded_by.iter().any(|id| explicit(id))
}

/// `--flag=value`, one argument so a value starting with `-` stays a value.
fn flag_arg(command: &Command, setting: &Setting) -> OsString {
    format!("--{}={}", long_name(command, setting.arg), setting.value).into()
}

fn long_name<'a>(command: &'a Command, id: &str) -> &'a str {
    let arg = command.get_arguments().find(|arg| arg.get_id() == id);
    let long = arg.and_then(|arg| arg.get_long());
    // The tables name flags of BrokerConfig; a test checks every one.
    long.unwrap_or_else(|| panic!("no flag with id {id}"))
}

/// `property (--flag)` for each setting.
fn describe(command: &Command, settings: &[&Setting]) -> String {
    settings
        .iter()
        .map(|setting| format!("{} (--{})", setting.key, long_name(command, setting.arg)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the flag's own parser on the setting's value alone, so a bad value is reported
/// against the property before the flags are merged.
fn check_value(command: &Command, path: &Path, setting: &Setting) -> Result<(), ConfigFileError> {
    let arg = command
        .get_arguments()
        .find(|arg| arg.get_id() == setting.arg)
        .unwrap_or_else(|| panic!("no flag with id {}", setting.arg));
    // Alone: without the relations to other flags, and without its environment variable.
    let lone = arg
        .clone()
        .requires(Resettable::<Id>::Reset)
        .conflicts_with(Resettable::<Id>::Reset)
        .overrides_with(Resettable::<Id>::Reset)
        .group(Resettable::<Id>::Reset)
        .env(Resettable::Reset);
    let args: [OsString; 2] = ["riffle".into(), flag_arg(command, setting)];
    match Command::new("riffle").arg(lone).try_get_matches_from(args) {
        Ok(_) => Ok(()),
        Err(error) => Err(ConfigFileError::InvalidValue {
            path: path.to_path_buf(),
            line: setting.line,
            key: setting.key.clone(),
            value: setting.value.clone(),
            reason: clap_reason(&error),
        }),
    }
}

/// What a clap value error says about the value, without the flag's name.
fn clap_reason(error: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(error) {
        return source.to_string();
    }
    if let Some(ContextValue::Strings(valid)) = error.get(ContextKind::ValidValue) {
        return format!("expected one of {}", valid.join(", "));
    }
    clap_message(error)
}

/// A clap error on one line, without its `error: ` prefix and its usage and help hints.
fn clap_message(error: &clap::Error) -> String {
    let text = error.to_string();
    let message = text.split("\n\n").next().unwrap_or_default();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The listener settings from the file, checked as the listeners will be, so an error
/// names the properties rather than flags the operator never typed.
fn check_listeners(
    config: &BrokerConfig,
    path: &Path,
    applied: &[&Setting],
) -> Result<(), ConfigFileError> {
    const LISTENER_ARGS: &[&str] = &[
        "listeners",
        "advertised_listeners",
        "listener_security_protocol_map",
    ];
    let from_file: Vec<&str> = applied
        .iter()
        .filter(|setting| LISTENER_ARGS.contains(&setting.arg))
        .map(|setting| setting.key.as_str())
        .collect();
    if from_file.is_empty() {
        return Ok(());
    }
    crate::listener::listener_configs(config)
        .map(|_| ())
        .map_err(|error| ConfigFileError::Listeners {
            path: path.to_path_buf(),
            properties: from_file.join(", "),
            error,
        })
}

impl FileSettings {
    /// Reads the file at `path` and maps its properties to flag values.
    ///
    /// # Errors
    /// An unreadable file, an unknown property, or a value no flag can take.
    pub fn load(path: &Path) -> Result<FileSettings, ConfigFileError> {
        let properties = Properties::load(path)?;
        FileSettings::from_properties(path, &properties)
    }

    /// Maps `properties`, read from `path`, to flag values.
    ///
    /// # Errors
    /// As [`FileSettings::load`], past reading.
    pub fn from_properties(
        path: &Path,
        properties: &Properties,
    ) -> Result<FileSettings, ConfigFileError> {
        let rules = Rules { path, properties };
        rules.check_names()?;
        let mut file = FileSettings {
            path: path.to_path_buf(),
            ..FileSettings::default()
        };
        for property in properties.iter() {
            let mut as_written = SAME_VALUE.iter().chain(RIFFLE_PROPERTIES);
            if let Some((_, arg)) = as_written.find(|(key, _)| *key == property.key) {
                file.settings
                    .push(Setting::new(arg, &property.value, property));
            }
        }
        let (listeners, controller_listeners) = rules.listeners();
        file.settings.extend(listeners);
        file.controller_listeners = controller_listeners;
        file.settings.extend(rules.data_dir()?);
        file.settings.extend(rules.node_id()?);
        file.settings.extend(rules.retention_ms()?);
        file.settings.extend(rules.segment_ms()?);
        file.settings.extend(rules.flush());
        file.settings.extend(rules.authorizer()?);
        file.settings.extend(rules.sasl_mechanisms()?);
        file.settings.extend(rules.tls()?);
        file.settings.sort_by_key(|setting| setting.line);
        // What set no flag: Kafka's settings Riffle has no use for, and those another name
        // outranks (log.retention.hours under log.retention.ms).
        file.no_effect = properties
            .iter()
            .map(|property| property.key.clone())
            .filter(|key| !file.settings.iter().any(|setting| setting.key == *key))
            .filter(|key| !READ_BY_OTHERS.contains(&key.as_str()))
            .collect();
        Ok(file)
    }
}

/// The conversions of [`CONVERTED`] properties, one method per flag (or pair of flags).
struct Rules<'a> {
    path: &'a Path,
    properties: &'a Properties,
}

impl Rules<'_> {
    /// Refuses the first name neither Kafka nor Riffle has, suggesting the closest one.
    fn check_names(&self) -> Result<(), ConfigFileError> {
        match self
            .properties
            .iter()
            .find(|property| !is_known_property(&property.key))
        {
            Some(property) => Err(ConfigFileError::UnknownProperty {
                path: self.path.to_path_buf(),
                line: property.line,
                key: property.key.clone(),
                suggestion: closest_name(&property.key),
            }),
            None => Ok(()),
        }
    }

    /// The property `key` if set to a non-empty value: Kafka reads an empty value of these
    /// as unset.
    fn get(&self, key: &str) -> Option<&Property> {
        self.properties
            .get(key)
            .filter(|property| !property.value.is_empty())
    }

    fn invalid(&self, property: &Property, reason: impl Into<String>) -> ConfigFileError {
        ConfigFileError::InvalidValue {
            path: self.path.to_path_buf(),
            line: property.line,
            key: property.key.clone(),
            value: property.value.clone(),
            reason: reason.into(),
        }
    }

    /// `listeners` and `advertised.listeners` without the KRaft controller listeners, which
    /// Riffle has no use for, and `listener.security.protocol.map`. The file's listeners
    /// give way to `--listen`; its advertised listeners describe its listeners, so they give
    /// way to `--listeners` as well.
    fn listeners(&self) -> (Vec<Setting>, Vec<String>) {
        let controllers: Vec<String> = self
            .get("controller.listener.names")
            .map(|property| list(&property.value).map(str::to_ascii_uppercase).collect())
            .unwrap_or_default();
        let mut dropped = Vec::new();
        let mut without_controllers = |value: &str| {
            let (kept, controller): (Vec<&str>, Vec<&str>) = list(value).partition(|entry| {
                let name = entry.split_once("://").map_or(*entry, |(name, _)| name);
                !controllers.contains(&name.trim().to_ascii_uppercase())
            });
            for entry in controller {
                let name = entry.split_once("://").map_or(entry, |(name, _)| name);
                if !dropped.iter().any(|seen: &String| seen == name) {
                    dropped.push(name.to_string());
                }
            }
            kept.join(",")
        };
        let mut settings = Vec::new();
        for (key, arg, superseded_by) in [
            ("listeners", "listeners", LISTEN),
            (
                "advertised.listeners",
                "advertised_listeners",
                LISTEN_OR_LISTENERS,
            ),
        ] {
            if let Some(property) = self.get(key) {
                settings.push(Setting {
                    superseded_by,
                    ..Setting::new(arg, without_controllers(&property.value), property)
                });
            }
        }
        if let Some(property) = self.get("listener.security.protocol.map") {
            settings.push(Setting {
                superseded_by: LISTEN,
                ..Setting::new("listener_security_protocol_map", &property.value, property)
            });
        }
        (settings, dropped)
    }

    /// `log.dirs`, else `log.dir`: Riffle keeps one data directory.
    fn data_dir(&self) -> Result<Option<Setting>, ConfigFileError> {
        let Some(property) = self.get("log.dirs").or_else(|| self.get("log.dir")) else {
            return Ok(None);
        };
        let directories: Vec<&str> = list(&property.value).collect();
        match directories.as_slice() {
            [directory] => Ok(Some(Setting::new("data_dir", *directory, property))),
            _ => Err(self.invalid(
                property,
                "Riffle keeps its data in one directory; name one (RAID or a volume manager \
                 can join disks)",
            )),
        }
    }

    /// `node.id`, else `broker.id` (ZooKeeper mode's name).
    fn node_id(&self) -> Result<Option<Setting>, ConfigFileError> {
        let node_id = self.get("node.id");
        let broker_id = self.get("broker.id");
        if let (Some(node), Some(broker)) = (node_id, broker_id)
            && node.value != broker.value
        {
            return Err(ConfigFileError::Conflict {
                path: self.path.to_path_buf(),
                first: "node.id",
                first_line: node.line,
                second: "broker.id",
                second_line: broker.line,
            });
        }
        Ok(node_id
            .or(broker_id)
            .map(|property| Setting::new("node_id", &property.value, property)))
    }

    /// `log.retention.ms`, else `log.retention.minutes`, else `log.retention.hours`, as
    /// Kafka reads them; any negative value keeps data forever (-1).
    fn retention_ms(&self) -> Result<Option<Setting>, ConfigFileError> {
        self.milliseconds(
            "retention_ms",
            &[
                ("log.retention.ms", 1),
                ("log.retention.minutes", 60_000),
                ("log.retention.hours", 3_600_000),
            ],
            Negative::MeansForever,
        )
    }

    /// `log.roll.ms`, else `log.roll.hours`.
    fn segment_ms(&self) -> Result<Option<Setting>, ConfigFileError> {
        self.milliseconds(
            "segment_ms",
            &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)],
            Negative::AsIs,
        )
    }

    /// The first of `units` (property, milliseconds per unit) that is set, in milliseconds.
    fn milliseconds(
        &self,
        arg: &'static str,
        units: &[(&str, i64)],
        negative: Negative,
    ) -> Result<Option<Setting>, ConfigFileError> {
        let Some((property, unit_ms)) = units
            .iter()
            .find_map(|(key, unit_ms)| Some((self.get(key)?, *unit_ms)))
        else {
            return Ok(None);
        };
        let count: i64 = property
            .value
            .parse()
            .map_err(|error: std::num::ParseIntError| self.invalid(property, error.to_string()))?;
        let milliseconds = match (negative, count < 0) {
            (Negative::MeansForever, true) => -1,
            _ => count
                .checked_mul(unit_ms)
                .ok_or_else(|| self.invalid(property, "too large"))?,
        };
        Ok(Some(Setting::new(arg, milliseconds.to_string(), property)))
    }

    /// Kafka's flush settings as Riffle's flush policy: a flush every message is a flush
    /// before each acknowledgement (`acks-all`); a flush interval is the `interval` policy.
    /// Other message counts have no counterpart and are reported with no effect.
    fn flush(&self) -> Vec<Setting> {
        let mut settings = Vec::new();
        let every_message = self
            .get("log.flush.interval.messages")
            .filter(|property| property.value == "1");
        if let Some(property) = every_message {
            settings.push(Setting::new("flush_policy", "acks-all", property));
        }
        if let Some(property) = self.get("log.flush.interval.ms") {
            if every_message.is_none() {
                settings.push(Setting::new("flush_policy", "interval", property));
            }
            settings.push(Setting::new("flush_interval_ms", &property.value, property));
        }
        settings
    }

    /// `authorizer.class.name`: Kafka's ACL authorizers are `--authorizer acl`, an empty
    /// name none; another class is refused, since running without it would open the broker.
    fn authorizer(&self) -> Result<Option<Setting>, ConfigFileError> {
        let Some(property) = self.properties.get("authorizer.class.name") else {
            return Ok(None);
        };
        let kind = match property.value.as_str() {
            "" => "none",
            name if ACL_AUTHORIZERS.contains(&name) => "acl",
            _ => {
                return Err(self.invalid(
                    property,
                    format!(
                        "Riffle's authorizer is Kafka's ACL model: use {} or leave it empty",
                        ACL_AUTHORIZERS[0]
                    ),
                ));
            }
        };
        Ok(Some(Setting::new("authorizer", kind, property)))
    }

    /// `sasl.enabled.mechanisms`, each one checked against those Riffle implements.
    fn sasl_mechanisms(&self) -> Result<Option<Setting>, ConfigFileError> {
        let Some(property) = self.properties.get("sasl.enabled.mechanisms") else {
            return Ok(None);
        };
        let mechanisms: Vec<&str> = list(&property.value).collect();
        let implemented = crate::security::sasl::MECHANISMS;
        if let Some(unknown) = mechanisms
            .iter()
            .find(|mechanism| !implemented.contains(&mechanism.to_ascii_uppercase().as_str()))
        {
            return Err(self.invalid(
                property,
                format!(
                    "{unknown} is not implemented; choose from {}",
                    implemented.join(", ")
                ),
            ));
        }
        Ok(Some(Setting::new(
            "sasl_enabled_mechanisms",
            mechanisms.join(","),
            property,
        )))
    }

    /// The key store (certificate chain and key) and trust store, as PEM files. Settings
    /// Riffle cannot honour are refused rather than ignored: a listener would come up
    /// without the TLS the operator asked for.
    fn tls(&self) -> Result<Vec<Setting>, ConfigFileError> {
        for (key, reason) in [
            (
                "ssl.keystore.certificate.chain",
                "put the PEM certificate chain and key in a file, and name it in \
                 ssl.keystore.location with ssl.keystore.type=PEM",
            ),
            (
                "ssl.keystore.key",
                "put the PEM certificate chain and key in a file, and name it in \
                 ssl.keystore.location with ssl.keystore.type=PEM",
            ),
            (
                "ssl.truststore.certificates",
                "put the PEM certificates in a file, and name it in ssl.truststore.location \
                 with ssl.truststore.type=PEM",
            ),
            ("ssl.key.password", "Riffle reads unencrypted PEM keys only"),
        ] {
            if let Some(property) = self.get(key) {
                return Err(ConfigFileError::Unsupported {
                    path: self.path.to_path_buf(),
                    line: property.line,
                    key: key.to_string(),
                    reason,
                });
            }
        }
        let mut settings = Vec::new();
        if let Some(keystore) = self.pem_store("ssl.keystore.location", "ssl.keystore.type")? {
            settings.push(Setting::new("ssl_certificate", &keystore.value, keystore));
            settings.push(Setting::new("ssl_key", &keystore.value, keystore));
        }
        if let Some(truststore) =
            self.pem_store("ssl.truststore.location", "ssl.truststore.type")?
        {
            settings.push(Setting::new(
                "ssl_truststore",
                &truststore.value,
                truststore,
            ));
        }
        Ok(settings)
    }

    /// The store named by `location_key`, which `type_key` must call PEM (Kafka's default
    /// is JKS, which Riffle cannot read).
    fn pem_store(
        &self,
        location_key: &str,
        type_key: &str,
    ) -> Result<Option<&Property>, ConfigFileError> {
        let Some(location) = self.get(location_key) else {
            return Ok(None);
        };
        match self.get(type_key) {
            Some(store_type) if store_type.value.eq_ignore_ascii_case("PEM") => Ok(Some(location)),
            Some(store_type) => Err(self.invalid(
                store_type,
                "Riffle reads PEM files, not JKS or PKCS12 stores; convert the store and set PEM",
            )),
            None => Err(ConfigFileError::Unsupported {
                path: self.path.to_path_buf(),
                line: location.line,
                key: location_key.to_string(),
                reason: if type_key == "ssl.keystore.type" {
                    "Kafka reads it as a JKS store, Riffle reads PEM only: convert it and set \
                     ssl.keystore.type=PEM"
                } else {
                    "Kafka reads it as a JKS store, Riffle reads PEM only: convert it and set \
                     ssl.truststore.type=PEM"
                },
            }),
        }
    }
}

/// Whether a negative count is kept or means "no limit".
#[derive(Debug, Clone, Copy)]
enum Negative {
    /// Passed on, for the flag to judge.
    AsIs,
    /// Any negative value is -1, as Kafka reads retention.
    MeansForever,
}

/// The items of a Kafka list value: split at commas, trimmed, empty ones dropped.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Whether `key` is a Kafka broker property or one of [`RIFFLE_PROPERTIES`].
fn is_known_property(key: &str) -> bool {
    is_kafka_broker_property(key) || RIFFLE_PROPERTIES.iter().any(|(name, _)| *name == key)
}

/// The known name closest to a misspelt one, if within a few edits.
fn closest_name(key: &str) -> Option<&'static str> {
    const MAX_EDITS: usize = 3;
    let riffle_names = RIFFLE_PROPERTIES.iter().map(|(name, _)| name);
    KAFKA_BROKER_PROPERTIES
        .iter()
        .chain(riffle_names)
        .map(|name| (edit_distance(key, name), *name))
        .filter(|(distance, _)| *distance <= MAX_EDITS)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    use crate::config::{AuthorizerKind, FlushPolicy, HttpListen, SslClientAuth};
    use crate::security::Principal;
    use clap::{CommandFactory, Parser};

    /// The flags of `riffle serve` at the top level, as the binary's `serve` has them.
    #[derive(Parser)]
    struct ServeArgs {
        #[command(flatten)]
        config: BrokerConfig,
    }

    /// Kafka 3.9's config/kraft/server.properties, comments left out.
    const KRAFT_SERVER_PROPERTIES: &str = "\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
";

    /// Kafka 3.9's ZooKeeper-mode config/server.properties, comments left out.
    const ZOOKEEPER_SERVER_PROPERTIES: &str = "\
broker.id=0
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kafka-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.retention.check.interval.ms=300000
zookeeper.connect=localhost:2181
zookeeper.connection.timeout.ms=18000
group.initial.rebalance.delay.ms=0
";

    /// Writes `text` as a properties file and parses `flags` with `--config` naming it.
    fn serve_with(
        text: &str,
        flags: &[&str],
    ) -> Result<(BrokerConfig, FileReport), ConfigFileError> {
        let dir = tempfile::Builder::new()
            .prefix("riffle-config-file-test-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("server.properties");
        std::fs::write(&path, text).expect("write");
        let args = [
            "riffle".into(),
            "--config".into(),
            path.clone().into_os_string(),
        ]
        .into_iter()
        .chain(flags.iter().map(OsString::from))
        .collect();
        let (config, report) = parse_serve(&ServeArgs::command(), args)?;
        Ok((config, report.expect("a report with --config")))
    }

    fn served(text: &str, flags: &[&str]) -> (BrokerConfig, FileReport) {
        serve_with(text, flags).unwrap_or_else(|error| panic!("{text:?} {flags:?}: {error}"))
    }

    fn refused(text: &str) -> String {
        match serve_with(text, &[]) {
            Ok((_, report)) => panic!("{text:?} was accepted: {report:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn kafkas_stock_kraft_file_starts_with_its_settings() {
        // The KRaft stock file: its broker listener and data directory are used, the
        // controller listener is left out, and the KRaft and thread settings are listed in
        // one warning.
        let (config, report) = served(KRAFT_SERVER_PROPERTIES, &[]);
        assert_eq!(config.listeners.as_deref(), Some("PLAINTEXT://:9092"));
        assert_eq!(
            config.advertised_listeners.as_deref(),
            Some("PLAINTEXT://localhost:9092")
        );
        assert_eq!(config.data_dir, PathBuf::from("/tmp/kraft-combined-logs"));
        assert_eq!(config.node_id, 1);
        assert_eq!(config.default_partitions, 1);
        assert_eq!(config.max_request_bytes, 104_857_600);
        assert_eq!(config.topic_defaults.retention_ms, 168 * 3_600_000);
        assert_eq!(config.topic_defaults.segment_bytes, 1_073_741_824);
        assert_eq!(config.retention_check_interval_ms, 300_000);
        assert_eq!(report.controller_listeners, names(&["CONTROLLER"]));
        assert_eq!(
            report.no_effect,
            names(&[
                "process.roles",
                "controller.quorum.voters",
                "inter.broker.listener.name",
                "num.network.threads",
                "num.io.threads",
                "socket.send.buffer.bytes",
                "socket.receive.buffer.bytes",
                "num.recovery.threads.per.data.dir",
                "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr",
            ])
        );
        assert!(report.overridden.is_empty(), "{report:?}");
    }

    #[test]
    fn kafkas_stock_zookeeper_file_starts_with_its_settings() {
        // The ZooKeeper-mode stock file: broker.id is the node id, the group delay is read,
        // and zookeeper.* has no effect.
        let (config, report) = served(ZOOKEEPER_SERVER_PROPERTIES, &[]);
        assert_eq!(config.node_id, 0);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/kafka-logs"));
        assert_eq!(config.group_initial_rebalance_delay_ms, 0);
        assert_eq!(config.listeners, None);
        assert!(
            report.no_effect.contains(&"zookeeper.connect".to_string()),
            "{report:?}"
        );
        assert!(report.controller_listeners.is_empty());
    }

    #[test]
    fn flags_override_the_file_and_listen_replaces_its_listeners() {
        // A flag wins over its property; `--listen` replaces the file's listener settings,
        // and `--listeners` its advertised listeners, which describe the file's listeners.
        let text = format!("{KRAFT_SERVER_PROPERTIES}num.partitions=3\n");
        let (config, report) = served(
            &text,
            &[
                "--default-partitions",
                "5",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                "/d",
            ],
        );
        assert_eq!(config.default_partitions, 5);
        assert_eq!(config.data_dir, PathBuf::from("/d"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.listeners, None);
        assert_eq!(config.advertised_listeners, None);
        assert_eq!(config.listener_security_protocol_map, None);
        assert_eq!(
            report.overridden,
            names(&[
                "listeners",
                "advertised.listeners",
                "listener.security.protocol.map",
                "log.dirs",
                "num.partitions",
            ])
        );
        assert!(
            report.controller_listeners.is_empty(),
            "no listener opened from the file"
        );
        let (config, _) = served(
            KRAFT_SERVER_PROPERTIES,
            &["--listeners", "SSL://127.0.0.1:0"],
        );
        assert_eq!(config.listeners.as_deref(), Some("SSL://127.0.0.1:0"));
        assert_eq!(config.advertised_listeners, None);
        assert!(config.listener_security_protocol_map.is_some());
    }

    #[test]
    fn time_units_and_flush_settings_follow_kafka() {
        // ms outranks minutes outranks hours; a negative retention is forever; roll hours
        // become milliseconds; flush settings become a flush policy.
        let (config, report) = served(
            "log.retention.hours=1\nlog.retention.minutes=2\nlog.roll.hours=3\n\
             log.flush.interval.ms=500\n",
            &[],
        );
        assert_eq!(config.topic_defaults.retention_ms, 120_000);
        assert_eq!(config.topic_defaults.segment_ms, 3 * 3_600_000);
        assert_eq!(config.flush_policy, FlushPolicy::Interval);
        assert_eq!(config.flush_interval_ms, 500);
        assert_eq!(report.no_effect, names(&["log.retention.hours"]));
        let (config, _) = served(
            "log.retention.ms=7\nlog.retention.minutes=-5\nlog.roll.ms=9\nlog.roll.hours=1\n",
            &[],
        );
        assert_eq!(config.topic_defaults.retention_ms, 7);
        assert_eq!(config.topic_defaults.segment_ms, 9);
        let (config, _) = served("log.retention.minutes=-5\n", &[]);
        assert_eq!(config.topic_defaults.retention_ms, -1);
        let (config, report) = served(
            "log.flush.interval.messages=1\nlog.flush.interval.ms=9\n",
            &[],
        );
        assert_eq!(config.flush_policy, FlushPolicy::AcksAll);
        assert_eq!(config.flush_interval_ms, 9);
        assert!(report.no_effect.is_empty(), "{report:?}");
        let (config, report) = served("log.flush.interval.messages=10000\n", &[]);
        assert_eq!(config.flush_policy, FlushPolicy::AcksAll);
        assert_eq!(report.no_effect, names(&["log.flush.interval.messages"]));
    }

    #[test]
    fn security_settings_map_to_their_flags() {
        // Kafka's ACL authorizer, super users, PEM stores, client auth and SASL mechanisms.
        let (config, _) = served(
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
             super.users=User:admin;User:ops\n\
             allow.everyone.if.no.acl.found=true\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.location=/etc/riffle/server.pem\n\
             ssl.truststore.type=pem\n\
             ssl.truststore.location=/etc/riffle/ca.pem\n\
             ssl.client.auth=required\n\
             sasl.enabled.mechanisms=PLAIN, SCRAM-SHA-512\n",
            &[],
        );
        assert_eq!(config.authorizer, AuthorizerKind::Acl);
        assert_eq!(
            config.super_users.0,
            vec![Principal::user("admin"), Principal::user("ops")]
        );
        assert!(config.allow_everyone_if_no_acl_found);
        let pem = PathBuf::from("/etc/riffle/server.pem");
        assert_eq!(config.ssl_certificate.as_ref(), Some(&pem));
        assert_eq!(config.ssl_key.as_ref(), Some(&pem));
        assert_eq!(
            config.ssl_truststore,
            Some(PathBuf::from("/etc/riffle/ca.pem"))
        );
        assert_eq!(config.ssl_client_auth, SslClientAuth::Required);
        assert_eq!(
            config.sasl_enabled_mechanisms,
            names(&["PLAIN", "SCRAM-SHA-512"])
        );
        let (config, _) = served("authorizer.class.name=\n", &["--authorizer", "acl"]);
        assert_eq!(config.authorizer, AuthorizerKind::Acl, "the flag wins");
    }

    #[test]
    fn the_http_listener_comes_from_riffle_http_listen_under_the_flag() {
        // Kafka has no name for the HTTP listener: Riffle's own property sets it, and
        // `--http-listen` overrides it as flags override every file setting.
        let file = "num.partitions=2\nriffle.http.listen=127.0.0.1:19644\n";
        let (config, report) = served(file, &[]);
        let address = SocketAddr::from(([127, 0, 0, 1], 19644));
        assert_eq!(config.http_listen, HttpListen::Address(address));
        assert_eq!(
            report.applied,
            names(&["num.partitions", "riffle.http.listen"])
        );
        assert!(report.no_effect.is_empty(), "{report:?}");

        let (config, _) = served("riffle.http.listen=none\n", &[]);
        assert_eq!(config.http_listen, HttpListen::Disabled);

        let (config, report) = served(file, &["--http-listen", "none"]);
        assert_eq!(config.http_listen, HttpListen::Disabled, "the flag wins");
        assert_eq!(report.overridden, names(&["riffle.http.listen"]));
    }

    /// Files each refused, with what the refusal must say.
    const REFUSALS: &[(&str, &str)] = &[
        (
            "num.io.threads=8\nnum.partition=3\n",
            "line 2: unknown property num.partition (did you mean num.partitions?)",
        ),
        ("frobnicate=1\n", "line 1: unknown property frobnicate"),
        (
            "riffle.http.lisen=0.0.0.0:9644\n",
            "line 1: unknown property riffle.http.lisen (did you mean riffle.http.listen?)",
        ),
        (
            "riffle.http.listen=everywhere\n",
            "invalid value 'everywhere' for riffle.http.listen",
        ),
        (
            "num.partitions=three\n",
            "line 1: invalid value 'three' for num.partitions: invalid digit",
        ),
        (
            "auto.create.topics.enable=maybe\n",
            "invalid value 'maybe' for auto.create.topics.enable",
        ),
        (
            "ssl.client.auth=sometimes\n",
            "for ssl.client.auth: expected one of none, requested, required",
        ),
        (
            "max.connections.per.ip=0\n",
            "invalid value '0' for max.connections.per.ip",
        ),
        (
            "max.connections.per.ip.overrides=host\n",
            "for max.connections.per.ip.overrides",
        ),
        (
            "super.users=admin\n",
            "invalid value 'admin' for super.users",
        ),
        (
            "log.retention.hours=forever\n",
            "invalid value 'forever' for log.retention.hours",
        ),
        (
            "log.dirs=/a, /b\n",
            "invalid value '/a, /b' for log.dirs: Riffle keeps its data in one directory",
        ),
        (
            "node.id=1\nbroker.id=2\n",
            "node.id (line 1) and broker.id (line 2) disagree",
        ),
        (
            "authorizer.class.name=com.example.Mine\n",
            "for authorizer.class.name: Riffle's authorizer is Kafka's ACL model",
        ),
        (
            "sasl.enabled.mechanisms=GSSAPI\n",
            "for sasl.enabled.mechanisms: GSSAPI is not implemented",
        ),
        (
            "ssl.keystore.location=/k.jks\n",
            "line 1: ssl.keystore.location is not supported",
        ),
        (
            "ssl.keystore.location=/k\nssl.keystore.type=JKS\n",
            "invalid value 'JKS' for ssl.keystore.type",
        ),
        (
            "ssl.key.password=secret\n",
            "ssl.key.password is not supported: Riffle reads unencrypted PEM keys only",
        ),
        (
            "listeners=PLAINTEXT://host\n",
            "listeners: --listeners entry",
        ),
        (
            "listeners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n",
            "listeners:",
        ),
        (
            "advertised.listeners=PLAINTEXT://h:1\n",
            "settings from this file (advertised.listeners (--advertised-listeners))",
        ),
        ("a=\\u12\n", "line 1: malformed"),
    ];

    #[test]
    fn typos_and_bad_values_are_errors_naming_the_property() {
        // Each refusal names the property (and its line where it has one).
        for (text, expected) in REFUSALS {
            let message = refused(text);
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(message.contains("server.properties"), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[test]
    fn without_config_the_flags_are_parsed_as_they_are() {
        // No --config: no file is read and no report made.
        let args = vec!["riffle".into(), "--node-id".into(), "4".into()];
        let (config, report) = parse_serve(&ServeArgs::command(), args).expect("parses");
        assert_eq!(config.node_id, 4);
        assert_eq!(report, None);
    }

    #[test]
    fn every_mapped_property_is_kafkas_and_every_flag_exists() {
        // The table names real Kafka properties and real flags, so no mapping is dead.
        let command = ServeArgs::command();
        for (property, arg) in SAME_VALUE {
            assert!(is_kafka_broker_property(property), "{property}");
            let found = command.get_arguments().find(|a| a.get_id() == *arg);
            assert!(found.and_then(|a| a.get_long()).is_some(), "{arg}");
        }
        // Riffle's own names are Riffle's alone, so no Kafka file sets them by chance.
        for (property, arg) in RIFFLE_PROPERTIES {
            assert!(!is_kafka_broker_property(property), "{property}");
            assert!(property.starts_with("riffle."), "{property}");
            let found = command.get_arguments().find(|a| a.get_id() == *arg);
            assert!(found.and_then(|a| a.get_long()).is_some(), "{arg}");
        }
        assert_eq!(edit_distance("num.partition", "num.partitions"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest_name("zzzzzzzzzzzz"), None);
    }
}
