//! The C ABI membrane: handles, status codes, the last-error text and the panic barrier. No logic.
//!
//! Conventions (DESIGN.md §4): functions are `ds_<object>_<verb>`; every fallible one
//! returns a `DsStatus` (0 = OK) with results through out-pointers placed last; the
//! message of the last failure on a thread is `ds_last_error()`; enums arrive as integers
//! and are validated; no panic crosses the boundary.

pub mod amp;
pub mod data;
pub mod exec;
pub mod graph;
pub mod guard;
pub mod handles;
pub mod library;
pub mod memory;
pub mod nn;
pub mod ops;
pub mod status;
pub mod tensor;
pub mod train;
