//! bf16/f16 matrix products with f32 accumulation: AVX-512 kernels where the CPU has them, else via f32 gemm.
//!
//! [`lowp_gemm_into`] is the one entry. On x86_64 with AMX-BF16, bf16 products run on the tile
//! registers (`amx`). Else, with AVX512-BF16, bf16 operands are packed
//! into k-pairs and multiplied with `vdpbf16ps`; f16 operands (no native f16 dot product on
//! these CPUs) are converted to f32 while packed and multiplied with an AVX-512 FMA kernel.
//! Elsewhere, or when [`set_force_fallback`] is on, operands are converted to f32 in row
//! blocks and multiplied by the f32 gemm. Either way every output element is rounded once,
//! round-to-nearest-even, from its f32 sum.

#[cfg(target_arch = "x86_64")]
mod amx;
mod fallback;
#[cfg(target_arch = "x86_64")]
mod kernel_x86;
#[cfg(target_arch = "x86_64")]
mod native;
mod pack;

use super::gemm::MatView;
use crate::dtype::Element;
use crate::error::Result;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use std::sync::atomic::{AtomicBool, Ordering};

/// A 16-bit float type with a low-precision kernel: bf16 or f16.
pub trait LowpFloat: Element + sealed::Sealed {
    /// The raw bits of a slice (no copy).
    fn bits(s: &[Self]) -> &[u16];
    /// Converts a row to f32 (exact).
    fn row_to_f32(src: &[Self], dst: &mut [f32]);
    /// Whether this CPU runs this type's native kernel (checked once).
    fn native_available() -> bool;
}

/// An output element type of [`lowp_gemm_into`]: bf16 and f16 (rounded to nearest even from
/// the f32 sum) or f32 (the unrounded sum).
pub trait LowpOut: Element + sealed::Sealed {
    /// Writes an f32 row into `dst` (same length), rounding to nearest even.
    fn write_row(src: &[f32], dst: &mut [Self]);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for half::bf16 {}
    impl Sealed for half::f16 {}
    impl Sealed for f32 {}
}

/// `LowpFloat` for a `half` type whose native kernel needs AVX-512F and `$feature`
/// (`is_x86_feature_detected!` caches its answer, so asking per call is cheap).
macro_rules! impl_lowp_float {
    ($t:ty, $feature:tt, $to_f32:expr) => {
        impl LowpFloat for $t {
            fn bits(s: &[Self]) -> &[u16] {
                s.reinterpret_cast()
            }
            fn row_to_f32(src: &[Self], dst: &mut [f32]) {
                $to_f32(src, dst)
            }
            fn native_available() -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!($feature)
                }
                #[cfg(not(target_arch = "x86_64"))]
                false
            }
        }
    };
}
impl_lowp_float!(bf16, "avx512bf16", crate::backend::cpu::bf16::widen_row);
impl_lowp_float!(f16, "f16c", |s: &[f16], d: &mut [f32]| s.convert_to_f32_slice(d));

impl LowpOut for bf16 {
    #[inline]
    fn write_row(src: &[f32], dst: &mut [Self]) {
        crate::backend::cpu::bf16::narrow_row(src, dst)
    }
}

impl LowpOut for f16 {
    #[inline]
    fn write_row(src: &[f32], dst: &mut [Self]) {
        // half rounds to nearest even (F16C with _MM_FROUND_TO_NEAREST_INT, or in software).
        dst.convert_from_f32_slice(src)
    }
}

impl LowpOut for f32 {
    #[inline]
    fn write_row(src: &[f32], dst: &mut [Self]) {
        dst.copy_from_slice(src)
    }
}

static FORCE_FALLBACK: AtomicBool = AtomicBool::new(false);

/// Forces the portable path (convert to f32, f32 gemm) even where a native kernel exists, so
/// tests can check both on one machine. Process-wide; for tests and benchmarks only.
#[doc(hidden)]
pub fn set_force_fallback(on: bool) {
    FORCE_FALLBACK.store(on, Ordering::SeqCst);
}

#[cfg(target_arch = "x86_64")]
pub use amx::set_disabled as set_amx_disabled;

/// Turns the AMX path off; there is none on this architecture. For tests and benchmarks only.
#[cfg(not(target_arch = "x86_64"))]
#[doc(hidden)]
pub fn set_amx_disabled(_on: bool) {}

/// Whether [`lowp_gemm_into`] runs the native kernel for `T` now (the CPU has it and the
/// fallback is not forced).
pub fn uses_native<T: LowpFloat>() -> bool {
    #[cfg(target_arch = "x86_64")]
    let amx = T::DTYPE == crate::dtype::DType::BF16 && amx::available();
    #[cfg(not(target_arch = "x86_64"))]
    let amx = false;
    (amx || T::native_available()) && !FORCE_FALLBACK.load(Ordering::SeqCst)
}

/// `dst = a · b (+ bias)` for bf16/f16 `a` (`m × k`) and `b` (`k × n`) read through any
/// strides, summed in f32 and written once to `dst` (`m × n`, row stride `dst_rs`) as `O`.
/// `bias` (length `n`, f32) is added to each row's sum before the single rounding. The
/// native kernel sums every element in k order whatever the thread count, so its results
/// are bitwise reproducible across thread counts. Views outside their slices are errors.
#[allow(clippy::too_many_arguments)]
pub fn lowp_gemm_into<T: LowpFloat, O: LowpOut>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [O],
    dst_rs: usize,
    a: &[T],
    av: MatView,
    b: &[T],
    bv: MatView,
    bias: Option<&[f32]>,
    threads: usize,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    MatView::new(0, dst_rs, 1).check(m, n, dst.len(), "dst")?;
    if let Some(bias) = bias
        && bias.len() != n
    {
        return Err(crate::error::Error::Internal(format!(
            "lowp gemm: bias has {} values for {n} columns",
            bias.len()
        )));
    }
    if k == 0 {
        // An empty sum is zero (plus the bias).
        let zeros = vec![0f32; n];
        for row in dst.chunks_mut(dst_rs).take(m) {
            O::write_row(bias.unwrap_or(&zeros), &mut row[..n]);
        }
        return Ok(());
    }
    av.check(m, k, a.len(), "lhs")?;
    bv.check(k, n, b.len(), "rhs")?;
    #[cfg(target_arch = "x86_64")]
    if T::DTYPE == crate::dtype::DType::BF16 && !FORCE_FALLBACK.load(Ordering::SeqCst) && amx::available() {
        amx::run((m, n, k), dst, dst_rs, T::bits(a), av, T::bits(b), bv, bias, threads);
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if uses_native::<T>() {
        native::run((m, n, k), dst, dst_rs, a, av, b, bv, bias, threads);
        return Ok(());
    }
    fallback::run((m, n, k), dst, dst_rs, a, av, b, bv, bias, threads)
}
