//! The executor: compiles an optimised graph into a plan and runs it, thread-safely, with inter-op parallelism.

mod branches;
mod cancel;
mod epilogue;
mod executor;
mod plan;
mod profile;

pub use cancel::CancelToken;
pub use executor::{ExecOptions, Executor, RunOptions, RunStats};
pub use profile::{OpTime, Profile};
