//! Safe upgrades: run a new version of a topology against the retained history of its
//! inputs, beside the live one, and compare their outputs before switching.
//!
//! - [`ShadowNames`]: the shadow's application id (`<application>-shadow`) and topics.
//!   The shadow reads the live inputs and writes only its own topics: its group,
//!   changelogs and repartition topics follow its application id, and each sink topic
//!   `t` becomes `<application>-shadow.t`.
//! - [`ShadowBackend`]: any [`crate::runtime::Backend`] wrapped so the unchanged runner
//!   runs the topology under those names, processes each input partition only up to
//!   its end when the run started, and says when all of that is processed and
//!   committed.
//! - [`ShadowRun`] (feature `remote`): the whole run against a Kafka-compatible cluster,
//!   [`ShadowRun::diff`] of a live and a shadow topic, and [`ShadowRun::clean_up`].
//! - [`OutputDiff`]: final value per key (and window) of two topics, compared; the
//!   `riffle apps diff` command uses it too.

mod diff;
mod names;
#[cfg(feature = "remote")]
mod remote;
mod shadow_backend;
#[cfg(test)]
mod tests;

pub use diff::{
    DIFF_LIMIT_DEFAULT, DataFormat, DiffReport, DifferenceKind, KeyDifference, KeyFormat,
    KeyWindow, OutputDiff, ShownKey, UnknownFormat,
};
pub use names::{SHADOW_SUFFIX, ShadowNames};
#[cfg(feature = "remote")]
pub use remote::{ShadowOutcome, ShadowRun, UpgradeError};
pub use shadow_backend::{ShadowBackend, ShadowProgress};
