//! The console's read-only JSON API under `/api/`: what the browser cannot ask the broker
//! in Kafka's protocol, read from the cluster's own state. Start at [`router::answer`].
//!
//! | path | answer |
//! |---|---|
//! | `/api/cluster` | version, cluster id, node, listeners, uptime ([`cluster`]) |
//! | `/api/topics` | every topic with its partition count, size and record estimate ([`topics`]) |
//! | `/api/topics/{topic}` | its partitions' offsets and sizes, its configs with their sources ([`topics`]) |
//! | `/api/topics/{topic}/partitions/{partition}/records?offset=N&max=M` | up to `M` records from `N`, key, value and header values in base64 ([`records`]) |
//! | `/api/groups` | every consumer group with its state, members and total lag ([`groups`]) |
//! | `/api/groups/{group}` | its members and their assignments, committed offsets and lag ([`groups`]) |
//! | `/api/history?group=G` | the sampled throughput, request latency and lag ([`history`]) |
//!
//! Bad input is a 400 with `{"error": "..."}` ([`ApiError`]); every read runs on a
//! blocking thread, as `/metrics` does, because it takes topic and group locks and may
//! read log files.

mod cluster;
mod error;
mod groups;
mod history;
mod records;
mod request;
mod router;
mod topics;

pub use error::ApiError;
pub use records::{RECORDS_DEFAULT_COUNT, RECORDS_MAX_COUNT, RECORDS_MAX_READ_BYTES};
pub(super) use router::answer;
