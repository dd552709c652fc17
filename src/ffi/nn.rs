//! Layers and ready-made models through the C ABI: add a layer to a graph builder by name, list and describe layers, build a model by name.
//!
//! Thread safety: the layer registry is immutable, so `ds_layer_count`, `ds_layer_name`,
//! `ds_layer_schema` and `ds_model_build` may be called from any number of threads at once.
//! `ds_graph_builder_layer` drives a builder, which is used by one thread at a time.

use super::graph::{DsGraph, DsGraphBuilder, DsValueId, new_graph_handle};
use super::guard::{cstr, guard, out, slice, slice_mut, write_text};
use super::handles::get;
use super::ops::{DsAttrs, attr_pairs};
use super::status::DsStatus;
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::nn::{LAYERS, add_layer, layer, layer_schema_json, model_by_name};
use crate::ops::Attr;
use crate::rng::Generator;
use std::ffi::{CString, c_char};
use std::sync::LazyLock;

static NAMES: LazyLock<Vec<CString>> =
    LazyLock::new(|| LAYERS.iter().map(|l| CString::new(l.name).expect("layer names have no NUL")).collect());

/// Adds the layer called `layer_name` (see `ds_layer_name`) to `builder`, reading the values
/// `inputs` (`n_inputs` ids from `ds_graph_builder_*`), with attributes `attrs` (NULL for
/// none; read, not kept). Its parameters are named `<prefix>/...` and initialised from a
/// generator seeded with `seed`, as `ds_layer_schema`'s doc says per layer. The output ids go
/// to `out_values` (room for `capacity`) and their number to `*out_n_values`; a too-small
/// `capacity` adds nothing, sets `*out_n_values` to the number needed and returns
/// `DS_STATUS_BUFFER_TOO_SMALL`. Any error (unknown layer or attribute, wrong attribute kind,
/// wrong input count, zero widths, a parameter name already in the graph, shapes that do not
/// fit) names the layer and leaves the builder unchanged.
///
/// Thread safety: one thread at a time per builder; `attrs` may be shared.
///
/// # Safety
/// `layer_name` and `prefix` NUL-terminated; `inputs` valid for `n_inputs` reads;
/// `out_values` for `capacity` writes; `out_n_values` for a write.
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ds_graph_builder_layer(
    builder: *mut DsGraphBuilder,
    layer_name: *const c_char,
    prefix: *const c_char,
    seed: u64,
    inputs: *const DsValueId,
    n_inputs: usize,
    attrs: *const DsAttrs,
    out_values: *mut DsValueId,
    capacity: usize,
    out_n_values: *mut usize,
) -> DsStatus {
    guard(|| {
        let n_out = unsafe { out(out_n_values, "out_n_values")? };
        *n_out = 0;
        let b = unsafe { get(builder, "builder")? };
        let def = layer(unsafe { cstr(layer_name, "layer_name")? })?;
        let prefix = unsafe { cstr(prefix, "prefix")? };
        let ids = unsafe { slice(inputs, n_inputs, "inputs")? }
            .iter()
            .map(|&v| {
                usize::try_from(v)
                    .map(ValueId)
                    .map_err(|_| Error::invalid("inputs", format!("value id {v} is out of range")))
            })
            .collect::<Result<Vec<_>>>()?;
        let given = unsafe { attr_pairs(attrs, "attrs")? };
        let pairs: Vec<(&str, Attr)> = given.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let needed = def.outputs.len();
        if needed > capacity {
            *n_out = needed;
            return Err(Error::BufferTooSmall { arg: "capacity", needed, given: capacity });
        }
        let mut b = b.builder.lock().unwrap_or_else(|p| p.into_inner());
        let outs = add_layer(&mut b, def.name, prefix, &ids, &pairs, &mut Generator::new(seed))?;
        let dst = unsafe { slice_mut(out_values, outs.len(), "out_values")? };
        for (d, v) in dst.iter_mut().zip(&outs) {
            *d = v.0 as DsValueId;
        }
        *n_out = outs.len();
        Ok(())
    })
}

/// Writes the number of layers.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out_count` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_layer_count(out_count: *mut usize) -> DsStatus {
    guard(|| {
        *unsafe { out(out_count, "out_count")? } = NAMES.len();
        Ok(())
    })
}

/// Writes the name of layer `index` (0-based, sorted by name); the string is static.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out_name` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_layer_name(index: usize, out_name: *mut *const c_char) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_name, "out_name")? };
        let name =
            NAMES.get(index).ok_or_else(|| Error::range("index", format!("{index} for {} layers", NAMES.len())))?;
        *o = name.as_ptr();
        Ok(())
    })
}

/// Writes the description of layer `name` as NUL-terminated JSON into `buf` (`capacity`
/// bytes): `{"name", "doc", "inputs": [{"name","optional"}], "outputs": [...], "attrs":
/// [{"name","kind","required","default","doc"}]}`. `*out_needed` (if not NULL) receives the
/// size including the NUL; a too-small buffer gets nothing and `DS_STATUS_BUFFER_TOO_SMALL`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `name` NUL-terminated; `buf` valid for `capacity` writes; `out_needed` NULL or valid.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_layer_schema(
    name: *const c_char,
    buf: *mut c_char,
    capacity: usize,
    out_needed: *mut usize,
) -> DsStatus {
    guard(|| {
        let json = layer_schema_json(layer(unsafe { cstr(name, "name")? })?);
        unsafe { write_text(&json, buf, capacity, out_needed) }
    })
}

/// Builds the ready-made model `model_name` as a new graph: "mlp_classifier" (attributes
/// `inputs`, `hidden` (ints), `classes`, `activation`, `seed`) or "dcn_v2", "deepfm",
/// "logistic_regression" (attributes `num_dense`, `vocab_sizes` (ints), `embed_dim`,
/// `cross_layers`, `cross_rank`, `mlp` (ints), `structure` ("parallel" or "stacked"),
/// `seed`); omitted attributes take their defaults (the gmix MLP 32-256-256-8; a
/// Criteo-shaped CTR model with 26 fields of 100,000 ids). Inputs, outputs and parameter
/// names are those of `deepseek::nn::models`: "x"/"label" → "logits", "loss"; or
/// "dense"/"ids"/"label" → "logit", "prob", "loss"; batch is the symbolic dimension "batch".
/// `attrs` may be NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// `model_name` NUL-terminated; `out_graph` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_model_build(
    model_name: *const c_char,
    attrs: *const DsAttrs,
    out_graph: *mut *mut DsGraph,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_graph, "out_graph")? };
        *o = std::ptr::null_mut();
        let name = unsafe { cstr(model_name, "model_name")? };
        let given = unsafe { attr_pairs(attrs, "attrs")? };
        let pairs: Vec<(&str, Attr)> = given.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        *o = new_graph_handle(model_by_name(name, &pairs)?);
        Ok(())
    })
}
