//! Fetch sessions (KIP-227): a consumer of many partitions names them once, then sends and
//! receives only what changed.
//!
//! The protocol, as Kafka's `FetchSession.scala` defines it, driven by the request's
//! `session_id` and `session_epoch`:
//!
//! - epoch 0 (`INITIAL_EPOCH`): a full fetch that opens a session; a session id sent with it
//!   is closed first. The response carries the new id, or 0 when the cache has no room.
//! - epoch -1 (`FINAL_EPOCH`): a full fetch without a session; a session id sent with it is
//!   closed.
//! - any other epoch: an incremental fetch of session `session_id`, whose epoch must be the
//!   one the session expects. Its topics add or update partitions, `forgotten_topics_data`
//!   removes them; every partition of the session is read, and the response holds only those
//!   with records, a changed high watermark, last stable offset or log start offset, or an
//!   error. A session whose last partition is forgotten is closed.
//!
//! [`FetchSessionCache::begin`] checks the session and says what to read; the
//! [`SessionFetch`] it returns is the only way to answer, through [`SessionFetch::respond`],
//! which creates the session or filters the incremental response.
//!
//! The cache holds at most `max_incremental_fetch_session_cache_slots` sessions. When it is
//! full a new session takes the slot of one idle longer than
//! [`INCREMENTAL_FETCH_SESSION_EVICTION_MS`], else of the smallest session older than that
//! if the new one has more partitions, else it is not created. (Kafka also privileges
//! follower sessions; a single node has no followers.) A full cache is scanned linearly:
//! that happens only when a session is created, and there are at most a few thousand.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use riffle_protocol::api::fetch::{
    FetchRequest, FetchTopic, FetchableTopicResponse, ForgottenTopic, PartitionData,
};
use riffle_protocol::{ErrorCode, Uuid};
use riffle_storage::MutexRecover;
use tracing::debug;

use crate::security::random::random_bytes;

/// How long a session must be idle before any new session may take its slot, and how old
/// it must be before a larger one may (Kafka: `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`).
pub const INCREMENTAL_FETCH_SESSION_EVICTION_MS: u64 = 120_000;

/// Most partitions one session holds. Requests can name partitions of topics that do not
/// exist, and incremental ones can keep adding them, so without it one client could grow a
/// session without end: a full fetch naming more opens no session, and an incremental
/// request that would pass it closes its session (adding nothing past it); either way the
/// client falls back to full fetches. The cache holds at most slots times this many
/// partitions, each naming its topic through a shared `Arc<str>`.
pub const FETCH_SESSION_MAX_PARTITIONS: usize = 50_000;

/// The session id of a request or response outside any session.
const INVALID_SESSION_ID: i32 = 0;
/// The epoch of a full fetch that opens a session.
const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that opens no session (and closes the one it names).
const FINAL_EPOCH: i32 = -1;

/// Why a request could not be served in its session; answered as the top-level error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FetchSessionError {
    /// An incremental fetch named a session the cache does not hold (never created,
    /// evicted, or closed).
    #[error("fetch session {session_id} not found")]
    SessionIdNotFound {
        /// The id the request named.
        session_id: i32,
    },
    /// An incremental fetch's epoch was not the session's next one: a request was lost,
    /// repeated, or raced another on the same session.
    #[error("fetch session {session_id} expected epoch {expected}, got {received}")]
    InvalidEpoch {
        /// The session.
        session_id: i32,
        /// The epoch the session expects.
        expected: i32,
        /// The epoch the request carried.
        received: i32,
    },
    /// The session names topics by id (Fetch 13+) and the request by name, or the reverse.
    #[error("fetch session {session_id} and the request disagree on topic ids")]
    TopicIdMismatch {
        /// The session.
        session_id: i32,
    },
}

impl FetchSessionError {
    /// The error code Fetch answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            FetchSessionError::SessionIdNotFound { .. } => ErrorCode::FetchSessionIdNotFound,
            FetchSessionError::InvalidEpoch { .. } => ErrorCode::InvalidFetchSessionEpoch,
            FetchSessionError::TopicIdMismatch { .. } => ErrorCode::FetchSessionTopicIdError,
        }
    }
}

/// How a topic is named in a session: by id from Fetch 13, by name before.
///
/// A name is shared by every partition of its topic in a session: a topic name may be
/// 32 KiB long, and a session holds up to [`FETCH_SESSION_MAX_PARTITIONS`] partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    /// Fetch 4-12.
    Name(Arc<str>),
    /// Fetch 13+.
    Id(Uuid),
}

impl TopicKey {
    /// The name to echo in the response (empty when named by id).
    pub fn name(&self) -> &str {
        match self {
            TopicKey::Name(name) => name,
            TopicKey::Id(_) => "",
        }
    }

    /// The id to echo in the response (zero when named by name).
    pub fn id(&self) -> Uuid {
        match self {
            TopicKey::Name(_) => Uuid::ZERO,
            TopicKey::Id(id) => *id,
        }
    }

    fn of(topic: &FetchTopic, uses_topic_ids: bool) -> TopicKey {
        match uses_topic_ids {
            true => TopicKey::Id(topic.topic_id),
            false => TopicKey::Name(Arc::from(topic.topic.as_str())),
        }
    }

    fn of_forgotten(topic: &ForgottenTopic, uses_topic_ids: bool) -> TopicKey {
        match uses_topic_ids {
            true => TopicKey::Id(topic.topic_id),
            false => TopicKey::Name(Arc::from(topic.topic.as_str())),
        }
    }
}

/// One partition to read, with the client's position and limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedPartition {
    /// The partition index.
    pub partition: i32,
    /// Where to read from.
    pub fetch_offset: i64,
    /// The client's per-partition byte limit.
    pub partition_max_bytes: i32,
}

/// The partitions of one topic to read, in response order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedTopic {
    /// The topic as the request names it.
    pub topic: TopicKey,
    /// Its partitions.
    pub partitions: Vec<RequestedPartition>,
}

/// The sessions, bounded by the slot count.
pub struct FetchSessionCache {
    /// Most sessions held at once (Kafka: `max.incremental.fetch.session.cache.slots`);
    /// 0 turns sessions off.
    max_sessions_count: usize,
    /// See [`INCREMENTAL_FETCH_SESSION_EVICTION_MS`].
    eviction_after: Duration,
    /// Held for lookups and updates only, never across an await: the reads happen between
    /// [`FetchSessionCache::begin`] and [`SessionFetch::respond`], outside it.
    sessions: Mutex<HashMap<i32, FetchSession>>,
}

/// One session: its partitions in response order and what the client last heard of each.
struct FetchSession {
    id: i32,
    /// The epoch the next incremental request must carry.
    next_epoch: i32,
    uses_topic_ids: bool,
    created: Instant,
    last_used: Instant,
    partitions: HashMap<PartitionKey, CachedPartition>,
    /// Read order: a partition that returned records moves to the back, so one busy
    /// partition cannot starve the others of `max_bytes` (as Kafka rotates them).
    order: BTreeMap<u64, PartitionKey>,
    next_position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PartitionKey {
    topic: TopicKey,
    partition: i32,
}

/// A partition of a session: the client's request parameters, and what the last response
/// that included it told the client.
struct CachedPartition {
    position: u64,
    fetch_offset: i64,
    partition_max_bytes: i32,
    /// -1 after an error, so the partition is sent again once the error clears.
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

/// A fetch that [`FetchSessionCache::begin`] accepted: what to read, and how to answer.
pub struct SessionFetch<'cache> {
    cache: &'cache FetchSessionCache,
    kind: FetchKind,
    topics: Vec<RequestedTopic>,
}

enum FetchKind {
    /// epoch -1, or a session closed by forgetting its last partition.
    Sessionless,
    /// epoch 0: the answer opens a session if there is room.
    Full { uses_topic_ids: bool },
    /// A session's next request; the answer is filtered unless another request moved the
    /// session's epoch meanwhile.
    Incremental { session_id: i32, epoch_after: i32 },
}

impl FetchSessionCache {
    /// An empty cache of at most `max_sessions_count` sessions.
    pub fn new(max_sessions_count: usize) -> FetchSessionCache {
        FetchSessionCache {
            max_sessions_count,
            eviction_after: Duration::from_millis(INCREMENTAL_FETCH_SESSION_EVICTION_MS),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `request`'s session fields and applies an incremental request's changes to
    /// its session. Returns what to read, or the error to answer with.
    ///
    /// # Errors
    /// [`FetchSessionError`] for an unknown session, a wrong epoch, or a request whose
    /// topic naming (Fetch version) differs from the session's.
    pub fn begin(
        &self,
        version: i16,
        request: &FetchRequest,
        now: Instant,
    ) -> Result<SessionFetch<'_>, FetchSessionError> {
        let uses_topic_ids = version >= 13;
        let mut sessions = self.lock();
        let is_full = matches!(request.session_epoch, INITIAL_EPOCH | FINAL_EPOCH);
        if is_full {
            if request.session_id != INVALID_SESSION_ID
                && sessions.remove(&request.session_id).is_some()
            {
                debug!(session_id = request.session_id, "fetch session closed");
            }
            let kind = match request.session_epoch {
                FINAL_EPOCH => FetchKind::Sessionless,
                _ => FetchKind::Full { uses_topic_ids },
            };
            return Ok(self.fetch(kind, requested_topics(request, uses_topic_ids)));
        }
        let session_id = request.session_id;
        let session = sessions
            .get_mut(&session_id)
            .ok_or(FetchSessionError::SessionIdNotFound { session_id })?;
        if session.next_epoch != request.session_epoch {
            return Err(FetchSessionError::InvalidEpoch {
                session_id,
                expected: session.next_epoch,
                received: request.session_epoch,
            });
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Err(FetchSessionError::TopicIdMismatch { session_id });
        }
        let within_limit = session.update(request);
        if session.partitions.is_empty() || !within_limit {
            sessions.remove(&session_id);
            debug!(session_id, "fetch session closed by its request");
            let topics = requested_topics(request, uses_topic_ids);
            return Ok(self.fetch(FetchKind::Sessionless, topics));
        }
        session.last_used = now;
        session.next_epoch = next_epoch(session.next_epoch);
        let kind = FetchKind::Incremental {
            session_id,
            epoch_after: session.next_epoch,
        };
        let topics = session.requested_topics();
        Ok(self.fetch(kind, topics))
    }

    /// How many sessions the cache holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fetch(&self, kind: FetchKind, topics: Vec<RequestedTopic>) -> SessionFetch<'_> {
        SessionFetch {
            cache: self,
            kind,
            topics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, FetchSession>> {
        // A panic elsewhere while holding it leaves the map consistent (every update is a
        // single insert or remove), so a poisoned lock is still usable.
        self.sessions.lock_or_recover()
    }

    /// Stores `session` if there is a slot, making one by eviction if allowed. Returns its
    /// id, or 0 when it is not kept.
    fn insert(&self, mut session: FetchSession, now: Instant) -> i32 {
        let mut sessions = self.lock();
        let has_room = sessions.len() < self.max_sessions_count
            || self.evict_one(&mut sessions, session.partitions.len(), now);
        if !has_room {
            return INVALID_SESSION_ID;
        }
        let Some(id) = unused_session_id(&sessions) else {
            return INVALID_SESSION_ID;
        };
        session.id = id;
        sessions.insert(id, session);
        id
    }

    /// Frees a slot for a session of `new_partitions_count` partitions, by Kafka's rules.
    /// Returns whether one was freed.
    fn evict_one(
        &self,
        sessions: &mut HashMap<i32, FetchSession>,
        new_partitions_count: usize,
        now: Instant,
    ) -> bool {
        let idle_longest = sessions
            .values()
            .min_by_key(|session| (session.last_used, session.id));
        let stale = idle_longest
            .filter(|session| {
                now.saturating_duration_since(session.last_used) > self.eviction_after
            })
            .map(|session| session.id);
        let smaller = || {
            sessions
                .values()
                .filter(|session| {
                    now.saturating_duration_since(session.created) > self.eviction_after
                })
                .min_by_key(|session| (session.partitions.len(), session.id))
                .filter(|session| session.partitions.len() < new_partitions_count)
                .map(|session| session.id)
        };
        match stale.or_else(smaller) {
            Some(evicted) => {
                sessions.remove(&evicted);
                debug!(session_id = evicted, "fetch session evicted");
                true
            }
            None => false,
        }
    }
}

impl SessionFetch<'_> {
    /// The partitions to read, grouped by topic, in the order the response lists them.
    pub fn topics(&self) -> &[RequestedTopic] {
        &self.topics
    }

    /// Answers the fetch with `responses`, read from [`SessionFetch::topics`] in the same
    /// order: a full fetch opens its session, an incremental one keeps only what changed.
    pub fn respond(
        self,
        responses: Vec<FetchableTopicResponse>,
        now: Instant,
    ) -> FetchResponseParts {
        debug_assert_eq!(responses.len(), self.topics.len());
        match self.kind {
            FetchKind::Sessionless => FetchResponseParts::ok(INVALID_SESSION_ID, responses),
            FetchKind::Full { uses_topic_ids } => {
                let requested_count: usize =
                    self.topics.iter().map(|topic| topic.partitions.len()).sum();
                let session_id = match self.cache.max_sessions_count {
                    0 => INVALID_SESSION_ID,
                    _ if requested_count > FETCH_SESSION_MAX_PARTITIONS => {
                        debug!(requested_count, "too many partitions for a fetch session");
                        INVALID_SESSION_ID
                    }
                    _ => {
                        let session =
                            FetchSession::new(uses_topic_ids, &self.topics, &responses, now);
                        self.cache.insert(session, now)
                    }
                };
                debug!(session_id, "full fetch response");
                FetchResponseParts::ok(session_id, responses)
            }
            FetchKind::Incremental {
                session_id,
                epoch_after,
            } => {
                let mut sessions = self.cache.lock();
                let session = match sessions.get_mut(&session_id) {
                    None => {
                        let error = FetchSessionError::SessionIdNotFound { session_id };
                        return FetchResponseParts::error(error);
                    }
                    Some(session) if session.next_epoch != epoch_after => {
                        return FetchResponseParts::error(FetchSessionError::InvalidEpoch {
                            session_id,
                            expected: session.next_epoch,
                            received: epoch_after,
                        });
                    }
                    Some(session) => session,
                };
                session.last_used = now;
                let read_count: usize = responses.iter().map(|topic| topic.partitions.len()).sum();
                let changed = session.keep_changed(&self.topics, responses);
                let changed_count: usize = changed.iter().map(|topic| topic.partitions.len()).sum();
                debug!(
                    session_id,
                    read_count, changed_count, "incremental fetch response"
                );
                FetchResponseParts::ok(session_id, changed)
            }
        }
    }
}

/// The session part of a Fetch response: the top-level error, the session id, the topics.
#[derive(Debug)]
pub struct FetchResponseParts {
    /// The top-level error, [`ErrorCode::None`] when served.
    pub error_code: ErrorCode,
    /// The session the client continues in, or 0.
    pub session_id: i32,
    /// The partitions to send.
    pub responses: Vec<FetchableTopicResponse>,
}

impl FetchResponseParts {
    fn ok(session_id: i32, responses: Vec<FetchableTopicResponse>) -> FetchResponseParts {
        FetchResponseParts {
            error_code: ErrorCode::None,
            session_id,
            responses,
        }
    }

    /// The answer to a request its session refused: the error and no partitions.
    pub fn error(error: FetchSessionError) -> FetchResponseParts {
        debug!(%error, "fetch session refused the request");
        FetchResponseParts {
            error_code: error.code(),
            session_id: INVALID_SESSION_ID,
            responses: Vec::new(),
        }
    }
}

impl CachedPartition {
    /// Notes what a response told the client. After an error the high watermark is
    /// forgotten, so the partition is sent again once the error clears.
    fn remember(&mut self, data: &PartitionData) {
        self.high_watermark = match data.error_code == ErrorCode::None.code() {
            true => data.high_watermark,
            false => -1,
        };
        self.last_stable_offset = data.last_stable_offset;
        self.log_start_offset = data.log_start_offset;
    }
}

impl FetchSession {
    /// A session holding a full fetch's partitions, as its response left them. Its id is
    /// set when it is stored.
    fn new(
        uses_topic_ids: bool,
        topics: &[RequestedTopic],
        responses: &[FetchableTopicResponse],
        now: Instant,
    ) -> FetchSession {
        let mut session = FetchSession {
            id: INVALID_SESSION_ID,
            next_epoch: next_epoch(INITIAL_EPOCH),
            uses_topic_ids,
            created: now,
            last_used: now,
            partitions: HashMap::new(),
            order: BTreeMap::new(),
            next_position: 0,
        };
        for (topic, response) in topics.iter().zip(responses) {
            for (requested, data) in topic.partitions.iter().zip(&response.partitions) {
                let key = PartitionKey {
                    topic: topic.topic.clone(),
                    partition: requested.partition,
                };
                session.upsert(key.clone(), requested);
                if let Some(cached) = session.partitions.get_mut(&key) {
                    cached.remember(data);
                }
            }
        }
        session
    }

    /// Applies an incremental request: its partitions are added or updated, its forgotten
    /// ones removed. Returns `false`, having stopped adding, if its new partitions would take
    /// the session past [`FETCH_SESSION_MAX_PARTITIONS`]: the caller closes it.
    fn update(&mut self, request: &FetchRequest) -> bool {
        for topic in &request.topics {
            let topic_key = TopicKey::of(topic, self.uses_topic_ids);
            for partition in &topic.partitions {
                let key = PartitionKey {
                    topic: topic_key.clone(),
                    partition: partition.partition,
                };
                let is_new = !self.partitions.contains_key(&key);
                if is_new && self.partitions.len() >= FETCH_SESSION_MAX_PARTITIONS {
                    return false;
                }
                self.upsert(key, &requested_partition(partition));
            }
        }
        for forgotten in &request.forgotten_topics_data {
            let topic = TopicKey::of_forgotten(forgotten, self.uses_topic_ids);
            for &partition in &forgotten.partitions {
                let key = PartitionKey {
                    topic: topic.clone(),
                    partition,
                };
                if let Some(removed) = self.partitions.remove(&key) {
                    self.order.remove(&removed.position);
                }
            }
        }
        true
    }

    /// Adds a partition at the back, or updates its request parameters where it is. A new
    /// partition's high watermark is unknown, so its first response always includes it.
    fn upsert(&mut self, key: PartitionKey, requested: &RequestedPartition) {
        if let Some(cached) = self.partitions.get_mut(&key) {
            cached.fetch_offset = requested.fetch_offset;
            cached.partition_max_bytes = requested.partition_max_bytes;
            return;
        }
        let position = self.take_position();
        self.order.insert(position, key.clone());
        self.partitions.insert(
            key,
            CachedPartition {
                position,
                fetch_offset: requested.fetch_offset,
                partition_max_bytes: requested.partition_max_bytes,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
            },
        );
    }

    fn take_position(&mut self) -> u64 {
        let position = self.next_position;
        self.next_position += 1;
        position
    }

    /// The session's partitions in read order, consecutive partitions of a topic grouped
    /// (a topic may appear more than once, as in Kafka's responses).
    fn requested_topics(&self) -> Vec<RequestedTopic> {
        let mut topics: Vec<RequestedTopic> = Vec::new();
        for key in self.order.values() {
            let Some(cached) = self.partitions.get(key) else {
                continue;
            };
            let partition = RequestedPartition {
                partition: key.partition,
                fetch_offset: cached.fetch_offset,
                partition_max_bytes: cached.partition_max_bytes,
            };
            match topics.last_mut() {
                Some(last) if last.topic == key.topic => last.partitions.push(partition),
                _ => topics.push(RequestedTopic {
                    topic: key.topic.clone(),
                    partitions: vec![partition],
                }),
            }
        }
        topics
    }

    /// Records what `data` tells the client about a partition. Returns whether the client
    /// must hear it: records, an error, or a changed offset.
    fn note_response(&mut self, topic: &TopicKey, data: &PartitionData) -> bool {
        let key = PartitionKey {
            topic: topic.clone(),
            partition: data.partition_index,
        };
        let Some(cached) = self.partitions.get_mut(&key) else {
            return true;
        };
        let has_records = data
            .records
            .as_ref()
            .is_some_and(|records| !records.is_empty());
        let has_error = data.error_code != ErrorCode::None.code();
        let offsets_changed = cached.high_watermark != data.high_watermark
            || cached.last_stable_offset != data.last_stable_offset
            || cached.log_start_offset != data.log_start_offset;
        cached.remember(data);
        if has_records {
            self.order.remove(&cached.position);
            cached.position = self.next_position;
            self.next_position += 1;
            self.order.insert(cached.position, key);
        }
        has_records || has_error || offsets_changed
    }

    /// Keeps the partitions of `responses` the client must hear of, updating the session.
    fn keep_changed(
        &mut self,
        topics: &[RequestedTopic],
        responses: Vec<FetchableTopicResponse>,
    ) -> Vec<FetchableTopicResponse> {
        let mut changed = Vec::new();
        for (topic, mut response) in topics.iter().zip(responses) {
            response
                .partitions
                .retain(|data| self.note_response(&topic.topic, data));
            if !response.partitions.is_empty() {
                changed.push(response);
            }
        }
        changed
    }
}

/// The request's topics as it names them.
fn requested_topics(request: &FetchRequest, uses_topic_ids: bool) -> Vec<RequestedTopic> {
    request
        .topics
        .iter()
        .map(|topic| RequestedTopic {
            topic: TopicKey::of(topic, uses_topic_ids),
            partitions: topic.partitions.iter().map(requested_partition).collect(),
        })
        .collect()
}

fn requested_partition(
    partition: &riffle_protocol::api::fetch::FetchPartition,
) -> RequestedPartition {
    RequestedPartition {
        partition: partition.partition,
        fetch_offset: partition.fetch_offset,
        partition_max_bytes: partition.partition_max_bytes,
    }
}

/// The epoch after `epoch`: it wraps to 1, since 0 and -1 mean full fetches.
fn next_epoch(epoch: i32) -> i32 {
    match epoch {
        i32::MAX => 1,
        epoch => epoch + 1,
    }
}

/// A random positive id no session holds, as Kafka picks them, so one client cannot guess
/// another's. `None` when the operating system has no randomness to give.
fn unused_session_id(sessions: &HashMap<i32, FetchSession>) -> Option<i32> {
    // Bounded: with at most a few thousand of 2^31 ids taken, a clash is rare.
    for _ in 0..16 {
        let bytes = random_bytes::<4>().ok()?;
        let id = i32::from_be_bytes(bytes) & i32::MAX;
        if id != INVALID_SESSION_ID && !sessions.contains_key(&id) {
            return Some(id);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use riffle_protocol::FetchRecords;
    use riffle_protocol::api::fetch::FetchPartition;

    use super::*;

    /// Fetch 12 names topics; 13 gives ids.
    const BY_NAME: i16 = 12;
    const BY_ID: i16 = 13;

    /// A request of `session_id`/`session_epoch` for partitions `0..partitions` of topic "t".
    fn request(session_id: i32, session_epoch: i32, partitions: i32) -> FetchRequest {
        let partitions: Vec<FetchPartition> = (0..partitions)
            .map(|partition| FetchPartition {
                partition,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            })
            .collect();
        FetchRequest {
            session_id,
            session_epoch,
            topics: match partitions.is_empty() {
                true => Vec::new(),
                false => vec![FetchTopic {
                    topic: "t".into(),
                    topic_id: Uuid([7; 16]),
                    partitions,
                }],
            },
            ..Default::default()
        }
    }

    /// What a read of `topics` returned: for each partition, its high watermark and
    /// whether it had records, from `read`.
    fn responses(
        topics: &[RequestedTopic],
        read: impl Fn(i32) -> (i64, bool),
    ) -> Vec<FetchableTopicResponse> {
        topics
            .iter()
            .map(|topic| FetchableTopicResponse {
                topic: topic.topic.name().to_string(),
                topic_id: topic.topic.id(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|requested| {
                        let (high_watermark, has_records) = read(requested.partition);
                        let records = match has_records {
                            true => Bytes::from_static(b"batch"),
                            false => Bytes::new(),
                        };
                        PartitionData {
                            partition_index: requested.partition,
                            high_watermark,
                            last_stable_offset: high_watermark,
                            log_start_offset: 0,
                            records: Some(FetchRecords::Bytes(records)),
                            ..Default::default()
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// The partition indexes of a response, in order.
    fn partitions_of(parts: &FetchResponseParts) -> Vec<i32> {
        parts
            .responses
            .iter()
            .flat_map(|topic| topic.partitions.iter().map(|data| data.partition_index))
            .collect()
    }

    /// Opens a session of `partitions` partitions at `now`, every one at high watermark 0.
    fn open(cache: &FetchSessionCache, partitions: i32, now: Instant) -> i32 {
        let fetch = cache
            .begin(BY_NAME, &request(0, INITIAL_EPOCH, partitions), now)
            .expect("a full fetch");
        let read = responses(fetch.topics(), |_| (0, false));
        fetch.respond(read, now).session_id
    }

    #[test]
    fn initial_epoch_opens_a_session_and_final_epoch_closes_it() {
        // Epoch 0 answers every partition with a new session id; epoch -1 with that id
        // answers every partition with id 0 and closes the session.
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let session_id = open(&cache, 3, now);
        assert_ne!(session_id, INVALID_SESSION_ID);
        assert_eq!(cache.len(), 1);

        let fetch = cache
            .begin(BY_NAME, &request(session_id, FINAL_EPOCH, 3), now)
            .expect("a sessionless fetch");
        let read = responses(fetch.topics(), |_| (0, false));
        let parts = fetch.respond(read, now);
        assert_eq!(
            (parts.session_id, partitions_of(&parts)),
            (0, vec![0, 1, 2])
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn incremental_fetch_reads_the_session_and_returns_only_what_changed() {
        // After a full fetch of 3 partitions, an incremental one with no partitions reads
        // all 3 and returns only the one with records and the one whose high watermark
        // moved; the partition with records moves to the back of the read order.
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let session_id = open(&cache, 3, now);

        let fetch = cache
            .begin(BY_NAME, &request(session_id, 1, 0), now)
            .expect("incremental");
        let read_order: Vec<i32> = fetch.topics()[0]
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        assert_eq!(read_order, vec![0, 1, 2]);
        let read = responses(fetch.topics(), |partition| match partition {
            0 => (5, true),
            2 => (1, false),
            _ => (0, false),
        });
        let parts = fetch.respond(read, now);
        assert_eq!(
            (parts.session_id, partitions_of(&parts)),
            (session_id, vec![0, 2])
        );

        let fetch = cache
            .begin(BY_NAME, &request(session_id, 2, 0), now)
            .expect("incremental");
        let read_order: Vec<i32> = fetch.topics()[0]
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        assert_eq!(read_order, vec![1, 2, 0]);
        let read = responses(fetch.topics(), |partition| match partition {
            0 => (5, false),
            2 => (1, false),
            _ => (0, false),
        });
        assert_eq!(partitions_of(&fetch.respond(read, now)), Vec::<i32>::new());
    }

    #[test]
    fn incremental_requests_update_add_and_forget_partitions() {
        // An incremental request's partitions update fetch offsets or join the session
        // (a new one is always answered once); forgotten ones leave it; forgetting the last
        // one closes the session, answered with id 0.
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let session_id = open(&cache, 2, now);

        let mut changes = request(session_id, 1, 3);
        changes.topics[0].partitions.remove(0);
        changes.topics[0].partitions[0].fetch_offset = 9;
        changes.forgotten_topics_data = vec![ForgottenTopic {
            topic: "t".into(),
            partitions: vec![0],
            ..Default::default()
        }];
        let fetch = cache.begin(BY_NAME, &changes, now).expect("incremental");
        let wanted: Vec<(i32, i64)> = fetch.topics()[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.fetch_offset))
            .collect();
        assert_eq!(wanted, vec![(1, 9), (2, 0)]);
        let read = responses(fetch.topics(), |_| (0, false));
        assert_eq!(partitions_of(&fetch.respond(read, now)), vec![2]);

        let mut forget_all = request(session_id, 2, 0);
        forget_all.forgotten_topics_data = vec![ForgottenTopic {
            topic: "t".into(),
            partitions: vec![1, 2],
            ..Default::default()
        }];
        let fetch = cache.begin(BY_NAME, &forget_all, now).expect("closes");
        assert_eq!(
            fetch.respond(Vec::new(), now).session_id,
            INVALID_SESSION_ID
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn incremental_fetch_checks_session_id_epoch_and_topic_naming() {
        // An unknown id, a stale or future epoch, and a Fetch version that names topics
        // differently from the session are each refused with their error; the session
        // survives them and the right epoch is still served.
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let session_id = open(&cache, 1, now);
        let refusal = |version, id, epoch| cache.begin(version, &request(id, epoch, 0), now).err();
        assert_eq!(
            refusal(BY_NAME, session_id.wrapping_add(1), 1).map(|error| error.code()),
            Some(ErrorCode::FetchSessionIdNotFound)
        );
        for epoch in [2, 7] {
            assert_eq!(
                refusal(BY_NAME, session_id, epoch).map(|error| error.code()),
                Some(ErrorCode::InvalidFetchSessionEpoch)
            );
        }
        assert_eq!(
            refusal(BY_ID, session_id, 1).map(|error| error.code()),
            Some(ErrorCode::FetchSessionTopicIdError)
        );
        assert!(refusal(BY_NAME, session_id, 1).is_none());
    }

    #[test]
    fn sessions_by_topic_id_key_partitions_by_id() {
        // From Fetch 13 a session names topics by id: the read and the response carry the
        // id and no name.
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let fetch = cache
            .begin(BY_ID, &request(0, INITIAL_EPOCH, 1), now)
            .expect("full");
        let read = responses(fetch.topics(), |_| (0, false));
        let session_id = fetch.respond(read, now).session_id;
        let fetch = cache
            .begin(BY_ID, &request(session_id, 1, 0), now)
            .expect("incremental");
        assert_eq!(fetch.topics()[0].topic, TopicKey::Id(Uuid([7; 16])));
        let read = responses(fetch.topics(), |_| (1, false));
        let parts = fetch.respond(read, now);
        assert_eq!(parts.responses[0].topic_id, Uuid([7; 16]));
        assert_eq!(parts.responses[0].topic, "");
    }

    #[test]
    fn a_request_racing_another_on_its_session_is_refused_at_the_answer() {
        // Two requests read with the same epoch (the second a retry): the session moves on
        // with the later begin, so the earlier answer is INVALID_FETCH_SESSION_EPOCH.
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let session_id = open(&cache, 1, now);
        let first = cache
            .begin(BY_NAME, &request(session_id, 1, 0), now)
            .expect("first");
        let second = cache
            .begin(BY_NAME, &request(session_id, 2, 0), now)
            .expect("second");
        let read = responses(first.topics(), |_| (0, false));
        assert_eq!(
            first.respond(read, now).error_code,
            ErrorCode::InvalidFetchSessionEpoch
        );
        let read = responses(second.topics(), |_| (0, false));
        assert_eq!(second.respond(read, now).error_code, ErrorCode::None);
    }

    #[test]
    fn a_full_cache_evicts_idle_sessions_then_smaller_old_ones() {
        // With 2 slots: a third session is refused while both are young; once both are
        // older than the eviction limit but one was used recently, a larger session takes
        // the smaller one's slot and an equal one is refused; once one is idle past the
        // limit, any new session takes its slot.
        let eviction = Duration::from_millis(INCREMENTAL_FETCH_SESSION_EVICTION_MS);
        let cache = FetchSessionCache::new(2);
        let start = Instant::now();
        let small = open(&cache, 1, start);
        let large = open(&cache, 5, start);
        assert_eq!(open(&cache, 10, start), INVALID_SESSION_ID);

        let later = start + eviction + Duration::from_secs(1);
        for (session_id, epoch) in [(small, 1), (large, 1)] {
            let fetch = cache
                .begin(BY_NAME, &request(session_id, epoch, 0), later)
                .expect("touch");
            let read = responses(fetch.topics(), |_| (0, false));
            fetch.respond(read, later);
        }
        assert_eq!(open(&cache, 1, later), INVALID_SESSION_ID);
        let larger = open(&cache, 3, later);
        assert_ne!(larger, INVALID_SESSION_ID);
        let refused = cache.begin(BY_NAME, &request(small, 2, 0), later).err();
        assert_eq!(
            refused,
            Some(FetchSessionError::SessionIdNotFound { session_id: small })
        );

        let much_later = later + eviction + Duration::from_secs(1);
        let fetch = cache
            .begin(BY_NAME, &request(large, 2, 0), much_later)
            .expect("touch");
        let read = responses(fetch.topics(), |_| (0, false));
        fetch.respond(read, much_later);
        assert_ne!(open(&cache, 1, much_later), INVALID_SESSION_ID);
        let refused = cache
            .begin(BY_NAME, &request(larger, 1, 0), much_later)
            .err();
        assert_eq!(
            refused,
            Some(FetchSessionError::SessionIdNotFound { session_id: larger })
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn sessions_stop_at_the_partition_limit() {
        // Proves FETCH_SESSION_MAX_PARTITIONS holds for both ways into a session: a full
        // fetch naming more partitions is answered without a session, and an incremental
        // request adding past the limit closes its session, answered with id 0.
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let limit = i32::try_from(FETCH_SESSION_MAX_PARTITIONS).expect("fits an i32");
        assert_eq!(open(&cache, limit + 1, now), INVALID_SESSION_ID);
        assert!(cache.is_empty());

        let session_id = open(&cache, limit, now);
        assert_ne!(session_id, INVALID_SESSION_ID);
        let mut one_more = request(session_id, 1, 0);
        one_more.topics = vec![FetchTopic {
            topic: "other".into(),
            partitions: vec![FetchPartition::default()],
            ..Default::default()
        }];
        let fetch = cache.begin(BY_NAME, &one_more, now).expect("sessionless");
        assert_eq!(
            fetch.topics().len(),
            1,
            "reads the request's own partitions"
        );
        let read = responses(fetch.topics(), |_| (0, false));
        assert_eq!(fetch.respond(read, now).session_id, INVALID_SESSION_ID);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_topic_name_is_shared_by_its_partitions_in_a_session() {
        // Proves a session keeps one copy of each topic name, however many of its partitions
        // it holds: a 32 KiB name times 50,000 partitions would otherwise be 1.6 GB.
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let mut full = request(0, INITIAL_EPOCH, 100);
        full.topics[0].topic = "n".repeat(usize::from(u16::MAX >> 1));
        let fetch = cache.begin(BY_NAME, &full, now).expect("full");
        let read = responses(fetch.topics(), |_| (0, false));
        let session_id = fetch.respond(read, now).session_id;
        let sessions = cache.lock();
        let session = sessions.get(&session_id).expect("open");
        let mut names = session.partitions.keys().map(|key| match &key.topic {
            TopicKey::Name(name) => Arc::as_ptr(name),
            TopicKey::Id(_) => panic!("named by name"),
        });
        let first = names.next().expect("partitions");
        assert!(names.all(|name| std::ptr::addr_eq(name, first)));
    }

    #[test]
    fn zero_slots_turn_sessions_off() {
        // With no slots every full fetch is answered with session id 0.
        let cache = FetchSessionCache::new(0);
        assert_eq!(open(&cache, 1, Instant::now()), INVALID_SESSION_ID);
        assert!(cache.is_empty());
    }

    #[test]
    fn epochs_wrap_past_zero_and_final() {
        // After i32::MAX the next epoch is 1: 0 and -1 mean full fetches.
        assert_eq!(next_epoch(1), 2);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
