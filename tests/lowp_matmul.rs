//! bf16/f16 matmul, bmm and linear: accuracy against f64, odd shapes, strides, NaN/inf and determinism, on both the native and the fallback path.

use deepseek::backend::cpu::lowp::{set_amx_disabled, set_force_fallback, uses_native};
use deepseek::runtime::{num_threads, set_num_threads};
use deepseek::{DType, Device, Generator, Tensor};
use half::{bf16, f16};
use std::sync::{Mutex, MutexGuard};

/// The fallback switch and the thread count are process-wide: tests take this lock.
static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` once on the native path (when this CPU has it) and once on the fallback.
/// Runs `f` on each path this CPU has: native (AMX where present, else AVX-512), native with
/// AMX turned off (the AVX-512 kernel), and the portable fallback.
fn both_paths(f: impl Fn(&str)) {
    let _g = lock();
    for (path, fallback, no_amx) in
        [("native", false, false), ("native-avx512", false, true), ("fallback", true, false)]
    {
        set_force_fallback(fallback);
        set_amx_disabled(no_amx);
        f(path);
    }
    set_force_fallback(false);
    set_amx_disabled(false);
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.cast(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// Unit in the last place of `x` in a type with `mant` stored mantissa bits and minimum
/// normal exponent `emin`.
fn ulp(x: f64, mant: i32, emin: i32) -> f64 {
    let e = if x == 0.0 { emin } else { (x.abs().log2().floor() as i32).max(emin) };
    2f64.powi(e - mant)
}

fn ulp_of(dtype: DType, x: f64) -> f64 {
    match dtype {
        DType::BF16 => ulp(x, 7, -126),
        DType::F16 => ulp(x, 10, -14),
        _ => unreachable!(),
    }
}

/// Reference `a · b` in f64 for row-major `[m, k]` and `[k, n]` values; also Σ|a||b| per element.
fn reference(a: &[f64], b: &[f64], (m, n, k): (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let (mut c, mut mag) = (vec![0.0; m * n], vec![0.0; m * n]);
    for i in 0..m {
        for p in 0..k {
            for j in 0..n {
                c[i * n + j] += a[i * k + p] * b[p * n + j];
                mag[i * n + j] += (a[i * k + p] * b[p * n + j]).abs();
            }
        }
    }
    (c, mag)
}

/// Every element is the exact product of the (rounded) inputs, rounded once: within one
/// output ulp, plus f32 accumulation error (k · 2⁻²⁴ · Σ|a||b|, a loose bound).
fn assert_rounded_once(got: &[f64], exact: &[f64], mag: &[f64], dtype: DType, k: usize, what: &str) {
    assert_eq!(got.len(), exact.len(), "{what}: length");
    for (i, ((&g, &e), &s)) in got.iter().zip(exact).zip(mag).enumerate() {
        let tol = ulp_of(dtype, e) + (k as f64) * 2f64.powi(-24) * s;
        assert!((g - e).abs() <= tol, "{what}: element {i}: got {g}, exact {e}, tolerance {tol}");
    }
}

fn rel_frobenius(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den).sqrt()
}

/// ALGORITHMS.md §2: K = 1024, N(0,1) inputs, error against the f64 product of the f32
/// inputs (so input rounding counts): bf16 ≤ 1e-2, f16 ≤ 2e-3.
#[test]
fn accuracy_against_f64_at_k1024() {
    let (m, n, k) = (256, 192, 1024);
    let (a, b) = (randn(&[m, k], 1), randn(&[k, n], 2));
    let (want, _) = reference(&f64s(&a), &f64s(&b), (m, n, k));
    both_paths(|path| {
        for (dtype, bound) in [(DType::BF16, 1e-2), (DType::F16, 2e-3)] {
            let got = f64s(&a.cast(dtype).unwrap().matmul(&b.cast(dtype).unwrap()).unwrap());
            let err = rel_frobenius(&got, &want);
            eprintln!("{path} {dtype}: relative Frobenius error {err:.3e}");
            assert!(err <= bound, "{path} {dtype}: error {err} above {bound}");
            // Far from the bound: input rounding alone is ≈ u·√2 and output rounding ≈ u/√3.
            let u = if dtype == DType::BF16 { 2f64.powi(-8) } else { 2f64.powi(-11) };
            assert!(err <= u, "{path} {dtype}: error {err} larger than one unit roundoff {u}");
        }
    });
}

/// Checks `a · b` (any shapes matmul takes) against the f64 product of the rounded inputs.
fn check_matmul(a: &Tensor, b: &Tensor, what: &str) {
    let dtype = a.dtype();
    let got = a.matmul(b).unwrap();
    assert_eq!(got.dtype(), dtype, "{what}: output dtype");
    let want = a.cast(DType::F64).unwrap().matmul(&b.cast(DType::F64).unwrap()).unwrap();
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let mag = a.cast(DType::F64).unwrap().abs().unwrap().matmul(&b.cast(DType::F64).unwrap().abs().unwrap()).unwrap();
    let k = a.shape()[a.ndim() - 1];
    assert_rounded_once(&f64s(&got), &f64s(&want), &f64s(&mag), dtype, k, what);
}

#[test]
fn odd_shapes_round_once() {
    let shapes = [(1, 1, 1), (7, 13, 5), (13, 37, 33), (12, 32, 2), (25, 65, 1), (100, 70, 3), (97, 129, 257)];
    both_paths(|path| {
        for dtype in [DType::BF16, DType::F16] {
            for (s, &(m, n, k)) in shapes.iter().enumerate() {
                let a = randn(&[m, k], 10 + s as u64).cast(dtype).unwrap();
                let b = randn(&[k, n], 20 + s as u64).cast(dtype).unwrap();
                check_matmul(&a, &b, &format!("{path} {dtype} {m}x{k}·{k}x{n}"));
            }
        }
    });
}

#[test]
fn strided_transposed_and_broadcast_operands() {
    both_paths(|path| {
        for dtype in [DType::BF16, DType::F16] {
            let w = |shape: &[usize], seed| randn(shape, seed).cast(dtype).unwrap();
            // Transposed views on both sides (no copy: read through strides).
            let a = w(&[29, 40], 1).transpose(0, 1).unwrap();
            let b = w(&[35, 29], 2).transpose(0, 1).unwrap();
            check_matmul(&a, &b, &format!("{path} {dtype} transposed"));
            // Every other column and row.
            let a = w(&[40, 62], 3).slice(1, 0, 62, 2).unwrap();
            let b = w(&[62, 50], 4).slice(0, 0, 62, 2).unwrap().slice(1, 1, 50, 3).unwrap();
            check_matmul(&a, &b, &format!("{path} {dtype} sliced"));
            // Batch broadcasting [2,1,5,7] x [3,7,4] -> [2,3,5,4], and a shared rhs.
            check_matmul(&w(&[2, 1, 5, 7], 5), &w(&[3, 7, 4], 6), &format!("{path} {dtype} broadcast"));
            check_matmul(&w(&[4, 30, 17], 7), &w(&[17, 45], 8), &format!("{path} {dtype} shared rhs"));
            // 1-D operands.
            check_matmul(&w(&[17], 9), &w(&[17, 45], 10), &format!("{path} {dtype} vector-matrix"));
            check_matmul(&w(&[6, 17], 11), &w(&[17], 12), &format!("{path} {dtype} matrix-vector"));
            // bmm.
            let (a, b) = (w(&[3, 14, 40], 13), w(&[3, 40, 33], 14));
            let got = f64s(&a.bmm(&b).unwrap());
            let want = f64s(&a.matmul(&b).unwrap());
            assert_eq!(got, want, "{path} {dtype}: bmm equals matmul");
        }
    });
}

#[test]
fn zero_size_dims() {
    both_paths(|path| {
        for dtype in [DType::BF16, DType::F16] {
            let z = |shape: &[usize]| Tensor::zeros(shape, dtype, Device::Cpu).unwrap();
            assert_eq!(z(&[0, 5]).matmul(&z(&[5, 3])).unwrap().shape(), &[0, 3], "{path}");
            assert_eq!(z(&[4, 5]).matmul(&z(&[5, 0])).unwrap().shape(), &[4, 0], "{path}");
            // k = 0: an empty sum, all zeros (and the bias, for linear).
            let a = randn(&[4, 0], 1).cast(dtype).unwrap();
            let out = a.matmul(&randn(&[0, 3], 2).cast(dtype).unwrap()).unwrap();
            assert_eq!(f64s(&out), vec![0.0; 12], "{path} {dtype}: k = 0");
            let bias = Tensor::from_slice(&[1.0f32, -2.0, 0.5], &[3]).unwrap().cast(dtype).unwrap();
            let out = a.linear(&z(&[3, 0]), Some(&bias)).unwrap();
            assert_eq!(f64s(&out), [1.0, -2.0, 0.5].repeat(4), "{path} {dtype}: linear with k = 0");
        }
    });
}

/// linear = x · Wᵀ + b with one rounding, for a packed weight and for a transposed view.
#[test]
fn linear_with_bias_rounds_once() {
    both_paths(|path| {
        for dtype in [DType::BF16, DType::F16] {
            let x = randn(&[3, 11, 70], 1).cast(dtype).unwrap();
            let bias = randn(&[45], 3).cast(dtype).unwrap();
            for (wname, weight) in [
                ("packed", randn(&[45, 70], 2).cast(dtype).unwrap()),
                ("view", randn(&[70, 45], 4).cast(dtype).unwrap().transpose(0, 1).unwrap()),
            ] {
                let got = f64s(&x.linear(&weight, Some(&bias)).unwrap());
                let (xs, ws, bs) = (f64s(&x), f64s(&weight), f64s(&bias));
                for r in 0..33 {
                    for j in 0..45 {
                        let terms = (0..70).map(|p| xs[r * 70 + p] * ws[j * 70 + p]);
                        let mag: f64 = terms.clone().map(f64::abs).sum::<f64>() + bs[j].abs();
                        let exact = terms.sum::<f64>() + bs[j];
                        let tol = ulp_of(dtype, exact) + 70.0 * 2f64.powi(-24) * mag;
                        let g = got[r * 45 + j];
                        assert!((g - exact).abs() <= tol, "{path} {dtype} {wname}: ({r},{j}) got {g}, exact {exact}");
                    }
                }
            }
        }
    });
}

/// NaN in a row of `a` poisons that output row only; an infinity in `b` gives ±inf in its
/// column (finite others), and inf · 0 gives NaN.
#[test]
fn nan_and_inf_propagate() {
    both_paths(|path| {
        for dtype in [DType::BF16, DType::F16] {
            let (m, n, k) = (20, 40, 37);
            let mut a: Vec<f32> = (0..m * k).map(|i| 0.25 + (i % 7) as f32 * 0.125).collect();
            let mut b: Vec<f32> = (0..k * n).map(|i| 0.5 + (i % 5) as f32 * 0.25).collect();
            a[3 * k + 36] = f32::NAN; // row 3
            b[11 * n + 33] = f32::INFINITY; // column 33
            a[17 * k + 11] = 0.0; // row 17 meets the infinity with a zero: NaN
            let t = |v: &[f32], s: &[usize]| Tensor::from_slice(v, s).unwrap().cast(dtype).unwrap();
            let out = f64s(&t(&a, &[m, k]).matmul(&t(&b, &[k, n])).unwrap());
            for i in 0..m {
                for j in 0..n {
                    let v = out[i * n + j];
                    let what = format!("{path} {dtype} ({i},{j}) = {v}");
                    if i == 3 || (i == 17 && j == 33) {
                        assert!(v.is_nan(), "{what}: want NaN");
                    } else if j == 33 {
                        assert_eq!(v, f64::INFINITY, "{what}: want inf");
                    } else {
                        assert!(v.is_finite() && v > 0.0, "{what}: want finite");
                    }
                }
            }
        }
    });
}

/// The native kernel sums each element in k order whatever the split: bitwise equal
/// results on 1 and 2 threads (and for a row on its own).
#[test]
fn native_is_deterministic_across_threads() {
    let _g = lock();
    set_force_fallback(false);
    let before = num_threads();
    for dtype in [DType::BF16, DType::F16] {
        if !match dtype {
            DType::BF16 => uses_native::<bf16>(),
            _ => uses_native::<f16>(),
        } {
            eprintln!("{dtype}: no native kernel on this CPU; determinism not checked");
            continue;
        }
        let a = randn(&[300, 515], 1).cast(dtype).unwrap();
        let b = randn(&[515, 260], 2).cast(dtype).unwrap();
        let mut runs = Vec::new();
        for threads in [1, 2, 3] {
            set_num_threads(threads).unwrap();
            runs.push(a.matmul(&b).unwrap().cast(DType::F64).unwrap().to_vec::<f64>().unwrap());
        }
        assert_eq!(runs[0], runs[1], "{dtype}: 1 vs 2 threads");
        assert_eq!(runs[0], runs[2], "{dtype}: 1 vs 3 threads");
        let row = f64s(&a.slice(0, 57, 58, 1).unwrap().matmul(&b).unwrap());
        assert_eq!(row[..], runs[0][57 * 260..58 * 260], "{dtype}: one row alone");
    }
    set_num_threads(before).unwrap();
}

/// The native and the fallback path agree to one output ulp plus the f32 accumulation error
/// of each (both round an f32 sum once, but AMX adds its products in another order than the
/// f32 gemm, which matters where the sum cancels).
#[test]
fn native_matches_fallback() {
    let _g = lock();
    for dtype in [DType::BF16, DType::F16] {
        let a = randn(&[70, 300], 5).cast(dtype).unwrap();
        let b = randn(&[300, 90], 6).cast(dtype).unwrap();
        let mag = f64s(
            &a.cast(DType::F64).unwrap().abs().unwrap().matmul(&b.cast(DType::F64).unwrap().abs().unwrap()).unwrap(),
        );
        set_force_fallback(false);
        let native = f64s(&a.matmul(&b).unwrap());
        set_force_fallback(true);
        let fallback = f64s(&a.matmul(&b).unwrap());
        set_force_fallback(false);
        for (i, ((x, y), s)) in native.iter().zip(&fallback).zip(&mag).enumerate() {
            let tol = ulp_of(dtype, *y) + 2.0 * 300.0 * 2f64.powi(-24) * s;
            assert!((x - y).abs() <= tol, "{dtype}: element {i}: native {x}, fallback {y}, tolerance {tol}");
        }
    }
}

/// Gradients flow through the low-precision ops and match the f32 gradients to bf16 accuracy.
#[test]
fn gradients_in_bf16_match_f32() {
    let _g = lock();
    let x32 = randn(&[16, 64], 1);
    let w32 = randn(&[24, 64], 2);
    let grads = |dtype: DType| {
        let x = x32.cast(dtype).unwrap().detach();
        let w = w32.cast(dtype).unwrap().detach();
        x.set_requires_grad(true);
        w.set_requires_grad(true);
        x.linear(&w, None).unwrap().sum_all().unwrap().backward().unwrap();
        (f64s(&x.grad().unwrap().unwrap()), f64s(&w.grad().unwrap().unwrap()))
    };
    let (gx, gw) = grads(DType::F32);
    let (hx, hw) = grads(DType::BF16);
    assert!(rel_frobenius(&hx, &gx) < 1e-2, "dx error {}", rel_frobenius(&hx, &gx));
    assert!(rel_frobenius(&hw, &gw) < 1e-2, "dw error {}", rel_frobenius(&hw, &gw));
}

/// With k = 1 each sum is one exact product, so the output must be that product rounded to
/// nearest even: bitwise equal to `half`'s conversion (ties included, as 8- and 11-bit
/// mantissa products land exactly on half-ulps often), with NaN and ±inf among the inputs.
/// (A sum starting from +0 turns a -0 product into +0, as every f32 GEMM does.)
#[test]
fn single_products_round_to_nearest_even() {
    let mut rng = Generator::new(7);
    let mut vals: Vec<f32> = (0..61).map(|_| ((rng.normal() * 4.0).exp2() * rng.normal()) as f32).collect();
    vals.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0, 3.0e38]);
    let n = vals.len();
    both_paths(|path| {
        let a = Tensor::from_slice(&vals, &[n, 1]).unwrap();
        let b = Tensor::from_slice(&vals, &[1, n]).unwrap();
        let (ab, bb) = (a.cast(DType::BF16).unwrap(), b.cast(DType::BF16).unwrap());
        let (xs, got) = (ab.to_vec::<bf16>().unwrap(), ab.matmul(&bb).unwrap().to_vec::<bf16>().unwrap());
        for i in 0..n {
            for j in 0..n {
                let want = bf16::from_f32(xs[i].to_f32() * xs[j].to_f32());
                let g = got[i * n + j];
                let same = g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()) || (g == want);
                assert!(same, "{path} bf16 ({i},{j}): {} · {}: got {g}, want {want}", xs[i], xs[j]);
            }
        }
        let (ah, bh) = (a.cast(DType::F16).unwrap(), b.cast(DType::F16).unwrap());
        let (xs, got) = (ah.to_vec::<f16>().unwrap(), ah.matmul(&bh).unwrap().to_vec::<f16>().unwrap());
        for i in 0..n {
            for j in 0..n {
                let want = f16::from_f32(xs[i].to_f32() * xs[j].to_f32());
                let g = got[i * n + j];
                let same = g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()) || (g == want);
                assert!(same, "{path} f16 ({i},{j}): {} · {}: got {g}, want {want}", xs[i], xs[j]);
            }
        }
    });
}
