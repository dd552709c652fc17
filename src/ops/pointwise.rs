//! Pointwise bodies: the one element formula of each elementwise float op, shared by its forward kernel and fusion.
//!
//! An op's formula is written once, with [`unary_body!`](crate::unary_body) or
//! [`binary_body!`](crate::binary_body), as a type implementing [`UnaryBody`] or [`BinaryBody`]:
//! per compute type (f32, f64) a function from the attributes to the element closure. The
//! op's forward kernel maps that closure over tensors ([`float_map1`], [`float_map2`]) and its
//! [`Pointwise`] maps it over equal-length chunks, so an op run alone and the same op inside a
//! fused chain execute the same expression on the same type: bitwise-equal results.

use super::Attrs;
use crate::backend::cpu::bf16::{narrow, widen};
use crate::backend::cpu::elementwise::{map_binary, map_unary};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use half::bf16;

/// The chunk body of an elementwise float op, so a fused kernel can run a chain of ops in one pass.
pub struct Pointwise {
    /// Tensor inputs the body reads (1 or 2).
    pub arity: usize,
    /// `out[i] = f(ins[0][i], ins[1][i]?)` over equal-length f32 chunks, attributes from `attrs`.
    ///
    /// Preconditions (checked by the callers, which validate programs first): `ins` holds
    /// `arity` slices at least as long as `out`, and `attrs` passed the op's inference.
    pub f32: fn(out: &mut [f32], ins: &[&[f32]], attrs: &Attrs),
    /// The same for f64.
    pub f64: fn(out: &mut [f64], ins: &[&[f64]], attrs: &Attrs),
    /// The same formula over a chunk it overwrites, without a copy of it: `out[i] = f(out[i])`,
    /// or for two inputs `f(out[i], other[i])` when `out_first`, else `f(other[i], out[i])`
    /// (`other` is unused by one-input bodies). Same preconditions as [`Pointwise::f32`].
    pub f32_in_place: fn(out: &mut [f32], other: &[f32], out_first: bool, attrs: &Attrs),
    /// The same for f64.
    pub f64_in_place: fn(out: &mut [f64], other: &[f64], out_first: bool, attrs: &Attrs),
}

impl std::fmt::Debug for Pointwise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pointwise(arity {})", self.arity)
    }
}

/// The element function of a one-input float op, per compute type (f16/bf16 compute in f32).
/// Attributes are read once per call, outside the element loop.
pub trait UnaryBody {
    /// The f32 element function for validated `attrs`.
    fn f32(attrs: &Attrs) -> impl Fn(f32) -> f32 + Copy + Send + Sync;
    /// The f64 element function for validated `attrs`.
    fn f64(attrs: &Attrs) -> impl Fn(f64) -> f64 + Copy + Send + Sync;
    /// The chunk body built from the element functions.
    const POINTWISE: Pointwise = Pointwise {
        arity: 1,
        f32: unary_chunk_f32::<Self>,
        f64: unary_chunk_f64::<Self>,
        f32_in_place: unary_in_place_f32::<Self>,
        f64_in_place: unary_in_place_f64::<Self>,
    };
}

/// The element function of a two-input float op, per compute type (f16/bf16 compute in f32).
pub trait BinaryBody {
    /// The f32 element function for validated `attrs`.
    fn f32(attrs: &Attrs) -> impl Fn(f32, f32) -> f32 + Copy + Send + Sync;
    /// The f64 element function for validated `attrs`.
    fn f64(attrs: &Attrs) -> impl Fn(f64, f64) -> f64 + Copy + Send + Sync;
    /// The chunk body built from the element functions.
    const POINTWISE: Pointwise = Pointwise {
        arity: 2,
        f32: binary_chunk_f32::<Self>,
        f64: binary_chunk_f64::<Self>,
        f32_in_place: binary_in_place_f32::<Self>,
        f64_in_place: binary_in_place_f64::<Self>,
    };
}

/// `out[i] = f(x[i])`. Generic over the closure so every op gets its own monomorphised loop
/// that the compiler can vectorise (no indirect call per element); slicing `x` to `out`'s
/// length up front removes the bounds checks from the loop.
#[inline(always)]
fn unary_loop<T: Copy>(out: &mut [T], x: &[T], f: impl Fn(T) -> T) {
    let x = &x[..out.len()];
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// `out[i] = f(a[i], b[i])`, as [`unary_loop`].
#[inline(always)]
fn binary_loop<T: Copy>(out: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    let (a, b) = (&a[..out.len()], &b[..out.len()]);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

/// `out[i] = f(out[i])`, as [`unary_loop`].
#[inline(always)]
fn unary_in_place<T: Copy>(out: &mut [T], f: impl Fn(T) -> T) {
    for o in out.iter_mut() {
        *o = f(*o);
    }
}

/// `out[i] = f(out[i], other[i])`, or `f(other[i], out[i])` unless `out_first`, as
/// [`binary_loop`] (the branch is outside the loops).
#[inline(always)]
fn binary_in_place<T: Copy>(out: &mut [T], other: &[T], out_first: bool, f: impl Fn(T, T) -> T) {
    let other = &other[..out.len()];
    if out_first {
        out.iter_mut().zip(other).for_each(|(o, &y)| *o = f(*o, y));
    } else {
        out.iter_mut().zip(other).for_each(|(o, &x)| *o = f(x, *o));
    }
}

/// Defines a chunk body that runs compiled for AVX-512 where the CPU has it (the check is a
/// cached load, once per chunk) and for the build's baseline elsewhere. A fused chain runs
/// its bodies one after the other over a chunk held in L1, where the vector width sets the
/// speed (a kernel run alone streams from memory, where it does not); the element formula
/// is the same, so are the bits.
macro_rules! widest_chunk {
    ($name:ident<$B:ident: $Bound:ident>($($arg:ident: $ty:ty),*) $body:block) => {
        fn $name<$B: $Bound + ?Sized>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn wide<$B: $Bound + ?Sized>($($arg: $ty),*) $body
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { wide::<$B>($($arg),*) };
                }
            }
            $body
        }
    };
}

widest_chunk!(unary_chunk_f32<B: UnaryBody>(out: &mut [f32], ins: &[&[f32]], attrs: &Attrs) {
    unary_loop(out, ins[0], B::f32(attrs))
});

widest_chunk!(unary_chunk_f64<B: UnaryBody>(out: &mut [f64], ins: &[&[f64]], attrs: &Attrs) {
    unary_loop(out, ins[0], B::f64(attrs))
});

widest_chunk!(binary_chunk_f32<B: BinaryBody>(out: &mut [f32], ins: &[&[f32]], attrs: &Attrs) {
    binary_loop(out, ins[0], ins[1], B::f32(attrs))
});

widest_chunk!(binary_chunk_f64<B: BinaryBody>(out: &mut [f64], ins: &[&[f64]], attrs: &Attrs) {
    binary_loop(out, ins[0], ins[1], B::f64(attrs))
});

widest_chunk!(unary_in_place_f32<B: UnaryBody>(out: &mut [f32], _other: &[f32], _out_first: bool, attrs: &Attrs) {
    unary_in_place(out, B::f32(attrs))
});

widest_chunk!(unary_in_place_f64<B: UnaryBody>(out: &mut [f64], _other: &[f64], _out_first: bool, attrs: &Attrs) {
    unary_in_place(out, B::f64(attrs))
});

widest_chunk!(binary_in_place_f32<B: BinaryBody>(out: &mut [f32], other: &[f32], out_first: bool, attrs: &Attrs) {
    binary_in_place(out, other, out_first, B::f32(attrs))
});

widest_chunk!(binary_in_place_f64<B: BinaryBody>(out: &mut [f64], other: &[f64], out_first: bool, attrs: &Attrs) {
    binary_in_place(out, other, out_first, B::f64(attrs))
});

/// The forward kernel of a unary body on a float tensor of any layout: f32 and f64 natively,
/// f16/bf16 computed in f32 and rounded back once per element; other dtypes are an error
/// naming `op`.
pub fn float_map1<B: UnaryBody>(op: &str, x: &Tensor, attrs: &Attrs) -> Result<Tensor> {
    match x.dtype() {
        DType::F32 => map_unary::<f32, f32>(x, B::f32(attrs)),
        DType::F64 => map_unary::<f64, f64>(x, B::f64(attrs)),
        DType::BF16 => {
            // Converted per element inside the loop: one pass, no f32 copies.
            let f = B::f32(attrs);
            map_unary::<bf16, bf16>(x, move |v| narrow(f(widen(v))))
        }
        DType::F16 => map_unary::<f32, f32>(&x.raw_cast(DType::F32)?, B::f32(attrs))?.raw_cast(x.dtype()),
        d => Err(Error::InvalidDtype { arg: "x", msg: format!("{op} needs a float tensor, given {d}") }),
    }
}

/// The forward kernel of a binary body on two float tensors of one dtype, broadcast to
/// `shape` (the caller's inference checked they broadcast), as [`float_map1`].
pub fn float_map2<B: BinaryBody>(op: &str, a: &Tensor, b: &Tensor, shape: &[usize], attrs: &Attrs) -> Result<Tensor> {
    match a.dtype() {
        DType::F32 => map_binary::<f32, f32, f32>(a, b, shape, B::f32(attrs)),
        DType::F64 => map_binary::<f64, f64, f64>(a, b, shape, B::f64(attrs)),
        DType::BF16 => {
            let f = B::f32(attrs);
            map_binary::<bf16, bf16, bf16>(a, b, shape, move |x, y| narrow(f(widen(x), widen(y))))
        }
        DType::F16 => {
            map_binary::<f32, f32, f32>(&a.raw_cast(DType::F32)?, &b.raw_cast(DType::F32)?, shape, B::f32(attrs))?
                .raw_cast(a.dtype())
        }
        d => Err(Error::InvalidDtype { arg: "a", msg: format!("{op} needs float tensors, given {d}") }),
    }
}

/// Defines a [`UnaryBody`]: `Name(attrs, T) { prelude } v => body`. The prelude reads
/// attributes once (with `T` the compute type); `body` is the element formula of `v: T`.
#[macro_export]
macro_rules! unary_body {
    ($(#[$m:meta])* $vis:vis $Name:ident($attrs:ident, $T:ident) { $($pre:tt)* } $v:ident => $body:expr) => {
        $(#[$m])*
        $vis struct $Name;

        impl $crate::ops::pointwise::UnaryBody for $Name {
            #[inline(always)]
            fn f32($attrs: &$crate::ops::Attrs) -> impl Fn(f32) -> f32 + Copy + Send + Sync {
                #[allow(dead_code)]
                type $T = f32;
                let _ = $attrs;
                $($pre)*
                move |$v: f32| -> f32 { $body }
            }
            #[inline(always)]
            fn f64($attrs: &$crate::ops::Attrs) -> impl Fn(f64) -> f64 + Copy + Send + Sync {
                #[allow(dead_code)]
                type $T = f64;
                let _ = $attrs;
                $($pre)*
                move |$v: f64| -> f64 { $body }
            }
        }
    };
}

/// Defines a [`BinaryBody`]: `Name(attrs, T) { prelude } x, y => body`, as [`unary_body!`](crate::unary_body).
#[macro_export]
macro_rules! binary_body {
    ($(#[$m:meta])* $vis:vis $Name:ident($attrs:ident, $T:ident) { $($pre:tt)* } $x:ident, $y:ident => $body:expr) => {
        $(#[$m])*
        $vis struct $Name;

        impl $crate::ops::pointwise::BinaryBody for $Name {
            #[inline(always)]
            fn f32($attrs: &$crate::ops::Attrs) -> impl Fn(f32, f32) -> f32 + Copy + Send + Sync {
                #[allow(dead_code)]
                type $T = f32;
                let _ = $attrs;
                $($pre)*
                move |$x: f32, $y: f32| -> f32 { $body }
            }
            #[inline(always)]
            fn f64($attrs: &$crate::ops::Attrs) -> impl Fn(f64, f64) -> f64 + Copy + Send + Sync {
                #[allow(dead_code)]
                type $T = f64;
                let _ = $attrs;
                $($pre)*
                move |$x: f64, $y: f64| -> f64 { $body }
            }
        }
    };
}
