//! Library-wide C functions: versions, the last error, threads, allocator statistics, devices, dtypes.

use super::guard::{guard, guard_value, last_error_ptr, out};
use super::handles::live_count;
use super::status::{DsStatus, status_name};
use crate::backend::cpu::alloc::CPU_ALLOCATOR;
use crate::device::cuda_device_count;
use crate::dtype::DType;
use crate::error::Error;
use crate::runtime;
use std::ffi::c_char;

/// The ABI version of this header. A binding compares it with `ds_abi_version()` at load
/// time and refuses a library built for another version.
pub const DS_ABI_VERSION: u32 = 1;

/// A dtype code (`DS_DTYPE_*`), validated on entry.
pub type DsDtype = i32;
/// A device kind code (`DS_DEVICE_*`), validated on entry.
pub type DsDeviceKind = i32;

/// Device kind: host CPU (the index is ignored).
pub const DS_DEVICE_CPU: DsDeviceKind = 0;
/// Device kind: NVIDIA GPU with the given index.
pub const DS_DEVICE_CUDA: DsDeviceKind = 1;

/// dtype code: 32-bit float.
pub const DS_DTYPE_F32: DsDtype = 1;
/// dtype code: 64-bit float.
pub const DS_DTYPE_F64: DsDtype = 2;
/// dtype code: IEEE half float.
pub const DS_DTYPE_F16: DsDtype = 3;
/// dtype code: bfloat16.
pub const DS_DTYPE_BF16: DsDtype = 4;
/// dtype code: 32-bit signed integer.
pub const DS_DTYPE_I32: DsDtype = 5;
/// dtype code: 64-bit signed integer.
pub const DS_DTYPE_I64: DsDtype = 6;
/// dtype code: 8-bit unsigned integer.
pub const DS_DTYPE_U8: DsDtype = 7;
/// dtype code: boolean stored as one byte, 0 or 1.
pub const DS_DTYPE_BOOL: DsDtype = 8;

/// The library version, e.g. `"0.1.0"`. Static; never freed.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ds_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library's ABI version; compare it with `DS_ABI_VERSION`.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ds_abi_version() -> u32 {
    DS_ABI_VERSION
}

/// Fails with `DS_STATUS_ABI_MISMATCH`, naming both versions, unless `expected` (the
/// caller's `DS_ABI_VERSION`) equals the library's. Bindings call it once at load time.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn ds_check_abi(expected: u32) -> DsStatus {
    guard(|| {
        if expected == DS_ABI_VERSION {
            return Ok(());
        }
        Err(Error::AbiMismatch(format!(
            "caller was built for libdeepseek ABI {expected}, the loaded library {} has ABI {DS_ABI_VERSION}",
            env!("CARGO_PKG_VERSION")
        )))
    })
}

/// The calling thread's last error message: `""` after a successful call. The pointer is
/// valid until the next `ds_` call on the same thread; copy it to keep it.
///
/// Thread safety: each thread has its own message.
#[unsafe(no_mangle)]
pub extern "C" fn ds_last_error() -> *const c_char {
    last_error_ptr()
}

/// The name of a status code (`"DS_STATUS_OUT_OF_RANGE"`), or NULL for an unknown code. Static.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ds_status_name(status: DsStatus) -> *const c_char {
    status_name(status).map_or(std::ptr::null(), |s| s.as_ptr().cast())
}

/// Number of live handles of every kind (tensors, and later graphs, executors, ...). Leak
/// tests assert that it returns to its starting value.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ds_live_objects() -> u64 {
    live_count()
}

/// Sets the size of the engine's thread pool (1 = run on the calling thread). The default
/// is the number of cores; environment variables are never read.
///
/// Thread safety: may be called from any thread; running work finishes on the old pool.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn ds_set_num_threads(num_threads: i32) -> DsStatus {
    guard(|| {
        let n = usize::try_from(num_threads)
            .map_err(|_| Error::invalid("num_threads", format!("must be >= 1, given {num_threads}")))?;
        runtime::set_num_threads(n)
    })
}

/// Writes the thread pool size to `*out_num_threads`.
///
/// # Safety
/// `out_num_threads` must be NULL or valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_get_num_threads(out_num_threads: *mut i32) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_num_threads, "out_num_threads")? };
        *o = runtime::num_threads() as i32;
        Ok(())
    })
}

/// Reads the CPU caching allocator's counters. Any out-pointer may be NULL to skip it.
/// `bytes_in_use` and `peak_bytes` count whole blocks; `allocations` counts every block
/// handed out; `bytes_cached` is memory kept for reuse.
///
/// # Safety
/// Each non-NULL pointer must be valid for a write.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_cpu_allocator_stats(
    out_bytes_in_use: *mut u64,
    out_peak_bytes: *mut u64,
    out_allocations: *mut u64,
    out_bytes_cached: *mut u64,
) -> DsStatus {
    guard(|| {
        let s = CPU_ALLOCATOR.stats();
        for (p, v) in [
            (out_bytes_in_use, s.bytes_in_use),
            (out_peak_bytes, s.peak_bytes_in_use),
            (out_allocations, s.allocations),
            (out_bytes_cached, s.bytes_cached),
        ] {
            // SAFETY: non-NULL pointers are valid for writes by the caller's contract.
            if let Some(p) = unsafe { p.as_mut() } {
                *p = v;
            }
        }
        Ok(())
    })
}

/// Sets the CPU allocator's peak to the bytes now in use.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ds_cpu_allocator_reset_peak() {
    CPU_ALLOCATOR.reset_peak();
}

/// Returns every cached CPU block to the system.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ds_cpu_allocator_empty_cache() {
    CPU_ALLOCATOR.empty_cache();
}

/// Sets how many bytes the CPU allocator may keep cached for reuse (0 disables caching).
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ds_cpu_allocator_set_cache_limit(bytes: u64) {
    CPU_ALLOCATOR.set_cache_limit(usize::try_from(bytes).unwrap_or(usize::MAX));
}

/// Writes the number of usable CUDA devices: 0 when built without CUDA, with no driver,
/// or with no GPU. Never crashes on a machine without CUDA.
///
/// # Safety
/// `out_count` must be NULL or valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_cuda_device_count(out_count: *mut i32) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_count, "out_count")? };
        *o = cuda_device_count() as i32;
        Ok(())
    })
}

/// Writes the size in bytes of one element of `dtype`.
///
/// # Safety
/// `out_size` must be NULL or valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_dtype_size(dtype: DsDtype, out_size: *mut usize) -> DsStatus {
    unsafe { write_dtype_size(dtype, out_size, "out_size") }
}

/// Writes the byte size of `dtype` to `*dst`, naming `arg` when `dst` is NULL.
unsafe fn write_dtype_size(dtype: DsDtype, dst: *mut usize, arg: &'static str) -> DsStatus {
    guard(|| {
        let o = unsafe { out(dst, arg)? };
        *o = DType::from_code(dtype, "dtype")?.size();
        Ok(())
    })
}

/// The name of `dtype` (`"f32"`), or NULL (with the last error set) for an unknown code. Static.
#[unsafe(no_mangle)]
pub extern "C" fn ds_dtype_name(dtype: DsDtype) -> *const c_char {
    guard_value(std::ptr::null(), || {
        Ok(match DType::from_code(dtype, "dtype")? {
            DType::F32 => c"f32",
            DType::F64 => c"f64",
            DType::F16 => c"f16",
            DType::BF16 => c"bf16",
            DType::I32 => c"i32",
            DType::I64 => c"i64",
            DType::U8 => c"u8",
            DType::Bool => c"bool",
        }
        .as_ptr())
    })
}

/// Writes the address alignment `ds_tensor_from_blob` requires for `dtype` (its element size).
///
/// # Safety
/// `out_alignment` must be NULL or valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_required_alignment(dtype: DsDtype, out_alignment: *mut usize) -> DsStatus {
    // Elements are naturally aligned: the alignment is the element size.
    unsafe { write_dtype_size(dtype, out_alignment, "out_alignment") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_constants_match_codes() {
        let consts = [
            DS_DTYPE_F32,
            DS_DTYPE_F64,
            DS_DTYPE_F16,
            DS_DTYPE_BF16,
            DS_DTYPE_I32,
            DS_DTYPE_I64,
            DS_DTYPE_U8,
            DS_DTYPE_BOOL,
        ];
        for (c, d) in consts.into_iter().zip(DType::ALL) {
            assert_eq!(c, d.code());
        }
        assert_eq!((DS_DEVICE_CPU, DS_DEVICE_CUDA), (crate::device::DEVICE_KIND_CPU, crate::device::DEVICE_KIND_CUDA));
    }
}
