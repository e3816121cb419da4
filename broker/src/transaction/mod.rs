//! Transactions: the coordinator of every transactional id, each transaction's state
//! machine, and the records that keep them in `__transaction_state`.
//!
//! Start with [`TransactionCoordinator`]; the rules of each request are in [`metadata`].
//! Markers reach partitions through `Partition::append_end_txn_marker` (and, for offsets
//! committed in a transaction, the group coordinator), so on one node no WriteTxnMarkers
//! request is needed.

pub mod coordinator;
pub mod metadata;
pub mod records;
#[cfg(test)]
mod tests;

pub use coordinator::{TRANSACTION_STATE_TOPIC, TransactionCoordinator, TransactionLimits};
pub use metadata::{TransactionMetadata, TransactionState};
