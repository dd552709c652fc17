//! Human-readable printing of tensors, eliding the middle of long dimensions.

use super::Tensor;
use crate::dtype::DType;
use std::fmt;

/// Dimensions longer than this are printed as their first and last `EDGE` entries.
const MAX_FULL: usize = 8;
const EDGE: usize = 3;

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = match self.raw_cast(DType::F64).and_then(|t| t.to_vec::<f64>()) {
            Ok(v) => v,
            Err(e) => return write!(f, "tensor(<unreadable: {e}>)"),
        };
        let dtype = self.dtype();
        let fmt_one = |x: f64| match dtype {
            DType::Bool => (if x != 0.0 { "true" } else { "false" }).to_string(),
            d if d.is_float() => format_float(x),
            _ => format!("{}", x as i64),
        };
        let mut out = String::from("tensor(");
        write_nested(&mut out, &values, self.shape(), 0, &fmt_one);
        write!(f, "{out}, shape={:?}, dtype={}, device={})", self.shape(), dtype, self.device())
    }
}

fn format_float(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.1}")
    } else if x.is_finite() && (x.abs() >= 1e5 || (x != 0.0 && x.abs() < 1e-4)) {
        format!("{x:.4e}")
    } else {
        format!("{:.4}", x).trim_end_matches('0').to_string()
    }
}

fn write_nested(out: &mut String, values: &[f64], shape: &[usize], depth: usize, fmt_one: &dyn Fn(f64) -> String) {
    let Some((&n, rest)) = shape.split_first() else {
        out.push_str(&fmt_one(values[0]));
        return;
    };
    let inner: usize = rest.iter().product();
    out.push('[');
    let elide = n > MAX_FULL;
    for i in 0..n {
        if elide && i == EDGE {
            out.push_str("..., ");
        }
        if elide && (EDGE..n - EDGE).contains(&i) {
            continue;
        }
        write_nested(out, &values[i * inner..(i + 1) * inner], rest, depth + 1, fmt_one);
        if i + 1 < n {
            out.push(',');
            if rest.is_empty() {
                out.push(' ');
            } else {
                out.push('\n');
                out.push_str(&" ".repeat(depth + 8));
            }
        }
    }
    out.push(']');
}
