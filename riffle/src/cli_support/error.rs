//! Why a client command failed, and how that ends the process.

use std::io;
use std::process::ExitCode;

use crate::admin_client::{AdminClientError, BrokerErrorCode};
use crate::client_config::ConnectError;

/// Why a client command failed. Broker errors name the error code in words, such as
/// `UNKNOWN_TOPIC_OR_PARTITION (3)`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command config could not be read, or the connection failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A request failed, or the broker answered with an error code.
    #[error(transparent)]
    Client(#[from] AdminClientError),
    /// Metadata does not know the topic.
    #[error("topic '{topic}' does not exist: {code}")]
    TopicNotFound {
        /// The topic asked for.
        topic: String,
        /// The code Metadata gave (UNKNOWN_TOPIC_OR_PARTITION, or an authorization failure).
        code: BrokerErrorCode,
    },
    /// A request failed for one partition.
    #[error("{what} failed: {code}{}", message_suffix(.message))]
    Partition {
        /// What was done to which partition, e.g. `producing to orders-0`.
        what: String,
        /// The partition's error code.
        code: BrokerErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// The arguments do not fit the topic or each other; the text says why.
    #[error("{0}")]
    InvalidArgument(String),
    /// Reading standard input failed.
    #[error("cannot read standard input: {0}")]
    Stdin(io::Error),
    /// Writing standard output failed (other than a closed pipe, which ends quietly).
    #[error("cannot write standard output: {0}")]
    Stdout(io::Error),
    /// A fetched record batch does not decode.
    #[error("cannot read the records of {topic}-{partition} at offset {offset}: {source}")]
    Records {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Where the batch starts.
        offset: i64,
        /// What the decoder said.
        source: riffle_protocol::record::RecordError,
    },
}

/// `": message"`, or nothing for no or an empty message.
fn message_suffix(message: &Option<String>) -> String {
    match message.as_deref() {
        Some(text) if !text.is_empty() => format!(": {text}"),
        _ => String::new(),
    }
}

/// Ends a client command: `Ok` text goes to stdout and exits 0; an error is printed as
/// `riffle: ...` on stderr and exits 1.
pub fn finish(result: Result<String, impl std::fmt::Display>) -> ExitCode {
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("riffle: {error}");
            ExitCode::FAILURE
        }
    }
}
