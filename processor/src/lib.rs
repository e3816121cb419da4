//! Riffle's stream processor: topology DSL, operators, state stores and runtimes.
//!
//! Not built yet; see the stream-processor issue. The crate exists so the workspace
//! layout is final from the start.
