//! The engine's one error type, and the status code each variant maps to at the C boundary.

use crate::dtype::DType;

/// Every failure the engine reports. Each variant names what was wrong; `ffi` maps the
/// variant to a fixed `DsStatus` code and the `Display` text becomes `ds_last_error()`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An argument has a value the function does not accept.
    #[error("invalid argument `{arg}`: {msg}")]
    InvalidArgument {
        /// The argument's name as the caller knows it.
        arg: &'static str,
        /// What was expected and what was given.
        msg: String,
    },
    /// A required pointer argument was NULL.
    #[error("argument `{arg}` is NULL")]
    NullPointer {
        /// The argument's name.
        arg: &'static str,
    },
    /// A handle that is NULL, already freed, or not of the expected kind.
    #[error("invalid handle `{arg}`: {msg}")]
    InvalidHandle {
        /// The argument's name.
        arg: &'static str,
        /// Why the handle was refused.
        msg: String,
    },
    /// A dtype code that names no dtype, or a dtype the operation does not support.
    #[error("invalid dtype `{arg}`: {msg}")]
    InvalidDtype {
        /// The argument's name.
        arg: &'static str,
        /// What was expected and what was given.
        msg: String,
    },
    /// Shapes that do not fit together (element counts, broadcasting, inner dimensions).
    #[error("shape mismatch in `{arg}`: {msg}")]
    ShapeMismatch {
        /// The argument's name.
        arg: &'static str,
        /// The expected and given shapes.
        msg: String,
    },
    /// An index, axis or range outside its valid bounds.
    #[error("`{arg}` out of range: {msg}")]
    OutOfRange {
        /// The argument's name.
        arg: &'static str,
        /// The bound and the value given.
        msg: String,
    },
    /// A size computation overflowed the integer type that must hold it.
    #[error("`{arg}` overflows: {msg}")]
    Overflow {
        /// The argument's name.
        arg: &'static str,
        /// What overflowed.
        msg: String,
    },
    /// A caller-supplied buffer is smaller than the data to be written into it.
    #[error("buffer `{arg}` too small: need {needed} bytes, given {given}")]
    BufferTooSmall {
        /// The argument's name.
        arg: &'static str,
        /// Bytes required.
        needed: usize,
        /// Bytes available.
        given: usize,
    },
    /// Two tensors (or a tensor and a request) disagree on dtype.
    #[error("dtype mismatch in `{arg}`: expected {expected}, given {given}")]
    DtypeMismatch {
        /// The argument's name.
        arg: &'static str,
        /// The dtype required.
        expected: DType,
        /// The dtype given.
        given: DType,
    },
    /// An allocation failed.
    #[error("out of memory: could not allocate {bytes} bytes on {device}")]
    OutOfMemory {
        /// Bytes requested.
        bytes: usize,
        /// Where the allocation was attempted.
        device: String,
    },
    /// A device that does not exist or could not be initialised.
    #[error("device unavailable: {0}")]
    DeviceUnavailable(String),
    /// A feature or combination the engine does not support (yet, or on this device).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A named thing (op, input, file) that is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// A caller built for another ABI version.
    #[error("ABI mismatch: {0}")]
    AbiMismatch(String),
    /// A run stopped early because another thread cancelled it.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// A loss or gradient that is NaN or infinite; the step that met it changed nothing.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// A file or byte stream that is truncated, corrupt, or of an unsupported format version.
    #[error("corrupt data in `{what}`: {msg}")]
    Corrupt {
        /// The file or stream.
        what: String,
        /// What is wrong with it.
        msg: String,
    },
    /// Something inside the engine went wrong; a caught panic lands here.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(arg: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument { arg, msg: msg.into() }
    }

    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shape(arg: &'static str, msg: impl Into<String>) -> Self {
        Error::ShapeMismatch { arg, msg: msg.into() }
    }

    /// Shorthand for [`Error::OutOfRange`].
    pub fn range(arg: &'static str, msg: impl Into<String>) -> Self {
        Error::OutOfRange { arg, msg: msg.into() }
    }

    /// Shorthand for [`Error::Overflow`].
    pub fn overflow(arg: &'static str, msg: impl Into<String>) -> Self {
        Error::Overflow { arg, msg: msg.into() }
    }
}
