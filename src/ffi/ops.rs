//! Ops by name through the C ABI: attribute lists, `ds_op_call`, introspection, and autograd controls.
//!
//! Thread safety: a `DsAttrs` is exclusive to one thread while being filled, and may be read
//! by many concurrent `ds_op_call`s afterwards. Op calls on shared tensors may run from many
//! threads. Grad mode is per thread.

use super::guard::{cstr, guard, out, slice, slice_mut, write_text};
use super::handles::{Handle, free, get, register};
use super::status::DsStatus;
use super::tensor::{DsTensor, new_handle, tensor_ref};
use crate::autograd;
use crate::error::{Error, Result};
use crate::ops::{Attr, AttrDefault, Attrs, OpDef, all_ops, dispatch, find_op};
use std::ffi::{CString, c_char};
use std::sync::{LazyLock, Mutex};

/// An attribute list for `ds_op_call`: (name, typed value) pairs. Free with `ds_attrs_free`.
pub struct DsAttrs {
    items: Mutex<Vec<(String, Attr)>>,
}

impl Handle for DsAttrs {
    const KIND: &'static str = "DsAttrs";
}

/// The (name, value) pairs of an attribute list; NULL means none.
///
/// # Safety
/// As [`get`].
pub(crate) unsafe fn attr_pairs(attrs: *const DsAttrs, arg: &'static str) -> Result<Vec<(String, Attr)>> {
    if attrs.is_null() {
        return Ok(Vec::new());
    }
    Ok(unsafe { get(attrs, arg)? }.items.lock().unwrap_or_else(|p| p.into_inner()).clone())
}

/// Creates an empty attribute list.
///
/// # Safety
/// `out_attrs` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_attrs_create(out_attrs: *mut *mut DsAttrs) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_attrs, "out_attrs")? };
        *o = register(DsAttrs { items: Mutex::new(Vec::new()) });
        Ok(())
    })
}

/// Frees an attribute list; NULL is a no-op.
///
/// # Safety
/// No other thread may be using `attrs`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_attrs_free(attrs: *mut DsAttrs) -> DsStatus {
    guard(|| unsafe { free(attrs, "attrs") })
}

unsafe fn set(attrs: *mut DsAttrs, name: *const c_char, value: impl FnOnce() -> Result<Attr>) -> DsStatus {
    guard(|| {
        let a = unsafe { get(attrs, "attrs")? };
        let name = unsafe { cstr(name, "name")? }.to_string();
        let value = value()?;
        let mut items = a.items.lock().unwrap_or_else(|p| p.into_inner());
        match items.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => items.push((name, value)),
        }
        Ok(())
    })
}

/// Sets (or replaces) an integer attribute.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_attrs_set_int(attrs: *mut DsAttrs, name: *const c_char, value: i64) -> DsStatus {
    unsafe { set(attrs, name, || Ok(Attr::Int(value))) }
}

/// Sets (or replaces) a float attribute.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_attrs_set_float(attrs: *mut DsAttrs, name: *const c_char, value: f64) -> DsStatus {
    unsafe { set(attrs, name, || Ok(Attr::Float(value))) }
}

/// Sets (or replaces) a bool attribute.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_attrs_set_bool(attrs: *mut DsAttrs, name: *const c_char, value: bool) -> DsStatus {
    unsafe { set(attrs, name, || Ok(Attr::Bool(value))) }
}

/// Sets (or replaces) an integer-list attribute (`values` may be NULL when `len` is 0).
///
/// # Safety
/// `name` must be a NUL-terminated string; `values` valid for `len` reads.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_attrs_set_ints(
    attrs: *mut DsAttrs,
    name: *const c_char,
    values: *const i64,
    len: usize,
) -> DsStatus {
    unsafe { set(attrs, name, || Ok(Attr::Ints(slice(values, len, "values")?.to_vec()))) }
}

/// Sets (or replaces) a string attribute (copied).
///
/// # Safety
/// `name` and `value` must be NUL-terminated strings.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_attrs_set_string(
    attrs: *mut DsAttrs,
    name: *const c_char,
    value: *const c_char,
) -> DsStatus {
    unsafe { set(attrs, name, || Ok(Attr::Str(cstr(value, "value")?.to_string()))) }
}

/// Calls the op `name` on `n_inputs` tensors with `attrs` (NULL for none). The outputs are
/// new handles written to `out_outputs` (room for `capacity`); `*out_n_outputs` receives their
/// number. When `capacity` is too small nothing is created, `*out_n_outputs` says how many are
/// needed and `DS_STATUS_BUFFER_TOO_SMALL` is returned. Errors name the op, the argument, and
/// the expected and given values. When grad mode is on and an input requires grad, the call is
/// recorded for `ds_tensor_backward`.
///
/// # Safety
/// `inputs` valid for `n_inputs` reads; `out_outputs` for `capacity` writes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_op_call(
    name: *const c_char,
    inputs: *const *const DsTensor,
    n_inputs: usize,
    attrs: *const DsAttrs,
    out_outputs: *mut *mut DsTensor,
    capacity: usize,
    out_n_outputs: *mut usize,
) -> DsStatus {
    guard(|| {
        let n_out = unsafe { out(out_n_outputs, "out_n_outputs")? };
        *n_out = 0;
        let op = find_op(unsafe { cstr(name, "name")? })?;
        let handles = unsafe { slice(inputs, n_inputs, "inputs")? };
        let tensors = handles.iter().map(|&h| unsafe { tensor_ref(h, "inputs") }).collect::<Result<Vec<_>>>()?;
        let given = unsafe { attr_pairs(attrs, "attrs")? };
        let pairs: Vec<(&str, Attr)> = given.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let resolved = Attrs::resolve(op.name, op.attrs, &pairs)?;
        let outputs = dispatch::call(op, &tensors, &resolved)?;
        *n_out = outputs.len();
        if capacity < outputs.len() {
            return Err(Error::BufferTooSmall { arg: "capacity", needed: outputs.len(), given: capacity });
        }
        let dst = unsafe { slice_mut(out_outputs, outputs.len(), "out_outputs")? };
        for (d, t) in dst.iter_mut().zip(outputs) {
            *d = new_handle(t);
        }
        Ok(())
    })
}

static NAMES: LazyLock<Vec<(CString, &'static OpDef)>> = LazyLock::new(|| {
    all_ops().into_iter().map(|op| (CString::new(op.name).expect("op names have no NUL"), op)).collect()
});

/// Writes the number of registered ops.
///
/// # Safety
/// `out_count` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_op_count(out_count: *mut usize) -> DsStatus {
    guard(|| {
        *unsafe { out(out_count, "out_count")? } = NAMES.len();
        Ok(())
    })
}

/// Writes the name of op `index` (0-based, sorted by name); the string is static.
///
/// # Safety
/// `out_name` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_op_name(index: usize, out_name: *mut *const c_char) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_name, "out_name")? };
        let (name, _) =
            NAMES.get(index).ok_or_else(|| Error::range("index", format!("{index} for {} ops", NAMES.len())))?;
        *o = name.as_ptr();
        Ok(())
    })
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The op's schema as JSON: name, kind, doc, inputs, outputs and attributes with defaults.
pub fn op_schema_json(op: &OpDef) -> String {
    let inputs: Vec<String> = op
        .inputs
        .iter()
        .map(|a| format!("{{\"name\":{},\"optional\":{},\"variadic\":{}}}", json_str(a.name), a.optional, a.variadic))
        .collect();
    let outputs: Vec<String> = op.outputs.iter().map(|o| json_str(o)).collect();
    let attrs: Vec<String> = op
        .attrs
        .iter()
        .map(|a| {
            let (required, default) = match a.default {
                AttrDefault::Required => (true, "null".to_string()),
                AttrDefault::Optional => (false, "null".to_string()),
                AttrDefault::Int(v) => (false, v.to_string()),
                AttrDefault::Float(v) => {
                    (false, if v.is_finite() { format!("{v:?}") } else { json_str(&v.to_string()) })
                }
                AttrDefault::Ints(v) => (false, format!("{v:?}")),
                AttrDefault::Str(v) => (false, json_str(v)),
                AttrDefault::Bool(v) => (false, v.to_string()),
            };
            format!(
                "{{\"name\":{},\"kind\":{},\"required\":{required},\"default\":{default},\"doc\":{}}}",
                json_str(a.name),
                json_str(a.kind.name()),
                json_str(a.doc)
            )
        })
        .collect();
    format!(
        "{{\"name\":{},\"kind\":{},\"doc\":{},\"differentiable\":{},\"inputs\":[{}],\"outputs\":[{}],\"attrs\":[{}]}}",
        json_str(op.name),
        json_str(op.kind.name()),
        json_str(op.doc),
        op.backward.is_some(),
        inputs.join(","),
        outputs.join(","),
        attrs.join(",")
    )
}

/// Writes the schema of op `name` as NUL-terminated JSON into `buf` (`capacity` bytes):
/// `{"name", "kind", "doc", "differentiable", "inputs": [{"name","optional","variadic"}],
/// "outputs": [...], "attrs": [{"name","kind","required","default","doc"}]}`. `*out_needed`
/// (if not NULL) receives the size including the NUL; a too-small buffer gets nothing and
/// `DS_STATUS_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `name` NUL-terminated; `buf` valid for `capacity` writes; `out_needed` NULL or valid.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_op_schema(
    name: *const c_char,
    buf: *mut c_char,
    capacity: usize,
    out_needed: *mut usize,
) -> DsStatus {
    guard(|| {
        let json = op_schema_json(find_op(unsafe { cstr(name, "name")? })?);
        unsafe { write_text(&json, buf, capacity, out_needed) }
    })
}

/// Marks a tensor as needing a gradient (a leaf to train) or not.
///
/// # Safety
/// `tensor` must be a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_set_requires_grad(tensor: *mut DsTensor, requires_grad: bool) -> DsStatus {
    guard(|| {
        let t = unsafe { tensor_ref(tensor, "tensor")? };
        if requires_grad && !t.dtype().is_float() {
            return Err(Error::InvalidDtype {
                arg: "tensor",
                msg: format!("only float tensors can require grad, given {}", t.dtype()),
            });
        }
        if !requires_grad && !t.is_leaf() {
            return Err(Error::invalid(
                "tensor",
                "cannot clear requires_grad on a non-leaf tensor; use ds_tensor_detach",
            ));
        }
        t.set_requires_grad(requires_grad);
        Ok(())
    })
}

/// Writes whether the tensor requires grad.
///
/// # Safety
/// `out_requires_grad` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_requires_grad(tensor: *const DsTensor, out_requires_grad: *mut bool) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_requires_grad, "out_requires_grad")? };
        *o = unsafe { tensor_ref(tensor, "tensor")? }.requires_grad();
        Ok(())
    })
}

/// Back-propagates from `tensor` into the gradients of the leaves that require grad.
/// `seed` (same shape) may be NULL for a one-element tensor. Without `retain_graph` the
/// saved tensors are released, and a second backward through them is an error.
///
/// # Safety
/// `tensor` a live handle; `seed` NULL or a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_backward(
    tensor: *const DsTensor,
    seed: *const DsTensor,
    retain_graph: bool,
) -> DsStatus {
    guard(|| {
        let t = unsafe { tensor_ref(tensor, "tensor")? };
        let s = if seed.is_null() { None } else { Some(unsafe { tensor_ref(seed, "seed")? }) };
        autograd::backward_with(t, s, retain_graph)
    })
}

/// Writes a new handle to the accumulated gradient (dense; row gradients are densified
/// here), or NULL when there is none yet.
///
/// # Safety
/// `out_grad` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_grad(tensor: *const DsTensor, out_grad: *mut *mut DsTensor) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_grad, "out_grad")? };
        *o = std::ptr::null_mut();
        if let Some(g) = unsafe { tensor_ref(tensor, "tensor")? }.grad()? {
            *o = new_handle(g);
        }
        Ok(())
    })
}

/// Clears the accumulated gradient.
///
/// # Safety
/// `tensor` must be a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_zero_grad(tensor: *mut DsTensor) -> DsStatus {
    guard(|| {
        unsafe { tensor_ref(tensor, "tensor")? }.zero_grad();
        Ok(())
    })
}

/// A new handle to the same data without autograd history.
///
/// # Safety
/// `out_tensor` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_tensor_detach(tensor: *const DsTensor, out_tensor: *mut *mut DsTensor) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_tensor, "out_tensor")? };
        *o = std::ptr::null_mut();
        *o = new_handle(unsafe { tensor_ref(tensor, "tensor")? }.detach());
        Ok(())
    })
}

/// Turns recording on or off for the calling thread (off = "no_grad"); the previous
/// setting goes to `*out_previous` (may be NULL) so scopes can restore it.
///
/// # Safety
/// `out_previous` NULL or valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_set_grad_enabled(enabled: bool, out_previous: *mut bool) -> DsStatus {
    guard(|| {
        let previous = autograd::replace_grad_enabled(enabled);
        if let Some(p) = unsafe { out_previous.as_mut() } {
            *p = previous;
        }
        Ok(())
    })
}

/// Writes whether recording is on for the calling thread.
///
/// # Safety
/// `out_enabled` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_is_grad_enabled(out_enabled: *mut bool) -> DsStatus {
    guard(|| {
        *unsafe { out(out_enabled, "out_enabled")? } = autograd::is_grad_enabled();
        Ok(())
    })
}
