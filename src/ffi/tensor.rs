//! Tensor functions of the C ABI: create, query, copy out, views, cast, free.
//!
//! Thread safety for every function here: a tensor handle may be read (queried, viewed,
//! copied out) from many threads at once; `ds_tensor_free` needs exclusive use. Views are
//! new handles that keep the storage alive, so handles may be freed in any order.

use super::guard::{guard, out, slice, slice_mut, write_text};
use super::handles::{Handle, free, get, register};
use super::library::{DsDeviceKind, DsDtype};
use super::status::DsStatus;
use crate::backend::ForeignOwner;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::rng::Generator;
use crate::tensor::Tensor;
use crate::tensor::create::shape_from_dims;
use std::ffi::{c_char, c_void};

/// An opaque tensor handle. Free with `ds_tensor_free`.
pub struct DsTensor {
    tensor: Tensor,
}

impl Handle for DsTensor {
    const KIND: &'static str = "DsTensor";
}

/// Called once when the engine no longer needs a buffer adopted by `ds_tensor_from_blob`,
/// with the buffer's address and the caller's context pointer. It may run on any thread.
pub type DsDeleter = Option<unsafe extern "C" fn(data: *mut c_void, ctx: *mut c_void)>;

/// The tensor behind a handle.
///
/// # Safety
/// As [`get`].
pub unsafe fn tensor_ref<'a>(p: *const DsTensor, arg: &'static str) -> Result<&'a Tensor> {
    unsafe { get(p, arg) }.map(|h| &h.tensor)
}

/// Registers `t` as a new handle.
pub fn new_handle(t: Tensor) -> *mut DsTensor {
    register(DsTensor { tensor: t })
}

/// Runs a constructor and stores the new handle in `*out_tensor` (NULL on failure).
unsafe fn create(out_tensor: *mut *mut DsTensor, make: impl FnOnce() -> Result<Tensor>) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_tensor, "out_tensor")? };
        *o = std::ptr::null_mut();
        *o = new_handle(make()?);
        Ok(())
    })
}

/// Shape and dtype arguments as the Rust API takes them.
unsafe fn shape_of(dtype: DsDtype, dims: *const i64, ndim: usize) -> Result<(DType, Vec<usize>)> {
    let dtype = DType::from_code(dtype, "dtype")?;
    let dims = unsafe { slice(dims, ndim, "dims")? };
    Ok((dtype, shape_from_dims(dims, dtype, "dims")?))
}

/// Creates a tensor on the CPU holding a copy of `nbytes` bytes at `data` (row-major,
/// `dtype`). `nbytes` must equal the element count times the dtype size. `dims` may be NULL
/// when `ndim` is 0 (a scalar).
///
/// # Safety
/// `dims` must be valid for `ndim` reads, `data` for `nbytes` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_from_data(
    dtype: DsDtype,
    dims: *const i64,
    ndim: usize,
    data: *const c_void,
    nbytes: usize,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe {
        create(out_tensor, || {
            let (dtype, shape) = shape_of(dtype, dims, ndim)?;
            let bytes = if nbytes == 0 { &[][..] } else { slice(data.cast::<u8>(), nbytes, "data")? };
            Tensor::from_bytes(bytes, dtype, &shape, Device::Cpu)
        })
    }
}

struct CDeleter {
    deleter: unsafe extern "C" fn(*mut c_void, *mut c_void),
    data: *mut c_void,
    ctx: *mut c_void,
}

// SAFETY: the caller promises the deleter may run on any thread (documented on DsDeleter).
unsafe impl Send for CDeleter {}
unsafe impl Sync for CDeleter {}

impl CDeleter {
    fn run(self) {
        // SAFETY: the caller's deleter, called once with the caller's own arguments.
        unsafe { (self.deleter)(self.data, self.ctx) }
    }
}

/// Creates a CPU tensor over the caller's buffer without copying. With a `deleter`, the
/// engine adopts the buffer and calls `deleter(data, deleter_ctx)` exactly once when the
/// last tensor or view using it is freed — and also when this call fails, whatever the
/// reason. With a NULL `deleter` the buffer is borrowed: it must outlive every tensor and
/// view made from it. `data` must be aligned to the dtype size
/// (`ds_tensor_required_alignment`); a misaligned buffer is refused, never copied.
///
/// # Safety
/// `data` must be valid for reads and writes of `nbytes` bytes until released; `dims` for
/// `ndim` reads; `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ds_tensor_from_blob(
    dtype: DsDtype,
    dims: *const i64,
    ndim: usize,
    data: *mut c_void,
    nbytes: usize,
    deleter: DsDeleter,
    deleter_ctx: *mut c_void,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    // Built first, so that every early return and unwind below runs the deleter.
    let owner = match deleter {
        Some(deleter) => {
            let d = CDeleter { deleter, data, ctx: deleter_ctx };
            ForeignOwner::new(move || d.run())
        }
        None => ForeignOwner::borrowed(),
    };
    unsafe {
        create(out_tensor, move || {
            let (dtype, shape) = shape_of(dtype, dims, ndim)?;
            Tensor::from_foreign(data.cast(), nbytes, dtype, &shape, owner)
        })
    }
}

/// Creates a tensor of zeros on a device (`DS_DEVICE_CPU`, or `DS_DEVICE_CUDA` with an index).
///
/// # Safety
/// `dims` must be valid for `ndim` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_zeros(
    dtype: DsDtype,
    dims: *const i64,
    ndim: usize,
    device_kind: DsDeviceKind,
    device_index: i32,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe {
        create(out_tensor, || {
            let (dtype, shape) = shape_of(dtype, dims, ndim)?;
            Tensor::zeros(&shape, dtype, Device::from_code(device_kind, device_index)?)
        })
    }
}

/// Creates a tensor with every element `value` (converted by the cast rules) on a device.
///
/// # Safety
/// `dims` must be valid for `ndim` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_full(
    dtype: DsDtype,
    dims: *const i64,
    ndim: usize,
    value: f64,
    device_kind: DsDeviceKind,
    device_index: i32,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe {
        create(out_tensor, || {
            let (dtype, shape) = shape_of(dtype, dims, ndim)?;
            Tensor::full(&shape, value, dtype, Device::from_code(device_kind, device_index)?)
        })
    }
}

/// Creates the 1-D tensor `start, start+step, ...` stopping before `end`.
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_arange(
    start: f64,
    end: f64,
    step: f64,
    dtype: DsDtype,
    device_kind: DsDeviceKind,
    device_index: i32,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe {
        create(out_tensor, || {
            let dtype = DType::from_code(dtype, "dtype")?;
            Tensor::arange(start, end, step, dtype, Device::from_code(device_kind, device_index)?)
        })
    }
}

/// Creates a float tensor of uniform values in [`low`, `high`) from the engine's SplitMix64
/// generator seeded with `seed` (the same values on every machine and device).
///
/// # Safety
/// `dims` must be valid for `ndim` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ds_tensor_rand_uniform(
    dtype: DsDtype,
    dims: *const i64,
    ndim: usize,
    low: f64,
    high: f64,
    seed: u64,
    device_kind: DsDeviceKind,
    device_index: i32,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe {
        create(out_tensor, || {
            let (dtype, shape) = shape_of(dtype, dims, ndim)?;
            let device = Device::from_code(device_kind, device_index)?;
            Tensor::rand_uniform(&shape, low, high, dtype, device, &mut Generator::new(seed))
        })
    }
}

/// Creates a float tensor of normal values (`mean`, standard deviation `std`) from the
/// engine's generator seeded with `seed`.
///
/// # Safety
/// `dims` must be valid for `ndim` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ds_tensor_rand_normal(
    dtype: DsDtype,
    dims: *const i64,
    ndim: usize,
    mean: f64,
    std: f64,
    seed: u64,
    device_kind: DsDeviceKind,
    device_index: i32,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe {
        create(out_tensor, || {
            let (dtype, shape) = shape_of(dtype, dims, ndim)?;
            let device = Device::from_code(device_kind, device_index)?;
            Tensor::rand_normal(&shape, mean, std, dtype, device, &mut Generator::new(seed))
        })
    }
}

/// Frees a tensor handle. NULL is a no-op; a freed or foreign pointer returns
/// `DS_STATUS_INVALID_HANDLE` and is not touched. Storage lives on while views use it.
///
/// # Safety
/// No other thread may be using `tensor` during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_tensor_free(tensor: *mut DsTensor) -> DsStatus {
    guard(|| unsafe { free(tensor, "tensor") })
}

/// Runs a query on a tensor and writes its result to `*o`.
unsafe fn query<T>(t: *const DsTensor, o: *mut T, arg: &'static str, f: impl FnOnce(&Tensor) -> T) -> DsStatus {
    guard(|| {
        let o = unsafe { out(o, arg)? };
        *o = f(unsafe { tensor_ref(t, "tensor")? });
        Ok(())
    })
}

/// Writes the number of dimensions.
///
/// # Safety
/// `out_ndim` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_ndim(tensor: *const DsTensor, out_ndim: *mut usize) -> DsStatus {
    unsafe { query(tensor, out_ndim, "out_ndim", Tensor::ndim) }
}

/// Writes the element count.
///
/// # Safety
/// `out_numel` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_numel(tensor: *const DsTensor, out_numel: *mut i64) -> DsStatus {
    unsafe { query(tensor, out_numel, "out_numel", |t| t.numel() as i64) }
}

/// Writes the byte size of the elements when packed (`numel × dtype size`).
///
/// # Safety
/// `out_nbytes` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_nbytes(tensor: *const DsTensor, out_nbytes: *mut usize) -> DsStatus {
    unsafe { query(tensor, out_nbytes, "out_nbytes", Tensor::nbytes) }
}

/// Writes the dtype code.
///
/// # Safety
/// `out_dtype` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_dtype(tensor: *const DsTensor, out_dtype: *mut DsDtype) -> DsStatus {
    unsafe { query(tensor, out_dtype, "out_dtype", |t| t.dtype().code()) }
}

/// Writes 1 when the elements are row-major and gap-free in storage, else 0.
///
/// # Safety
/// `out_contiguous` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_is_contiguous(tensor: *const DsTensor, out_contiguous: *mut bool) -> DsStatus {
    unsafe { query(tensor, out_contiguous, "out_contiguous", Tensor::is_contiguous) }
}

/// Writes 1 when both tensors view the same storage (a view and its source do), else 0.
///
/// # Safety
/// `out_shared` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_shares_storage(
    a: *const DsTensor,
    b: *const DsTensor,
    out_shared: *mut bool,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_shared, "out_shared")? };
        *o = unsafe { tensor_ref(a, "a")?.shares_storage(tensor_ref(b, "b")?) };
        Ok(())
    })
}

/// Writes the device kind (`DS_DEVICE_*`) and index.
///
/// # Safety
/// Both out-pointers must be valid for writes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_device(
    tensor: *const DsTensor,
    out_kind: *mut DsDeviceKind,
    out_index: *mut i32,
) -> DsStatus {
    guard(|| {
        let (k, i) = (unsafe { out(out_kind, "out_kind")? }, unsafe { out(out_index, "out_index")? });
        (*k, *i) = unsafe { tensor_ref(tensor, "tensor")? }.device().to_code();
        Ok(())
    })
}

/// Copies `values` (one per dimension) into a caller array of `capacity` entries.
unsafe fn write_dims(
    tensor: *const DsTensor,
    dst: *mut i64,
    capacity: usize,
    pick: fn(&Tensor) -> &[usize],
) -> DsStatus {
    guard(|| {
        let t = unsafe { tensor_ref(tensor, "tensor")? };
        let values = pick(t);
        if capacity < values.len() {
            return Err(Error::BufferTooSmall { arg: "capacity", needed: values.len() * 8, given: capacity * 8 });
        }
        let dst = unsafe { slice_mut(dst, values.len(), "out_dims")? };
        for (d, &v) in dst.iter_mut().zip(values) {
            *d = v as i64;
        }
        Ok(())
    })
}

/// Writes the dimensions into `out_dims`, which has room for `capacity` entries
/// (at least `ndim`; `DS_STATUS_BUFFER_TOO_SMALL` otherwise).
///
/// # Safety
/// `out_dims` must be valid for `capacity` writes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_shape(tensor: *const DsTensor, out_dims: *mut i64, capacity: usize) -> DsStatus {
    unsafe { write_dims(tensor, out_dims, capacity, Tensor::shape) }
}

/// Writes the element strides (a view's strides show how it maps onto storage).
///
/// # Safety
/// `out_strides` must be valid for `capacity` writes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_strides(
    tensor: *const DsTensor,
    out_strides: *mut i64,
    capacity: usize,
) -> DsStatus {
    unsafe { write_dims(tensor, out_strides, capacity, Tensor::strides) }
}

/// Writes the address of the first element of a CPU tensor. For a tensor made by
/// `ds_tensor_from_blob` this is the caller's own pointer. Valid while the tensor (or any
/// view of its storage) lives; read it through `ds_tensor_strides` when not contiguous.
///
/// # Safety
/// `out_data` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_data_ptr(tensor: *const DsTensor, out_data: *mut *const c_void) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_data, "out_data")? };
        let t = unsafe { tensor_ref(tensor, "tensor")? };
        *o = t
            .host_ptr()
            .ok_or_else(|| {
                Error::Unsupported(format!("ds_tensor_data_ptr needs a CPU tensor; this one is on {}", t.device()))
            })?
            .cast();
        Ok(())
    })
}

/// Copies the elements, row-major and packed, into `dst` (`nbytes` long, at least
/// `ds_tensor_nbytes`). Works for views and for any device.
///
/// # Safety
/// `dst` must be valid for `nbytes` writes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_copy_to(tensor: *const DsTensor, dst: *mut c_void, nbytes: usize) -> DsStatus {
    guard(|| {
        let t = unsafe { tensor_ref(tensor, "tensor")? };
        if nbytes < t.nbytes() {
            return Err(Error::BufferTooSmall { arg: "nbytes", needed: t.nbytes(), given: nbytes });
        }
        t.copy_to_bytes(unsafe { slice_mut(dst.cast::<u8>(), t.nbytes(), "dst")? })
    })
}

/// Writes a printable form of the tensor, NUL-terminated, into `buf` (`capacity` bytes).
/// `*out_needed` (if not NULL) receives the bytes needed including the NUL; when that is
/// more than `capacity`, nothing is written and `DS_STATUS_BUFFER_TOO_SMALL` returned.
///
/// # Safety
/// `buf` must be valid for `capacity` writes; `out_needed` NULL or valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_to_string(
    tensor: *const DsTensor,
    buf: *mut c_char,
    capacity: usize,
    out_needed: *mut usize,
) -> DsStatus {
    guard(|| {
        let text = unsafe { tensor_ref(tensor, "tensor")? }.to_string();
        unsafe { write_text(&text, buf, capacity, out_needed) }
    })
}

/// Makes a new tensor handle from an existing one.
unsafe fn derive(
    tensor: *const DsTensor,
    out_tensor: *mut *mut DsTensor,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> DsStatus {
    unsafe { create(out_tensor, || f(tensor_ref(tensor, "tensor")?)) }
}

/// A tensor with the same elements and shape `shape` (one entry may be -1): a zero-copy
/// view when the strides allow, otherwise a copy.
///
/// # Safety
/// `shape` must be valid for `ndim` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_reshape(
    tensor: *const DsTensor,
    shape: *const i64,
    ndim: usize,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.reshape(slice(shape, ndim, "shape")?)) }
}

/// Like `ds_tensor_reshape` but always zero-copy: `DS_STATUS_SHAPE_MISMATCH` when the
/// strides do not allow a view.
///
/// # Safety
/// `shape` must be valid for `ndim` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_view(
    tensor: *const DsTensor,
    shape: *const i64,
    ndim: usize,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.view(slice(shape, ndim, "shape")?)) }
}

/// A zero-copy view with dimensions reordered: dimension k of the result is `perm[k]`.
///
/// # Safety
/// `perm` must be valid for `ndim` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_permute(
    tensor: *const DsTensor,
    perm: *const i64,
    ndim: usize,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.permute(slice(perm, ndim, "perm")?)) }
}

/// A zero-copy view with two dimensions swapped (negative values count from the end).
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_transpose(
    tensor: *const DsTensor,
    dim0: i64,
    dim1: i64,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.transpose(dim0, dim1)) }
}

/// A zero-copy view of indices `start, start+step, ...` below `end` along `dim`
/// (negative `start`/`end` count from the end; `step >= 1`; `end = INT64_MAX` means "to the
/// end"; any other `end` beyond the dimension is `DS_STATUS_OUT_OF_RANGE`).
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_slice(
    tensor: *const DsTensor,
    dim: i64,
    start: i64,
    end: i64,
    step: i64,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.slice(dim, start, end, step)) }
}

/// A zero-copy broadcast to `shape` (NumPy rules; -1 keeps a dimension; only size-1
/// dimensions grow).
///
/// # Safety
/// `shape` must be valid for `ndim` reads, `out_tensor` for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_expand(
    tensor: *const DsTensor,
    shape: *const i64,
    ndim: usize,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.expand(slice(shape, ndim, "shape")?)) }
}

/// A zero-copy view without size-1 dimension `dim`.
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_squeeze(
    tensor: *const DsTensor,
    dim: i64,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.squeeze(dim)) }
}

/// A zero-copy view with a size-1 dimension inserted at `dim` (-1 appends).
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_unsqueeze(
    tensor: *const DsTensor,
    dim: i64,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.unsqueeze(dim)) }
}

/// The tensor itself (a new handle sharing storage) when contiguous, else a packed copy.
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_contiguous(tensor: *const DsTensor, out_tensor: *mut *mut DsTensor) -> DsStatus {
    unsafe { derive(tensor, out_tensor, Tensor::contiguous) }
}

/// The elements converted to `dtype`: floats round to nearest-even (NaN and infinities
/// kept), float to integer truncates and saturates (NaN to 0), integers wrap, bool is x != 0.
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_cast(
    tensor: *const DsTensor,
    dtype: DsDtype,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.cast(DType::from_code(dtype, "dtype")?)) }
}

/// A copy on another device (a new handle sharing storage when already there).
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_to_device(
    tensor: *const DsTensor,
    device_kind: DsDeviceKind,
    device_index: i32,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { derive(tensor, out_tensor, |t| t.to_device(Device::from_code(device_kind, device_index)?)) }
}
