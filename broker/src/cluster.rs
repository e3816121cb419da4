//! The broker's view of the cluster: its identity, its topics and their partitions.
//!
//! On a single node this broker is the controller and the leader of every partition.
//! Topic changes are written to the [`MetadataLog`] (and fsynced) before they become
//! visible, so a crash never loses an acknowledged CreateTopics or keeps a deleted topic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use riffle_protocol::{ErrorCode, Uuid};
use riffle_storage::{DataDir, MutexRecover, RwLockRecover};
use tracing::{info, warn};

use crate::broker_config::{
    self, BrokerConfigEntity, BrokerConfigError, DynamicBrokerConfigs, LogDefaults,
};
use crate::broker_config::{
    MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP, MAX_CONNECTIONS_PER_IP_OVERRIDES,
};
use crate::config::BrokerConfig;
use crate::connection_limits::{
    ConnectionLimitSettings, ConnectionLimits, PerIpOverrides, PerIpOverridesError,
};
use crate::fetch_session::FetchSessionCache;
use crate::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::metadata_log::{METADATA_TOPIC, MetadataEvent, MetadataLog, MetadataLogError};
use crate::metrics::{BrokerMetrics, PartitionMetrics};
use crate::partition::Partition;
use crate::security::Authorizer;
use crate::security::acl::{AclBinding, AclFilter};
use crate::security::credentials::{CredentialChange, CredentialStore};
use crate::security::random::RandomUnavailable;
use crate::topic_config::{self, TopicConfig};
use crate::transaction::{TRANSACTION_STATE_TOPIC, TransactionCoordinator};

/// Longest topic name Kafka accepts.
pub const TOPIC_NAME_MAX_BYTES: usize = 249;
/// Most partitions one topic may have.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;
/// Producer ids are handed out in blocks; each block is recorded before it is used, so a
/// restart never reuses an id.
const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// One topic: a copy-on-write value; changes replace the whole `Arc<Topic>`.
pub struct Topic {
    /// Name.
    pub name: String,
    /// Stable, non-zero id.
    pub id: Uuid,
    /// Partitions, by index.
    pub partitions: Vec<Arc<Partition>>,
    /// Effective configuration.
    pub config: TopicConfig,
}

impl Topic {
    /// A partition by its index from the wire, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        self.partitions.get(usize::try_from(index).ok()?)
    }
}

/// What CreateTopics reports about a topic it created, or for a dry run would create.
pub struct CreatedTopic {
    /// The new topic's id.
    pub id: Uuid,
    /// Its partition count.
    pub partition_count: i32,
    /// Its effective configuration.
    pub config: TopicConfig,
}

/// Why a topic operation failed: a Kafka error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TopicError {
    /// The code to answer with.
    pub code: ErrorCode,
    /// The message to answer with, where the API has one.
    pub message: String,
}

impl TopicError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        TopicError {
            code,
            message: message.into(),
        }
    }

    fn storage(error: impl std::fmt::Display) -> Self {
        TopicError::new(ErrorCode::KafkaStorageError, error.to_string())
    }
}

#[derive(Default)]
struct Topics {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

struct ProducerIds {
    next: i64,
    block_end: i64,
}

/// Everything the request handlers share.
pub struct Cluster {
    /// The broker's settings.
    pub config: BrokerConfig,
    /// This node's id.
    pub node_id: i32,
    /// The host clients are told to connect to.
    pub advertised_host: String,
    /// The port clients are told to connect to.
    pub advertised_port: i32,
    /// The cluster id, chosen at first start and kept.
    pub cluster_id: String,
    data_dir: DataDir,
    /// Lock order: `topics` before `metadata_log`. Held only for map updates and the
    /// metadata append; the append fsyncs, which is why topic changes are rare admin work.
    topics: RwLock<Topics>,
    /// Lock order: after `topics`, before the credential store's own lock. Credential
    /// changes hold it from their existence checks to the store update, so they apply one
    /// at a time, as a controller applies records.
    metadata_log: Mutex<MetadataLog>,
    /// SCRAM credentials, replayed from the metadata log; shared with SASL exchanges.
    credentials: Arc<CredentialStore>,
    producer_ids: Mutex<ProducerIds>,
    /// Set once in [`Cluster::open`], after the offsets topic exists.
    groups: OnceLock<GroupCoordinator>,
    /// Set once in [`Cluster::open`], after the transaction state topic exists.
    transactions: OnceLock<TransactionCoordinator>,
    /// The ACL authorizer, with `--authorizer acl`; `None` lets everyone do everything.
    /// Lock order for ACL changes: its ACL set before `metadata_log`.
    authorizer: Option<Authorizer>,
    /// Incremental fetch sessions (KIP-227); its lock is taken alone.
    fetch_sessions: FetchSessionCache,
    /// The defaults topics inherit: flags and dynamic broker configs. Replaced whole, with
    /// `topics` held for writing, so a topic is never made from stale defaults.
    log_defaults: RwLock<Arc<LogDefaults>>,
    /// Held through a dynamic broker config change. Lock order: before `metadata_log` and
    /// `topics`.
    broker_config_change: Mutex<()>,
    /// The connection limits every listener's accept loop applies; its lock is taken alone.
    connection_limits: Arc<ConnectionLimits>,
    /// The metrics registry components count into; `/metrics` encodes it.
    metrics: Arc<BrokerMetrics>,
}

impl Cluster {
    /// Opens the data directory, replays the metadata log and opens every partition.
    pub fn open(
        config: BrokerConfig,
        advertised: (String, i32),
    ) -> Result<Cluster, ClusterOpenError> {
        let data_dir = DataDir::open(&config.data_dir)?;
        let (metadata_log, events) = MetadataLog::open(&data_dir)?;
        // A brand-new directory has no marker either; only a used one was stopped uncleanly.
        if !data_dir.was_clean_shutdown() && !events.is_empty() {
            warn!(data_dir = %config.data_dir.display(), "previous stop was not clean; recovering logs");
        }
        // ACLs are kept in the log whether or not an authorizer uses them, so turning it on
        // later finds them.
        let authorizer = config
            .authorizer_config()
            .map(|authorizer| Authorizer::new(authorizer, fold_acls(&events)));
        let mut cluster = Cluster {
            node_id: config.node_id,
            advertised_host: advertised.0,
            advertised_port: advertised.1,
            cluster_id: String::new(),
            data_dir,
            topics: RwLock::new(Topics::default()),
            metadata_log: Mutex::new(metadata_log),
            credentials: Arc::new(CredentialStore::new()?),
            producer_ids: Mutex::new(ProducerIds {
                next: 0,
                block_end: 0,
            }),
            groups: OnceLock::new(),
            transactions: OnceLock::new(),
            authorizer,
            fetch_sessions: FetchSessionCache::new(
                config.max_incremental_fetch_session_cache_slots,
            ),
            log_defaults: RwLock::new(Arc::new(LogDefaults::from_flags(
                config.topic_defaults.clone(),
            ))),
            broker_config_change: Mutex::new(()),
            connection_limits: Arc::new(ConnectionLimits::new(
                ConnectionLimitSettings::from_config(&config),
            )),
            metrics: Arc::new(BrokerMetrics::new()),
            config,
        };
        cluster.replay(events)?;
        cluster.remove_orphan_partitions()?;
        if cluster.cluster_id.is_empty() {
            let cluster_id = new_cluster_id();
            cluster.append_event(&MetadataEvent::ClusterCreated {
                cluster_id: cluster_id.clone(),
            })?;
            cluster.cluster_id = cluster_id;
        }
        let offsets = cluster.internal_partition(OFFSETS_TOPIC)?;
        let groups = GroupCoordinator::open(offsets, cluster.config.group_limits())?;
        // open() runs once, so the cells are empty here.
        let _ = cluster.groups.set(groups);
        let transaction_state = cluster.internal_partition(TRANSACTION_STATE_TOPIC)?;
        let limits = cluster.config.transaction_limits();
        let transactions = TransactionCoordinator::open(transaction_state, limits)?;
        let _ = cluster.transactions.set(transactions);
        Ok(cluster)
    }

    /// The one partition of an internal topic (`__consumer_offsets`, `__transaction_state`),
    /// created compacted on first start: one node coordinates every group and transaction.
    fn internal_partition(&self, name: &str) -> Result<Arc<Partition>, ClusterOpenError> {
        let topic = match self.topic(name) {
            Some(topic) => topic,
            None => {
                let configs = BTreeMap::from([(
                    topic_config::CLEANUP_POLICY.to_string(),
                    "compact".to_string(),
                )]);
                self.create_topic(name, 1, configs, Validation::Apply)
                    .map_err(|error| ClusterOpenError::Partition(error.message))?;
                self.topic(name).ok_or_else(|| {
                    ClusterOpenError::Partition(format!("internal topic {name} vanished"))
                })?
            }
        };
        topic.partition(0).cloned().ok_or_else(|| {
            ClusterOpenError::Partition(format!("internal topic {name} has no partition"))
        })
    }

    /// The group coordinator.
    pub fn groups(&self) -> &GroupCoordinator {
        self.groups
            .get()
            .expect("the group coordinator is set in Cluster::open")
    }

    /// The transaction coordinator.
    pub fn transactions(&self) -> &TransactionCoordinator {
        self.transactions
            .get()
            .expect("the transaction coordinator is set in Cluster::open")
    }

    /// The fetch sessions Fetch serves incremental requests from.
    pub fn fetch_sessions(&self) -> &FetchSessionCache {
        &self.fetch_sessions
    }

    /// The metrics registry: components register and count into it, `/metrics` encodes it.
    pub fn metrics(&self) -> &Arc<BrokerMetrics> {
        &self.metrics
    }

    /// The connection limits; [`ConnectionLimits::reconfigure`] changes them while the
    /// broker runs.
    pub fn connection_limits(&self) -> &Arc<ConnectionLimits> {
        &self.connection_limits
    }

    /// The SCRAM credentials SASL exchanges check.
    pub fn credentials(&self) -> &Arc<CredentialStore> {
        &self.credentials
    }

    /// Applies credential changes (AlterUserScramCredentials): all of them are written to
    /// the metadata log in one batch and fsynced, then made visible. A deletion of a
    /// credential that does not exist is left out; its user is returned.
    ///
    /// # Errors
    /// When the metadata log cannot be written; then nothing changed.
    pub fn alter_scram_credentials(
        &self,
        changes: Vec<CredentialChange>,
    ) -> Result<Vec<String>, MetadataLogError> {
        let log = self.metadata_log.lock_or_recover();
        let (applied, missing): (Vec<_>, Vec<_>) =
            changes.into_iter().partition(|change| match change {
                CredentialChange::Set { .. } => true,
                CredentialChange::Delete { user, mechanism } => {
                    self.credentials.contains(user, *mechanism)
                }
            });
        let events: Vec<MetadataEvent> = applied.iter().map(CredentialChange::to_event).collect();
        if !events.is_empty() {
            log.append_all(&events, now_ms())?;
        }
        for event in &events {
            self.credentials.apply(event);
        }
        if !events.is_empty() {
            info!(changes = events.len(), "SCRAM credentials altered");
        }
        Ok(missing
            .into_iter()
            .map(|change| change.user().to_string())
            .collect())
    }

    /// Whether a topic is one of the broker's own, reported as internal and closed to
    /// producers.
    pub fn is_internal_topic(name: &str) -> bool {
        name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC
    }

    fn replay(&mut self, events: Vec<MetadataEvent>) -> Result<(), ClusterOpenError> {
        // Fold the events into final topic states first, then open each partition once.
        let mut topics: BTreeMap<String, (String, i32, BTreeMap<String, String>)> = BTreeMap::new();
        let mut dynamic = DynamicBrokerConfigs::default();
        let this_broker = self.node_id.to_string();
        for event in events {
            match event {
                MetadataEvent::BrokerConfigsAltered { broker, configs } => {
                    if broker.is_empty() {
                        dynamic.cluster_default = configs;
                    } else if broker == this_broker {
                        dynamic.this_broker = configs;
                    } else {
                        // Set for another node id: this data directory once had that id.
                        info!(%broker, "ignoring dynamic configs of another broker id");
                    }
                }
                MetadataEvent::ClusterCreated { cluster_id } => self.cluster_id = cluster_id,
                MetadataEvent::TopicCreated {
                    name,
                    id,
                    partitions,
                    configs,
                } => {
                    topics.insert(name, (id, partitions, configs));
                }
                MetadataEvent::TopicDeleted { name } => {
                    topics.remove(&name);
                }
                MetadataEvent::PartitionsCreated { name, partitions } => {
                    if let Some(topic) = topics.get_mut(&name) {
                        topic.1 = partitions;
                    }
                }
                MetadataEvent::ConfigsAltered { name, configs } => {
                    if let Some(topic) = topics.get_mut(&name) {
                        topic.2 = configs;
                    }
                }
                MetadataEvent::ProducerIdBlock { next_block_start } => {
                    let ids = self.producer_ids.get_mut_or_recover();
                    ids.next = next_block_start;
                    ids.block_end = next_block_start;
                }
                event @ (MetadataEvent::ScramCredentialSet { .. }
                | MetadataEvent::ScramCredentialDeleted { .. }) => self.credentials.apply(&event),
                // Folded into the authorizer by `fold_acls`.
                MetadataEvent::AclsCreated { .. } | MetadataEvent::AclsDeleted { .. } => {}
            }
        }
        let defaults = Arc::new(LogDefaults {
            flags: self.config.topic_defaults.clone(),
            dynamic: dynamic.clone(),
        });
        *self.log_defaults.get_mut_or_recover() = defaults.clone();
        match self.connection_settings(&dynamic) {
            Ok(settings) => self.connection_limits.reconfigure(settings),
            // A host named in a stored override may no longer resolve: keep the flags'.
            Err(error) => warn!(%error, "dynamic connection limits not applied; using the flags"),
        }
        let mut registry = Topics::default();
        for (name, (id, partition_count, configs)) in topics {
            let id = parse_topic_id(&id).ok_or(ClusterOpenError::BadTopicId(name.clone()))?;
            let config = TopicConfig::new(configs, defaults.clone());
            let partitions = (0..partition_count)
                .map(|index| self.open_partition(&name, index, &config))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| ClusterOpenError::Partition(error.message))?;
            let topic = Arc::new(Topic {
                name: name.clone(),
                id,
                partitions,
                config,
            });
            registry.by_id.insert(id, topic.clone());
            registry.by_name.insert(name, topic);
        }
        let acls = self.authorizer.as_ref().map(Authorizer::acl_count);
        info!(topics = registry.by_name.len(), ?acls, "metadata loaded");
        *self.topics.get_mut_or_recover() = registry;
        Ok(())
    }

    /// Deletes partition directories of topics the metadata log says are gone: the
    /// remains of a crash between "TopicDeleted" and removing the files.
    fn remove_orphan_partitions(&self) -> Result<(), ClusterOpenError> {
        for (topic, partition) in self.data_dir.list_partitions()? {
            let known = self
                .topic(&topic)
                .is_some_and(|known| partition < known.partitions.len() as i32);
            if topic != METADATA_TOPIC && !known {
                warn!(%topic, partition, "removing partition of a deleted topic");
                self.data_dir.delete_log(&topic, partition)?;
            }
        }
        Ok(())
    }

    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        config: &TopicConfig,
    ) -> Result<Arc<Partition>, TopicError> {
        let log = self
            .data_dir
            .open_log(topic, index, config.log_config())
            .map_err(TopicError::storage)?;
        let metrics = PartitionMetrics {
            traffic: self.metrics.topic_traffic(topic),
            log_sync: self.metrics.log_sync.clone(),
        };
        Ok(Arc::new(Partition::with_metrics(
            topic.to_string(),
            index,
            log,
            metrics,
        )))
    }

    fn append_event(&self, event: &MetadataEvent) -> Result<(), MetadataLogError> {
        let log = self.metadata_log.lock_or_recover();
        log.append(event, now_ms())
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_topics().by_name.get(name).cloned()
    }

    /// A partition's high watermark and how far `committed_offset` is behind it, as
    /// `riffle groups describe` and Kafka's tools count a group's lag: what the group can
    /// read and has not committed past, never below 0. `None` for a partition gone with
    /// its topic.
    pub fn committed_lag(
        &self,
        topic: &str,
        partition: i32,
        committed_offset: i64,
    ) -> Option<(i64, i64)> {
        let high_watermark = self.topic(topic)?.partition(partition)?.high_watermark();
        Some((
            high_watermark,
            high_watermark.saturating_sub(committed_offset).max(0),
        ))
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read_topics().by_id.get(id).cloned()
    }

    /// Every topic, by name.
    pub fn all_topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<_> = self.read_topics().by_name.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, Topics> {
        self.topics.read_or_recover()
    }

    fn write_topics(&self) -> std::sync::RwLockWriteGuard<'_, Topics> {
        self.topics.write_or_recover()
    }

    /// A topic by name, created with the defaults if it does not exist and auto-creation
    /// is on.
    pub fn topic_or_auto_create(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        if !self.config.auto_create_topics {
            return Err(TopicError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("unknown topic '{name}'"),
            ));
        }
        match self.create_topic(name, -1, BTreeMap::new(), Validation::Apply) {
            // Created now, or by a concurrent request a moment ago: either way it exists.
            Ok(_) => self.topic(name).ok_or_else(|| {
                TopicError::new(ErrorCode::UnknownTopicOrPartition, "topic vanished")
            }),
            Err(error) if error.code == ErrorCode::TopicAlreadyExists => {
                self.topic(name).ok_or(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Creates a topic. `partitions` of -1 means `--default-partitions`.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validation: Validation,
    ) -> Result<CreatedTopic, TopicError> {
        validate_topic_name(name)?;
        let partitions = if partitions == -1 {
            self.config.default_partitions
        } else {
            partitions
        };
        validate_partition_count(partitions)?;
        let mut topics = self.write_topics();
        let defaults = self.log_defaults();
        let configs = validate_configs(configs, &defaults)?;
        let config = TopicConfig::new(configs.clone(), defaults);
        if topics.by_name.contains_key(name) {
            return Err(TopicError::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic '{name}' already exists"),
            ));
        }
        let id = Uuid(*uuid::Uuid::new_v4().as_bytes());
        let created = CreatedTopic {
            id,
            partition_count: partitions,
            config: config.clone(),
        };
        if validation == Validation::Only {
            // A dry run touches no disk.
            return Ok(created);
        }
        let opened = (0..partitions)
            .map(|index| self.open_partition(name, index, &config))
            .collect::<Result<Vec<_>, _>>()?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            partitions: opened,
            config,
        });
        let event = MetadataEvent::TopicCreated {
            name: name.into(),
            id: format_topic_id(&id),
            partitions,
            configs,
        };
        self.append_event(&event).map_err(TopicError::storage)?;
        topics.by_id.insert(id, topic.clone());
        topics.by_name.insert(name.to_string(), topic.clone());
        info!(topic = name, partitions, "topic created");
        Ok(created)
    }

    /// Deletes a topic and its files.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, TopicError> {
        if Cluster::is_internal_topic(name) {
            let message = format!("'{name}' is internal to the broker and cannot be deleted");
            return Err(TopicError::new(ErrorCode::InvalidTopicException, message));
        }
        let mut topics = self.write_topics();
        let Some(topic) = topics.by_name.get(name).cloned() else {
            return Err(TopicError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("unknown topic '{name}'"),
            ));
        };
        self.append_event(&MetadataEvent::TopicDeleted { name: name.into() })
            .map_err(TopicError::storage)?;
        topics.by_name.remove(name);
        topics.by_id.remove(&topic.id);
        drop(topics);
        self.metrics.remove_topic(name);
        let partition_count = topic.partitions.len();
        drop(topic);
        for index in 0..partition_count {
            // Fetches still holding the partition read from the unlinked files; that is fine.
            if let Err(error) = self.data_dir.delete_log(name, index as i32) {
                warn!(topic = name, partition = index, %error, "could not remove partition files");
            }
        }
        info!(topic = name, "topic deleted");
        Ok(Uuid::ZERO)
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validation: Validation,
    ) -> Result<(), TopicError> {
        let mut topics = self.write_topics();
        let Some(topic) = topics.by_name.get(name).cloned() else {
            return Err(TopicError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("unknown topic '{name}'"),
            ));
        };
        let current = topic.partitions.len() as i32;
        if count <= current {
            let message =
                format!("topic '{name}' has {current} partitions; the new count must be larger");
            return Err(TopicError::new(ErrorCode::InvalidPartitions, message));
        }
        validate_partition_count(count)?;
        if validation == Validation::Only {
            return Ok(());
        }
        let mut partitions = topic.partitions.clone();
        for index in current..count {
            partitions.push(self.open_partition(name, index, &topic.config)?);
        }
        let event = MetadataEvent::PartitionsCreated {
            name: name.into(),
            partitions: count,
        };
        self.append_event(&event).map_err(TopicError::storage)?;
        let grown = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions,
            config: topic.config.clone(),
        });
        topics.by_id.insert(grown.id, grown.clone());
        topics.by_name.insert(name.to_string(), grown);
        Ok(())
    }

    /// Replaces the configs set on a topic.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validation: Validation,
    ) -> Result<(), TopicError> {
        let mut topics = self.write_topics();
        let defaults = self.log_defaults();
        let configs = validate_configs(configs, &defaults)?;
        let Some(topic) = topics.by_name.get(name).cloned() else {
            return Err(TopicError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("unknown topic '{name}'"),
            ));
        };
        if validation == Validation::Only {
            return Ok(());
        }
        self.append_event(&MetadataEvent::ConfigsAltered {
            name: name.into(),
            configs: configs.clone(),
        })
        .map_err(TopicError::storage)?;
        let config = TopicConfig::new(configs, defaults);
        for partition in &topic.partitions {
            partition.set_log_config(config.log_config());
        }
        let altered = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions.clone(),
            config,
        });
        topics.by_id.insert(altered.id, altered.clone());
        topics.by_name.insert(name.to_string(), altered);
        Ok(())
    }

    /// The defaults topics inherit now.
    pub fn log_defaults(&self) -> Arc<LogDefaults> {
        self.log_defaults.read_or_recover().clone()
    }

    /// The connection limits the flags set, with the dynamic broker configs over them.
    /// Resolves the hostnames of `max.connections.per.ip.overrides`, so it may block.
    fn connection_settings(
        &self,
        dynamic: &DynamicBrokerConfigs,
    ) -> Result<ConnectionLimitSettings, PerIpOverridesError> {
        let mut settings = ConnectionLimitSettings::from_config(&self.config);
        // Values were validated when set.
        if let Some(limit) = dynamic
            .value(MAX_CONNECTIONS)
            .and_then(|(value, _)| value.parse().ok())
        {
            settings.max_connections = limit;
        }
        if let Some(limit) = dynamic
            .value(MAX_CONNECTIONS_PER_IP)
            .and_then(|(value, _)| value.parse().ok())
        {
            settings.max_connections_per_ip = Some(limit);
        }
        if let Some((overrides, _)) = dynamic.value(MAX_CONNECTIONS_PER_IP_OVERRIDES) {
            settings.max_connections_per_ip_overrides = PerIpOverrides::parse(overrides)?;
        }
        Ok(settings)
    }

    /// Replaces the dynamic broker configs of `entity` (Kafka's `kafka-configs --alter
    /// --entity-type brokers`). Every topic that does not set a changed config follows
    /// the new default at once.
    ///
    /// # Errors
    /// INVALID_REQUEST for a setting that cannot change while running, INVALID_CONFIG for
    /// a bad value or defaults that contradict each other, KAFKA_STORAGE_ERROR.
    pub fn set_broker_configs(
        &self,
        entity: BrokerConfigEntity,
        configs: BTreeMap<String, String>,
        validation: Validation,
    ) -> Result<(), TopicError> {
        let configs = configs
            .into_iter()
            .map(|(name, value)| {
                let value = broker_config::validate(&name, &value, entity)?;
                Ok((name, value))
            })
            .collect::<Result<BTreeMap<_, _>, BrokerConfigError>>()
            .map_err(broker_config_error)?;
        // One change at a time, so none is lost between reading the defaults and replacing
        // them; `topics` is taken only for the rebuild, not while hostnames resolve.
        let _one_change = self.broker_config_change.lock_or_recover();
        let current = self.log_defaults();
        let defaults = Arc::new(LogDefaults {
            flags: current.flags.clone(),
            dynamic: current.dynamic.with(entity, configs.clone()),
        });
        // The new defaults must make sense on a topic that sets nothing.
        let fresh = TopicConfig::new(BTreeMap::new(), defaults.clone());
        topic_config::validate_combination(&fresh)
            .map_err(|error| TopicError::new(ErrorCode::InvalidConfig, error.to_string()))?;
        let connection_settings = self
            .connection_settings(&defaults.dynamic)
            .map_err(|error| {
                let message = format!("{MAX_CONNECTIONS_PER_IP_OVERRIDES}: {error}");
                TopicError::new(ErrorCode::InvalidConfig, message)
            })?;
        if validation == Validation::Only {
            return Ok(());
        }
        let broker = match entity {
            BrokerConfigEntity::ClusterDefault => String::new(),
            BrokerConfigEntity::ThisBroker => self.node_id.to_string(),
        };
        self.append_event(&MetadataEvent::BrokerConfigsAltered {
            broker,
            configs: configs.clone(),
        })
        .map_err(TopicError::storage)?;
        // A topic created meanwhile used the old defaults; it is rebuilt below with the rest.
        let mut topics = self.write_topics();
        *self.log_defaults.write_or_recover() = defaults.clone();
        let renewed: Vec<Arc<Topic>> = topics
            .by_name
            .values()
            .map(|topic| {
                let config = topic.config.with_defaults(defaults.clone());
                let log_config = config.log_config();
                for partition in &topic.partitions {
                    partition.set_log_config(log_config);
                }
                Arc::new(Topic {
                    name: topic.name.clone(),
                    id: topic.id,
                    partitions: topic.partitions.clone(),
                    config,
                })
            })
            .collect();
        for topic in renewed {
            topics.by_id.insert(topic.id, topic.clone());
            topics.by_name.insert(topic.name.clone(), topic);
        }
        drop(topics);
        self.connection_limits.reconfigure(connection_settings);
        info!(?entity, configs = ?configs, "dynamic broker configs altered");
        Ok(())
    }

    /// Hands out a producer id never given before, even across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, TopicError> {
        let mut ids = self.producer_ids.lock_or_recover();
        if ids.next >= ids.block_end {
            let block_end = ids.next + PRODUCER_ID_BLOCK_SIZE;
            self.append_event(&MetadataEvent::ProducerIdBlock {
                next_block_start: block_end,
            })
            .map_err(TopicError::storage)?;
            ids.block_end = block_end;
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }

    /// Whether `id` was handed out by this cluster.
    pub fn producer_id_was_allocated(&self, id: i64) -> bool {
        let ids = self.producer_ids.lock_or_recover();
        id >= 0 && id < ids.next
    }

    /// The ACL authorizer, if `--authorizer acl` turned it on.
    pub fn authorizer(&self) -> Option<&Authorizer> {
        self.authorizer.as_ref()
    }

    /// Stores `acls` (those not stored yet) and applies them once the metadata log has
    /// them on disk.
    ///
    /// # Errors
    /// [`AclStoreError::SecurityDisabled`] without an authorizer; a metadata log failure.
    pub fn create_acls(&self, acls: &[AclBinding]) -> Result<(), AclStoreError> {
        let authorizer = self.authorizer().ok_or(AclStoreError::SecurityDisabled)?;
        let mut change = authorizer.begin_change();
        let added = change.absent(acls);
        if added.is_empty() {
            return Ok(());
        }
        self.append_event(&MetadataEvent::AclsCreated {
            acls: added.clone(),
        })?;
        info!(count = added.len(), "ACLs created");
        change.add(added);
        Ok(())
    }

    /// Deletes every ACL one of `filters` selects, once the metadata log has the deletion on
    /// disk, and returns what each filter selected.
    ///
    /// # Errors
    /// [`AclStoreError::SecurityDisabled`] without an authorizer; a metadata log failure.
    pub fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, AclStoreError> {
        let authorizer = self.authorizer().ok_or(AclStoreError::SecurityDisabled)?;
        let mut change = authorizer.begin_change();
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|filter| change.matching(filter))
            .collect();
        let deleted: Vec<AclBinding> = matched
            .iter()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !deleted.is_empty() {
            self.append_event(&MetadataEvent::AclsDeleted {
                acls: deleted.clone(),
            })?;
            info!(count = deleted.len(), "ACLs deleted");
            change.remove(&deleted);
        }
        Ok(matched)
    }

    /// Flushes every log and the metadata log, snapshots each partition's producer state
    /// (so the next start replays nothing), then marks the data directory clean.
    pub fn shutdown(&self) -> Result<(), riffle_storage::StorageError> {
        for topic in self.all_topics() {
            for partition in &topic.partitions {
                partition.flush()?;
                partition.snapshot_producer_state()?;
            }
        }
        self.metadata_log.lock_or_recover().flush()?;
        self.data_dir.mark_clean_shutdown()
    }
}

/// Whether a change is applied or only checked (CreateTopics' validate_only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Apply the change.
    Apply,
    /// Check it and report what would happen.
    Only,
}

/// Why the broker could not start on its data directory.
#[derive(Debug, thiserror::Error)]
pub enum ClusterOpenError {
    /// The data directory or a log could not be opened.
    #[error(transparent)]
    Storage(#[from] riffle_storage::StorageError),
    /// The metadata log could not be read.
    #[error(transparent)]
    MetadataLog(#[from] MetadataLogError),
    /// A partition could not be opened.
    #[error("cannot open partition: {0}")]
    Partition(String),
    /// A topic id in the metadata log does not parse.
    #[error("topic '{0}' has an invalid id in the metadata log")]
    BadTopicId(String),
    /// No random bytes for the credential store's key.
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

/// Why CreateAcls or DeleteAcls could not change the ACLs.
#[derive(Debug, thiserror::Error)]
pub enum AclStoreError {
    /// The broker runs without `--authorizer acl`.
    #[error("No Authorizer is configured on the broker")]
    SecurityDisabled,
    /// The change could not be recorded.
    #[error(transparent)]
    MetadataLog(#[from] MetadataLogError),
}

/// The ACLs the metadata log's events leave, in order.
fn fold_acls(events: &[MetadataEvent]) -> BTreeSet<AclBinding> {
    let mut acls = BTreeSet::new();
    for event in events {
        match event {
            MetadataEvent::AclsCreated { acls: created } => acls.extend(created.iter().cloned()),
            MetadataEvent::AclsDeleted { acls: deleted } => {
                for binding in deleted {
                    acls.remove(binding);
                }
            }
            _ => {}
        }
    }
    acls
}

/// Kafka's topic name rules: 1 to 249 of `[a-zA-Z0-9._-]`, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > TOPIC_NAME_MAX_BYTES {
        Some("is longer than 249 characters")
    } else if name == "." || name == ".." {
        Some("cannot be '.' or '..'")
    } else if !name.chars().all(legal) {
        Some("may only contain ASCII letters, digits, '.', '_' and '-'")
    } else if name.starts_with("__cluster_metadata") {
        Some("is reserved")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(TopicError::new(
            ErrorCode::InvalidTopicException,
            format!("topic name '{name}' {problem}"),
        )),
        None => Ok(()),
    }
}

fn validate_partition_count(partitions: i32) -> Result<(), TopicError> {
    if (1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
        Ok(())
    } else {
        let message = format!(
            "partition count must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, not {partitions}"
        );
        Err(TopicError::new(ErrorCode::InvalidPartitions, message))
    }
}

/// Checks each value, then the values together with the defaults they leave.
fn validate_configs(
    configs: BTreeMap<String, String>,
    defaults: &Arc<LogDefaults>,
) -> Result<BTreeMap<String, String>, TopicError> {
    let invalid = |error: topic_config::ConfigError| {
        TopicError::new(ErrorCode::InvalidConfig, error.to_string())
    };
    let configs = configs
        .into_iter()
        .map(|(name, value)| {
            let value = topic_config::validate(&name, &value).map_err(invalid)?;
            Ok((name, value))
        })
        .collect::<Result<BTreeMap<_, _>, TopicError>>()?;
    let combined = TopicConfig::new(configs.clone(), Arc::clone(defaults));
    topic_config::validate_combination(&combined).map_err(invalid)?;
    Ok(configs)
}

fn broker_config_error(error: BrokerConfigError) -> TopicError {
    let code = match error {
        BrokerConfigError::NotDynamic(_) | BrokerConfigError::PerBrokerOnly(_) => {
            ErrorCode::InvalidRequest
        }
        BrokerConfigError::InvalidValue { .. } => ErrorCode::InvalidConfig,
    };
    TopicError::new(code, error.to_string())
}

fn format_topic_id(id: &Uuid) -> String {
    id.0.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn parse_topic_id(text: &str) -> Option<Uuid> {
    let mut id = [0u8; 16];
    if text.len() != 32 {
        return None;
    }
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    (!Uuid(id).is_zero()).then_some(Uuid(id))
}

/// A cluster id in Kafka's style: a random UUID in URL-safe base64, 22 characters.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = u128::from_be_bytes(*uuid::Uuid::new_v4().as_bytes());
    (0..22)
        .map(|index| char::from(ALPHABET[((bits >> (index * 6)) & 0x3f) as usize]))
        .collect()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-west").is_ok());
        for bad in ["", ".", "..", "has space", "ünicode", &"x".repeat(250)] {
            assert!(
                validate_topic_name(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    /// A cluster on `dir` with `--authorizer acl`, or without an authorizer.
    fn open_with_authorizer(dir: &std::path::Path, authorizer: bool) -> Cluster {
        let flags: &[&str] = if authorizer {
            &["--authorizer", "acl"]
        } else {
            &[]
        };
        let config = crate::testing::test_config(dir, flags);
        Cluster::open(config, ("127.0.0.1".into(), 9092)).expect("open a cluster")
    }

    fn read_acl(principal: &str, topic: &str) -> AclBinding {
        use crate::security::acl::{AclFields, AclOperation, AclPermission};
        AclBinding::from_fields(&AclFields {
            resource_type: 2,
            resource_name: topic,
            pattern_type: 3,
            principal,
            host: "*",
            operation: AclOperation::Read.code(),
            permission: AclPermission::Allow.code(),
        })
        .expect("a valid ACL")
    }

    #[test]
    fn acls_survive_a_restart_and_so_do_their_deletions() {
        // Proves ACL persistence: created ACLs are replayed from the metadata log at the
        // next start, deleted ones stay deleted, and a start without the authorizer keeps
        // them in the log for a later start with it.
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = open_with_authorizer(dir.path(), true);
        let (alice, bob) = (read_acl("User:alice", "t"), read_acl("User:bob", "t"));
        cluster
            .create_acls(&[alice.clone(), bob.clone(), alice.clone()])
            .expect("create");
        let mut only_bob = AclFilter::any();
        only_bob.principal = Some("User:bob".into());
        let deleted = cluster.delete_acls(&[only_bob]).expect("delete");
        assert_eq!(deleted, vec![vec![bob]]);
        drop(cluster);

        let without = open_with_authorizer(dir.path(), false);
        assert!(without.authorizer().is_none());
        assert!(matches!(
            without.create_acls(std::slice::from_ref(&alice)),
            Err(AclStoreError::SecurityDisabled)
        ));
        drop(without);

        let reopened = open_with_authorizer(dir.path(), true);
        let authorizer = reopened.authorizer().expect("on");
        assert_eq!(authorizer.acls(&AclFilter::any()), vec![alice]);
        let alice = crate::security::Principal::user("alice");
        let address = std::net::Ipv4Addr::LOCALHOST.into();
        use crate::security::acl::{AclOperation, ResourceType};
        assert!(authorizer.authorize(
            &alice,
            address,
            AclOperation::Read,
            ResourceType::Topic,
            "t"
        ));
    }

    #[test]
    fn scram_credentials_survive_a_restart_through_the_metadata_log() {
        // Credentials set and deleted through the cluster are replayed from the metadata
        // log by the next broker on the directory; a deletion of a missing credential is
        // reported and writes nothing.
        use crate::security::credentials::{CredentialChange, ScramCredential};
        use crate::security::scram::ScramMechanism;
        use crate::testing::{open_test_cluster, test_cluster};

        let (dir, cluster) = test_cluster();
        let set = |user: &str, mechanism, password: &str| CredentialChange::Set {
            user: user.into(),
            mechanism,
            credential: ScramCredential::from_password(mechanism, password, vec![1; 32], 4096),
        };
        let missing = cluster
            .alter_scram_credentials(vec![
                set("alice", ScramMechanism::Sha512, "a"),
                set("alice", ScramMechanism::Sha256, "b"),
                set("bob", ScramMechanism::Sha256, "c"),
            ])
            .expect("stored");
        assert!(missing.is_empty());
        let missing = cluster
            .alter_scram_credentials(vec![
                CredentialChange::Delete {
                    user: "alice".into(),
                    mechanism: ScramMechanism::Sha256,
                },
                CredentialChange::Delete {
                    user: "carol".into(),
                    mechanism: ScramMechanism::Sha256,
                },
            ])
            .expect("stored");
        assert_eq!(missing, ["carol"]);
        let expected_alice = cluster.credentials().get("alice", ScramMechanism::Sha512);
        drop(cluster);

        let reopened = open_test_cluster(dir.path());
        let users = reopened.credentials().users();
        let described: Vec<_> = users
            .iter()
            .map(|user| (user.user.as_str(), user.mechanisms.clone()))
            .collect();
        assert_eq!(
            described,
            [
                ("alice", vec![(ScramMechanism::Sha512, 4096)]),
                ("bob", vec![(ScramMechanism::Sha256, 4096)]),
            ]
        );
        assert_eq!(
            reopened.credentials().get("alice", ScramMechanism::Sha512),
            expected_alice
        );
    }

    #[test]
    fn topic_ids_round_trip_as_hex() {
        let id = Uuid([7; 16]);
        assert_eq!(parse_topic_id(&format_topic_id(&id)), Some(id));
        assert_eq!(parse_topic_id("zz"), None);
    }
}
