//! Watching running applications from outside: a summary of each ([`AppHandle`]), their
//! stores read by name as JSON ([`crate::JsonStores`]), the `/apps` routes that answer both
//! over HTTP ([`routes`]), and Prometheus metrics ([`ProcessorCollector`]).
//!
//! A runtime hands out an [`AppHandle`] per topology ([`crate::runtime::Runner::app_handle`]);
//! the host program (the broker with co-located topologies, or a remote application's
//! program) serves the routes and registers the collector. Nothing here needs an HTTP
//! library: a route is a path and a query in, a status and JSON bytes out.

mod app;
mod metrics;
pub mod routes;

pub use app::{AppHandle, AppSummary, PartitionSummary, RuntimeKind, StoreSummary, TaskSummary};
pub use metrics::{ProcessorCollector, RuntimeMetrics, encode_metrics};
pub use routes::{RouteAnswer, answer, answer_blocking};

#[cfg(test)]
mod tests;
