//! What every operator test file shares: each test runs twice, once with the stores the
//! topology declares on disk and once with every store in memory, so persistent and
//! in-memory stores are held to the same outputs. The join tests also read their outputs as
//! [`rows`].

#[allow(dead_code)] // Only the join tests read rows.
pub mod rows;

/// Turns each `fn name(backing: StoreBacking)` into two tests, `persistent::name` and
/// `in_memory::name`.
#[macro_export]
macro_rules! for_both_backings {
    ($($name:ident),* $(,)?) => {
        mod persistent {
            $(
                #[test]
                fn $name() {
                    super::$name(riffle_processor::StoreBacking::Persistent);
                }
            )*
        }
        mod in_memory {
            $(
                #[test]
                fn $name() {
                    super::$name(riffle_processor::StoreBacking::InMemory);
                }
            )*
        }
    };
}
