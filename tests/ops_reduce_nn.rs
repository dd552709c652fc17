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

// ------------------------------------------------------------------------------------------------
// nn: softmax, log_softmax, layer_norm, batch_norm, dropout

#[test]
fn softmax_values_and_stability() {
    let x = t64(&[1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0], &[2, 3]);
    let s = vals(&x.softmax(-1).unwrap());
    let z = 1.0 + 1f64.exp() + 2f64.exp();
    close(&s, &[1.0 / z, 1f64.exp() / z, 2f64.exp() / z, 0.5, 0.5, 0.0], 1e-14);
    let l = vals(&x.log_softmax(1).unwrap());
    close(&l[..3], &[-z.ln(), 1.0 - z.ln(), 2.0 - z.ln()], 1e-14);
    close(&l[3..5], &[-(2f64.ln()), -(2f64.ln())], 1e-12);
    assert!((l[5] + 2000.0 + 2f64.ln()).abs() < 1e-9, "{}", l[5]);
    // Along axis 0 of a non-contiguous view, against softmax of the contiguous transpose.
    let y = randn(&[4, 3], 8);
    let a = vals(&y.transpose(0, 1).unwrap().softmax(0).unwrap());
    let b = vals(&y.softmax(1).unwrap().transpose(0, 1).unwrap().contiguous().unwrap());
    close(&a, &b, 1e-14);
    // f32 and bf16 keep their dtype.
    let f = Tensor::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let sf = f.softmax(0).unwrap();
    assert_eq!(sf.dtype(), DType::F32);
    close(&vals(&sf), &[1.0 / z, 1f64.exp() / z, 2f64.exp() / z], 1e-6);
    let h = f.cast(DType::BF16).unwrap().log_softmax(-1).unwrap();
    assert_eq!(h.dtype(), DType::BF16);
    close(&vals(&h), &[-z.ln(), 1.0 - z.ln(), 2.0 - z.ln()], 1e-2);
    // A 0-d tensor is a single element.
    assert_eq!(t64(&[5.0], &[]).softmax(-1).unwrap().item().unwrap(), 1.0);
}

#[test]
fn softmax_gradients() {
    let x = randn(&[3, 4, 2], 9);
    check(|t| t[0].softmax(1), std::slice::from_ref(&x));
    check(|t| t[0].softmax(-1), std::slice::from_ref(&x));
    check(|t| t[0].log_softmax(0), std::slice::from_ref(&x));
    check(|t| t[0].permute(&[2, 0, 1])?.slice(2, 0, 4, 2)?.log_softmax(-1), std::slice::from_ref(&x));
    check(|t| t[0].transpose(0, 2)?.softmax(1), std::slice::from_ref(&x));
}

fn ref_layer_norm(x: &[f64], d: usize, w: Option<&[f64]>, b: Option<&[f64]>, eps: f64) -> Vec<f64> {
    let mut out = Vec::new();
    for row in x.chunks(d) {
        let m = row.iter().sum::<f64>() / d as f64;
        let v = row.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / d as f64;
        for (j, &xv) in row.iter().enumerate() {
            let mut y = (xv - m) / (v + eps).sqrt();
            if let Some(w) = w {
                y *= w[j];
            }
            if let Some(b) = b {
                y += b[j];
            }
            out.push(y);
        }
    }
    out
}

#[test]
fn layer_norm_values() {
    let x = randn(&[3, 2, 4], 10);
    let (w, b) = (randn(&[4], 11), randn(&[4], 12));
    let (xv, wv, bv) = (vals(&x), vals(&w), vals(&b));
    let out = x.layer_norm(Some(&w), Some(&b), 1, 1e-5).unwrap();
    close(&vals(&out), &ref_layer_norm(&xv, 4, Some(&wv), Some(&bv), 1e-5), 1e-12);
    close(&vals(&x.layer_norm(None, None, 2, 0.1).unwrap()), &ref_layer_norm(&xv, 8, None, None, 0.1), 1e-12);
    close(
        &vals(&x.layer_norm(None, Some(&b), 1, 1e-5).unwrap()),
        &ref_layer_norm(&xv, 4, None, Some(&bv), 1e-5),
        1e-12,
    );
    // f32 and a non-contiguous input.
    let xf = x.cast(DType::F32).unwrap().transpose(0, 1).unwrap();
    let of = xf.layer_norm(None, None, 1, 1e-5).unwrap();
    assert_eq!(of.dtype(), DType::F32);
    let xt = vals(&x.transpose(0, 1).unwrap().contiguous().unwrap());
    close(&vals(&of), &ref_layer_norm(&xt, 4, None, None, 1e-5), 1e-5);
    let oh = x.cast(DType::F16).unwrap().layer_norm(None, None, 1, 1e-5).unwrap();
    assert_eq!(oh.dtype(), DType::F16);
    close(&vals(&oh), &ref_layer_norm(&xv, 4, None, None, 1e-5), 1e-2);
}

#[test]
fn layer_norm_gradients() {
    let (x, w, b) = (randn(&[3, 2, 4], 13), randn(&[4], 14), randn(&[4], 15));
    check(|t| t[0].layer_norm(Some(&t[1]), Some(&t[2]), 1, 1e-5), &[x.clone(), w.clone(), b.clone()]);
    check(|t| t[0].layer_norm(None, None, 2, 1e-5), std::slice::from_ref(&x));
    check(|t| t[0].layer_norm(None, Some(&t[1]), 1, 1e-5), &[x.clone(), b]);
    let w2 = randn(&[3, 4], 16);
    check(|t| t[0].permute(&[1, 0, 2])?.layer_norm(Some(&t[1]), None, 2, 1e-3), &[x, w2]);
}

#[test]
fn layer_norm_errors() {
    let x = randn(&[2, 3], 17);
    let e = x.layer_norm(Some(&randn(&[2], 1)), None, 1, 1e-5).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "weight", .. }), "{e}");
    let e = x.layer_norm(None, None, 3, 1e-5).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "normalized_ndim", .. }), "{e}");
    let e = x.layer_norm(None, Some(&randn(&[3], 1).cast(DType::F32).unwrap()), 1, 1e-5).unwrap_err();
    assert!(matches!(e, Error::InvalidDtype { .. }), "{e}");
    assert!(e.to_string().contains("layer_norm"), "{e}");
}

#[test]
fn batch_norm_training_step_and_running_stats() {
    // x [N=2, C=2, L=2]
    let x = t64(&[1.0, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0], &[2, 2, 2]);
    let (w, b) = (t64(&[1.0, 2.0], &[2]), t64(&[0.0, 1.0], &[2]));
    let (rm, rv) = (t64(&[0.0, 0.0], &[2]), t64(&[1.0, 1.0], &[2]));
    let (out, nrm, nrv) = x.batch_norm(&w, &b, &rm, &rv, true, 0.1, 1e-5).unwrap();
    // Channel 0: {1,2,3,4}: mean 2.5, biased var 1.25, unbiased 5/3. Channel 1: {10,20,30,40}: 25, 125, 500/3.
    close(&vals(&nrm), &[0.25, 2.5], 1e-14);
    close(&vals(&nrv), &[0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 500.0 / 3.0], 1e-14);
    let (s0, s1) = ((1.25f64 + 1e-5).sqrt(), (125f64 + 1e-5).sqrt());
    let expect = [
        (1.0 - 2.5) / s0,
        (2.0 - 2.5) / s0,
        2.0 * (10.0 - 25.0) / s1 + 1.0,
        2.0 * (20.0 - 25.0) / s1 + 1.0,
        (3.0 - 2.5) / s0,
        (4.0 - 2.5) / s0,
        2.0 * (30.0 - 25.0) / s1 + 1.0,
        2.0 * (40.0 - 25.0) / s1 + 1.0,
    ];
    close(&vals(&out), &expect, 1e-12);
    // Inference uses the running statistics and returns them unchanged.
    let (out, r1, r2) = x.batch_norm(&w, &b, &nrm, &nrv, false, 0.1, 1e-5).unwrap();
    close(&vals(&r1), &vals(&nrm), 0.0);
    close(&vals(&r2), &vals(&nrv), 0.0);
    let v = vals(&nrv);
    close(&vals(&out)[..2], &[(1.0 - 0.25) / (v[0] + 1e-5).sqrt(), (2.0 - 0.25) / (v[0] + 1e-5).sqrt()], 1e-12);
    // f32, 4-D input.
    let x4 = Tensor::rand_normal(&[4, 3, 2, 5], 1.0, 2.0, DType::F32, Device::Cpu, &mut Generator::new(3)).unwrap();
    let c3 = |v: f64| Tensor::full(&[3], v, DType::F32, Device::Cpu).unwrap();
    let (o4, m4, _) = x4.batch_norm(&c3(1.0), &c3(0.0), &c3(0.0), &c3(1.0), true, 1.0, 1e-5).unwrap();
    assert_eq!(o4.dtype(), DType::F32);
    // With momentum 1 the new running mean is the batch mean; the output is normalised per channel.
    let means = vals(&x4.mean(&[0, 2, 3], false).unwrap());
    close(&vals(&m4), &means, 1e-5);
    close(&vals(&o4.mean(&[0, 2, 3], false).unwrap()), &[0.0; 3], 1e-5);
    close(&vals(&o4.var(&[0, 2, 3], 0, false).unwrap()), &[1.0; 3], 1e-4);
}

#[test]
fn batch_norm_gradients() {
    let (x, w, b) = (randn(&[3, 2, 4], 20), randn(&[2], 21), randn(&[2], 22));
    let (rm, rv) = (randn(&[2], 23), randn(&[2], 24).mul(&randn(&[2], 24)).unwrap().add(&t64(&[0.5], &[1])).unwrap());
    for training in [true, false] {
        let (rm, rv) = (rm.clone(), rv.clone());
        check(
            move |t| Ok(t[0].batch_norm(&t[1], &t[2], &rm, &rv, training, 0.1, 1e-5)?.0),
            &[x.clone(), w.clone(), b.clone()],
        );
    }
    // 2-D input and a non-contiguous x.
    let (rm2, rv2) = (t64(&[0.0; 4], &[4]), t64(&[1.0; 4], &[4]));
    check(
        |t| Ok(t[0].transpose(0, 1)?.batch_norm(&t[1], &t[2], &rm2, &rv2, true, 0.1, 1e-5)?.0),
        &[randn(&[4, 5], 25), randn(&[4], 26), randn(&[4], 27)],
    );
}

#[test]
fn batch_norm_errors() {
    let x = randn(&[2, 3, 4], 30);
    let c = |n: usize| t64(&vec![1.0; n], &[n]);
    let e = x.batch_norm(&c(2), &c(3), &c(3), &c(3), true, 0.1, 1e-5).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "weight", .. }), "{e}");
    let e = x.batch_norm(&c(3), &c(3), &c(3), &c(4), true, 0.1, 1e-5).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "running_var", .. }), "{e}");
    let e = randn(&[3], 1).batch_norm(&c(3), &c(3), &c(3), &c(3), true, 0.1, 1e-5).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "x", .. }), "{e}");
    let one = randn(&[1, 3], 1);
    let e = one.batch_norm(&c(3), &c(3), &c(3), &c(3), true, 0.1, 1e-5).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { arg: "x", .. }), "{e}");
    assert!(one.batch_norm(&c(3), &c(3), &c(3), &c(3), false, 0.1, 1e-5).is_ok());
}

#[test]
fn dropout_is_seeded_scaled_and_differentiable() {
    let x = Tensor::ones(&[1000], DType::F64, Device::Cpu).unwrap();
    let a = vals(&x.dropout(0.3, true, 42).unwrap());
    let b = vals(&x.dropout(0.3, true, 42).unwrap());
    assert_eq!(a, b);
    assert_ne!(a, vals(&x.dropout(0.3, true, 43).unwrap()));
    // The mask is the i-th uniform draw of Generator::new(seed) against p.
    let mut g = Generator::new(42);
    for &v in &a {
        let keep = g.uniform() > 0.3;
        assert_eq!(v, if keep { 1.0 / 0.7 } else { 0.0 });
    }
    let kept = a.iter().filter(|&&v| v != 0.0).count();
    assert!((600..800).contains(&kept), "{kept}");
    // Inference, p = 0 and p = 1.
    assert_eq!(vals(&x.dropout(0.3, false, 42).unwrap()), vec![1.0; 1000]);
    assert_eq!(vals(&x.dropout(0.0, true, 42).unwrap()), vec![1.0; 1000]);
    assert_eq!(vals(&x.dropout(1.0, true, 42).unwrap()), vec![0.0; 1000]);
    // f32 and bf16, non-contiguous: the mask follows the logical row-major order.
    let y = Tensor::ones(&[40, 30], DType::F32, Device::Cpu).unwrap().transpose(0, 1).unwrap();
    let yf = y.dropout(0.5, true, 7).unwrap();
    assert_eq!(yf.dtype(), DType::F32);
    let ones = Tensor::ones(&[30, 40], DType::F32, Device::Cpu).unwrap();
    assert_eq!(vals(&yf), vals(&ones.dropout(0.5, true, 7).unwrap()));
    let yb = y.cast(DType::BF16).unwrap().dropout(0.5, true, 7).unwrap();
    assert_eq!(vals(&yb), vals(&yf));
    // Gradient: g · mask / (1 - p).
    let w = randn(&[5, 7], 31);
    w.set_requires_grad(true);
    let out = w.dropout(0.4, true, 9).unwrap();
    out.sum_all().unwrap().backward().unwrap();
    let mask: Vec<f64> = vals(&Tensor::ones(&[5, 7], DType::F64, Device::Cpu).unwrap().dropout(0.4, true, 9).unwrap());
    close(&vals(&w.grad().unwrap().unwrap()), &mask, 1e-15);
    check(|t| t[0].permute(&[1, 0])?.dropout(0.4, true, 9), &[randn(&[5, 7], 32)]);
    check(|t| t[0].dropout(0.4, false, 9), &[randn(&[5, 7], 33)]);
    let e = x.dropout(1.5, true, 1).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "p", .. }), "{e}");
}

// ------------------------------------------------------------------------------------------------
// Losses

fn idx(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

/// Reference cross-entropy of one row with label smoothing.
fn ref_ce(row: &[f64], t: usize, eps: f64) -> f64 {
    let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
    let c = row.len() as f64;
    (1.0 - eps) * (lse - row[t]) + eps * row.iter().map(|x| lse - x).sum::<f64>() / c
}

#[test]
fn cross_entropy_values() {
    let x = t64(&[1.0, 2.0, 3.0], &[1, 3]);
    let l = x.cross_entropy(&idx(&[2], &[1])).unwrap();
    assert_eq!(l.shape(), &[] as &[usize]);
    close(&[l.item().unwrap()], &[0.40760596444438], 1e-13);
    // Unbatched [C] with a 0-d target, f32 and f16.
    let xf = Tensor::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let lf = xf.cross_entropy(&idx(&[2], &[])).unwrap();
    assert_eq!(lf.dtype(), DType::F32);
    close(&[lf.item().unwrap()], &[0.40760596444438], 1e-6);
    let lh = xf.cast(DType::F16).unwrap().cross_entropy(&idx(&[0], &[])).unwrap();
    assert_eq!(lh.dtype(), DType::F16);
    close(&[lh.item().unwrap()], &[2.40760596444438], 1e-3);
    // Label smoothing 0.1: 0.9·(lse − x_t) + 0.1·mean_j(lse − x_j).
    let lse = 3.40760596444438f64;
    let smooth = 0.9 * (lse - 3.0) + 0.1 * (3.0 * lse - 6.0) / 3.0;
    let ls = x.cross_entropy_with(&idx(&[2], &[1]), 0.1, -100, "mean").unwrap();
    close(&[ls.item().unwrap()], &[smooth], 1e-13);
    // ignore_index: ignored rows contribute 0 and leave the mean's denominator.
    let big = randn(&[4, 5], 40);
    let v = vals(&big);
    let t = idx(&[1, -100, 4, 0], &[4]);
    let per: Vec<f64> = [(0, 1), (2, 4), (3, 0)].iter().map(|&(r, c)| ref_ce(&v[r * 5..r * 5 + 5], c, 0.2)).collect();
    let none = vals(&big.cross_entropy_with(&t, 0.2, -100, "none").unwrap());
    close(&none, &[per[0], 0.0, per[1], per[2]], 1e-12);
    let mean = big.cross_entropy_with(&t, 0.2, -100, "mean").unwrap().item().unwrap();
    close(&[mean], &[per.iter().sum::<f64>() / 3.0], 1e-12);
    let sum = big.cross_entropy_with(&t, 0.2, -100, "sum").unwrap().item().unwrap();
    close(&[sum], &[per.iter().sum::<f64>()], 1e-12);
    let custom = big.cross_entropy_with(&idx(&[1, 3, 3, 0], &[4]), 0.0, 3, "mean").unwrap().item().unwrap();
    close(&[custom], &[(ref_ce(&v[..5], 1, 0.0) + ref_ce(&v[15..], 0, 0.0)) / 2.0], 1e-12);
    // Stable with huge logits.
    let huge = t64(&[1000.0, 0.0, -1000.0], &[1, 3]);
    close(&[huge.cross_entropy(&idx(&[1], &[1])).unwrap().item().unwrap()], &[1000.0], 1e-12);
    // Spatial [N, C, d]: equals the per-position [N·d, C] problem.
    let sp = randn(&[2, 3, 4], 41);
    let st = idx(&[0, 1, 2, 1, 2, 2, 0, -100], &[2, 4]);
    let flat = sp.permute(&[0, 2, 1]).unwrap().reshape(&[8, 3]).unwrap();
    let a = vals(&sp.cross_entropy_with(&st, 0.1, -100, "none").unwrap());
    let b = vals(&flat.cross_entropy_with(&st.reshape(&[8]).unwrap(), 0.1, -100, "none").unwrap());
    close(&a, &b, 1e-12);
}

#[test]
fn cross_entropy_and_nll_gradients() {
    let x = randn(&[4, 5], 42);
    let t = idx(&[1, -100, 4, 0], &[4]);
    for red in ["mean", "sum", "none"] {
        check(|v| v[0].cross_entropy_with(&t, 0.15, -100, red), std::slice::from_ref(&x));
    }
    check(|v| v[0].transpose(0, 1)?.cross_entropy(&idx(&[0, 1, 2, 3, 3], &[5])), std::slice::from_ref(&x));
    let sp = randn(&[2, 3, 4], 43);
    let st = idx(&[0, 1, 2, 1, 2, 2, 0, -100], &[2, 4]);
    check(|v| v[0].cross_entropy_with(&st, 0.1, -100, "mean"), std::slice::from_ref(&sp));
    check(|v| v[0].log_softmax(1)?.nll_loss(&st), std::slice::from_ref(&sp));
    check(|v| v[0].nll_loss(&t), std::slice::from_ref(&x));
    // cross_entropy = nll_loss ∘ log_softmax.
    let a = x.cross_entropy(&t).unwrap().item().unwrap();
    let b = x.log_softmax(1).unwrap().nll_loss(&t).unwrap().item().unwrap();
    close(&[a], &[b], 1e-13);
}

#[test]
fn nll_loss_values() {
    let lp = t64(&[-0.5, -1.0, -2.0, -0.1, -3.0, -0.7], &[2, 3]);
    close(&[lp.nll_loss(&idx(&[2, 0], &[2])).unwrap().item().unwrap()], &[(2.0 + 0.1) / 2.0], 1e-15);
    close(&[lp.nll_loss(&idx(&[-100, 1], &[2])).unwrap().item().unwrap()], &[3.0], 1e-15);
    let i32t = Tensor::from_slice(&[1i32, 2], &[2]).unwrap();
    close(&[lp.nll_loss(&i32t).unwrap().item().unwrap()], &[(1.0 + 0.7) / 2.0], 1e-15);
}

#[test]
fn mse_l1_values_and_gradients() {
    let (x, y) = (t64(&[1.0, 2.0, 3.0, 4.0], &[2, 2]), t64(&[1.5, 2.0, 1.0, 5.0], &[2, 2]));
    close(&[x.mse_loss(&y).unwrap().item().unwrap()], &[(0.25 + 0.0 + 4.0 + 1.0) / 4.0], 1e-15);
    close(&[x.l1_loss(&y).unwrap().item().unwrap()], &[(0.5 + 0.0 + 2.0 + 1.0) / 4.0], 1e-15);
    let xf = x.cast(DType::BF16).unwrap();
    let lb = xf.mse_loss(&y.cast(DType::BF16).unwrap()).unwrap();
    assert_eq!(lb.dtype(), DType::BF16);
    close(&[lb.item().unwrap()], &[1.3125], 1e-2);
    // l1's gradient at a zero difference is 0 (sign(0)).
    x.set_requires_grad(true);
    x.l1_loss(&y).unwrap().backward().unwrap();
    close(&vals(&x.grad().unwrap().unwrap()), &[-0.25, 0.0, 0.25, -0.25], 1e-15);
    let (a, b) = (randn(&[3, 4], 50), randn(&[3, 4], 51));
    check(|v| v[0].mse_loss(&v[1]), &[a.clone(), b.clone()]);
    check(|v| v[0].l1_loss(&v[1]), &[a.clone(), b.clone()]);
    check(|v| v[0].transpose(0, 1)?.mse_loss(&v[1].transpose(0, 1)?), &[a.clone(), b.clone()]);
    let none = |op: &str, v: &[Tensor]| {
        deepseek::ops::call_named(op, &[&v[0], &v[1]], &[("reduction", deepseek::ops::Attr::Str("none".into()))])
            .map(|mut o| o.remove(0))
    };
    check(|v| none("mse_loss", v), &[a.clone(), b.clone()]);
    check(|v| none("l1_loss", v), &[a.clone(), b.clone()]);
    let s = deepseek::ops::call_named("mse_loss", &[&a, &b], &[("reduction", deepseek::ops::Attr::Str("sum".into()))])
        .unwrap()
        .remove(0);
    close(&[s.item().unwrap()], &[a.mse_loss(&b).unwrap().item().unwrap() * 12.0], 1e-12);
}

fn ref_bce(x: f64, y: f64, p: f64) -> f64 {
    let s = 1.0 / (1.0 + (-x).exp());
    -(p * y * s.ln() + (1.0 - y) * (1.0 - s).ln())
}

#[test]
fn bce_with_logits_values_and_gradients() {
    let x = t64(&[0.5, -1.0, 2.0, -3.0], &[2, 2]);
    let y = t64(&[1.0, 0.0, 0.3, 1.0], &[2, 2]);
    let (xv, yv) = (vals(&x), vals(&y));
    let expect: f64 = (0..4).map(|i| ref_bce(xv[i], yv[i], 1.0)).sum::<f64>() / 4.0;
    close(&[x.bce_with_logits(&y).unwrap().item().unwrap()], &[expect], 1e-13);
    // Stable for large logits: log(1 + e^-1000) does not overflow.
    let big = t64(&[1000.0, -1000.0], &[2]);
    let l = big.bce_with_logits(&t64(&[0.0, 0.0], &[2])).unwrap().item().unwrap();
    close(&[l], &[500.0], 1e-12);
    // pos_weight [2] broadcast over the last dim.
    let pw = t64(&[2.0, 0.5], &[2]);
    let call = |v: &[Tensor], red: &str| {
        let ins: Vec<&Tensor> = v.iter().collect();
        deepseek::ops::call_named(
            "binary_cross_entropy_with_logits",
            &ins,
            &[("reduction", deepseek::ops::Attr::Str(red.into()))],
        )
        .map(|mut o| o.remove(0))
    };
    let got = vals(&call(&[x.clone(), y.clone(), pw.clone()], "none").unwrap());
    let want: Vec<f64> = (0..4).map(|i| ref_bce(xv[i], yv[i], [2.0, 0.5][i % 2])).collect();
    close(&got, &want, 1e-13);
    let f = x.cast(DType::F32).unwrap().bce_with_logits(&y.cast(DType::F32).unwrap()).unwrap();
    assert_eq!(f.dtype(), DType::F32);
    close(&[f.item().unwrap()], &[expect], 1e-6);
    let (a, b) = (
        randn(&[3, 4], 60),
        Tensor::rand_uniform(&[3, 4], 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(61)).unwrap(),
    );
    check(|v| v[0].bce_with_logits(&v[1]), &[a.clone(), b.clone()]);
    let pw = Tensor::rand_uniform(&[4], 0.5, 2.0, DType::F64, Device::Cpu, &mut Generator::new(62)).unwrap();
    for red in ["mean", "sum", "none"] {
        check(|v| call(v, red), &[a.clone(), b.clone(), pw.clone()]);
    }
    check(|v| call(&[v[0].transpose(0, 1)?, v[1].transpose(0, 1)?], "sum"), &[a, b]);
}

#[test]
fn loss_errors_name_the_argument() {
    let x = randn(&[2, 3], 70);
    let e = x.cross_entropy(&idx(&[0, 3], &[2])).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "target", .. }), "{e}");
    assert!(e.to_string().contains("cross_entropy"), "{e}");
    let e = x.cross_entropy(&idx(&[0, 1, 2], &[3])).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "target", .. }), "{e}");
    let e = x.cross_entropy(&t64(&[0.0, 1.0], &[2])).unwrap_err();
    assert!(matches!(e, Error::InvalidDtype { arg: "target", .. }), "{e}");
    let e = x.cross_entropy_with(&idx(&[0, 1], &[2]), 1.5, -100, "mean").unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "label_smoothing", .. }), "{e}");
    let e = x.cross_entropy_with(&idx(&[0, 1], &[2]), 0.0, -100, "avg").unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { arg: "reduction", .. }), "{e}");
    let e = x.mse_loss(&randn(&[3, 2], 1)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "target", .. }), "{e}");
    let e = x.l1_loss(&x.cast(DType::F32).unwrap()).unwrap_err();
    assert!(matches!(e, Error::InvalidDtype { arg: "target", .. }), "{e}");
    let i = idx(&[1, 2], &[2]);
    let e = i.bce_with_logits(&i).unwrap_err();
    assert!(matches!(e, Error::InvalidDtype { arg: "input", .. }), "{e}");
    let e = deepseek::ops::call_named("binary_cross_entropy_with_logits", &[&x, &x, &randn(&[2], 1)], &[]).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "pos_weight", .. }), "{e}");
}

#[test]
fn large_inputs_take_the_parallel_paths() {
    // softmax over a non-innermost axis, 300·257 elements.
    let x = Tensor::rand_uniform(&[300, 257], -3.0, 3.0, DType::F32, Device::Cpu, &mut Generator::new(80)).unwrap();
    let v = vals(&x);
    let s = vals(&x.softmax(0).unwrap());
    for j in [0usize, 131, 256] {
        let z: f64 = (0..300).map(|i| v[i * 257 + j].exp()).sum();
        close(&[s[7 * 257 + j]], &[v[7 * 257 + j].exp() / z], 1e-5);
    }
    // dropout: the mask of element i is the i-th draw, also across parallel chunks.
    let ones = Tensor::ones(&[70000], DType::F32, Device::Cpu).unwrap();
    let d = vals(&ones.dropout(0.25, true, 5).unwrap());
    let mut g = Generator::new(5);
    assert!(d.iter().all(|&o| o == if g.uniform() > 0.25 { (1.0f64 / 0.75) as f32 as f64 } else { 0.0 }));
    // layer_norm weight/bias gradients summed over 200 rows of 200 (parallel fold).
    let y = randn(&[200, 200], 81);
    let (w, b) = (randn(&[200], 82), randn(&[200], 83));
    for t in [&y, &w, &b] {
        t.set_requires_grad(true);
    }
    let out = y.layer_norm(Some(&w), Some(&b), 1, 1e-5).unwrap();
    out.sum_all().unwrap().backward().unwrap();
    close(&vals(&b.grad().unwrap().unwrap()), &[200.0; 200], 1e-12);
    let normed = vals(&y.detach().layer_norm(None, None, 1, 1e-5).unwrap());
    let gw: Vec<f64> = (0..200).map(|j| (0..200).map(|i| normed[i * 200 + j]).sum()).collect();
    close(&vals(&w.grad().unwrap().unwrap()), &gw, 1e-10);
    // batch_norm over 64·4·160 elements: Σ x̂² = M per channel.
    let z = randn(&[64, 4, 160], 84);
    let (bw, bb) = (t64(&[1.0; 4], &[4]), t64(&[0.0; 4], &[4]));
    for t in [&z, &bw, &bb] {
        t.set_requires_grad(true);
    }
    let (o, _, _) = z.batch_norm(&bw, &bb, &t64(&[0.0; 4], &[4]), &t64(&[1.0; 4], &[4]), true, 0.1, 0.0).unwrap();
    o.mul(&o).unwrap().sum_all().unwrap().backward().unwrap();
    close(&vals(&bw.grad().unwrap().unwrap()), &[2.0 * 10240.0; 4], 1e-9);
    close(&vals(&bb.grad().unwrap().unwrap()), &[0.0; 4], 1e-9);
    // cross_entropy over 20000 samples.
    let logits = randn(&[20000, 3], 85);
    let lv = vals(&logits);
    let tv: Vec<i64> = (0..20000).map(|i| (i % 3) as i64).collect();
    let per = vals(&logits.cross_entropy_with(&idx(&tv, &[20000]), 0.0, -100, "none").unwrap());
    for i in [0usize, 9999, 19999] {
        close(&[per[i]], &[ref_ce(&lv[i * 3..i * 3 + 3], i % 3, 0.0)], 1e-12);
    }
}

#[test]
fn sums_over_leading_axes_add_whole_rows() {
    // The row-adding path (leading axes of a packed tensor, rows of >= 16): more than one
    // block of 64 rows, f64 and f32, one and two leading axes, against a plain loop.
    let x = randn(&[3, 70, 20], 41);
    let v = vals(&x);
    let want0: Vec<f64> = (0..70 * 20).map(|j| (0..3).map(|i| v[i * 1400 + j]).sum()).collect();
    close(&vals(&x.sum(&[0], false).unwrap()), &want0, 1e-12);
    let want01: Vec<f64> = (0..20).map(|j| (0..210).map(|i| v[i * 20 + j]).sum()).collect();
    close(&vals(&x.sum(&[0, 1], false).unwrap()), &want01, 1e-12);
    close(&vals(&x.cast(DType::F32).unwrap().sum(&[0, 1], true).unwrap()), &want01, 1e-5);
    assert_eq!(x.sum(&[0, 1], true).unwrap().shape(), &[1, 1, 20]);
    // The same sums taken through a non-contiguous view go the general way and agree.
    let xt = x.permute(&[1, 0, 2]).unwrap();
    close(&vals(&xt.sum(&[0, 1], false).unwrap()), &want01, 1e-12);
}

/// bf16 and f16 sums over leading axes (bias gradients under autocast) add in f32 and round
/// once: within one output ulp of the exact sum, and the same on one thread as on several.
#[test]
fn half_precision_leading_sums_round_once() {
    for (dtype, mant) in [(DType::BF16, 8), (DType::F16, 11)] {
        for shape in [vec![2000usize, 40], vec![3, 20000], vec![7, 5, 33], vec![1, 17]] {
            let x = randn(&shape, 11).cast(dtype).unwrap();
            let exact = randn(&shape, 11).cast(dtype).unwrap().raw_cast(DType::F64).unwrap();
            let axes: Vec<i64> = (0..shape.len() as i64 - 1).collect();
            let want = vals(&exact.sum(&axes, false).unwrap());
            let got = x.sum(&axes, false).unwrap();
            assert_eq!(got.dtype(), dtype);
            for (g, w) in vals(&got).iter().zip(&want) {
                let ulp = 2f64.powi(w.abs().max(1e-3).log2().floor() as i32 - (mant - 1));
                assert!((g - w).abs() <= ulp, "{dtype} {shape:?}: {g} vs exact {w}");
            }
            let before = deepseek::runtime::num_threads();
            deepseek::runtime::set_num_threads(1).unwrap();
            let serial = x.sum(&axes, false).unwrap();
            deepseek::runtime::set_num_threads(before).unwrap();
            assert_eq!(vals(&serial), vals(&got), "{dtype} {shape:?}: thread count changed the sum");
        }
    }
}

/// f32 sums over leading axes give the same bits on one thread as on several, whether the
/// work is split by row blocks (many rows) or by columns (a few wide rows).
#[test]
fn leading_sums_do_not_depend_on_the_thread_count() {
    for shape in [vec![5000usize, 30], vec![3, 50000], vec![2, 3, 20000]] {
        let x = randn(&shape, 12).cast(DType::F32).unwrap();
        let axes: Vec<i64> = (0..shape.len() as i64 - 1).collect();
        let threaded = x.sum(&axes, false).unwrap();
        let before = deepseek::runtime::num_threads();
        deepseek::runtime::set_num_threads(1).unwrap();
        let serial = x.sum(&axes, false).unwrap();
        deepseek::runtime::set_num_threads(before).unwrap();
        let bits = |t: &Tensor| t.to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&threaded), bits(&serial), "{shape:?}");
        let want = vals(&x.raw_cast(DType::F64).unwrap().sum(&axes, false).unwrap());
        close(&vals(&threaded), &want, 1e-5);
    }
}
