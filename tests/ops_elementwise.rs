//! Elementwise op families: unary math, activations, binary/scalar arithmetic, comparisons, logical ops and `where`.

use deepseek::autograd::gradcheck;
use deepseek::ops::activation::{erf_f32, erf_f64, erfc_f32, erfc_f64};
use deepseek::ops::{Attr, call_named};
use deepseek::{DType, Device, Error, Generator, Tensor};

const TOL: f64 = 1e-6;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, lo, hi, DType::F64, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.cast(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

fn assert_close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= rel * w.abs().max(1e-300) || g == w;
        assert!(ok, "element {i}: got {g:e}, want {w:e} (rel tol {rel:e})");
    }
}

/// Checks op(x) against `f` applied elementwise in f64, for f64, f32 and bf16 inputs.
fn check_unary(name: &str, op: impl Fn(&Tensor) -> deepseek::Result<Tensor>, f: impl Fn(f64) -> f64, x: &[f64]) {
    let xt = t64(x, &[x.len()]);
    let want: Vec<f64> = x.iter().map(|&v| f(v)).collect();
    let got = op(&xt).unwrap();
    assert_eq!(got.dtype(), DType::F64, "{name}");
    assert_close(&f64s(&got), &want, 4e-16);
    let x32 = xt.cast(DType::F32).unwrap();
    let want32: Vec<f64> = f64s(&x32).iter().map(|&v| f(v)).collect();
    let got32 = op(&x32).unwrap();
    assert_eq!(got32.dtype(), DType::F32, "{name}");
    assert_close(&f64s(&got32), &want32, 3e-7);
    let xb = xt.cast(DType::BF16).unwrap();
    let wantb: Vec<f64> = f64s(&xb).iter().map(|&v| f(v)).collect();
    let gotb = op(&xb).unwrap();
    assert_eq!(gotb.dtype(), DType::BF16, "{name}");
    assert_close(&f64s(&gotb), &wantb, 8e-3);
}

/// A named unary op under test.
type UnaryCase = (&'static str, Tensor, fn(&Tensor) -> deepseek::Result<Tensor>);

/// A unary function of a tensor, boxed so closures with attributes fit in one table.
type BoxedUnary = Box<dyn Fn(&Tensor) -> deepseek::Result<Tensor>>;
/// A two-tensor method.
type BinaryFn = fn(&Tensor, &Tensor) -> deepseek::Result<Tensor>;

fn arg_of(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument { arg, .. }
        | Error::InvalidDtype { arg, .. }
        | Error::ShapeMismatch { arg, .. }
        | Error::OutOfRange { arg, .. } => arg,
        other => panic!("unexpected error {other}"),
    }
}

// ---------------------------------------------------------------- unary

#[test]
fn unary_float_forward() {
    let pos = [0.25, 0.5, 1.0, 2.0, 7.5, 1e-3];
    let any = [-3.0, -1.25, -0.5, 0.0, 0.75, 2.5, 10.0];
    check_unary("log", Tensor::log, f64::ln, &pos);
    check_unary("log1p", Tensor::log1p, f64::ln_1p, &[-0.5, 1e-10, 0.3, 5.0]);
    check_unary("sqrt", Tensor::sqrt, f64::sqrt, &pos);
    check_unary("rsqrt", Tensor::rsqrt, |v| 1.0 / v.sqrt(), &pos);
    check_unary("reciprocal", Tensor::reciprocal, |v| 1.0 / v, &[-4.0, -0.5, 0.25, 3.0]);
    check_unary("sin", Tensor::sin, f64::sin, &any);
    check_unary("cos", Tensor::cos, f64::cos, &any);
    check_unary("abs", Tensor::abs, f64::abs, &any);
    check_unary("floor", Tensor::floor, f64::floor, &any);
    check_unary("ceil", Tensor::ceil, f64::ceil, &any);
    check_unary("sign", Tensor::sign, f64::signum, &[-3.0, -0.5, 0.75, 2.0]);
    // log1p keeps full precision where log(1 + x) would lose it.
    assert_eq!(f64s(&t64(&[1e-17], &[1]).log1p().unwrap()), vec![1e-17]);
    // Special values.
    let s = f64s(&t64(&[0.0, f64::NAN, -2.0], &[3]).sign().unwrap());
    assert!(s[0] == 0.0 && s[1].is_nan() && s[2] == -1.0);
    assert_eq!(f64s(&t64(&[0.0], &[1]).log().unwrap()), vec![f64::NEG_INFINITY]);
    assert!(f64s(&t64(&[-1.0], &[1]).sqrt().unwrap())[0].is_nan());
}

#[test]
fn round_is_half_to_even() {
    let x = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.25, 2.75, 3.0];
    let want = [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 2.0, 3.0, 3.0];
    for dt in [DType::F64, DType::F32, DType::F16] {
        let got = f64s(&t64(&x, &[9]).cast(dt).unwrap().round().unwrap());
        assert_eq!(got, want, "{dt}");
    }
    assert!(f64s(&t64(&[-0.5], &[1]).round().unwrap())[0].is_sign_negative());
}

#[test]
fn clamp_floats_and_integers() {
    let x = t64(&[-2.0, -0.5, 0.0, 0.5, 3.0, f64::NAN], &[6]);
    let got = f64s(&x.clamp(-1.0, 1.0).unwrap());
    assert_eq!(&got[..5], &[-1.0, -0.5, 0.0, 0.5, 1.0]);
    assert!(got[5].is_nan(), "NaN passes through");
    // One-sided, and min > max gives max everywhere (as PyTorch).
    assert_eq!(f64s(&x.clamp(0.0, f64::INFINITY).unwrap())[..5], [0.0, 0.0, 0.0, 0.5, 3.0]);
    assert_eq!(f64s(&x.clamp(2.0, 1.0).unwrap())[..5], [1.0; 5]);
    // Integer tensors: fractional bounds round inward (x >= 1.5 ⇔ x >= 2 for integers).
    let i = Tensor::from_slice(&[-5i32, 0, 1, 2, 3, 9], &[6]).unwrap();
    assert_eq!(i.clamp(1.5, 3.7).unwrap().to_vec::<i32>().unwrap(), vec![2, 2, 2, 2, 3, 3]);
    assert_eq!(i.clamp(f64::NEG_INFINITY, 0.0).unwrap().to_vec::<i32>().unwrap(), vec![-5, 0, 0, 0, 0, 0]);
    let u = Tensor::from_slice(&[0u8, 100, 255], &[3]).unwrap();
    assert_eq!(u.clamp(-10.0, 200.0).unwrap().to_vec::<u8>().unwrap(), vec![0, 100, 200]);
    let l = Tensor::from_slice(&[i64::MIN, 0, i64::MAX], &[3]).unwrap();
    assert_eq!(l.clamp(-1e30, 1e30).unwrap().to_vec::<i64>().unwrap(), vec![i64::MIN, 0, i64::MAX]);
    // f16 keeps its dtype.
    let h = x.cast(DType::F16).unwrap().clamp(-0.25, 0.25).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    assert_eq!(f64s(&h)[..5], [-0.25, -0.25, 0.0, 0.25, 0.25]);
}

#[test]
fn integer_unary_ops() {
    let i = Tensor::from_slice(&[-7i32, 0, 3, i32::MIN], &[4]).unwrap();
    assert_eq!(i.abs().unwrap().to_vec::<i32>().unwrap(), vec![7, 0, 3, i32::MIN], "abs wraps at MIN");
    assert_eq!(i.sign().unwrap().to_vec::<i32>().unwrap(), vec![-1, 0, 1, -1]);
    assert_eq!(i.neg().unwrap().to_vec::<i32>().unwrap(), vec![7, 0, -3, i32::MIN]);
    assert_eq!(i.relu().unwrap().to_vec::<i32>().unwrap(), vec![0, 0, 3, 0]);
    let l = Tensor::from_slice(&[-7i64, 0, 3], &[3]).unwrap();
    assert_eq!(l.abs().unwrap().to_vec::<i64>().unwrap(), vec![7, 0, 3]);
    assert_eq!(l.sign().unwrap().to_vec::<i64>().unwrap(), vec![-1, 0, 1]);
    let u = Tensor::from_slice(&[0u8, 5, 255], &[3]).unwrap();
    assert_eq!(u.abs().unwrap().to_vec::<u8>().unwrap(), vec![0, 5, 255]);
    assert_eq!(u.sign().unwrap().to_vec::<u8>().unwrap(), vec![0, 1, 1]);
    assert_eq!(u.relu().unwrap().to_vec::<u8>().unwrap(), vec![0, 5, 255]);
    // Non-contiguous integer input.
    let m = Tensor::from_slice(&[-1i64, 2, -3, 4, -5, 6], &[2, 3]).unwrap().transpose(0, 1).unwrap();
    assert_eq!(m.abs().unwrap().to_vec::<i64>().unwrap(), vec![1, 4, 2, 5, 3, 6]);
}

#[test]
fn unary_gradients() {
    let pos = uniform(&[3, 4], 0.3, 2.0, 11);
    let any = randn(&[3, 4], 12);
    // Away from abs's kink at 0.
    let away = any.abs().unwrap().add_scalar(0.1).unwrap().mul(&any.sign().unwrap()).unwrap();
    let cases: Vec<UnaryCase> = vec![
        ("log", pos.clone(), Tensor::log),
        ("log1p", pos.clone(), Tensor::log1p),
        ("sqrt", pos.clone(), Tensor::sqrt),
        ("rsqrt", pos.clone(), Tensor::rsqrt),
        ("reciprocal", pos.clone(), Tensor::reciprocal),
        ("sin", any.clone(), Tensor::sin),
        ("cos", any.clone(), Tensor::cos),
        ("abs", away, Tensor::abs),
    ];
    for (name, x, f) in cases {
        let err = gradcheck(|v| f(&v[0]), std::slice::from_ref(&x), 1e-6).unwrap();
        assert!(err < TOL, "{name}: err {err}");
        // Non-contiguous: transposed and strided views of the input.
        let err = gradcheck(|v| f(&v[0].transpose(0, 1)?.slice(0, 0, 4, 2)?), &[x], 1e-6).unwrap();
        assert!(err < TOL, "{name} (view): err {err}");
    }
    // clamp: points away from the bounds, some inside and some outside.
    let x = t64(&[-2.0, -0.7, -0.2, 0.3, 0.9, 1.6], &[2, 3]);
    let err = gradcheck(|v| v[0].clamp(-0.5, 0.5)?.mul(&v[0]), std::slice::from_ref(&x), 1e-6).unwrap();
    assert!(err < TOL, "clamp: err {err}");
    let err = gradcheck(|v| v[0].transpose(0, 1)?.clamp(-1.0, f64::INFINITY), std::slice::from_ref(&x), 1e-6).unwrap();
    assert!(err < TOL, "clamp (view): err {err}");
    // The gradient passes where min <= x <= max, bounds included.
    let b = t64(&[-1.0, 0.0, 1.0, 2.0], &[4]);
    b.set_requires_grad(true);
    b.clamp(-1.0, 1.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(b.grad().unwrap().unwrap().to_vec::<f64>().unwrap(), vec![1.0, 1.0, 1.0, 0.0]);
    // Rounding ops carry no gradient.
    let r = randn(&[3], 13);
    r.set_requires_grad(true);
    for y in [r.floor().unwrap(), r.ceil().unwrap(), r.round().unwrap(), r.sign().unwrap()] {
        assert!(!y.requires_grad());
    }
}

// ---------------------------------------------------------------- activations and erf

#[test]
fn erf_matches_reference_values() {
    // (x, erf(x)) and (x, erfc(x)) from mpmath at 30 digits.
    let erf_ref = [
        (0.1, 0.1124629160182849),
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (-1.5, -0.9661051464753108),
        (2.0, 0.9953222650189527),
    ];
    for (x, want) in erf_ref {
        let got = erf_f64(x);
        assert!((got - want).abs() <= 4e-16 * want.abs(), "erf({x}) = {got:e}, want {want:e}");
        let got32 = erf_f32(x as f32) as f64;
        assert!((got32 - want).abs() <= 3e-7 * want.abs(), "erf_f32({x}) = {got32:e}, want {want:e}");
    }
    let erfc_ref = [
        (3.0, 2.209049699858544e-05),
        (5.0, 1.537459794428035e-12),
        (10.0, 2.088487583762545e-45),
        (-2.0, 1.9953222650189528),
    ];
    for (x, want) in erfc_ref {
        let got = erfc_f64(x);
        assert!((got - want).abs() <= 2e-15 * want.abs(), "erfc({x}) = {got:e}, want {want:e}");
    }
    for (x, want) in &erfc_ref[..2] {
        let got32 = erfc_f32(*x as f32) as f64;
        assert!((got32 - want).abs() <= 2e-6 * want.abs(), "erfc_f32({x}) = {got32:e}, want {want:e}");
    }
    assert_eq!(erf_f64(0.0), 0.0);
    assert_eq!(erf_f64(7.0), 1.0);
    assert_eq!(erf_f64(-f64::INFINITY), -1.0);
    assert_eq!(erfc_f64(30.0), 0.0);
    assert!(erf_f64(f64::NAN).is_nan() && erfc_f32(f32::NAN).is_nan());
    // The f32 version tracks the f64 one across the range, pieces' seams included.
    for k in -600..=600 {
        let x = k as f64 / 100.0;
        let (e64, e32) = (erf_f64(x), erf_f32(x as f32) as f64);
        assert!((e64 - e32).abs() <= 2.5e-7 * e64.abs().max(1e-30) + 1e-12, "erf at {x}: {e32:e} vs {e64:e}");
        let (c64, c32) = (erfc_f64(x), erfc_f32(x as f32) as f64);
        // x itself rounds to f32, which moves erfc by |erfc'(x)|·δx.
        let slack = 1.2 * (-x * x).exp() * x.abs() * 6e-8;
        assert!((c64 - c32).abs() <= 2e-6 * c64 + slack, "erfc at {x}: {c32:e} vs {c64:e}");
    }
}

#[test]
fn activation_forward_values() {
    let x = t64(&[1.0, -0.5, 3.0, -3.0, -10.0, 0.0], &[6]);
    let gelu = f64s(&x.gelu(false).unwrap());
    let want = [
        0.8413447460685429,
        -0.15426876936299347,
        2.99595030590511,
        -0.0040496940948902835,
        -7.619853024160526e-23,
        0.0,
    ];
    assert_close(&gelu[..4], &want[..4], 2e-15);
    // Deep in the tail the rounding of x/√2 alone moves erfc by ~x²·1e-16 relative.
    assert_close(&gelu[4..], &want[4..], 2e-14);
    let xt = t64(&[1.0, -0.5, 2.0], &[3]);
    assert_close(&f64s(&xt.gelu(true).unwrap()), &[0.8411919906082768, -0.15428599017485609, 1.954597694087775], 2e-15);
    let x32 = x.cast(DType::F32).unwrap();
    let g32 = x32.gelu(false).unwrap();
    assert_eq!(g32.dtype(), DType::F32);
    assert_close(&f64s(&g32), &want, 1e-6);
    let gb = x.cast(DType::BF16).unwrap().gelu(false).unwrap();
    assert_eq!(gb.dtype(), DType::BF16);
    assert_close(&f64s(&gb)[..4], &want[..4], 8e-3);

    // Sigmoid never overflows; tanh saturates.
    let big = t64(&[-1000.0, -30.0, 0.0, 30.0, 1000.0], &[5]);
    let s = f64s(&big.sigmoid().unwrap());
    assert_close(&s, &[0.0, 9.357622968839299e-14, 0.5, 1.0 - 9.357622968839299e-14, 1.0], 1e-15);
    let s32 = f64s(&big.cast(DType::F32).unwrap().sigmoid().unwrap());
    assert!(s32.iter().all(|v| v.is_finite()) && s32[0] == 0.0 && s32[4] == 1.0);
    assert_close(&f64s(&big.tanh().unwrap()), &[-1.0, -1.0, 0.0, 1.0, 1.0], 0.0);
    check_unary("tanh", Tensor::tanh, f64::tanh, &[-2.0, -0.3, 0.0, 0.7, 4.0]);
    check_unary("sigmoid", Tensor::sigmoid, |v| 1.0 / (1.0 + (-v).exp()), &[-5.0, -0.3, 0.0, 0.7, 4.0]);
    check_unary("silu", Tensor::silu, |v| v / (1.0 + (-v).exp()), &[-5.0, -0.3, 0.0, 0.7, 4.0]);
    check_unary("relu", Tensor::relu, |v| v.max(0.0), &[-5.0, -0.3, 0.0, 0.7, 4.0]);
    check_unary("leaky_relu", |t| t.leaky_relu(0.2), |v| if v > 0.0 { v } else { 0.2 * v }, &[-5.0, -0.3, 0.7]);
    assert!(f64s(&t64(&[f64::NAN], &[1]).relu().unwrap())[0].is_nan());

    // softplus: the log form below the threshold, x itself above (PyTorch's rule).
    let sp = f64s(&t64(&[0.3, -15.0, 10.5, 50.0], &[4]).softplus(2.0, 20.0).unwrap());
    // ln(1 + e^-30)/2 from mpmath: the naive ln(1 + e^x) would lose it to cancellation.
    assert_close(&sp, &[0.5187439752429428, 9.357622968839737e-14 / 2.0, 10.5, 50.0], 1e-15);
    let d = f64s(&t64(&[25.0], &[1]).softplus(1.0, 20.0).unwrap());
    assert_eq!(d, vec![25.0]);
    // Through the registry with defaults: leaky slope 0.01, softplus beta 1 threshold 20, exact gelu.
    let y = call_named("leaky_relu", &[&t64(&[-1.0], &[1])], &[]).unwrap().remove(0);
    assert_close(&f64s(&y), &[-0.01], 1e-15);
    let y = call_named("softplus", &[&t64(&[1.0], &[1])], &[]).unwrap().remove(0);
    assert_close(&f64s(&y), &[(1.0f64 + 1.0f64.exp()).ln()], 1e-15);
    let y = call_named("gelu", &[&t64(&[1.0], &[1])], &[]).unwrap().remove(0);
    assert_close(&f64s(&y), &[0.8413447460685429], 1e-15);
    let y = call_named("gelu", &[&t64(&[1.0], &[1])], &[("approximate", Attr::Str("tanh".into()))]).unwrap().remove(0);
    assert_close(&f64s(&y), &[0.8411919906082768], 1e-15);
}

#[test]
fn activation_gradients() {
    let x = randn(&[3, 4], 21).mul_scalar(2.0).unwrap();
    // relu and leaky_relu: keep points away from the kink.
    let away = x.abs().unwrap().add_scalar(0.05).unwrap().mul(&x.sign().unwrap()).unwrap();
    let cases: Vec<(&str, Tensor, BoxedUnary)> = vec![
        ("tanh", x.clone(), Box::new(Tensor::tanh)),
        ("sigmoid", x.clone(), Box::new(Tensor::sigmoid)),
        ("relu", away.clone(), Box::new(Tensor::relu)),
        ("leaky_relu", away.clone(), Box::new(|t| t.leaky_relu(0.1))),
        ("gelu", x.clone(), Box::new(|t| t.gelu(false))),
        ("gelu_tanh", x.clone(), Box::new(|t| t.gelu(true))),
        ("silu", x.clone(), Box::new(Tensor::silu)),
        ("softplus", x.clone(), Box::new(|t| t.softplus(1.0, 20.0))),
        // beta 3, threshold 2: some elements take the linear branch (none sit on the switch).
        ("softplus_threshold", away.clone(), Box::new(|t| t.softplus(3.0, 2.0))),
    ];
    for (name, x, f) in cases {
        let err = gradcheck(|v| f(&v[0]), std::slice::from_ref(&x), 1e-6).unwrap();
        assert!(err < TOL, "{name}: err {err}");
        let err = gradcheck(|v| f(&v[0].permute(&[1, 0])?.slice(0, 1, 4, 1)?), &[x], 1e-6).unwrap();
        assert!(err < TOL, "{name} (view): err {err}");
    }
    // Second order through relu: relu_backward is linear in the incoming gradient.
    let err = gradcheck(
        |v| {
            let y = v[0].relu()?.mul(&v[0])?; // x·relu(x)
            Ok(y)
        },
        std::slice::from_ref(&away),
        1e-6,
    )
    .unwrap();
    assert!(err < TOL, "x*relu(x): err {err}");
    // Gradient kernels in f32 agree with f64.
    let xf = x.cast(DType::F32).unwrap();
    xf.set_requires_grad(true);
    xf.gelu(false).unwrap().sum_all().unwrap().backward().unwrap();
    let x64 = x.detach();
    x64.set_requires_grad(true);
    x64.gelu(false).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&f64s(&xf.grad().unwrap().unwrap()), &f64s(&x64.grad().unwrap().unwrap()), 1e-5);
}

// ---------------------------------------------------------------- binary and scalar

#[test]
fn pow_maximum_minimum_forward() {
    let a = t64(&[2.0, 9.0, 0.5, -2.0, 0.0], &[5]);
    let b = t64(&[3.0, 0.5, -1.0, 2.0, 0.0], &[5]);
    assert_close(&f64s(&a.pow(&b).unwrap()), &[8.0, 3.0, 2.0, 4.0, 1.0], 1e-15);
    // Broadcasting [2,1] ^ [3].
    let p = t64(&[2.0, 3.0], &[2, 1]).pow(&t64(&[0.0, 1.0, 2.0], &[3])).unwrap();
    assert_eq!(p.shape(), &[2, 3]);
    assert_eq!(f64s(&p), vec![1.0, 2.0, 4.0, 1.0, 3.0, 9.0]);
    let p16 = t64(&[2.0, 3.0], &[2]).cast(DType::F16).unwrap().pow(&t64(&[2.0, 2.0], &[2]).cast(DType::F16).unwrap());
    assert_eq!(f64s(&p16.unwrap()), vec![4.0, 9.0]);

    let x = t64(&[1.0, 5.0, f64::NAN, 2.0], &[4]);
    let y = t64(&[3.0, 2.0, 1.0, f64::NAN], &[4]);
    let mx = f64s(&x.maximum(&y).unwrap());
    assert!(mx[0] == 3.0 && mx[1] == 5.0 && mx[2].is_nan() && mx[3].is_nan(), "{mx:?}");
    let mn = f64s(&x.minimum(&y).unwrap());
    assert!(mn[0] == 1.0 && mn[1] == 2.0 && mn[2].is_nan() && mn[3].is_nan(), "{mn:?}");
    let i = Tensor::from_slice(&[1i32, -5, 7], &[3]).unwrap();
    let j = Tensor::from_slice(&[0i32], &[1]).unwrap();
    assert_eq!(i.maximum(&j).unwrap().to_vec::<i32>().unwrap(), vec![1, 0, 7]);
    assert_eq!(i.minimum(&j).unwrap().to_vec::<i32>().unwrap(), vec![0, -5, 0]);
    let f = x.cast(DType::F32).unwrap().maximum(&y.cast(DType::F32).unwrap()).unwrap();
    assert_eq!(f.dtype(), DType::F32);
    assert_eq!(f64s(&f)[..2], [3.0, 5.0]);
}

#[test]
fn binary_gradients() {
    let a = uniform(&[3, 4], 0.5, 2.0, 31);
    let b = randn(&[4], 32);
    let err = gradcheck(|v| v[0].pow(&v[1]), &[a.clone(), b.clone()], 1e-6).unwrap();
    assert!(err < TOL, "pow: err {err}");
    let err = gradcheck(|v| v[0].transpose(0, 1)?.pow(&v[1].unsqueeze(1)?.slice(0, 0, 4, 1)?), &[a.clone(), b], 1e-6)
        .unwrap();
    assert!(err < TOL, "pow (views): err {err}");
    // Negative base with an integral exponent: the exponent's gradient is 0 there, the base's is b·a^(b−1).
    let base = t64(&[-2.0, 3.0], &[2]);
    let ex = t64(&[3.0, 2.0], &[2]);
    base.set_requires_grad(true);
    ex.set_requires_grad(true);
    base.pow(&ex).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&f64s(&base.grad().unwrap().unwrap()), &[12.0, 6.0], 1e-15);
    assert_close(&f64s(&ex.grad().unwrap().unwrap()), &[0.0, 9.0 * 3f64.ln()], 1e-15);
    // 0^0: the base's gradient is 0, not NaN.
    let z = t64(&[0.0], &[1]);
    z.set_requires_grad(true);
    z.pow(&t64(&[0.0], &[1])).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(f64s(&z.grad().unwrap().unwrap()), vec![0.0]);

    // maximum/minimum: distinct values gradcheck; ties split evenly.
    let x = randn(&[3, 4], 33);
    let y = randn(&[3, 1], 34);
    for f in [Tensor::maximum, Tensor::minimum] {
        let err = gradcheck(|v| f(&v[0], &v[1]), &[x.clone(), y.clone()], 1e-6).unwrap();
        assert!(err < TOL, "extremum: err {err}");
    }
    let p = t64(&[1.0, 2.0, 3.0], &[3]);
    let q = t64(&[1.0, 5.0, 0.0], &[3]);
    p.set_requires_grad(true);
    q.set_requires_grad(true);
    p.maximum(&q).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(f64s(&p.grad().unwrap().unwrap()), vec![0.5, 0.0, 1.0]);
    assert_eq!(f64s(&q.grad().unwrap().unwrap()), vec![0.5, 1.0, 0.0]);
    p.zero_grad();
    q.zero_grad();
    p.minimum(&q).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(f64s(&p.grad().unwrap().unwrap()), vec![0.5, 1.0, 0.0]);
    assert_eq!(f64s(&q.grad().unwrap().unwrap()), vec![0.5, 0.0, 1.0]);

    // Scalar ops.
    let s = uniform(&[2, 3], 0.5, 2.0, 35);
    let cases: Vec<(&str, BoxedUnary)> = vec![
        ("add_scalar", Box::new(|t| t.add_scalar(-1.5))),
        ("mul_scalar", Box::new(|t| t.mul_scalar(-2.5))),
        ("pow_scalar 2", Box::new(|t| t.pow_scalar(2.0))),
        ("pow_scalar 3", Box::new(|t| t.pow_scalar(3.0))),
        ("pow_scalar 0.5", Box::new(|t| t.pow_scalar(0.5))),
        ("pow_scalar -1", Box::new(|t| t.pow_scalar(-1.0))),
        ("pow_scalar 2.7", Box::new(|t| t.pow_scalar(2.7))),
        ("pow_scalar -0.3", Box::new(|t| t.pow_scalar(-0.3)?.mul(t))),
    ];
    for (name, f) in cases {
        let err = gradcheck(|v| f(&v[0].transpose(0, 1)?), std::slice::from_ref(&s), 1e-6).unwrap();
        assert!(err < TOL, "{name}: err {err}");
    }
    // x^0 is constant: no gradient from that term.
    let err = gradcheck(|v| v[0].pow_scalar(0.0)?.mul(&v[0]), std::slice::from_ref(&s), 1e-6).unwrap();
    assert!(err < TOL, "x^0 * x: err {err}");
}

#[test]
fn scalar_ops_keep_dtype() {
    let x = t64(&[1.0, -2.0, 4.0], &[3]);
    assert_eq!(f64s(&x.add_scalar(0.5).unwrap()), vec![1.5, -1.5, 4.5]);
    assert_eq!(f64s(&x.mul_scalar(-2.0).unwrap()), vec![-2.0, 4.0, -8.0]);
    assert_eq!(f64s(&x.pow_scalar(2.0).unwrap()), vec![1.0, 4.0, 16.0]);
    assert_close(&f64s(&x.abs().unwrap().pow_scalar(1.5).unwrap()), &[1.0, 2f64.powf(1.5), 8.0], 1e-15);
    assert_eq!(f64s(&x.pow_scalar(-1.0).unwrap()), vec![1.0, -0.5, 0.25]);
    assert_eq!(f64s(&x.abs().unwrap().pow_scalar(0.5).unwrap())[2], 2.0);
    let h = x.cast(DType::BF16).unwrap().mul_scalar(3.0).unwrap();
    assert_eq!(h.dtype(), DType::BF16);
    assert_eq!(f64s(&h), vec![3.0, -6.0, 12.0]);
    let i = Tensor::from_slice(&[1i32, -2, i32::MAX], &[3]).unwrap();
    assert_eq!(i.add_scalar(3.0).unwrap().to_vec::<i32>().unwrap(), vec![4, 1, i32::MIN + 2], "wraps");
    assert_eq!(i.mul_scalar(-2.0).unwrap().to_vec::<i32>().unwrap(), vec![-2, 4, 2]);
    let u = Tensor::from_slice(&[0u8, 10, 255], &[3]).unwrap();
    assert_eq!(u.add_scalar(-1.0).unwrap().to_vec::<u8>().unwrap(), vec![255, 9, 254]);
    assert_eq!(u.mul_scalar(2.0).unwrap().to_vec::<u8>().unwrap(), vec![0, 20, 254]);
    let l = Tensor::from_slice(&[5i64], &[1]).unwrap();
    assert_eq!(l.add_scalar(1e15).unwrap().to_vec::<i64>().unwrap(), vec![1_000_000_000_000_005]);
}

// ---------------------------------------------------------------- comparisons, logic, where

#[test]
fn comparisons_broadcast_to_bool() {
    let a = t64(&[1.0, 2.0, 3.0, f64::NAN, 2.0, 0.0], &[2, 3]);
    let b = t64(&[2.0, 2.0, 1.0], &[3]);
    let cases: [(&str, BinaryFn, [bool; 6]); 6] = [
        ("eq", Tensor::eq, [false, true, false, false, true, false]),
        ("ne", Tensor::ne, [true, false, true, true, false, true]),
        ("lt", Tensor::lt, [true, false, false, false, false, true]),
        ("le", Tensor::le, [true, true, false, false, true, true]),
        ("gt", Tensor::gt, [false, false, true, false, false, false]),
        ("ge", Tensor::ge, [false, true, true, false, true, false]),
    ];
    for dt in [DType::F64, DType::F32, DType::F16, DType::BF16] {
        let (a, b) = (a.cast(dt).unwrap(), b.cast(dt).unwrap());
        for (name, f, want) in &cases {
            let r = f(&a, &b).unwrap();
            assert_eq!(r.dtype(), DType::Bool);
            assert_eq!(r.shape(), &[2, 3]);
            assert_eq!(r.to_vec::<bool>().unwrap(), want.to_vec(), "{name} {dt}");
        }
    }
    // Integers (no NaN) and bool, non-contiguous.
    let i = Tensor::from_slice(&[1i64, 4, 2, 5, 3, 6], &[3, 2]).unwrap().transpose(0, 1).unwrap(); // [[1,2,3],[4,5,6]]
    let j = Tensor::from_slice(&[2i64], &[1]).unwrap();
    assert_eq!(i.ge(&j).unwrap().to_vec::<bool>().unwrap(), vec![false, true, true, true, true, true]);
    let u = Tensor::from_slice(&[0u8, 200], &[2]).unwrap();
    assert_eq!(
        u.lt(&Tensor::from_slice(&[100u8, 100], &[2]).unwrap()).unwrap().to_vec::<bool>().unwrap(),
        vec![true, false]
    );
    let t = Tensor::from_slice(&[true, false], &[2]).unwrap();
    assert_eq!(t.eq(&Tensor::from_slice(&[true], &[1]).unwrap()).unwrap().to_vec::<bool>().unwrap(), vec![true, false]);
    // No gradients through comparisons.
    let g = randn(&[2], 41);
    g.set_requires_grad(true);
    assert!(!g.lt(&g).unwrap().requires_grad());
}

#[test]
fn logical_ops() {
    let a = Tensor::from_slice(&[true, true, false, false], &[2, 2]).unwrap();
    let b = Tensor::from_slice(&[true, false], &[2]).unwrap();
    assert_eq!(a.logical_and(&b).unwrap().to_vec::<bool>().unwrap(), vec![true, false, false, false]);
    assert_eq!(a.logical_or(&b).unwrap().to_vec::<bool>().unwrap(), vec![true, true, true, false]);
    assert_eq!(a.logical_not().unwrap().to_vec::<bool>().unwrap(), vec![false, false, true, true]);
    // Numeric inputs: nonzero (NaN included) is true; the two sides need not share a dtype.
    let x = t64(&[0.0, -1.5, f64::NAN, 0.0], &[4]);
    let n = Tensor::from_slice(&[3i32, 0, 0, 7], &[4]).unwrap();
    assert_eq!(x.logical_and(&n).unwrap().to_vec::<bool>().unwrap(), vec![false, false, false, false]);
    assert_eq!(x.logical_or(&n).unwrap().to_vec::<bool>().unwrap(), vec![true, true, true, true]);
    assert_eq!(x.logical_not().unwrap().to_vec::<bool>().unwrap(), vec![true, false, false, true]);
    assert_eq!(n.logical_not().unwrap().dtype(), DType::Bool);
}

#[test]
fn where_forward_broadcast_and_dtypes() {
    let cond = Tensor::from_slice(&[true, false, true], &[3, 1]).unwrap();
    let a = t64(&[1.0, 2.0], &[2]);
    let b = t64(&[7.0], &[]).reshape(&[]).unwrap();
    let r = cond.where_(&a, &b).unwrap();
    assert_eq!(r.shape(), &[3, 2]);
    assert_eq!(f64s(&r), vec![1.0, 2.0, 7.0, 7.0, 1.0, 2.0]);
    // Every dtype, natively.
    for dt in [DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U8] {
        let r = cond.where_(&a.cast(dt).unwrap(), &b.cast(dt).unwrap()).unwrap();
        assert_eq!(r.dtype(), dt);
        assert_eq!(f64s(&r.cast(DType::F64).unwrap()), vec![1.0, 2.0, 7.0, 7.0, 1.0, 2.0], "{dt}");
    }
    let bools = cond.where_(&Tensor::from_slice(&[true], &[1]).unwrap(), &Tensor::from_slice(&[false], &[1]).unwrap());
    assert_eq!(bools.unwrap().to_vec::<bool>().unwrap(), vec![true, false, true]);
    // Large and non-contiguous (parallel path, strided rows) against a scalar loop.
    let (n, m) = (300, 250);
    let x = randn(&[m, n], 42).transpose(0, 1).unwrap(); // [n, m], strided
    let y = randn(&[n, m], 43);
    let c = x.gt(&y).unwrap();
    let r = c.where_(&x, &y.slice(1, 0, m as i64, 1).unwrap()).unwrap();
    let (xv, yv, rv) = (f64s(&x), f64s(&y), f64s(&r));
    let want: Vec<f64> = xv.iter().zip(&yv).map(|(&p, &q)| if p > q { p } else { q }).collect();
    assert_eq!(rv, want);
    assert_eq!(rv, f64s(&x.maximum(&y).unwrap()));
    // Column-broadcast cond against a transposed a.
    let col = Tensor::from_slice(&(0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(), &[n, 1]).unwrap();
    let r = col.where_(&x, &t64(&[0.0], &[1])).unwrap();
    let rv = f64s(&r);
    for i in 0..n {
        for j in 0..m {
            let want = if i % 3 == 0 { xv[i * m + j] } else { 0.0 };
            assert_eq!(rv[i * m + j], want);
        }
    }
}

#[test]
fn where_gradients() {
    let cond = Tensor::from_slice(&[true, false, false, true, true, false], &[2, 3]).unwrap();
    let (a, b) = (randn(&[2, 3], 51), randn(&[3], 52));
    let err = gradcheck(|v| cond.where_(&v[0], &v[1]), &[a.clone(), b.clone()], 1e-6).unwrap();
    assert!(err < TOL, "where: err {err}");
    let ct = cond.transpose(0, 1).unwrap();
    let err = gradcheck(|v| ct.where_(&v[0].transpose(0, 1)?, &v[1].unsqueeze(1)?), &[a, b], 1e-6).unwrap();
    assert!(err < TOL, "where (views): err {err}");
    // Hand-checked: a gets g where cond, b (broadcast) sums g where not.
    let a = t64(&[1.0; 6], &[2, 3]);
    let b = t64(&[0.0], &[1]);
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    cond.where_(&a, &b).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(f64s(&a.grad().unwrap().unwrap()), vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    assert_eq!(f64s(&b.grad().unwrap().unwrap()), vec![3.0]);
}

// ---------------------------------------------------------------- errors

#[test]
fn bad_inputs_name_the_argument() {
    let f = t64(&[1.0, 2.0], &[2]);
    let i = Tensor::from_slice(&[1i32, 2], &[2]).unwrap();
    let bools = Tensor::from_slice(&[true, false], &[2]).unwrap();
    let check = |r: deepseek::Result<Tensor>, variant: fn(&Error) -> bool, arg: &str, op: &str| {
        let e = r.unwrap_err();
        assert!(variant(&e), "{op}: unexpected variant {e:?}");
        assert_eq!(arg_of(&e), arg, "{op}: {e}");
        assert!(e.to_string().contains(op), "message names the op: {e}");
    };
    let dtype = |e: &Error| matches!(e, Error::InvalidDtype { .. });
    let shape = |e: &Error| matches!(e, Error::ShapeMismatch { .. });
    let invalid = |e: &Error| matches!(e, Error::InvalidArgument { .. });
    let range = |e: &Error| matches!(e, Error::OutOfRange { .. });

    check(i.log(), dtype, "x", "log");
    check(i.gelu(false), dtype, "x", "gelu");
    check(i.sigmoid(), dtype, "x", "sigmoid");
    check(bools.abs(), dtype, "x", "abs");
    check(bools.relu(), dtype, "x", "relu");
    check(i.pow(&i), dtype, "a", "pow");
    check(i.pow_scalar(2.0), dtype, "x", "pow_scalar");
    check(f.maximum(&i), dtype, "b", "maximum");
    check(f.eq(&i), dtype, "b", "eq");
    check(f.lt(&t64(&[1.0, 2.0, 3.0], &[3])), shape, "b", "lt");
    check(f.logical_and(&t64(&[1.0, 2.0, 3.0], &[3])), shape, "b", "logical_and");
    check(f.where_(&f, &f), dtype, "cond", "where");
    check(bools.where_(&f, &i), dtype, "b", "where");
    check(bools.where_(&t64(&[1.0, 2.0, 3.0], &[3]), &f), shape, "a", "where");
    check(bools.where_(&f, &t64(&[1.0, 2.0, 3.0], &[3])), shape, "b", "where");
    check(i.add_scalar(1.5), invalid, "value", "add_scalar");
    check(i.mul_scalar(f64::INFINITY), invalid, "value", "mul_scalar");
    check(i.add_scalar(3e9), range, "value", "add_scalar");
    check(Tensor::from_slice(&[1u8], &[1]).unwrap().add_scalar(256.0), range, "value", "add_scalar");
    check(bools.add_scalar(1.0), dtype, "x", "add_scalar");
    check(f.clamp(f64::NAN, 1.0), invalid, "min", "clamp");
    check(f.clamp(0.0, f64::NAN), invalid, "max", "clamp");
    check(f.softplus(0.0, 20.0), invalid, "beta", "softplus");
    check(f.softplus(1.0, f64::NAN), invalid, "threshold", "softplus");
    let bad = call_named("gelu", &[&f], &[("approximate", Attr::Str("fast".into()))]).map(|mut v| v.remove(0));
    check(bad, invalid, "approximate", "gelu");
    let bad = call_named("relu_backward", &[&f, &t64(&[1.0], &[1])], &[]).map(|mut v| v.remove(0));
    check(bad, shape, "x", "relu_backward");
    let bad = call_named("gelu_backward", &[&f, &f.cast(DType::F32).unwrap()], &[]).map(|mut v| v.remove(0));
    check(bad, dtype, "x", "gelu_backward");
    let e = call_named("add_scalar", &[&f], &[]).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { arg: "attrs", .. }), "{e}");
}

#[test]
fn long_binary_rows_split_across_threads() {
    // A packed pair and a scalar broadcast coalesce into one long row: the kernel splits it.
    let n = 300_001;
    let (a, b) = (randn(&[n], 51), randn(&[n], 52));
    let (va, vb) = (f64s(&a), f64s(&b));
    let sum = f64s(&a.add(&b).unwrap());
    assert!(sum.iter().enumerate().all(|(i, &s)| s == va[i] + vb[i]));
    let two = t64(&[2.0], &[]);
    let scaled = f64s(&a.mul(&two).unwrap());
    assert!(scaled.iter().enumerate().all(|(i, &s)| s == va[i] * 2.0));
    let back = f64s(&two.sub(&a).unwrap());
    assert!(back.iter().enumerate().all(|(i, &s)| s == 2.0 - va[i]));
}
