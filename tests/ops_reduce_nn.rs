//! Reductions (mean, max/min, prod, var/std, logsumexp, argmax/argmin), nn ops and losses: values, gradients, errors.

use deepseek::autograd::gradcheck;
use deepseek::{DType, Device, Error, Generator, Tensor};

const TOL: f64 = 1e-6;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.raw_cast(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()) || (x.is_nan() && y.is_nan()), "{a:?} vs {b:?}");
    }
}

fn check(f: impl Fn(&[Tensor]) -> deepseek::Result<Tensor>, inputs: &[Tensor]) {
    let err = gradcheck(f, inputs, 1e-6).unwrap();
    assert!(err < TOL, "gradcheck error {err}");
}

/// Reference reduction over axis 1 of a [a, b, c] tensor given as a flat vector.
fn ref_axis1(v: &[f64], s: [usize; 3], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..s[0] {
        for k in 0..s[2] {
            let run: Vec<f64> = (0..s[1]).map(|j| v[i * s[1] * s[2] + j * s[2] + k]).collect();
            out.push(f(&run));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Reductions

#[test]
fn reduction_values_against_reference() {
    let x = randn(&[3, 4, 5], 1);
    let v = vals(&x);
    let s = [3, 4, 5];
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let var = |r: &[f64], c: f64| {
        let m = mean(r);
        r.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (r.len() as f64 - c)
    };
    close(&vals(&x.mean(&[1], false).unwrap()), &ref_axis1(&v, s, mean), 1e-12);
    close(&vals(&x.max(&[1], false).unwrap()), &ref_axis1(&v, s, |r| r.iter().cloned().fold(f64::MIN, f64::max)), 0.0);
    close(&vals(&x.min(&[1], false).unwrap()), &ref_axis1(&v, s, |r| r.iter().cloned().fold(f64::MAX, f64::min)), 0.0);
    close(&vals(&x.prod(&[1], false).unwrap()), &ref_axis1(&v, s, |r| r.iter().product()), 1e-12);
    close(&vals(&x.var(&[1], 1, false).unwrap()), &ref_axis1(&v, s, |r| var(r, 1.0)), 1e-12);
    close(&vals(&x.var(&[1], 0, false).unwrap()), &ref_axis1(&v, s, |r| var(r, 0.0)), 1e-12);
    close(&vals(&x.std(&[1], 1, false).unwrap()), &ref_axis1(&v, s, |r| var(r, 1.0).sqrt()), 1e-12);
    let lse = |r: &[f64]| r.iter().map(|x| x.exp()).sum::<f64>().ln();
    close(&vals(&x.logsumexp(&[1], false).unwrap()), &ref_axis1(&v, s, lse), 1e-12);
    // keepdim and multiple axes.
    let m = x.mean(&[0, 2], true).unwrap();
    assert_eq!(m.shape(), &[1, 4, 1]);
    let all = x.mean(&[], false).unwrap();
    assert_eq!(all.shape(), &[] as &[usize]);
    close(&[all.item().unwrap()], &[mean(&v)], 1e-12);
    close(
        &vals(&m),
        &vals(&x.permute(&[1, 0, 2]).unwrap().reshape(&[4, 15]).unwrap().mean(&[1], false).unwrap()),
        1e-12,
    );
}

#[test]
fn logsumexp_is_stable_and_handles_infinities() {
    let x = t64(&[1000.0, 1000.0, -1000.0, f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], &[2, 3]);
    let out = vals(&x.logsumexp(&[1], false).unwrap());
    close(&out[..1], &[1000.0 + 2f64.ln()], 1e-12);
    assert_eq!(out[1], f64::NEG_INFINITY);
    let x32 = Tensor::from_slice(&[100.0f32, 100.0], &[2]).unwrap();
    let v = x32.logsumexp(&[], false).unwrap();
    assert_eq!(v.dtype(), DType::F32);
    close(&vals(&v), &[100.0 + 2f64.ln()], 1e-6);
}

#[test]
fn integer_and_half_reductions() {
    let i = Tensor::from_slice(&[3i64, -7, 5, 2, 9, 9], &[2, 3]).unwrap();
    assert_eq!(i.max(&[1], false).unwrap().to_vec::<i64>().unwrap(), vec![5, 9]);
    assert_eq!(i.min(&[], false).unwrap().to_vec::<i64>().unwrap(), vec![-7]);
    assert_eq!(i.prod(&[1], false).unwrap().to_vec::<i64>().unwrap(), vec![-105, 162]);
    let u = Tensor::from_slice(&[200u8, 7, 3], &[3]).unwrap();
    assert_eq!(u.max(&[0], false).unwrap().to_vec::<u8>().unwrap(), vec![200]);
    let h = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap().cast(DType::BF16).unwrap();
    let m = h.mean(&[1], false).unwrap();
    assert_eq!(m.dtype(), DType::BF16);
    close(&vals(&m), &[1.5, 3.5], 1e-3);
    let f = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap().cast(DType::F16).unwrap();
    close(&vals(&f.var(&[], 1, false).unwrap()), &[5.0 / 3.0], 1e-3);
    close(&vals(&f.max(&[0], false).unwrap()), &[3.0, 4.0], 0.0);
    // Integer mean is not defined.
    let e = i.mean(&[], false).unwrap_err();
    assert!(matches!(e, Error::InvalidDtype { arg: "x", .. }), "{e}");
}

#[test]
fn max_min_nan_propagates() {
    let x = t64(&[1.0, f64::NAN, 3.0], &[3]);
    assert!(x.max(&[], false).unwrap().item().unwrap().is_nan());
    assert!(x.min(&[], false).unwrap().item().unwrap().is_nan());
    assert_eq!(x.argmax(None, false).unwrap().to_vec::<i64>().unwrap(), vec![1]);
}

#[test]
fn argmax_argmin() {
    let x = t64(&[1.0, 5.0, 5.0, -2.0, 0.0, -2.0], &[2, 3]);
    let a = x.argmax(Some(1), false).unwrap();
    assert_eq!(a.dtype(), DType::I64);
    assert_eq!(a.to_vec::<i64>().unwrap(), vec![1, 1]);
    assert_eq!(x.argmin(Some(1), false).unwrap().to_vec::<i64>().unwrap(), vec![0, 0]);
    assert_eq!(x.argmax(Some(0), true).unwrap().shape(), &[1, 3]);
    assert_eq!(x.argmax(Some(-2), false).unwrap().to_vec::<i64>().unwrap(), vec![0, 0, 0]);
    assert_eq!(x.argmax(None, false).unwrap().to_vec::<i64>().unwrap(), vec![1]);
    assert_eq!(x.argmin(None, false).unwrap().to_vec::<i64>().unwrap(), vec![3]);
    let k = x.argmin(None, true).unwrap();
    assert_eq!(k.shape(), &[1, 1]);
    // Non-contiguous input: flattened index refers to the logical (row-major) order.
    let t = x.transpose(0, 1).unwrap();
    assert_eq!(t.argmin(None, false).unwrap().to_vec::<i64>().unwrap(), vec![1]);
    let i = Tensor::from_slice(&[4i32, 9, 9, 1], &[4]).unwrap();
    assert_eq!(i.argmax(Some(0), false).unwrap().to_vec::<i64>().unwrap(), vec![1]);
    let h = Tensor::from_slice(&[0.5f32, -1.0, 2.0], &[3]).unwrap().cast(DType::F16).unwrap();
    assert_eq!(h.argmin(Some(0), false).unwrap().to_vec::<i64>().unwrap(), vec![1]);
    // No gradient: the output is an integer tensor.
    let r = randn(&[3], 3);
    r.set_requires_grad(true);
    assert!(!r.argmax(None, false).unwrap().requires_grad());
}

#[test]
fn reduction_gradients() {
    let x = randn(&[3, 4, 5], 2);
    check(|t| t[0].mean(&[1], false), std::slice::from_ref(&x));
    check(|t| t[0].mean(&[0, 2], true), std::slice::from_ref(&x));
    check(|t| t[0].max(&[2], false), std::slice::from_ref(&x));
    check(|t| t[0].min(&[0, 1], true), std::slice::from_ref(&x));
    check(|t| t[0].prod(&[1], false), std::slice::from_ref(&x));
    check(|t| t[0].var(&[2], 1, false), std::slice::from_ref(&x));
    check(|t| t[0].var(&[], 0, true), std::slice::from_ref(&x));
    check(|t| t[0].std(&[0, 2], 1, false), std::slice::from_ref(&x));
    check(|t| t[0].logsumexp(&[1], true), std::slice::from_ref(&x));
    check(|t| t[0].logsumexp(&[], false), std::slice::from_ref(&x));
    // Non-contiguous inputs (permuted and sliced).
    check(|t| t[0].permute(&[2, 0, 1])?.slice(0, 1, 5, 2)?.var(&[2], 1, false), std::slice::from_ref(&x));
    check(|t| t[0].transpose(0, 2)?.prod(&[0], true), std::slice::from_ref(&x));
    check(|t| t[0].permute(&[1, 2, 0])?.max(&[1], false), std::slice::from_ref(&x));
    // Broadcasting into a reduction.
    let b = randn(&[4, 1], 3);
    check(|t| t[0].add(&t[1])?.logsumexp(&[2], false), &[x.clone(), b]);
}

#[test]
fn max_ties_share_the_gradient() {
    let x = t64(&[2.0, 5.0, 5.0, 1.0, 5.0, 0.0], &[2, 3]);
    x.set_requires_grad(true);
    x.max(&[], false).unwrap().backward().unwrap();
    close(&vals(&x.grad().unwrap().unwrap()), &[0.0, 1.0 / 3.0, 1.0 / 3.0, 0.0, 1.0 / 3.0, 0.0], 1e-15);
    let y = t64(&[2.0, 2.0, 1.0, 3.0], &[2, 2]);
    y.set_requires_grad(true);
    y.min(&[1], false).unwrap().sum_all().unwrap().backward().unwrap();
    close(&vals(&y.grad().unwrap().unwrap()), &[0.5, 0.5, 1.0, 0.0], 1e-15);
}

#[test]
fn prod_gradient_with_zeros() {
    let x = t64(&[2.0, 0.0, 3.0, 0.0, 0.0, 4.0, 1.5, 2.0, -1.0], &[3, 3]);
    x.set_requires_grad(true);
    x.prod(&[1], false).unwrap().sum_all().unwrap().backward().unwrap();
    // Row 0: one zero -> only the zero gets the product of the others. Row 1: two zeros -> all 0.
    close(&vals(&x.grad().unwrap().unwrap()), &[0.0, 6.0, 0.0, 0.0, 0.0, 0.0, -2.0, -1.5, 3.0], 1e-15);
    check(|t| t[0].prod(&[1], false), &[t64(&[2.0, 0.0, 3.0, 0.0, 0.0, 4.0, 1.5, 2.0, -1.0], &[3, 3])]);
}

#[test]
fn reduction_errors_name_the_argument() {
    let x = randn(&[2, 3], 4);
    let e = x.mean(&[2], false).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "axes", .. }), "{e}");
    assert!(e.to_string().contains("mean"), "{e}");
    let e = x.max(&[0, 0], false).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { arg: "axes", .. }), "{e}");
    let e = x.argmax(Some(5), false).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "axis", .. }), "{e}");
    let empty = Tensor::zeros(&[0, 3], DType::F32, Device::Cpu).unwrap();
    let e = empty.max(&[0], false).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { arg: "x", .. }), "{e}");
    assert_eq!(empty.max(&[1], false).unwrap().shape(), &[0]);
    let e = empty.argmin(None, false).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { arg: "x", .. }), "{e}");
    let e = x.var(&[], -1, false).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "correction", .. }), "{e}");
    let b = Tensor::from_slice(&[true, false], &[2]).unwrap();
    assert!(matches!(b.max(&[], false).unwrap_err(), Error::InvalidDtype { arg: "x", .. }));
}

#[test]
fn large_reductions_run_in_parallel_paths() {
    // Above the parallel threshold, along a non-innermost axis.
    let x = Tensor::rand_uniform(&[300, 257], -1.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(5)).unwrap();
    let v = vals(&x);
    let m = vals(&x.max(&[0], false).unwrap());
    for j in [0usize, 100, 256] {
        let r = (0..300).map(|i| v[i * 257 + j]).fold(f64::MIN, f64::max);
        assert_eq!(m[j], r);
    }
    let s = vals(&x.logsumexp(&[1], false).unwrap());
    let r0: f64 = v[..257].iter().map(|x| x.exp()).sum::<f64>().ln();
    close(&s[..1], &[r0], 1e-5);
}
