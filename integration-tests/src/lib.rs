//! Shared harness for the integration tests: real Kafka clients against a real `riffle` process.
//!
//! # Design
//!
//! Every test starts its own broker with [`Broker::start`] (a fresh temp data directory and a
//! free port), drives it with a real client, and lets `Drop` kill the process. Nothing here
//! links the broker or its codec: the tests talk to the `riffle` binary over TCP only, so a codec
//! bug shows up as a failing test instead of being mirrored on both sides.
//!
//! Where to start:
//! - [`Broker`] (in `broker.rs`): start, stop, kill and restart one process; its log tail is
//!   printed when a test panics.
//! - [`run_python`] (in `python.rs`): runs a script from `integration-tests/python/` with the
//!   pinned kafka-python and confluent-kafka of a shared virtualenv built by [`python_env`].
//! - [`clients`]: small helpers around the Rust `rdkafka` crate (admin, producer, assign-only
//!   consumer).
//! - [`riffle_cli`]: runs `riffle groups ...` against a test broker and reads its tables.
//! - [`wire`]: hand-built requests over a raw socket, for bad-input tests and for looking at
//!   what the broker stored (a batch's compression codec, a topic id).
//! - [`security`]: certificates made at test time, a broker with every kind of listener and
//!   its users, `riffle acls`, and the security options the client scripts take.
//! - [`prometheus`]: GET on the broker's HTTP listener and a strict parser of `/metrics`.
//! - [`browser`]: Debian's chromium, headless, loading a page of the web console.
//! - [`readme`]: the README's fenced examples, for tests that run them as written.
//! - [`kcat`]: Debian's kcat with its librdkafka, pinned and unpacked into `target/kcat`.
//!
//! The `riffle` binary must be built first: `cargo build -p riffle-broker`, or run the whole
//! workspace with `cargo test --workspace`. `RIFFLE_BIN` overrides its path.

mod broker;
pub mod browser;
pub mod clients;
pub mod kcat;
mod node;
mod process;
pub mod prometheus;
mod python;
pub mod readme;
pub mod riffle_cli;
pub mod security;
pub mod wire;

pub use broker::{Broker, BrokerBuilder, START_TIMEOUT, STOP_TIMEOUT, broker_binary};
pub use node::{KAFKAJS_VERSION, NODE_TIMEOUT, node_env, node_env_dir, run_node, run_node_at};
pub use python::{
    PYTHON_REQUIREMENTS, PYTHON_TIMEOUT, python_env, run_python, run_python_at, venv_dir,
};
