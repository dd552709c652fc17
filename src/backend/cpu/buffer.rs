//! `CpuBuffer`: host memory owned by the caching allocator or borrowed from a caller.

use super::alloc::{ALIGNMENT, CPU_ALLOCATOR};
use crate::error::Result;
use std::ptr::NonNull;

/// Runs a caller's release action exactly once: when the buffer that adopted it drops, or,
/// if it never got that far, when the guard itself drops (on every error path and unwind).
pub struct ForeignOwner(Option<Box<dyn FnOnce() + Send + Sync>>);

impl ForeignOwner {
    /// Wraps `release`, to be run when the memory is no longer used.
    pub fn new(release: impl FnOnce() + Send + Sync + 'static) -> Self {
        ForeignOwner(Some(Box::new(release)))
    }

    /// An owner that releases nothing: the caller keeps the memory alive.
    pub fn borrowed() -> Self {
        ForeignOwner(None)
    }
}

impl Drop for ForeignOwner {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

enum Owner {
    Pool { block: usize },
    Foreign(#[allow(dead_code)] ForeignOwner), // held for its Drop
    Empty,
}

/// A span of host memory. Shared by every tensor viewing it (through `Arc<Storage>`).
pub struct CpuBuffer {
    ptr: NonNull<u8>,
    len: usize,
    owner: Owner,
}

// SAFETY: the buffer owns (or exclusively borrows, by contract with the caller) its bytes;
// writes happen only through `as_mut_ptr` under the engine's single-writer rules.
unsafe impl Send for CpuBuffer {}
unsafe impl Sync for CpuBuffer {}

impl CpuBuffer {
    /// Whether the engine's allocator owns the bytes (not a caller's borrowed buffer).
    pub fn is_pool_owned(&self) -> bool {
        matches!(self.owner, Owner::Pool { .. })
    }

    /// `len` bytes from the caching allocator, contents unspecified.
    pub fn uninit(len: usize) -> Result<CpuBuffer> {
        if len == 0 {
            return Ok(CpuBuffer { ptr: dangling(), len, owner: Owner::Empty });
        }
        let (ptr, block) = CPU_ALLOCATOR.allocate(len)?;
        Ok(CpuBuffer { ptr, len, owner: Owner::Pool { block } })
    }

    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Result<CpuBuffer> {
        let b = CpuBuffer::uninit(len)?;
        // SAFETY: freshly allocated, `len` bytes, not yet shared.
        unsafe { std::ptr::write_bytes(b.ptr.as_ptr(), 0, len) };
        Ok(b)
    }

    /// A copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<CpuBuffer> {
        let b = CpuBuffer::uninit(bytes.len())?;
        // SAFETY: fresh allocation of exactly `bytes.len()` bytes; regions cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), b.ptr.as_ptr(), bytes.len()) };
        Ok(b)
    }

    /// Adopts caller memory without copying; `owner` runs its release when the buffer drops.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes until `owner` releases it,
    /// and nobody else may write to it meanwhile.
    pub unsafe fn from_foreign(ptr: NonNull<u8>, len: usize, owner: ForeignOwner) -> CpuBuffer {
        CpuBuffer { ptr, len, owner: Owner::Foreign(owner) }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The first byte, for writing. Callers keep the engine's single-writer rule: only the
    /// code that created the buffer, or an in-place op with exclusive use, writes.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes for the buffer's lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The buffer as elements of `T`.
    ///
    /// # Safety
    /// The bytes must be valid values of `T` (the storage's dtype is `T`).
    pub unsafe fn typed<T>(&self) -> &[T] {
        debug_assert_eq!(self.ptr.as_ptr() as usize % align_of::<T>(), 0);
        // SAFETY: aligned (pool blocks are 64-aligned; foreign ones are checked on adoption).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len / size_of::<T>()) }
    }

    /// The buffer as mutable elements of `T`.
    ///
    /// # Safety
    /// As [`CpuBuffer::typed`], and the caller has exclusive use of the bytes.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn typed_mut<T>(&self) -> &mut [T] {
        // SAFETY: see `typed`; exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.len / size_of::<T>()) }
    }
}

fn dangling() -> NonNull<u8> {
    // An aligned, non-null address for zero-length buffers; never dereferenced.
    NonNull::new(ALIGNMENT as *mut u8).unwrap()
}

impl Drop for CpuBuffer {
    fn drop(&mut self) {
        if let Owner::Pool { block } = self.owner {
            // SAFETY: the block came from this allocator and dies with the buffer.
            unsafe { CPU_ALLOCATOR.release(self.ptr, block) };
        }
    }
}
