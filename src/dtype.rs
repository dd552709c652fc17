//! Element types: the `DType` enum, its fixed C codes, and the `Element` trait for typed access.

use crate::error::{Error, Result};
use half::{bf16, f16};
use std::fmt;

/// The element type of a tensor. The numeric codes are part of the C ABI and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 16-bit IEEE half float.
    F16,
    /// bfloat16: f32's exponent with a 7-bit mantissa.
    BF16,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// 8-bit unsigned integer.
    U8,
    /// Boolean, one byte holding 0 or 1.
    Bool,
}

impl DType {
    /// Every dtype, in code order.
    pub const ALL: [DType; 8] =
        [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U8, DType::Bool];

    /// The dtype's C code (`DS_DTYPE_*`).
    pub fn code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::F64 => 2,
            DType::F16 => 3,
            DType::BF16 => 4,
            DType::I32 => 5,
            DType::I64 => 6,
            DType::U8 => 7,
            DType::Bool => 8,
        }
    }

    /// The dtype for a C code; any other value is an error naming `arg`.
    pub fn from_code(code: i32, arg: &'static str) -> Result<DType> {
        DType::ALL.into_iter().find(|d| d.code() == code).ok_or_else(|| Error::InvalidDtype {
            arg,
            msg: format!("{code} is not a dtype code (expected 1..=8, DS_DTYPE_F32..DS_DTYPE_BOOL)"),
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::Bool => 1,
        }
    }

    /// Lower-case name, as used in messages and dumps (`"f32"`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }

    /// True for the four floating types.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// True for i32, i64 and u8.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64 | DType::U8)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that is the element of some [`DType`].
///
/// Conversions follow one documented rule set (the same for every cast in the engine):
/// float to float rounds to nearest, ties to even, keeping NaN and infinities; float to
/// integer truncates toward zero and saturates, NaN becoming 0; integer to integer wraps
/// (two's complement, as C and NumPy do); anything to bool is `x != 0` (NaN is true);
/// bool to a number is 0 or 1.
pub trait Element: Copy + Send + Sync + PartialEq + fmt::Debug + 'static {
    /// The matching dtype.
    const DTYPE: DType;
    /// The value as f64 (exact for every type but i64 beyond 2^53).
    fn to_f64(self) -> f64;
    /// The value as i64 (floats truncate and saturate).
    fn to_i64(self) -> i64;
    /// Converts from f64 by this type's rule.
    fn from_f64(v: f64) -> Self;
    /// Converts from i64 by this type's rule.
    fn from_i64(v: i64) -> Self;
    /// Zero.
    fn zero() -> Self {
        Self::from_i64(0)
    }
    /// One.
    fn one() -> Self {
        Self::from_i64(1)
    }
}

macro_rules! float_element {
    ($t:ty, $dt:expr, $from_f64:expr, $to_f64:expr) => {
        impl Element for $t {
            const DTYPE: DType = $dt;
            fn to_f64(self) -> f64 {
                $to_f64(self)
            }
            fn to_i64(self) -> i64 {
                self.to_f64() as i64
            }
            fn from_f64(v: f64) -> Self {
                $from_f64(v)
            }
            fn from_i64(v: i64) -> Self {
                $from_f64(v as f64)
            }
        }
    };
}

float_element!(f32, DType::F32, |v: f64| v as f32, |x: f32| x as f64);
float_element!(f64, DType::F64, |v: f64| v, |x: f64| x);
float_element!(f16, DType::F16, |v| f16::from_f32(f64_to_f32_odd(v)), f16::to_f64);
float_element!(bf16, DType::BF16, |v| bf16::from_f32(f64_to_f32_odd(v)), bf16::to_f64);

/// f64 to f32 rounding to odd: truncate, then set the last bit if anything was lost. A
/// second rounding from this f32 to f16/bf16 (nearest-even) then equals a single correct
/// rounding of the f64, which `half`'s own f64 paths do not give (they drop the low 32
/// mantissa bits before rounding).
pub fn f64_to_f32_odd(d: f64) -> f32 {
    let mut r = d as f32;
    if d.is_nan() || r as f64 == d {
        return r;
    }
    if (r as f64).abs() > d.abs() {
        r = f32::from_bits(r.to_bits() - 1); // one step toward zero (sign-magnitude)
    }
    f32::from_bits(r.to_bits() | 1)
}

macro_rules! int_element {
    ($t:ty, $dt:expr) => {
        impl Element for $t {
            const DTYPE: DType = $dt;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
        }
    };
}

int_element!(i32, DType::I32);
int_element!(i64, DType::I64);
int_element!(u8, DType::U8);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
}

/// Runs `$body` with `$T` bound to the Rust element type of `$dtype`.
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::dtype::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::dtype::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::dtype::DType::F16 => {
                type $T = half::f16;
                $body
            }
            $crate::dtype::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            $crate::dtype::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::dtype::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::dtype::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::dtype::DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}

/// Converts one element by the rules on [`Element`]. Integer and bool sources go through
/// i64 (exact); float sources through f64 (exact for every float dtype), so each cast
/// rounds once.
#[inline(always)]
pub fn convert<S: Element, D: Element>(x: S) -> D {
    if S::DTYPE.is_float() { D::from_f64(x.to_f64()) } else { D::from_i64(x.to_i64()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_reject_unknown() {
        for d in DType::ALL {
            assert_eq!(DType::from_code(d.code(), "dtype").unwrap(), d);
        }
        for bad in [0, 9, -1, i32::MAX] {
            let e = DType::from_code(bad, "dtype").unwrap_err();
            assert!(e.to_string().contains("dtype"), "{e}");
        }
    }

    #[test]
    fn f32_to_half_rounds_to_nearest_even() {
        // 1 + 2^-11 is exactly halfway between f16 1.0 and 1 + 2^-10: ties to even -> 1.0.
        let tie_down = 1.0f32 + 2f32.powi(-11);
        assert_eq!(convert::<f32, f16>(tie_down).to_bits(), 0x3C00);
        // 1 + 3*2^-11 is halfway between 1+2^-10 (odd mantissa) and 1+2^-9: ties to even -> up.
        let tie_up = 1.0f32 + 3.0 * 2f32.powi(-11);
        assert_eq!(convert::<f32, f16>(tie_up).to_bits(), 0x3C02);
        // bf16: 1 + 2^-8 is halfway between 1.0 and 1 + 2^-7 -> 1.0; 1 + 3*2^-8 -> 1 + 2^-6.
        assert_eq!(convert::<f32, bf16>(1.0 + 2f32.powi(-8)).to_bits(), 0x3F80);
        assert_eq!(convert::<f32, bf16>(1.0 + 3.0 * 2f32.powi(-8)).to_bits(), 0x3F82);
        // Overflow to infinity, as IEEE rounding requires.
        assert!(convert::<f32, f16>(70000.0).to_f64().is_infinite());
    }

    #[test]
    fn f64_to_half_rounds_once() {
        // Just above the f16 tie between 1.0 and 1+2^-10, by less than the low 32 mantissa
        // bits can hold: a correct rounding goes up.
        let above_tie = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(convert::<f64, f16>(above_tie).to_bits(), 0x3C01);
        assert_eq!(convert::<f64, f16>(1.0 + 2f64.powi(-11)).to_bits(), 0x3C00);
        assert_eq!(convert::<f64, bf16>(1.0 + 2f64.powi(-8) + 2f64.powi(-45)).to_bits(), 0x3F81);
        assert_eq!(convert::<f64, bf16>(1e300).to_f64(), f64::INFINITY);
        assert_eq!(convert::<f64, f16>(-1e-300).to_bits(), 0x8000);
    }

    #[test]
    fn nan_and_infinity_survive_float_casts() {
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let h: f16 = convert(x);
            let b: bf16 = convert(x);
            let d: f64 = convert(x);
            for back in [convert::<f16, f32>(h), convert::<bf16, f32>(b), convert::<f64, f32>(d)] {
                assert!(back.is_nan() == x.is_nan() && (x.is_nan() || back == x), "{x} -> {back}");
            }
        }
    }

    #[test]
    fn integer_and_bool_rules() {
        assert_eq!(convert::<f32, i32>(-2.7), -2);
        assert_eq!(convert::<f32, i32>(f32::NAN), 0);
        assert_eq!(convert::<f64, i32>(1e20), i32::MAX);
        assert_eq!(convert::<f32, u8>(-5.0), 0);
        assert_eq!(convert::<i32, u8>(300), 44);
        assert_eq!(convert::<i64, i32>(1 << 33), 0);
        assert!(convert::<f32, bool>(f32::NAN));
        assert!(!convert::<f32, bool>(-0.0));
        assert_eq!(convert::<bool, f32>(true), 1.0);
        assert_eq!(convert::<i64, f64>(i64::MAX), 9.223372036854776e18);
    }
}
