//! Pointwise bodies against the ops' eager kernels, and the fused kernel against op-by-op eager execution: bitwise.

use deepseek::ops::fused::{FusedProgram, FusedStep, Reg, run_fused};
use deepseek::ops::{Attr, Attrs, OpDef, all_ops, call_named, find_op};
use deepseek::{DType, Device, Element, Error, Generator, Tensor};

/// (attribute name, value) pairs of one call.
type AttrList = Vec<(&'static str, Attr)>;

/// The ops that must carry a pointwise body: every elementwise float op and gradient kernel.
const FUSABLE: &[&str] = &[
    "neg",
    "abs",
    "exp",
    "log",
    "log1p",
    "sqrt",
    "rsqrt",
    "reciprocal",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "leaky_relu",
    "gelu",
    "silu",
    "softplus",
    "clamp",
    "sign",
    "floor",
    "ceil",
    "round",
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "maximum",
    "minimum",
    "add_scalar",
    "mul_scalar",
    "pow_scalar",
    "relu_backward",
    "leaky_relu_backward",
    "gelu_backward",
    "silu_backward",
    "softplus_backward",
    "clamp_backward",
];

/// The attribute sets each op is checked with (defaults first, then the other branches).
fn attr_cases(name: &str) -> Vec<AttrList> {
    let f = Attr::Float;
    match name {
        "leaky_relu" | "leaky_relu_backward" => vec![vec![], vec![("negative_slope", f(0.2))]],
        "gelu" | "gelu_backward" => {
            vec![vec![("approximate", Attr::Str("none".into()))], vec![("approximate", Attr::Str("tanh".into()))]]
        }
        "softplus" | "softplus_backward" => vec![vec![], vec![("beta", f(2.0)), ("threshold", f(5.0))]],
        "clamp" | "clamp_backward" => {
            vec![vec![("min", f(-0.5)), ("max", f(1.5))], vec![("min", f(0.3))], vec![("max", f(-1.0 / 3.0))]]
        }
        "add_scalar" => vec![vec![("value", f(1.5))], vec![("value", f(-1.0 / 3.0))]],
        "mul_scalar" => vec![vec![("value", f(0.1))], vec![("value", f(-2.0))]],
        "pow_scalar" => [2.0, 3.0, 0.5, -1.0, 1.7, 0.0, -2.5].iter().map(|&p| vec![("exponent", f(p))]).collect(),
        _ => vec![vec![]],
    }
}

/// Random values (scale ~3) with negatives, zeros, halves, large and tiny magnitudes, infinities and NaN.
fn test_values(n: usize, seed: u64) -> Vec<f64> {
    let t = Tensor::rand_normal(&[n], 0.0, 3.0, DType::F64, Device::Cpu, &mut Generator::new(seed)).unwrap();
    let mut v = t.to_vec::<f64>().unwrap();
    let specials = [
        0.0,
        -0.0,
        0.5,
        1.5,
        2.5,
        -2.5,
        1e4,
        -1e4,
        100.0,
        -100.0,
        1e-30,
        -1e-30,
        1e30,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1.0,
        -1.0,
    ];
    // Different seeds put the specials at different places, so binary ops see special pairs too.
    for (k, &s) in specials.iter().enumerate() {
        let i = (k * 37 + seed as usize * 11) % n;
        v[i] = s;
    }
    v
}

fn tensor_of<T: Element>(v: &[f64], shape: &[usize]) -> Tensor {
    let vals: Vec<T> = v.iter().map(|&x| T::from_f64(x)).collect();
    Tensor::from_slice(&vals, shape).unwrap()
}

/// Bit patterns of a float tensor's elements (f32 or f64), for bitwise comparison.
fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t.to_vec::<f32>().unwrap().iter().map(|v| v.to_bits() as u64).collect(),
        DType::F64 => t.to_vec::<f64>().unwrap().iter().map(|v| v.to_bits()).collect(),
        d => panic!("not a fused dtype: {d}"),
    }
}

fn assert_bitwise(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    let (g, w) = (bits(got), bits(want));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert_eq!(a, b, "{what}: element {i} differs (got bits {a:#x}, want {b:#x})");
    }
}

fn resolve(op: &OpDef, attrs: &[(&str, Attr)]) -> Attrs {
    Attrs::resolve(op.name, op.attrs, attrs).unwrap()
}

#[test]
fn pointwise_set_covers_the_elementwise_float_ops() {
    let mut have: Vec<&str> = all_ops().into_iter().filter(|op| op.pointwise.is_some()).map(|op| op.name).collect();
    let mut want = FUSABLE.to_vec();
    have.sort_unstable();
    want.sort_unstable();
    assert_eq!(have, want);
    for op in all_ops().into_iter().filter(|op| op.pointwise.is_some()) {
        assert_eq!(op.pointwise.unwrap().arity, op.inputs.len(), "{}: arity", op.name);
    }
    // Ops outside the float elementwise family stay unfused.
    for name in ["cast", "eq", "where", "sum", "dropout", "l1_loss_backward"] {
        assert!(find_op(name).unwrap().pointwise.is_none(), "{name} must not be fusable");
    }
}

/// Runs `op`'s chunk body over `ins` in uneven pieces (1, 7, 500, rest), so every loop sees
/// a length that is not a multiple of the SIMD width and unaligned starts.
fn run_body<T: Element + Default>(
    body: fn(&mut [T], &[&[T]], &Attrs),
    ins: &[Vec<T>],
    attrs: &Attrs,
    shape: &[usize],
) -> Tensor {
    let n = ins[0].len();
    let mut out = vec![T::default(); n];
    let cuts = [0, 1, 8, 508, n];
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let pieces: Vec<&[T]> = ins.iter().map(|v| &v[a..b]).collect();
        body(&mut out[a..b], &pieces, attrs);
    }
    Tensor::from_slice(&out, shape).unwrap()
}

#[test]
fn pointwise_bodies_equal_eager_forward_bitwise() {
    let n = 1003;
    let xs = test_values(n, 1);
    let ys = test_values(n, 2);
    for name in FUSABLE {
        let op = find_op(name).unwrap();
        let pw = op.pointwise.unwrap();
        for attrs in attr_cases(name) {
            let resolved = resolve(op, &attrs);
            for dtype in [DType::F32, DType::F64] {
                let raw = [&xs, &ys];
                let ts: Vec<Tensor> = raw[..pw.arity]
                    .iter()
                    .map(|v| match dtype {
                        DType::F32 => tensor_of::<f32>(v, &[n]),
                        _ => tensor_of::<f64>(v, &[n]),
                    })
                    .collect();
                let refs: Vec<&Tensor> = ts.iter().collect();
                let want = call_named(name, &refs, &attrs).unwrap().remove(0);
                let got = match dtype {
                    DType::F32 => {
                        let ins: Vec<Vec<f32>> = ts.iter().map(|t| t.to_vec::<f32>().unwrap()).collect();
                        run_body(pw.f32, &ins, &resolved, &[n])
                    }
                    _ => {
                        let ins: Vec<Vec<f64>> = ts.iter().map(|t| t.to_vec::<f64>().unwrap()).collect();
                        run_body(pw.f64, &ins, &resolved, &[n])
                    }
                };
                assert_bitwise(&got, &want, &format!("{name} {attrs:?} {dtype}"));
            }
        }
    }
}

fn step(name: &str, args: &[Reg]) -> FusedStep {
    let op = find_op(name).unwrap();
    FusedStep { op, attrs: Attrs::none(), args: args.to_vec() }
}

/// x*a -> +b -> relu -> *c + d (ALGORITHMS.md §7): inputs x, a, b, c, d.
fn chain_program() -> FusedProgram {
    use Reg::{Input as I, Step as S};
    FusedProgram {
        n_inputs: 5,
        steps: vec![
            step("mul", &[I(0), I(1)]),
            step("add", &[S(0), I(2)]),
            step("relu", &[S(1)]),
            step("mul", &[S(2), I(3)]),
            step("add", &[S(3), I(4)]),
        ],
        outputs: vec![S(4)],
    }
}

/// The chain op by op through the eager ops: every intermediate.
fn chain_eager(t: &[Tensor]) -> Vec<Tensor> {
    let s0 = t[0].mul(&t[1]).unwrap();
    let s1 = s0.add(&t[2]).unwrap();
    let s2 = s1.relu().unwrap();
    let s3 = s2.mul(&t[3]).unwrap();
    let s4 = s3.add(&t[4]).unwrap();
    vec![s0, s1, s2, s3, s4]
}

fn rand(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    // Scale 100 so products and sums round (a wrong operand order would show).
    Tensor::rand_normal(shape, 0.0, 100.0, dtype, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

/// Checks the chain with inputs of the given shapes (broadcast to `shape`) against eager.
fn check_chain(shape: &[usize], in_shapes: [&[usize]; 5], dtype: DType, what: &str) {
    let inputs: Vec<Tensor> = in_shapes.iter().enumerate().map(|(i, s)| rand(s, dtype, 10 + i as u64)).collect();
    check_chain_with(shape, &inputs, dtype, what);
}

fn check_chain_with(shape: &[usize], inputs: &[Tensor], dtype: DType, what: &str) {
    let got = run_fused(&chain_program(), inputs, shape, dtype).unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].is_contiguous(), "{what}: output contiguous");
    let want = chain_eager(inputs).remove(4);
    assert_bitwise(&got[0], &want, what);
}

#[test]
fn chain_full_shape_inputs_all_sizes() {
    for dtype in [DType::F32, DType::F64] {
        for n in [0usize, 1, 7, 4097, 100_003, 1 << 20] {
            let s: &[usize] = &[n];
            check_chain(&[n], [s, s, s, s, s], dtype, &format!("full [{n}] {dtype}"));
        }
        let s: &[usize] = &[1024, 1024];
        check_chain(s, [s, s, s, s, s], dtype, &format!("full [1024, 1024] {dtype}"));
        let z: &[usize] = &[3, 0, 5];
        check_chain(z, [z, z, z, z, z], dtype, &format!("empty [3, 0, 5] {dtype}"));
    }
}

#[test]
fn chain_scalar_a_and_b() {
    for dtype in [DType::F32, DType::F64] {
        for n in [1usize, 7, 4097, 1 << 20] {
            let s: &[usize] = &[n];
            // a as a 0-d tensor, b as a one-element vector.
            check_chain(&[n], [s, &[], &[1], s, s], dtype, &format!("scalar a, b [{n}] {dtype}"));
        }
        let s: &[usize] = &[513, 129];
        check_chain(s, [s, &[1, 1], &[], s, s], dtype, &format!("scalar a, b [513, 129] {dtype}"));
    }
}

#[test]
fn chain_row_bias() {
    for dtype in [DType::F32, DType::F64] {
        // Row lengths that divide the chunk (filled once per worker), that do not (refilled
        // per chunk), one longer than a chunk, and a one-row program.
        for (m, n) in [(1usize, 7usize), (7, 1), (300, 7), (4100, 256), (257, 1000), (1025, 3000), (2048, 513)] {
            let s: &[usize] = &[m, n];
            check_chain(s, [s, s, &[n], s, s], dtype, &format!("bias [{n}] on [{m}, {n}] {dtype}"));
            check_chain(s, [s, s, &[1, n], s, &[n]], dtype, &format!("bias [1, {n}] and d [{n}] {dtype}"));
        }
        // Rows of different lengths in one program ([N] and [K, N] against [M, K, N]).
        let s: &[usize] = &[33, 5, 129];
        check_chain(s, [s, &[129], &[5, 129], s, &[1, 1, 129]], dtype, &format!("mixed rows {dtype}"));
    }
}

#[test]
fn chain_permuted_and_general_broadcast_inputs() {
    for dtype in [DType::F32, DType::F64] {
        for (m, n) in [(3usize, 5usize), (700, 1500)] {
            let s: &[usize] = &[m, n];
            let mut inputs: Vec<Tensor> = (0..5).map(|i| rand(s, dtype, 20 + i)).collect();
            // a: a transposed [n, m] tensor (non-contiguous).
            inputs[1] = rand(&[n, m], dtype, 30).transpose(0, 1).unwrap();
            assert!(!inputs[1].is_contiguous());
            // c: a column [m, 1] (general broadcast, materialised); d: a strided row.
            inputs[3] = rand(&[m, 1], dtype, 31);
            inputs[4] = rand(&[n, 2], dtype, 32).transpose(0, 1).unwrap().slice(0, 0, 1, 1).unwrap();
            assert_eq!(inputs[4].shape(), &[1, n]);
            assert!(!inputs[4].is_contiguous());
            check_chain_with(s, &inputs, dtype, &format!("permuted/column [{m}, {n}] {dtype}"));
        }
    }
}

#[test]
fn multi_output_programs() {
    use Reg::{Input as I, Step as S};
    for dtype in [DType::F32, DType::F64] {
        for n in [0usize, 5, 4097, 1 << 20] {
            let inputs: Vec<Tensor> = (0..5).map(|i| rand(&[n], dtype, 40 + i)).collect();
            let mut prog = chain_program();
            // An intermediate read later (s1), the final value twice, a mid value, an input,
            // and a dead step nobody reads.
            prog.steps.push(step("exp", &[S(2)]));
            prog.outputs = vec![S(1), S(4), S(2), S(4), I(3)];
            let got = run_fused(&prog, &inputs, &[n], dtype).unwrap();
            let want = chain_eager(&inputs);
            assert_eq!(got.len(), 5);
            let what = |k: usize| format!("multi-output {k} [{n}] {dtype}");
            assert_bitwise(&got[0], &want[1], &what(0));
            assert_bitwise(&got[1], &want[4], &what(1));
            assert_bitwise(&got[2], &want[2], &what(2));
            assert_bitwise(&got[3], &want[4], &what(3));
            assert_bitwise(&got[4], &inputs[3], &what(4));
        }
    }
}

#[test]
fn every_pointwise_op_in_a_fused_program_equals_eager() {
    // Each op with its attribute sets as a two-step program (op, then neg) over a long input,
    // so each runs through the parallel chunked path and reads a register.
    let n = 40_000;
    let xs = test_values(n, 3);
    let ys = test_values(n, 4);
    for name in FUSABLE {
        let op = find_op(name).unwrap();
        let arity = op.pointwise.unwrap().arity;
        for attrs in attr_cases(name) {
            for dtype in [DType::F32, DType::F64] {
                let ts: Vec<Tensor> = [&xs, &ys][..arity]
                    .iter()
                    .map(|v| match dtype {
                        DType::F32 => tensor_of::<f32>(v, &[n]),
                        _ => tensor_of::<f64>(v, &[n]),
                    })
                    .collect();
                let refs: Vec<&Tensor> = ts.iter().collect();
                let want = call_named(name, &refs, &attrs).unwrap().remove(0).neg().unwrap();
                let args: Vec<Reg> = (0..arity).map(Reg::Input).collect();
                let prog = FusedProgram {
                    n_inputs: arity,
                    steps: vec![FusedStep { op, attrs: resolve(op, &attrs), args }, step("neg", &[Reg::Step(0)])],
                    outputs: vec![Reg::Step(1)],
                };
                let got = run_fused(&prog, &ts, &[n], dtype).unwrap().remove(0);
                assert_bitwise(&got, &want, &format!("fused {name} {attrs:?} {dtype}"));
            }
        }
    }
}

#[test]
fn program_display() {
    let mut prog = chain_program();
    let op = find_op("leaky_relu").unwrap();
    prog.steps[2] =
        FusedStep { op, attrs: resolve(op, &[("negative_slope", Attr::Float(0.5))]), args: vec![Reg::Step(1)] };
    prog.outputs.push(Reg::Step(2));
    assert_eq!(
        prog.to_string(),
        "mul(in0, in1) -> add(s0, in2) -> leaky_relu[negative_slope=0.5](s1) -> mul(s2, in3) -> add(s3, in4) => s4, s2"
    );
}

fn chain_err(prog: &FusedProgram, inputs: &[Tensor], shape: &[usize], dtype: DType) -> Error {
    match run_fused(prog, inputs, shape, dtype) {
        Ok(_) => panic!("expected an error for {prog}"),
        Err(e) => e,
    }
}

#[test]
fn bad_programs_are_errors() {
    use Reg::{Input as I, Step as S};
    let shape: &[usize] = &[4, 5];
    let inputs: Vec<Tensor> = (0..5).map(|i| rand(shape, DType::F32, 50 + i)).collect();
    let good = chain_program();
    assert!(run_fused(&good, &inputs, shape, DType::F32).is_ok());

    // Wrong arity.
    let mut p = good.clone();
    p.steps[2] = step("relu", &[S(1), I(0)]);
    let e = chain_err(&p, &inputs, shape, DType::F32);
    assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("relu"), "{e}");
    let mut p = good.clone();
    p.steps[0] = step("mul", &[I(0)]);
    assert!(matches!(chain_err(&p, &inputs, shape, DType::F32), Error::InvalidArgument { .. }));

    // Registers out of range: an input past n_inputs, a step reading itself or a later step,
    // an output past the steps.
    for bad in [I(5), S(1), S(3)] {
        let mut p = good.clone();
        p.steps[1] = step("add", &[S(0), bad]);
        let e = chain_err(&p, &inputs, shape, DType::F32);
        assert!(matches!(e, Error::OutOfRange { .. }), "{bad}: {e}");
    }
    let mut p = good.clone();
    p.outputs = vec![S(5)];
    assert!(matches!(chain_err(&p, &inputs, shape, DType::F32), Error::OutOfRange { .. }));
    let mut p = good.clone();
    p.outputs = vec![I(7)];
    assert!(matches!(chain_err(&p, &inputs, shape, DType::F32), Error::OutOfRange { .. }));
    let mut p = good.clone();
    p.outputs.clear();
    assert!(matches!(chain_err(&p, &inputs, shape, DType::F32), Error::InvalidArgument { .. }));

    // Inputs that do not broadcast to the shape, or would add a dimension.
    for bad_shape in [&[4usize, 3][..], &[3], &[2, 4, 5], &[4, 1, 5], &[1, 1, 5]] {
        let mut bad = inputs.clone();
        bad[2] = rand(bad_shape, DType::F32, 60);
        let e = chain_err(&good, &bad, shape, DType::F32);
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{bad_shape:?}: {e}");
    }

    // Integer and half dtypes are not fused; an input of another dtype is an error.
    let ints: Vec<Tensor> = inputs.iter().map(|t| t.cast(DType::I32).unwrap()).collect();
    assert!(matches!(chain_err(&good, &ints, shape, DType::I32), Error::Unsupported(_)));
    let halves: Vec<Tensor> = inputs.iter().map(|t| t.cast(DType::F16).unwrap()).collect();
    assert!(matches!(chain_err(&good, &halves, shape, DType::F16), Error::Unsupported(_)));
    let mut mixed = inputs.clone();
    mixed[4] = mixed[4].cast(DType::F64).unwrap();
    assert!(matches!(chain_err(&good, &mixed, shape, DType::F32), Error::InvalidDtype { .. }));

    // Input count.
    let e = chain_err(&good, &inputs[..4], shape, DType::F32);
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");

    // An op without a pointwise body.
    let mut p = good.clone();
    p.steps[2] = step("sum", &[S(1)]);
    let e = chain_err(&p, &inputs, shape, DType::F32);
    assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("sum"), "{e}");

    // Attribute values the op rejects, and attributes of another op.
    let clamp = find_op("clamp").unwrap();
    let mut p = good.clone();
    p.steps[2] = FusedStep { op: clamp, attrs: resolve(clamp, &[("min", Attr::Float(f64::NAN))]), args: vec![S(1)] };
    let e = chain_err(&p, &inputs, shape, DType::F32);
    assert!(e.to_string().contains("min"), "{e}");
    let slope = resolve(find_op("leaky_relu").unwrap(), &[("negative_slope", Attr::Float(0.1))]);
    p.steps[2] = FusedStep { op: clamp, attrs: slope, args: vec![S(1)] };
    let e = chain_err(&p, &inputs, shape, DType::F32);
    assert!(e.to_string().contains("negative_slope"), "{e}");

    // Attrs::none() for an op with attributes takes the defaults (as an eager call does).
    let leaky = find_op("leaky_relu").unwrap();
    let mut p = good.clone();
    p.steps[2] = FusedStep { op: leaky, attrs: Attrs::none(), args: vec![S(1)] };
    let got = run_fused(&p, &inputs, shape, DType::F32).unwrap().remove(0);
    let s1 = inputs[0].mul(&inputs[1]).unwrap().add(&inputs[2]).unwrap();
    let want = s1.leaky_relu(0.01).unwrap().mul(&inputs[3]).unwrap().add(&inputs[4]).unwrap();
    assert_bitwise(&got, &want, "leaky_relu default attrs");
}
