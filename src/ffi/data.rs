//! Synthetic data and metrics through the C ABI: the streaming CTR generator, the gmix set, AUC, log-loss and accuracy.
//!
//! Thread safety: a `DsCtrGenerator` may be used from many threads at once (calls on one
//! generator take its lock in turn, so each `ds_ctr_generator_next` gets its own contiguous
//! block of the stream); `ds_ctr_generator_free` needs exclusive use. The gmix and metric
//! functions keep no state and may be called from any number of threads.

use super::guard::{guard, out};
use super::handles::{Handle, free, get, register};
use super::status::DsStatus;
use super::tensor::{DsTensor, new_handle, tensor_ref};
use crate::data::{CtrConfig, CtrGenerator, Gmix, ctr};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::train::metrics;
use std::sync::Mutex;

/// Dense features per CTR sample (the columns of the dense tensor).
pub const DS_CTR_NUM_DENSE: usize = 13;
/// Categorical fields per CTR sample (the columns of the ids tensor).
pub const DS_CTR_NUM_FIELDS: usize = 26;

// Literals above so that cbindgen can write them into the header; they must match the generator.
const _: () = assert!(DS_CTR_NUM_DENSE == ctr::NUM_DENSE && DS_CTR_NUM_FIELDS == ctr::NUM_FIELDS);

/// Settings of a CTR generator. Versioned: the caller sets `struct_size` to
/// `sizeof(DsCtrConfig)`, then calls `ds_ctr_config_init` for the defaults and changes what
/// it needs; the library reads only the fields that `struct_size` covers, so fields can be
/// added at the end without breaking programs built against an older header.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DsCtrConfig {
    /// Set by the caller: `sizeof(DsCtrConfig)`.
    pub struct_size: u32,
    /// Ids per field, each at least 1 (default 100,000): field f's ids are in `[0, vocab_sizes[f])`.
    pub vocab_sizes: [i64; DS_CTR_NUM_FIELDS],
    /// Exponent of the ids' power-law popularity, finite and > 0 (default 1.1).
    pub zipf_exponent: f64,
}

/// A streaming CTR generator (seed + cursor). Free with `ds_ctr_generator_free`.
pub struct DsCtrGenerator {
    generator: Mutex<CtrGenerator>,
}

impl Handle for DsCtrGenerator {
    const KIND: &'static str = "DsCtrGenerator";
}

fn check_struct_size(size: u32) -> Result<()> {
    if (size as usize) < size_of::<DsCtrConfig>() {
        return Err(Error::invalid(
            "config",
            format!(
                "struct_size is {size}, this library needs at least {} (set it to sizeof(DsCtrConfig))",
                size_of::<DsCtrConfig>()
            ),
        ));
    }
    Ok(())
}

/// Fills `config` with the defaults (26 fields × 100,000 ids, Zipf exponent 1.1). The caller
/// must have set `config->struct_size` to `sizeof(DsCtrConfig)`; it is left as is.
///
/// Thread safety: any thread; `config` is the caller's memory.
///
/// # Safety
/// `config` NULL or valid for reads and writes of `struct_size` bytes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_ctr_config_init(config: *mut DsCtrConfig) -> DsStatus {
    guard(|| {
        let c = unsafe { out(config, "config")? };
        check_struct_size(c.struct_size)?;
        let d = CtrConfig::default();
        c.vocab_sizes = d.vocab_sizes.map(|v| v as i64);
        c.zipf_exponent = d.zipf_exponent;
        Ok(())
    })
}

fn config_from_c(c: &DsCtrConfig) -> Result<CtrConfig> {
    check_struct_size(c.struct_size)?;
    let mut vocab_sizes = [0u64; DS_CTR_NUM_FIELDS];
    for (f, (&v, dst)) in c.vocab_sizes.iter().zip(&mut vocab_sizes).enumerate() {
        *dst = u64::try_from(v)
            .ok()
            .filter(|&v| v >= 1)
            .ok_or_else(|| Error::invalid("vocab_sizes", format!("field {f} has vocabulary {v}, must be >= 1")))?;
    }
    let config = CtrConfig { vocab_sizes, zipf_exponent: c.zipf_exponent };
    config.validate()?;
    Ok(config)
}

/// Creates a CTR generator at cursor 0 from `config` (NULL = the defaults of
/// `ds_ctr_config_init`) and `seed`. A zero or negative vocabulary, a bad exponent or a
/// `struct_size` below `sizeof(DsCtrConfig)` is an error naming it.
///
/// Thread safety: any thread.
///
/// # Safety
/// `config` NULL or valid for reads of `struct_size` bytes; `out_generator` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_ctr_generator_new(
    config: *const DsCtrConfig,
    seed: u64,
    out_generator: *mut *mut DsCtrGenerator,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_generator, "out_generator")? };
        *o = std::ptr::null_mut();
        let config = match unsafe { config.as_ref() } {
            None => CtrConfig::default(),
            Some(c) => config_from_c(c)?,
        };
        *o = register(DsCtrGenerator { generator: Mutex::new(CtrGenerator::new(config, seed)?) });
        Ok(())
    })
}

/// Draws the next `n` samples (`1 <= n <= 4194304`) and advances the cursor by `n`: new
/// handles with dense features f32 `[n, DS_CTR_NUM_DENSE]`, ids i64 `[n, DS_CTR_NUM_FIELDS]`
/// (column f in `[0, vocab_sizes[f])`), labels f32 `[n]` of 0 and 1, and, when `out_probs` is
/// not NULL, the true click probabilities f32 `[n]` (the oracle's scores). The samples depend
/// only on the seed and their index, not on how the stream is cut into batches. On failure
/// every out-pointer is set to NULL and the cursor is unchanged.
///
/// Thread safety: any thread; concurrent calls on one generator take turns.
///
/// # Safety
/// `generator` a live handle; the out-pointers valid for a write (`out_probs` may be NULL).
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_ctr_generator_next(
    generator: *const DsCtrGenerator,
    n: i64,
    out_dense: *mut *mut DsTensor,
    out_ids: *mut *mut DsTensor,
    out_labels: *mut *mut DsTensor,
    out_probs: *mut *mut DsTensor,
) -> DsStatus {
    guard(|| {
        // Every out-pointer is cleared first, so no failure below leaves a stale handle behind.
        let probs = unsafe { out_probs.as_mut() }.map(|p| {
            *p = std::ptr::null_mut();
            p
        });
        let dense = unsafe { out(out_dense, "out_dense")? };
        *dense = std::ptr::null_mut();
        let ids = unsafe { out(out_ids, "out_ids")? };
        *ids = std::ptr::null_mut();
        let labels = unsafe { out(out_labels, "out_labels")? };
        *labels = std::ptr::null_mut();
        let g = unsafe { get(generator, "generator")? };
        let n = usize::try_from(n)
            .map_err(|_| Error::invalid("n", format!("batch size must be in [1, {}], given {n}", ctr::MAX_BATCH)))?;
        let batch = g.generator.lock().unwrap_or_else(|p| p.into_inner()).next_batch(n)?;
        *dense = new_handle(batch.dense);
        *ids = new_handle(batch.ids);
        *labels = new_handle(batch.labels);
        if let Some(p) = probs {
            *p = new_handle(batch.probs);
        }
        Ok(())
    })
}

/// Writes the generator's cursor (samples drawn so far: the index of the next sample).
/// Store it with the seed in a checkpoint and restore it with `ds_ctr_generator_seek`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `generator` a live handle; `out_cursor` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_ctr_generator_cursor(generator: *const DsCtrGenerator, out_cursor: *mut u64) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_cursor, "out_cursor")? };
        let g = unsafe { get(generator, "generator")? };
        *o = g.generator.lock().unwrap_or_else(|p| p.into_inner()).cursor();
        Ok(())
    })
}

/// Positions the stream so that the next sample drawn is sample `cursor` (constant time):
/// the samples that follow are bitwise those an uninterrupted generator would draw there.
///
/// Thread safety: any thread; it takes its turn with concurrent draws.
///
/// # Safety
/// `generator` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_ctr_generator_seek(generator: *const DsCtrGenerator, cursor: u64) -> DsStatus {
    guard(|| {
        let g = unsafe { get(generator, "generator")? };
        g.generator.lock().unwrap_or_else(|p| p.into_inner()).seek(cursor);
        Ok(())
    })
}

/// Frees a CTR generator; NULL is a no-op. Tensors it produced are unaffected.
///
/// Thread safety: no other thread may be using `generator`.
///
/// # Safety
/// `generator` NULL or a handle no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_ctr_generator_free(generator: *mut DsCtrGenerator) -> DsStatus {
    guard(|| unsafe { free(generator, "generator") })
}

/// Generates the gmix set of ALGORITHMS.md §1.4 for `seed` (42, 43 and 44 are the 3-seed
/// runs): new handles with training features f32 `[8000, 32]`, training labels i64 `[8000]`
/// in [0, 8), test features f32 `[4000, 32]` and test labels i64 `[4000]`. On failure every
/// out-pointer is set to NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// The four out-pointers valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_gmix_generate(
    seed: u64,
    out_x_train: *mut *mut DsTensor,
    out_y_train: *mut *mut DsTensor,
    out_x_test: *mut *mut DsTensor,
    out_y_test: *mut *mut DsTensor,
) -> DsStatus {
    guard(|| {
        let mut outs = [
            (out_x_train, "out_x_train"),
            (out_y_train, "out_y_train"),
            (out_x_test, "out_x_test"),
            (out_y_test, "out_y_test"),
        ];
        for (p, _) in &mut outs {
            if let Some(p) = unsafe { p.as_mut() } {
                *p = std::ptr::null_mut();
            }
        }
        let mut slots = Vec::with_capacity(4);
        for (p, name) in outs {
            slots.push(unsafe { out(p, name)? });
        }
        let gmix = Gmix::generate(seed);
        let (xtr, ytr) = gmix.train()?;
        let (xte, yte) = gmix.test()?;
        for (slot, t) in slots.into_iter().zip([xtr, ytr, xte, yte]) {
            *slot = new_handle(t);
        }
        Ok(())
    })
}

/// A tensor's elements, row-major, as f64 (any dtype; an f64 copy when it is not f64).
fn values(t: &Tensor) -> Result<Vec<f64>> {
    t.raw_cast(DType::F64)?.to_vec::<f64>()
}

/// Runs a metric on two tensors and writes its value.
unsafe fn metric(
    scores: *const DsTensor,
    labels: *const DsTensor,
    out_value: *mut f64,
    f: impl FnOnce(&Tensor, &Tensor) -> Result<f64>,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_value, "out_value")? };
        let s = unsafe { tensor_ref(scores, "scores")? };
        let l = unsafe { tensor_ref(labels, "labels")? };
        *o = f(s, l)?;
        Ok(())
    })
}

/// The exact ROC AUC of `scores` (probabilities or logits, any dtype) against 0/1 `labels`
/// (any dtype), both read as flat row-major vectors of equal length; tied scores get their
/// average rank. Errors: lengths differ, empty, a non-finite score, a label not 0 or 1, only
/// one class present.
///
/// Thread safety: any thread.
///
/// # Safety
/// `scores` and `labels` live handles; `out_value` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_metric_auc(
    scores: *const DsTensor,
    labels: *const DsTensor,
    out_value: *mut f64,
) -> DsStatus {
    unsafe { metric(scores, labels, out_value, |s, l| metrics::auc(&values(s)?, &values(l)?)) }
}

/// The mean binary cross-entropy of probabilities `probs` in [0, 1] against 0/1 `labels`
/// (flat vectors of equal length, any dtype), probabilities clamped to [1e-7, 1 − 1e-7].
/// Errors: as `ds_metric_auc`, and a probability outside [0, 1] (logits passed by mistake).
///
/// Thread safety: any thread.
///
/// # Safety
/// `probs` and `labels` live handles; `out_value` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_metric_log_loss(
    probs: *const DsTensor,
    labels: *const DsTensor,
    out_value: *mut f64,
) -> DsStatus {
    unsafe { metric(probs, labels, out_value, |p, l| metrics::log_loss(&values(p)?, &values(l)?)) }
}

/// Accuracy. Multiclass when `scores` is 2-D `[n, C]` with C ≥ 2: logits (or
/// probabilities) against i64 class `labels` `[n]` in [0, C), the first largest entry of a row
/// being the prediction. Otherwise binary: probabilities (flat, any dtype) against 0/1
/// `labels`, predicting 1 above 0.5. Errors: shapes that do not match, non-finite scores,
/// labels out of range, empty input.
///
/// Thread safety: any thread.
///
/// # Safety
/// `scores` and `labels` live handles; `out_value` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_metric_accuracy(
    scores: *const DsTensor,
    labels: *const DsTensor,
    out_value: *mut f64,
) -> DsStatus {
    unsafe {
        metric(scores, labels, out_value, |s, l| match s.shape() {
            &[n, c] if c >= 2 => {
                if l.dtype() != DType::I64 {
                    return Err(Error::DtypeMismatch { arg: "labels", expected: DType::I64, given: l.dtype() });
                }
                if l.numel() != n {
                    return Err(Error::shape(
                        "labels",
                        format!("{} labels for {n} rows of scores {:?}", l.numel(), s.shape()),
                    ));
                }
                metrics::accuracy_multiclass(&values(s)?, c, &l.to_vec::<i64>()?)
            }
            _ => metrics::accuracy(&values(s)?, &values(l)?),
        })
    }
}
