//! The `riffle` binary; everything lives in the library so tests can reach it.

/// jemalloc keeps freed pages for reuse (its decay is 10 s), where glibc's malloc hands the
/// megabyte-sized fetch and request buffers back to the kernel and then faults them in,
/// zeroed, on the next request: a quarter of the broker's CPU on large fetches.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    riffle_broker::cli::main()
}
