//! The remote runtime: a topology against any Kafka-compatible broker over rdkafka.
//!
//! Being written; see `RemoteBackend`.
