//! Matrix products, convolution and pooling: forward values against f64 reference loops, gradients, dtypes, errors.

use deepseek::autograd::gradcheck;
use deepseek::ops::{Attr, call_named};
use deepseek::{DType, Device, Error, Generator, Tensor};

const TOL: f64 = 1e-6;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.cast(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

fn close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= rel * scale, "element {i}: got {g}, want {w} (scale {scale})");
    }
}

fn check_grad(f: impl Fn(&[Tensor]) -> deepseek::Result<Tensor>, inputs: &[Tensor]) {
    let err = gradcheck(f, inputs, 1e-6).unwrap();
    assert!(err < TOL, "gradcheck error {err}");
}

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// NumPy matmul on f64 vectors, by the book.
fn ref_matmul(a: &[f64], sa: &[usize], b: &[f64], sb: &[usize]) -> (Vec<f64>, Vec<usize>) {
    let pa: Vec<usize> = if sa.len() == 1 { vec![1, sa[0]] } else { sa.to_vec() };
    let pb: Vec<usize> = if sb.len() == 1 { vec![sb[0], 1] } else { sb.to_vec() };
    let (n, k, m) = (pa[pa.len() - 2], pa[pa.len() - 1], pb[pb.len() - 1]);
    let (ba, bb) = (&pa[..pa.len() - 2], &pb[..pb.len() - 2]);
    let nb = ba.len().max(bb.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= nb { s[i + s.len() - nb] } else { 1 };
    let batch: Vec<usize> = (0..nb).map(|i| dim(ba, i).max(dim(bb, i))).collect();
    let count: usize = batch.iter().product();
    let mut out = Vec::new();
    for bi in 0..count {
        let idx: Vec<usize> = strides(&batch).iter().zip(&batch).map(|(&s, &d)| bi / s % d).collect();
        let flat = |s: &[usize]| -> usize {
            let st = strides(s);
            (0..s.len()).map(|j| if s[j] == 1 { 0 } else { idx[j + nb - s.len()] * st[j] }).sum()
        };
        let (oa, ob) = (flat(ba) * n * k, flat(bb) * k * m);
        for i in 0..n {
            for j in 0..m {
                out.push((0..k).map(|p| a[oa + i * k + p] * b[ob + p * m + j]).sum());
            }
        }
    }
    let mut shape = batch;
    if sa.len() > 1 {
        shape.push(n);
    }
    if sb.len() > 1 {
        shape.push(m);
    }
    (out, shape)
}

fn check_matmul(a: &Tensor, b: &Tensor) {
    let out = a.matmul(b).unwrap();
    let (want, shape) = ref_matmul(&vals(a), a.shape(), &vals(b), b.shape());
    assert_eq!(out.shape(), shape.as_slice(), "{:?} x {:?}", a.shape(), b.shape());
    close(&vals(&out), &want, 1e-12);
}

#[test]
fn matmul_matches_reference_for_numpy_shapes() {
    let shapes: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[4, 5]),
        (&[4], &[4]),
        (&[4], &[4, 5]),
        (&[3, 4], &[4]),
        (&[2, 3, 4], &[4, 5]),
        (&[2, 1, 3, 4], &[3, 4, 2]),
        (&[4], &[2, 4, 5]),
        (&[2, 3, 4], &[4]),
        (&[1, 4], &[3, 4, 2]),
        (&[64, 8, 8], &[64, 8, 8]),
        (&[16, 8, 8], &[8, 8]),
        (&[2, 0], &[0, 3]),
        (&[0, 3], &[3, 2]),
    ];
    for (i, (sa, sb)) in shapes.iter().enumerate() {
        check_matmul(&randn(sa, 10 + i as u64), &randn(sb, 50 + i as u64));
    }
    // k = 0 gives zeros.
    assert_eq!(vals(&randn(&[2, 0], 1).matmul(&randn(&[0, 3], 2)).unwrap()), vec![0.0; 6]);
}

#[test]
fn matmul_reads_views_without_copying_them_first() {
    // Transposed, permuted, sliced and expanded operands.
    let at = randn(&[4, 3], 1).transpose(0, 1).unwrap();
    let bt = randn(&[5, 4], 2).transpose(0, 1).unwrap();
    check_matmul(&at, &bt);
    let ap = randn(&[4, 2, 3], 3).permute(&[1, 2, 0]).unwrap();
    check_matmul(&ap, &randn(&[4, 2], 4));
    let sliced = randn(&[6, 8], 5).slice(1, 1, 8, 2).unwrap();
    check_matmul(&sliced, &randn(&[4, 3], 6));
    let expanded = randn(&[1, 4], 7).expand(&[3, 4]).unwrap();
    check_matmul(&expanded, &randn(&[4, 2], 8));
    let row_bcast = randn(&[1, 1, 4], 9).expand(&[5, 3, 4]).unwrap();
    check_matmul(&row_bcast, &randn(&[4, 2], 10));
    let big_t = randn(&[40, 30, 2], 11).permute(&[2, 1, 0]).unwrap();
    check_matmul(&big_t, &randn(&[2, 40, 7], 12));
}

#[test]
fn matmul_dtypes() {
    // f32 agrees with f64 at n = 256.
    let (a, b) = (randn(&[256, 256], 1), randn(&[256, 256], 2));
    let want = vals(&a.matmul(&b).unwrap());
    let got = a.cast(DType::F32).unwrap().matmul(&b.cast(DType::F32).unwrap()).unwrap();
    assert_eq!(got.dtype(), DType::F32);
    close(&vals(&got), &want, 1e-4);
    // f16 / bf16 through f32: compare with f64 products of the rounded inputs.
    for (dt, rel) in [(DType::F16, 2e-3), (DType::BF16, 1e-2)] {
        let (x, y) = (randn(&[3, 17, 9], 3).cast(dt).unwrap(), randn(&[9, 5], 4).cast(dt).unwrap());
        let out = x.matmul(&y).unwrap();
        assert_eq!(out.dtype(), dt);
        let (want, _) = ref_matmul(&vals(&x), x.shape(), &vals(&y), y.shape());
        close(&vals(&out), &want, rel);
    }
    // Integers: exact, wrapping.
    let a = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
    let b = Tensor::from_slice(&[7i64, 8, 9, 10, 11, 12], &[3, 2]).unwrap();
    assert_eq!(a.matmul(&b).unwrap().to_vec::<i64>().unwrap(), vec![58, 64, 139, 154]);
    let at = a.transpose(0, 1).unwrap();
    assert_eq!(at.matmul(&a).unwrap().to_vec::<i64>().unwrap(), vec![17, 22, 27, 22, 29, 36, 27, 36, 45]);
    let v = Tensor::from_slice(&[1i32, -2, 3], &[3]).unwrap();
    assert_eq!(v.matmul(&v).unwrap().to_vec::<i32>().unwrap(), vec![14]);
    let u = Tensor::from_slice(&[16u8, 16], &[1, 2]).unwrap();
    assert_eq!(u.matmul(&u.transpose(0, 1).unwrap()).unwrap().to_vec::<u8>().unwrap(), vec![0]);
}

#[test]
fn matmul_gradients() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[4, 2]),
        (&[4], &[4, 3]),
        (&[3, 4], &[4]),
        (&[4], &[4]),
        (&[2, 1, 3, 4], &[3, 4, 2]),
        (&[4], &[2, 4, 3]),
        (&[2, 3, 4], &[4, 2]),
    ];
    for (i, (sa, sb)) in cases.iter().enumerate() {
        check_grad(|x| x[0].matmul(&x[1]), &[randn(sa, 20 + i as u64), randn(sb, 40 + i as u64)]);
    }
    // Non-contiguous operands inside the differentiated function.
    check_grad(
        |x| x[0].transpose(0, 1)?.matmul(&x[1].permute(&[2, 0, 1])?),
        &[randn(&[4, 3], 60), randn(&[4, 3, 2], 61)],
    );
}

#[test]
fn bmm_values_gradients_and_errors() {
    let (a, b) = (randn(&[3, 2, 4], 1), randn(&[3, 4, 5], 2));
    let out = a.bmm(&b).unwrap();
    assert_eq!(out.shape(), &[3, 2, 5]);
    close(&vals(&out), &ref_matmul(&vals(&a), a.shape(), &vals(&b), b.shape()).0, 1e-12);
    check_grad(|x| x[0].bmm(&x[1]), &[a.clone(), b.clone()]);
    check_grad(|x| x[0].transpose(1, 2)?.bmm(&x[1]), &[randn(&[2, 4, 3], 3), randn(&[2, 4, 2], 4)]);
    let e = randn(&[2, 4], 5).bmm(&b).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "a", .. }), "{e}");
    let e = a.bmm(&randn(&[2, 4, 5], 6)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "b", .. }), "{e}");
    let e = a.bmm(&randn(&[3, 3, 5], 6)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "b", .. }) && e.to_string().contains("bmm"), "{e}");
}

#[test]
fn linear_values_and_gradients() {
    let (x, w, b) = (randn(&[2, 3, 4], 1), randn(&[5, 4], 2), randn(&[5], 3));
    let out = x.linear(&w, Some(&b)).unwrap();
    assert_eq!(out.shape(), &[2, 3, 5]);
    let (xw, _) = ref_matmul(&vals(&x), x.shape(), &vals(&w.transpose(0, 1).unwrap()), &[4, 5]);
    let bv = vals(&b);
    let want: Vec<f64> = xw.iter().enumerate().map(|(i, v)| v + bv[i % 5]).collect();
    close(&vals(&out), &want, 1e-12);
    close(&vals(&x.linear(&w, None).unwrap()), &xw, 1e-12);
    // Weight given as a transposed view, bias as a strided slice, x 1-D.
    let wt = randn(&[4, 5], 4).transpose(0, 1).unwrap();
    let bs = randn(&[10], 5).slice(0, 0, 10, 2).unwrap();
    let x1 = randn(&[4], 6);
    let got = x1.linear(&wt, Some(&bs)).unwrap();
    assert_eq!(got.shape(), &[5]);
    let (xw, _) = ref_matmul(&vals(&x1), &[4], &vals(&wt.transpose(0, 1).unwrap()), &[4, 5]);
    let want: Vec<f64> = xw.iter().zip(vals(&bs)).map(|(a, b)| a + b).collect();
    close(&vals(&got), &want, 1e-12);
    // f32 and bf16.
    let f = |t: &Tensor, d| t.cast(d).unwrap();
    let got32 = f(&x, DType::F32).linear(&f(&w, DType::F32), Some(&f(&b, DType::F32))).unwrap();
    close(&vals(&got32), &vals(&out), 1e-5);
    let gotbf = f(&x, DType::BF16).linear(&f(&w, DType::BF16), Some(&f(&b, DType::BF16))).unwrap();
    assert_eq!(gotbf.dtype(), DType::BF16);
    close(&vals(&gotbf), &vals(&out), 3e-2);

    check_grad(|t| t[0].linear(&t[1], Some(&t[2])), &[x.clone(), w.clone(), b.clone()]);
    check_grad(|t| t[0].linear(&t[1], None), &[randn(&[4], 7), w.clone()]);
    check_grad(
        |t| t[0].permute(&[1, 0, 2])?.linear(&t[1].transpose(0, 1)?, Some(&t[2])),
        &[randn(&[3, 2, 4], 8), randn(&[4, 5], 9), b],
    );
}

#[test]
fn matmul_and_linear_errors_name_the_argument() {
    let (a, b) = (randn(&[3, 4], 1), randn(&[5, 2], 2));
    let e = a.matmul(&b).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "b", .. }) && e.to_string().contains("matmul"), "{e}");
    let s = Tensor::full(&[], 1.0, DType::F64, Device::Cpu).unwrap();
    assert!(matches!(s.matmul(&a).unwrap_err(), Error::ShapeMismatch { arg: "a", .. }));
    assert!(matches!(a.matmul(&s).unwrap_err(), Error::ShapeMismatch { arg: "b", .. }));
    let e = randn(&[2, 3, 4], 3).matmul(&randn(&[3, 4, 2], 4)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "batch dims 2 vs 3: {e}");
    let e = a.matmul(&randn(&[4, 2], 5).cast(DType::F32).unwrap()).unwrap_err();
    assert!(matches!(e, Error::InvalidDtype { arg: "b", .. }), "{e}");
    let bools = Tensor::zeros(&[2, 2], DType::Bool, Device::Cpu).unwrap();
    assert!(matches!(bools.matmul(&bools).unwrap_err(), Error::InvalidDtype { arg: "a", .. }));

    let (x, w) = (randn(&[2, 4], 6), randn(&[3, 4], 7));
    assert!(matches!(x.linear(&randn(&[3, 5], 8), None).unwrap_err(), Error::ShapeMismatch { arg: "weight", .. }));
    assert!(matches!(x.linear(&randn(&[12], 8), None).unwrap_err(), Error::ShapeMismatch { arg: "weight", .. }));
    assert!(matches!(x.linear(&w, Some(&randn(&[4], 9))).unwrap_err(), Error::ShapeMismatch { arg: "bias", .. }));
    let xi = Tensor::zeros(&[2, 4], DType::I64, Device::Cpu).unwrap();
    let wi = Tensor::zeros(&[3, 4], DType::I64, Device::Cpu).unwrap();
    assert!(matches!(xi.linear(&wi, None).unwrap_err(), Error::InvalidDtype { arg: "x", .. }));
}

/// A conv2d configuration: (x shape, weight shape, stride, padding, dilation, groups).
type ConvCase = ([usize; 4], [usize; 4], [i64; 2], [i64; 2], [i64; 2], i64);

/// Direct-sum conv2d in f64.
fn ref_conv(x: &[f64], w: &[f64], b: Option<&[f64]>, c: &ConvCase) -> Vec<f64> {
    let ([n, ci, h, wd], [o, cg, kh, kw], s, p, d, g) = *c;
    let (s, p, d, g) = ([s[0] as usize, s[1] as usize], [p[0], p[1]], [d[0] as usize, d[1] as usize], g as usize);
    let oh = (h + 2 * p[0] as usize - d[0] * (kh - 1) - 1) / s[0] + 1;
    let ow = (wd + 2 * p[1] as usize - d[1] * (kw - 1) - 1) / s[1] + 1;
    let og = o / g;
    let mut out = Vec::new();
    for ni in 0..n {
        for oc in 0..o {
            let grp = oc / og;
            for y in 0..oh {
                for z in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[oc]);
                    for c in 0..cg {
                        let cin = grp * cg + c;
                        for i in 0..kh {
                            for j in 0..kw {
                                let r = (y * s[0] + i * d[0]) as i64 - p[0];
                                let q = (z * s[1] + j * d[1]) as i64 - p[1];
                                if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < wd {
                                    let xv = x[((ni * ci + cin) * h + r as usize) * wd + q as usize];
                                    acc += xv * w[((oc * cg + c) * kh + i) * kw + j];
                                }
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    assert_eq!(out.len(), n * o * oh * ow);
    out
}

const CONV_CASES: &[ConvCase] = &[
    ([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], [0, 0], [1, 1], 1),
    ([2, 3, 7, 6], [4, 3, 3, 2], [2, 1], [1, 2], [1, 1], 1),
    ([1, 4, 9, 8], [6, 2, 3, 3], [2, 2], [1, 1], [2, 1], 2),
    ([3, 4, 5, 5], [4, 1, 3, 3], [1, 2], [1, 1], [1, 2], 4),
    ([2, 6, 4, 5], [3, 6, 1, 1], [1, 1], [0, 0], [1, 1], 1),
    ([2, 4, 4, 5], [4, 2, 1, 1], [2, 1], [1, 0], [1, 1], 2),
];

fn conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, c: &ConvCase) -> deepseek::Result<Tensor> {
    x.conv2d(w, b, c.2, c.3, c.4, c.5)
}

#[test]
fn conv2d_matches_reference() {
    for (i, c) in CONV_CASES.iter().enumerate() {
        let (x, w, b) = (randn(&c.0, 100 + i as u64), randn(&c.1, 200 + i as u64), randn(&[c.1[0]], 300 + i as u64));
        let want = ref_conv(&vals(&x), &vals(&w), Some(&vals(&b)), c);
        close(&vals(&conv(&x, &w, Some(&b), c).unwrap()), &want, 1e-12);
        let want = ref_conv(&vals(&x), &vals(&w), None, c);
        close(&vals(&conv(&x, &w, None, c).unwrap()), &want, 1e-12);
        // f32 agrees; bf16 roughly.
        let f = |t: &Tensor, d| t.cast(d).unwrap();
        close(&vals(&conv(&f(&x, DType::F32), &f(&w, DType::F32), None, c).unwrap()), &want, 1e-5);
        let bf = conv(&f(&x, DType::BF16), &f(&w, DType::BF16), None, c).unwrap();
        assert_eq!(bf.dtype(), DType::BF16);
        close(&vals(&bf), &want, 5e-2);
    }
    // A permuted (non-contiguous) input.
    let c = &CONV_CASES[1];
    let x = randn(&[3, 2, 7, 6], 7).permute(&[1, 0, 2, 3]).unwrap();
    let w = randn(&c.1, 8);
    close(&vals(&conv(&x, &w, None, c).unwrap()), &ref_conv(&vals(&x), &vals(&w), None, c), 1e-12);
}

#[test]
fn conv2d_gradients() {
    for (i, c) in CONV_CASES.iter().enumerate() {
        // Small batch so finite differences stay quick.
        let mut xs = c.0;
        xs[0] = if i % 2 == 0 { 2 } else { 1 };
        let (x, w, b) = (randn(&xs, 400 + i as u64), randn(&c.1, 500 + i as u64), randn(&[c.1[0]], 600 + i as u64));
        check_grad(|t| conv(&t[0], &t[1], Some(&t[2]), c), &[x.clone(), w.clone(), b]);
        check_grad(|t| conv(&t[0], &t[1], None, c), &[x, w]);
    }
    // Non-contiguous input and weight.
    let c = &CONV_CASES[0];
    check_grad(
        |t| conv(&t[0].permute(&[1, 0, 2, 3])?, &t[1].transpose(2, 3)?, None, c),
        &[randn(&[3, 1, 7, 6], 9), randn(&[4, 3, 3, 3], 10)],
    );
}

fn conv_attrs(c: &ConvCase) -> Vec<(&'static str, Attr)> {
    vec![
        ("stride", Attr::Ints(c.2.to_vec())),
        ("padding", Attr::Ints(c.3.to_vec())),
        ("dilation", Attr::Ints(c.4.to_vec())),
        ("groups", Attr::Int(c.5)),
    ]
}

#[test]
fn conv2d_backward_ops_by_name_and_their_gradients() {
    let c = &CONV_CASES[2];
    let (x, w) = (randn(&c.0, 1), randn(&c.1, 2));
    let y = conv(&x, &w, None, c).unwrap();
    let g = randn(y.shape(), 3);
    // <g, conv(x, w)> = <backward_input(g, w), x> = <backward_weight(g, x), w>.
    let dot = |a: &Tensor, b: &Tensor| -> f64 { vals(a).iter().zip(vals(b)).map(|(p, q)| p * q).sum() };
    let gx = call_named("conv2d_backward_input", &[&g, &w, &x], &conv_attrs(c)).unwrap().remove(0);
    let gw = call_named("conv2d_backward_weight", &[&g, &x, &w], &conv_attrs(c)).unwrap().remove(0);
    assert_eq!((gx.shape(), gw.shape()), (x.shape(), w.shape()));
    let base = dot(&g, &y);
    assert!((dot(&gx, &x) - base).abs() < 1e-9 * base.abs().max(1.0));
    assert!((dot(&gw, &w) - base).abs() < 1e-9 * base.abs().max(1.0));
    // The backward ops are differentiable in (g, weight) and (g, x).
    check_grad(
        |t| Ok(call_named("conv2d_backward_input", &[&t[0], &t[1], &x], &conv_attrs(c))?.remove(0)),
        &[g.clone(), w.clone()],
    );
    check_grad(
        |t| Ok(call_named("conv2d_backward_weight", &[&t[0], &t[1], &w], &conv_attrs(c))?.remove(0)),
        &[g.clone(), x.clone()],
    );
    let e = call_named("conv2d_backward_input", &[&randn(&[1, 6, 2, 2], 4), &w, &x], &conv_attrs(c)).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "g", .. }), "{e}");
}

#[test]
fn conv2d_errors_name_the_argument() {
    let (x, w) = (randn(&[1, 4, 5, 5], 1), randn(&[6, 2, 3, 3], 2));
    let err = |r: deepseek::Result<Tensor>| r.unwrap_err();
    let e = err(x.conv2d(&w, None, [1, 1], [0, 0], [1, 1], 3));
    assert!(matches!(e, Error::InvalidArgument { arg: "groups", .. }) && e.to_string().contains("conv2d"), "{e}");
    let e = err(x.conv2d(&randn(&[6, 4, 3, 3], 3), None, [1, 1], [0, 0], [1, 1], 2));
    assert!(matches!(e, Error::ShapeMismatch { arg: "weight", .. }), "{e}");
    let e = err(x.conv2d(&randn(&[5, 2, 3, 3], 3), None, [1, 1], [0, 0], [1, 1], 2));
    assert!(matches!(e, Error::InvalidArgument { arg: "groups", .. }), "{e}");
    let e = err(x.conv2d(&w, None, [1, 1], [0, 0], [3, 3], 2));
    assert!(matches!(e, Error::ShapeMismatch { arg: "weight", .. }) && e.to_string().contains("larger"), "{e}");
    assert!(x.conv2d(&w, None, [1, 1], [1, 1], [3, 3], 2).is_ok(), "padding makes room");
    let e = err(x.conv2d(&w, None, [0, 1], [0, 0], [1, 1], 2));
    assert!(matches!(e, Error::OutOfRange { arg: "stride", .. }), "{e}");
    let e = err(x.conv2d(&w, None, [1, 1], [-1, 0], [1, 1], 2));
    assert!(matches!(e, Error::OutOfRange { arg: "padding", .. }), "{e}");
    let e = err(x.conv2d(&w, None, [1, 1], [0, 0], [1, 1], 0));
    assert!(matches!(e, Error::OutOfRange { arg: "groups", .. }), "{e}");
    let e = err(x.conv2d(&w, Some(&randn(&[5], 4)), [1, 1], [0, 0], [1, 1], 2));
    assert!(matches!(e, Error::ShapeMismatch { arg: "bias", .. }), "{e}");
    let e = err(randn(&[4, 5, 5], 5).conv2d(&w, None, [1, 1], [0, 0], [1, 1], 2));
    assert!(matches!(e, Error::ShapeMismatch { arg: "x", .. }), "{e}");
    let e = err(call_named("conv2d", &[&x, &w], &[("stride", Attr::Ints(vec![1])), ("groups", Attr::Int(2))])
        .map(|mut v| v.remove(0)));
    assert!(matches!(e, Error::InvalidArgument { arg: "stride", .. }), "{e}");
    let xi = Tensor::zeros(&[1, 4, 5, 5], DType::I32, Device::Cpu).unwrap();
    let wi = Tensor::zeros(&[6, 2, 3, 3], DType::I32, Device::Cpu).unwrap();
    assert!(matches!(err(xi.conv2d(&wi, None, [1, 1], [0, 0], [1, 1], 2)), Error::InvalidDtype { arg: "x", .. }));
}

/// Reference pooling over f64: (max or mean, with count_include_pad).
fn ref_pool(
    x: &[f64],
    shape: [usize; 4],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: [usize; 2],
    mode: &str,
) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) / s[0] + 1;
    let ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) / s[1] + 1;
    let mut out = Vec::new();
    for plane in 0..n * c {
        for y in 0..oh {
            for z in 0..ow {
                let mut items = Vec::new();
                for i in 0..k[0] {
                    for j in 0..k[1] {
                        let r = (y * s[0] + i * d[0]) as i64 - p[0] as i64;
                        let q = (z * s[1] + j * d[1]) as i64 - p[1] as i64;
                        if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                            items.push(x[(plane * h + r as usize) * w + q as usize]);
                        }
                    }
                }
                out.push(match mode {
                    "max" => items.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    "avg_pad" => items.iter().sum::<f64>() / (k[0] * k[1]) as f64,
                    _ => items.iter().sum::<f64>() / items.len() as f64,
                });
            }
        }
    }
    out
}

#[test]
fn pooling_matches_reference() {
    let x = randn(&[2, 3, 7, 8], 1);
    let xv = vals(&x);
    let sh = [2, 3, 7, 8];
    let got = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
    assert_eq!(got.shape(), &[2, 3, 3, 4]);
    close(&vals(&got), &ref_pool(&xv, sh, [2, 2], [2, 2], [0, 0], [1, 1], "max"), 0.0);
    let got = x.max_pool2d([3, 2], [2, 1], [1, 1], [2, 1]).unwrap();
    close(&vals(&got), &ref_pool(&xv, sh, [3, 2], [2, 1], [1, 1], [2, 1], "max"), 0.0);
    // Default stride (= kernel) by name.
    let by_name = call_named("max_pool2d", &[&x], &[("kernel_size", Attr::Ints(vec![3, 3]))]).unwrap().remove(0);
    close(&vals(&by_name), &ref_pool(&xv, sh, [3, 3], [3, 3], [0, 0], [1, 1], "max"), 0.0);
    for (inc, mode) in [(true, "avg_pad"), (false, "avg")] {
        let got = x.avg_pool2d([3, 3], [2, 2], [1, 1], inc).unwrap();
        close(&vals(&got), &ref_pool(&xv, sh, [3, 3], [2, 2], [1, 1], [1, 1], mode), 1e-12);
    }
    let f = x.cast(DType::F32).unwrap().avg_pool2d([2, 3], [1, 2], [1, 0], false).unwrap();
    assert_eq!(f.dtype(), DType::F32);
    close(&vals(&f), &ref_pool(&xv, sh, [2, 3], [1, 2], [1, 0], [1, 1], "avg"), 1e-6);
    let h = x.cast(DType::F16).unwrap().max_pool2d([2, 2], [1, 1], [1, 1], [1, 1]).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    close(&vals(&h), &ref_pool(&xv, sh, [2, 2], [1, 1], [1, 1], [1, 1], "max"), 1e-3);
    // A large input takes the parallel path.
    let big = randn(&[4, 8, 40, 40], 2);
    let got = big.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]).unwrap();
    close(&vals(&got), &ref_pool(&vals(&big), [4, 8, 40, 40], [2, 2], [2, 2], [0, 0], [1, 1], "max"), 0.0);
}

#[test]
fn pooling_gradients() {
    let x = randn(&[2, 2, 6, 5], 1);
    check_grad(|t| t[0].max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]), std::slice::from_ref(&x));
    check_grad(|t| t[0].max_pool2d([3, 2], [1, 2], [1, 1], [1, 2]), std::slice::from_ref(&x));
    check_grad(|t| t[0].avg_pool2d([3, 3], [2, 1], [1, 1], true), std::slice::from_ref(&x));
    check_grad(|t| t[0].avg_pool2d([2, 3], [1, 2], [1, 1], false), std::slice::from_ref(&x));
    check_grad(|t| t[0].permute(&[1, 0, 3, 2])?.avg_pool2d([2, 2], [1, 1], [0, 0], true), std::slice::from_ref(&x));
    // avg_pool2d_backward is differentiable in g.
    let attrs = [("kernel_size", Attr::Ints(vec![3, 2])), ("padding", Attr::Ints(vec![1, 1]))];
    let g = randn(&[2, 2, 2, 3], 2);
    check_grad(|t| Ok(call_named("avg_pool2d_backward", &[&t[0], &x], &attrs)?.remove(0)), &[g]);
    // Ties route the gradient to the first maximum.
    let ones = Tensor::ones(&[1, 1, 2, 2], DType::F64, Device::Cpu).unwrap();
    ones.set_requires_grad(true);
    ones.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(ones.grad().unwrap().unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0, 0.0, 0.0]);
    // Overlapping windows add their gradients at a shared maximum.
    let x = Tensor::from_slice(&[0.0f64, 1.0, 5.0, 2.0], &[1, 1, 1, 4]).unwrap();
    x.set_requires_grad(true);
    x.max_pool2d([1, 2], [1, 1], [0, 0], [1, 1]).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().unwrap().to_vec::<f64>().unwrap(), vec![0.0, 1.0, 2.0, 0.0]);
}

#[test]
fn pooling_errors_name_the_argument() {
    let x = randn(&[1, 2, 4, 4], 1);
    let e = x.max_pool2d([5, 5], [1, 1], [0, 0], [1, 1]).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "kernel_size", .. }) && e.to_string().contains("max_pool2d"));
    let e = x.max_pool2d([3, 3], [1, 1], [0, 0], [2, 2]).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "kernel_size", .. }), "{e}");
    let e = x.avg_pool2d([2, 2], [1, 1], [2, 0], true).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { arg: "padding", .. }), "{e}");
    let e = x.avg_pool2d([0, 2], [1, 1], [0, 0], true).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "kernel_size", .. }), "{e}");
    let e = x.max_pool2d([2, 2], [0, 1], [0, 0], [1, 1]).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { arg: "stride", .. }), "{e}");
    let e = randn(&[2, 4, 4], 2).avg_pool2d([2, 2], [2, 2], [0, 0], true).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "x", .. }), "{e}");
    let xi = Tensor::zeros(&[1, 1, 4, 4], DType::I64, Device::Cpu).unwrap();
    assert!(matches!(xi.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1]).unwrap_err(), Error::InvalidDtype { arg: "x", .. }));
    let e = call_named("max_pool2d", &[&x], &[]).unwrap_err();
    assert!(e.to_string().contains("kernel_size"), "{e}");
    let e =
        call_named("max_pool2d_backward", &[&randn(&[1, 2, 3, 3], 3), &x], &[("kernel_size", Attr::Ints(vec![2, 2]))])
            .unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { arg: "g", .. }), "{e}");
}

#[test]
fn large_linear_takes_the_packed_transpose_path() {
    // rows >= 32, out*in >= 4096 and rows of the weight a multiple of 2 KiB apart (512 f32 or
    // f64): the weight is transposed into a packed buffer first.
    let (x, w, b) = (randn(&[40, 512], 21), randn(&[90, 512], 22), randn(&[90], 23));
    let (xw, _) = ref_matmul(&vals(&x), x.shape(), &vals(&w.transpose(0, 1).unwrap()), &[512, 90]);
    let bv = vals(&b);
    let want: Vec<f64> = xw.iter().enumerate().map(|(i, v)| v + bv[i % 90]).collect();
    close(&vals(&x.linear(&w, Some(&b)).unwrap()), &want, 1e-12);
    let f32s = |t: &Tensor| t.cast(DType::F32).unwrap();
    close(&vals(&f32s(&x).linear(&f32s(&w), Some(&f32s(&b))).unwrap()), &want, 1e-5);
}

#[test]
fn gradients_skip_inputs_that_need_none() {
    // x is data: only the weight and bias get gradients, and they match the full computation.
    let (x, w, b) = (randn(&[6, 5], 31), randn(&[4, 5], 32), randn(&[4], 33));
    w.set_requires_grad(true);
    b.set_requires_grad(true);
    x.linear(&w, Some(&b)).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(x.grad().unwrap().is_none());
    let gw = vals(&w.grad().unwrap().unwrap());
    let colsum: Vec<f64> = (0..5).map(|j| (0..6).map(|i| vals(&x)[i * 5 + j]).sum()).collect();
    close(&gw, &(0..20).map(|k| colsum[k % 5]).collect::<Vec<_>>(), 1e-12);
    assert_eq!(vals(&b.grad().unwrap().unwrap()), vec![6.0; 4]);
    // matmul with a data left operand.
    let w2 = randn(&[5, 3], 34);
    w2.set_requires_grad(true);
    x.matmul(&w2).unwrap().sum_all().unwrap().backward().unwrap();
    close(&vals(&w2.grad().unwrap().unwrap()), &(0..15).map(|k| colsum[k / 3]).collect::<Vec<_>>(), 1e-12);
}

#[test]
fn linear_reads_a_weight_stored_transposed() {
    // Executors keep frozen weights stored transposed (the layout a large product packs them
    // into). From 32 rows both layouts give the same bits, whether the product packs a
    // contiguous weight itself (512 inputs) or gemm packs the transposed view (70, 300);
    // below, the sums agree to rounding. 70 and 300 inputs leave a tail after 16-lane sums,
    // 45 outputs a partial block.
    for dtype in [DType::F32, DType::F64] {
        let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
        for (outf, inf) in [(45, 70), (300, 300), (64, 64), (40, 512)] {
            let w = randn(&[outf, inf], 41).cast(dtype).unwrap();
            let stored_t = w.transpose(0, 1).unwrap().contiguous().unwrap().transpose(0, 1).unwrap();
            assert!(!stored_t.is_contiguous());
            let b = randn(&[outf], 42).cast(dtype).unwrap();
            for rows in [1, 3, 31, 32, 100] {
                let x = randn(&[rows, inf], 43 + rows as u64).cast(dtype).unwrap();
                for bias in [None, Some(&b)] {
                    let want = vals(&x.linear(&w, bias).unwrap());
                    let got = vals(&x.linear(&stored_t, bias).unwrap());
                    let case = format!("{dtype} {outf}x{inf}, {rows} rows, bias {}", bias.is_some());
                    if rows >= 32 {
                        assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "{case}");
                    } else {
                        close(&got, &want, tol);
                    }
                }
            }
            // Against the reference, so both layouts are also right.
            let x = randn(&[3, inf], 44).cast(dtype).unwrap();
            let (xw, _) = ref_matmul(&vals(&x), &[3, inf], &vals(&w.transpose(0, 1).unwrap()), &[inf, outf]);
            close(&vals(&x.linear(&stored_t, None).unwrap()), &xw, tol);
        }
    }
}
