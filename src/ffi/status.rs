//! `DsStatus`: the fixed status codes every fallible C function returns, and their mapping from `Error`.

use crate::error::Error;

/// Status returned by every fallible C function; 0 is success. Codes are fixed forever.
pub type DsStatus = i32;

/// Success.
pub const DS_STATUS_OK: DsStatus = 0;
/// An argument has a value the function does not accept.
pub const DS_STATUS_INVALID_ARGUMENT: DsStatus = 1;
/// A required pointer argument (out-pointer, data pointer) was NULL.
pub const DS_STATUS_NULL_POINTER: DsStatus = 2;
/// A handle that is NULL, already freed, or of another kind.
pub const DS_STATUS_INVALID_HANDLE: DsStatus = 3;
/// A dtype code that names no dtype, or a dtype the operation does not take.
pub const DS_STATUS_INVALID_DTYPE: DsStatus = 4;
/// Shapes that do not fit together.
pub const DS_STATUS_SHAPE_MISMATCH: DsStatus = 5;
/// An index, axis or range outside its bounds.
pub const DS_STATUS_OUT_OF_RANGE: DsStatus = 6;
/// A size that overflows `int64_t` or `size_t`.
pub const DS_STATUS_OVERFLOW: DsStatus = 7;
/// A caller buffer too small for the data.
pub const DS_STATUS_BUFFER_TOO_SMALL: DsStatus = 8;
/// Tensors that disagree on dtype.
pub const DS_STATUS_DTYPE_MISMATCH: DsStatus = 9;
/// An allocation failed.
pub const DS_STATUS_OUT_OF_MEMORY: DsStatus = 10;
/// A device that does not exist or cannot be used.
pub const DS_STATUS_DEVICE_UNAVAILABLE: DsStatus = 11;
/// A feature or combination the engine does not support.
pub const DS_STATUS_UNSUPPORTED: DsStatus = 12;
/// A named thing that is not there.
pub const DS_STATUS_NOT_FOUND: DsStatus = 13;
/// A library whose ABI version differs from the one the caller was built for.
pub const DS_STATUS_ABI_MISMATCH: DsStatus = 14;
/// A bug inside the engine, including a caught panic; the process keeps working.
pub const DS_STATUS_INTERNAL: DsStatus = 15;
/// A run was cancelled from another thread.
pub const DS_STATUS_CANCELLED: DsStatus = 16;
/// A file or buffer that is truncated, corrupt or of a newer format version.
pub const DS_STATUS_CORRUPT_DATA: DsStatus = 17;
/// A loss or gradient was NaN or infinite; the training step was refused and changed nothing.
pub const DS_STATUS_NON_FINITE: DsStatus = 18;

/// The status code for an error.
pub fn status_of(e: &Error) -> DsStatus {
    match e {
        Error::InvalidArgument { .. } => DS_STATUS_INVALID_ARGUMENT,
        Error::NullPointer { .. } => DS_STATUS_NULL_POINTER,
        Error::InvalidHandle { .. } => DS_STATUS_INVALID_HANDLE,
        Error::InvalidDtype { .. } => DS_STATUS_INVALID_DTYPE,
        Error::ShapeMismatch { .. } => DS_STATUS_SHAPE_MISMATCH,
        Error::OutOfRange { .. } => DS_STATUS_OUT_OF_RANGE,
        Error::Overflow { .. } => DS_STATUS_OVERFLOW,
        Error::BufferTooSmall { .. } => DS_STATUS_BUFFER_TOO_SMALL,
        Error::DtypeMismatch { .. } => DS_STATUS_DTYPE_MISMATCH,
        Error::OutOfMemory { .. } => DS_STATUS_OUT_OF_MEMORY,
        Error::DeviceUnavailable(_) => DS_STATUS_DEVICE_UNAVAILABLE,
        Error::Unsupported(_) => DS_STATUS_UNSUPPORTED,
        Error::NotFound(_) => DS_STATUS_NOT_FOUND,
        Error::AbiMismatch(_) => DS_STATUS_ABI_MISMATCH,
        Error::Internal(_) => DS_STATUS_INTERNAL,
        Error::Cancelled(_) => DS_STATUS_CANCELLED,
        Error::Corrupt { .. } => DS_STATUS_CORRUPT_DATA,
        Error::NonFinite(_) => DS_STATUS_NON_FINITE,
    }
}

/// The constant's name for a status code (`"DS_STATUS_OK"`), or `None` for an unknown code.
pub fn status_name(status: DsStatus) -> Option<&'static str> {
    const NAMES: [&str; 19] = [
        "DS_STATUS_OK\0",
        "DS_STATUS_INVALID_ARGUMENT\0",
        "DS_STATUS_NULL_POINTER\0",
        "DS_STATUS_INVALID_HANDLE\0",
        "DS_STATUS_INVALID_DTYPE\0",
        "DS_STATUS_SHAPE_MISMATCH\0",
        "DS_STATUS_OUT_OF_RANGE\0",
        "DS_STATUS_OVERFLOW\0",
        "DS_STATUS_BUFFER_TOO_SMALL\0",
        "DS_STATUS_DTYPE_MISMATCH\0",
        "DS_STATUS_OUT_OF_MEMORY\0",
        "DS_STATUS_DEVICE_UNAVAILABLE\0",
        "DS_STATUS_UNSUPPORTED\0",
        "DS_STATUS_NOT_FOUND\0",
        "DS_STATUS_ABI_MISMATCH\0",
        "DS_STATUS_INTERNAL\0",
        "DS_STATUS_CANCELLED\0",
        "DS_STATUS_CORRUPT_DATA\0",
        "DS_STATUS_NON_FINITE\0",
    ];
    usize::try_from(status).ok().and_then(|i| NAMES.get(i).copied())
}
