//! The panic barrier and the thread-local last-error text, plus checked conversions of C pointers.

use super::status::{DS_STATUS_INTERNAL, DS_STATUS_OK, DsStatus, status_of};
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    // Interior NULs would cut the message short; show them instead.
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn clear_last_error() {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        if !e.as_bytes().is_empty() {
            *e = CString::default();
        }
    });
}

/// The calling thread's last error message; `""` after a success.
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into())
}

/// Runs the body of an `extern "C"` function: a panic becomes `DS_STATUS_INTERNAL`, an
/// error its status code, and either one sets the thread's last-error text.
pub fn guard(body: impl FnOnce() -> Result<()>) -> DsStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            clear_last_error();
            DS_STATUS_OK
        }
        Ok(Err(e)) => {
            set_last_error(&e.to_string());
            status_of(&e)
        }
        Err(payload) => {
            set_last_error(&format!("internal error: panic: {}", panic_message(payload)));
            DS_STATUS_INTERNAL
        }
    }
}

/// Like [`guard`] for functions that return a value rather than a status: on failure the
/// error is recorded and `fallback` returned.
pub fn guard_value<T>(fallback: T, body: impl FnOnce() -> Result<T>) -> T {
    let mut out = None;
    guard(|| {
        out = Some(body()?);
        Ok(())
    });
    out.unwrap_or(fallback)
}

/// Checks an out-pointer and returns it as a reference.
///
/// # Safety
/// A non-NULL `p` must be valid for writes of one `T`.
pub unsafe fn out<'a, T>(p: *mut T, arg: &'static str) -> Result<&'a mut T> {
    // SAFETY: non-NULL validity is the caller's contract.
    unsafe { p.as_mut() }.ok_or(Error::NullPointer { arg })
}

/// A NUL-terminated UTF-8 C string; NULL and invalid UTF-8 are errors naming `arg`.
///
/// # Safety
/// A non-NULL `p` must point to a NUL-terminated string that outlives the result.
pub unsafe fn cstr<'a>(p: *const c_char, arg: &'static str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::NullPointer { arg });
    }
    // SAFETY: non-NULL, NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Error::invalid(arg, "is not valid UTF-8"))
}

/// Copies `text` NUL-terminated into the caller's `buf` (`capacity` bytes) with the two-call
/// size protocol: `*out_needed` (if not NULL) gets the bytes needed including the NUL, and a
/// too-small `capacity` writes nothing and is `BufferTooSmall`.
///
/// # Safety
/// `buf` valid for `capacity` writes; `out_needed` NULL or valid for a write.
pub unsafe fn write_text(text: &str, buf: *mut c_char, capacity: usize, out_needed: *mut usize) -> Result<()> {
    let needed = text.len() + 1;
    if let Some(n) = unsafe { out_needed.as_mut() } {
        *n = needed;
    }
    if capacity < needed {
        return Err(Error::BufferTooSmall { arg: "capacity", needed, given: capacity });
    }
    let dst = unsafe { slice_mut(buf.cast::<u8>(), needed, "buf")? };
    dst[..text.len()].copy_from_slice(text.as_bytes());
    dst[text.len()] = 0;
    Ok(())
}

/// A C array as a slice; NULL is accepted only with `len == 0`.
///
/// # Safety
/// A non-NULL `p` must be valid for reads of `len` elements of `T`.
pub unsafe fn slice<'a, T>(p: *const T, len: usize, arg: &'static str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::NullPointer { arg });
    }
    if len > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(Error::overflow(arg, format!("length {len} is too large")));
    }
    // SAFETY: validity for `len` elements is the caller's contract; `p` is non-NULL.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A mutable C array as a slice; NULL is accepted only with `len == 0`.
///
/// # Safety
/// A non-NULL `p` must be valid for writes of `len` elements of `T`.
pub unsafe fn slice_mut<'a, T>(p: *mut T, len: usize, arg: &'static str) -> Result<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::NullPointer { arg });
    }
    if len > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(Error::overflow(arg, format!("length {len} is too large")));
    }
    // SAFETY: as for `slice`.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;
    use std::ffi::CStr;

    fn last() -> String {
        unsafe { CStr::from_ptr(last_error_ptr()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn panics_become_internal_errors_and_success_clears_the_message() {
        assert_eq!(guard(|| panic!("boom {}", 7)), DS_STATUS_INTERNAL);
        assert_eq!(last(), "internal error: panic: boom 7");
        assert_eq!(guard(|| Err(Error::range("axis", "3 for rank 2"))), DS_STATUS_OUT_OF_RANGE);
        assert!(last().contains("axis"));
        assert_eq!(guard(|| Ok(())), DS_STATUS_OK);
        assert_eq!(last(), "");
    }

    #[test]
    fn every_status_has_a_name() {
        for s in DS_STATUS_OK..=DS_STATUS_NON_FINITE {
            assert!(status_name(s).unwrap().starts_with("DS_STATUS_"));
        }
        assert!(status_name(DS_STATUS_NON_FINITE + 1).is_none() && status_name(-1).is_none());
    }
}
