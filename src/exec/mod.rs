//! The executor: compiles an optimised graph into a plan and runs it, thread-safely, with inter-op parallelism.

mod cancel;
mod executor;
mod plan;

pub use cancel::CancelToken;
pub use executor::{ExecOptions, Executor, RunOptions, RunStats};
