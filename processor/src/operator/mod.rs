//! Operators: what each DSL call does to one record inside a task.
//!
//! One file per kind of operator. Each is a plain struct implementing the crate's
//! `Operator` trait, built per task by a factory the DSL registered, so a test can drive
//! one without a runtime.

pub(crate) mod aggregate;
pub(crate) mod fk_join;
pub(crate) mod outer_stream_join;
pub(crate) mod session_aggregate;
pub(crate) mod sink;
pub(crate) mod sliding_aggregate;
pub(crate) mod source;
pub(crate) mod stateless;
pub(crate) mod stream_join;
pub(crate) mod suppress;
pub(crate) mod table_join;
pub(crate) mod table_table_join;
pub(crate) mod table_transform;
pub(crate) mod user_processor;
pub(crate) mod window_aggregate;
