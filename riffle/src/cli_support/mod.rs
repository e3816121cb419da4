//! What the client commands (`riffle topics`, `produce`, `consume`, `groups`, `cluster`)
//! share: the error type and exit code ([`CommandError`], [`finish`]), output for people
//! and scripts ([`output`]), progress lines on a terminal ([`progress`]), `k=v` arguments
//! ([`arguments`]) and ISO 8601 times ([`datetime`]).

pub mod arguments;
pub mod datetime;
mod error;
pub mod output;
pub mod progress;

pub use error::{CommandError, finish};
pub use output::{OutputFormat, format_table};
pub use progress::Progress;
