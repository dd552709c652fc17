//! Autocast: the policy covers every op, eager and graph output dtypes follow it, scopes nest, weight casts are cached, gradients of f32 leaves are f32 and close to the f32 run.

use deepseek::amp::{self, Policy, autocast, autocast_disabled, autocast_stats, policy_of_name};
use deepseek::autograd::backward;
use deepseek::exec::{ExecOptions, Executor};
use deepseek::graph::{Dim, Graph, GraphBuilder, append_gradients, passes};
use deepseek::ops::dispatch::call_named;
use deepseek::ops::{Attr, OpKind, all_ops};
use deepseek::tensor::grad::Gradient;
use deepseek::{DType, Device, Error, Generator, Tensor};

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn call1(name: &str, inputs: &[&Tensor], attrs: &[(&str, Attr)]) -> Tensor {
    call_named(name, inputs, attrs).unwrap().remove(0)
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.cast(DType::F32).unwrap().contiguous().unwrap().to_vec::<f32>().unwrap()
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

#[test]
fn policy_table_covers_every_registered_op_once() {
    let ops = all_ops();
    for op in &ops {
        let rows = amp::TABLE.iter().filter(|(n, _)| *n == op.name).count();
        assert_eq!(
            rows, 1,
            "op `{}` has {rows} rows in the autocast table (needs exactly one deliberate row)",
            op.name
        );
        // Lower precision is for matrix products only.
        if policy_of_name(op.name) == Policy::Lower {
            assert_eq!(op.kind, OpKind::MatmulLike, "`{}` is lowered but is no matrix product", op.name);
        }
    }
    for (name, _) in amp::TABLE {
        assert!(ops.iter().any(|o| o.name == *name), "table row `{name}` names no registered op");
    }
    // The documented default for names the table lacks.
    assert_eq!(policy_of_name("no_such_op"), Policy::Keep);
    // The lists of ALGORITHMS.md §2 that we have.
    for n in ["matmul", "bmm", "linear", "conv2d"] {
        assert_eq!(policy_of_name(n), Policy::Lower, "{n}");
    }
    for n in [
        "exp",
        "log",
        "log1p",
        "reciprocal",
        "rsqrt",
        "pow",
        "softplus",
        "layer_norm",
        "batch_norm",
        "mse_loss",
        "l1_loss",
        "cross_entropy",
        "nll_loss",
        "binary_cross_entropy_with_logits",
        "logsumexp",
        "softmax",
        "log_softmax",
        "sum",
        "prod",
        "mean",
        "var",
        "std",
    ] {
        assert_eq!(policy_of_name(n), Policy::F32, "{n}");
    }
    for n in ["where", "scatter_add", "concat", "stack", "add", "sub", "mul", "div"] {
        assert_eq!(policy_of_name(n), Policy::Promote, "{n}");
    }
}

/// A representative call: (op, inputs, attrs, the output dtype the table implies under bf16).
type Case = (&'static str, Vec<Tensor>, Vec<(&'static str, Attr)>, DType);

/// The representative calls.
fn cases() -> Vec<Case> {
    let a = normal(&[4, 8], 1);
    let w = normal(&[6, 8], 2);
    let b = normal(&[6], 3);
    let a16 = a.cast(DType::BF16).unwrap();
    let img = normal(&[1, 2, 5, 5], 4);
    let k = normal(&[3, 2, 3, 3], 5);
    let cond = call1("gt", &[&a, &normal(&[4, 8], 6)], &[]);
    let labels = Tensor::from_slice(&[0i64, 3, 7, 1], &[4]).unwrap();
    let pos = call1("abs", &[&a16], &[]);
    let a64 = a.cast(DType::F64).unwrap();
    let w64 = w.cast(DType::F64).unwrap();
    use DType::{BF16, F32, F64};
    vec![
        ("matmul", vec![a.clone(), w.transpose(0, 1).unwrap()], vec![], BF16),
        ("linear", vec![a.clone(), w.clone(), b.clone()], vec![], BF16),
        ("bmm", vec![a.unsqueeze(0).unwrap(), w.transpose(0, 1).unwrap().unsqueeze(0).unwrap()], vec![], BF16),
        ("conv2d", vec![img, k], vec![], BF16),
        // f64 is never narrowed.
        ("matmul", vec![a64.clone(), w64.transpose(0, 1).unwrap()], vec![], F64),
        ("exp", vec![a16.clone()], vec![], F32),
        ("log", vec![pos.clone()], vec![], F32),
        ("rsqrt", vec![pos], vec![], F32),
        ("softmax", vec![a16.clone()], vec![("axis", Attr::Int(-1))], F32),
        ("log_softmax", vec![a16.clone()], vec![("axis", Attr::Int(-1))], F32),
        ("sum", vec![a16.clone()], vec![], F32),
        ("mean", vec![a16.clone()], vec![], F32),
        ("logsumexp", vec![a16.clone()], vec![("axes", Attr::Ints(vec![1]))], F32),
        ("layer_norm", vec![a16.clone()], vec![], F32),
        ("cross_entropy", vec![a16.clone(), labels], vec![], F32),
        ("mse_loss", vec![a16.clone(), a.clone()], vec![], F32),
        ("add", vec![a16.clone(), a.clone()], vec![], F32),
        ("mul", vec![a16.clone(), a16.clone()], vec![], BF16),
        ("where", vec![cond, a16.clone(), a.clone()], vec![], F32),
        ("concat", vec![a16.clone(), a.clone()], vec![("dim", Attr::Int(0))], F32),
        ("relu", vec![a16.clone()], vec![], BF16),
        ("relu", vec![a.clone()], vec![], F32),
        ("tanh", vec![a16], vec![], BF16),
        ("add", vec![a64, a.cast(DType::F64).unwrap()], vec![], F64),
    ]
}

#[test]
fn eager_output_dtypes_follow_the_table() {
    let _ac = autocast(DType::BF16).unwrap();
    for (name, inputs, attrs, want) in cases() {
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let out = call_named(name, &refs, &attrs).unwrap_or_else(|e| panic!("{name}: {e}")).remove(0);
        assert_eq!(out.dtype(), want, "{name} on {:?}", inputs.iter().map(Tensor::dtype).collect::<Vec<_>>());
    }
}

#[test]
fn graph_output_dtypes_follow_the_table_and_run() {
    for (idx, (name, inputs, attrs, want)) in cases().into_iter().enumerate() {
        let mut b = GraphBuilder::new();
        let vals: Vec<_> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let dims: Vec<Dim> = t.shape().iter().map(|&d| Dim::Fixed(d)).collect();
                b.input(&format!("in{i}"), t.dtype(), &dims).unwrap()
            })
            .collect();
        let out = match b.op1(name, &vals, &attrs) {
            Ok(v) => v,
            // Mixed float inputs make no valid graph without autocast (ops take one dtype);
            // eager autocast covers those cases.
            Err(_) => {
                let floats: Vec<DType> = inputs.iter().map(Tensor::dtype).filter(|d| d.is_float()).collect();
                assert!(floats.windows(2).any(|w| w[0] != w[1]), "case {idx}: {name} failed to build");
                continue;
            }
        };
        b.output("out", out).unwrap();
        let g = b.finish().unwrap();
        let cast = passes::autocast(&g, DType::BF16).unwrap();
        // The op node's output type inside the graph follows the table ...
        let node = cast.nodes().iter().find(|n| n.kind.op().is_some_and(|o| o.name == name)).unwrap();
        assert_eq!(cast.value(node.outputs[0]).ty.dtype, want, "case {idx}: {name}");
        // ... while the graph's output keeps its declared dtype.
        let declared = g.value(g.output("out").unwrap()).ty.dtype;
        assert_eq!(cast.value(cast.output("out").unwrap()).ty.dtype, declared);
        // It runs at opt level 2 and equals the eager autocast result.
        let exec = Executor::new(&cast, ExecOptions::default()).unwrap();
        let feeds: Vec<(String, &Tensor)> = inputs.iter().enumerate().map(|(i, t)| (format!("in{i}"), t)).collect();
        let feeds: Vec<(&str, &Tensor)> = feeds.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        let got = exec.run(&feeds, &["out"]).unwrap().remove(0);
        let eager = {
            let _ac = autocast(DType::BF16).unwrap();
            let refs: Vec<&Tensor> = inputs.iter().collect();
            call_named(name, &refs, &attrs).unwrap().remove(0).cast(declared).unwrap()
        };
        if declared.is_float() {
            assert_eq!(f32s(&got), f32s(&eager), "case {idx}: {name} graph vs eager");
        }
    }
}

#[test]
fn nested_scopes_restore_the_outer_state() {
    assert_eq!(amp::current_dtype(), None);
    let a = normal(&[2, 3], 1);
    let w = normal(&[3, 2], 2);
    {
        let _outer = autocast(DType::BF16).unwrap();
        assert_eq!(amp::current_dtype(), Some(DType::BF16));
        {
            let _inner = autocast(DType::F16).unwrap();
            assert_eq!(call1("matmul", &[&a, &w], &[]).dtype(), DType::F16);
        }
        assert_eq!(amp::current_dtype(), Some(DType::BF16));
        {
            let _off = autocast_disabled();
            assert_eq!(amp::current_dtype(), None);
            assert_eq!(call1("matmul", &[&a, &w], &[]).dtype(), DType::F32);
        }
        assert_eq!(call1("matmul", &[&a, &w], &[]).dtype(), DType::BF16);
    }
    assert_eq!(amp::current_dtype(), None);
    assert_eq!(amp::autocast::depth(), 0);
    assert_eq!(call1("matmul", &[&a, &w], &[]).dtype(), DType::F32);
}

#[test]
fn non_floating_autocast_dtypes_are_errors_naming_them() {
    for d in [DType::I32, DType::I64, DType::U8, DType::Bool, DType::F64] {
        let e = autocast(d).err().unwrap_or_else(|| panic!("{d} accepted"));
        assert!(matches!(e, Error::InvalidDtype { .. }), "{e}");
        assert!(e.to_string().contains(&d.to_string()), "{e}");
        assert_eq!(amp::current_dtype(), None, "a refused scope changes nothing");
    }
    assert!(passes::autocast(&tiny_mlp(1).0, DType::I64).unwrap_err().to_string().contains("i64"));
    assert_eq!(amp::default_dtype(Device::Cpu), DType::BF16);
    assert_eq!(amp::default_dtype(Device::Cuda(0)), DType::F16);
}

#[test]
fn weight_casts_are_cached_once_per_region() {
    let w = normal(&[8, 4], 1);
    w.set_requires_grad(true);
    let (x1, x2, x3) = (normal(&[2, 8], 2), normal(&[2, 8], 3), normal(&[2, 8], 4));
    {
        let _ac = autocast(DType::BF16).unwrap();
        let y = call1("matmul", &[&x1, &w], &[])
            .add(&call1("matmul", &[&x2, &w], &[]))
            .unwrap()
            .add(&call1("matmul", &[&x3, &w], &[]))
            .unwrap();
        let s = autocast_stats();
        // Three activations cast (no grad, not cached) + the weight once; two hits.
        assert_eq!((s.casts, s.cache_hits), (4, 2), "{s:?}");
        backward(&y.sum_all().unwrap()).unwrap();
    }
    // The gradient reaches the f32 leaf as f32, summed over the three uses.
    let Some(Gradient::Dense(g)) = w.gradient() else { panic!("no gradient") };
    assert_eq!(g.dtype(), DType::F32);
    // A new region starts with an empty cache.
    let _ac = autocast(DType::BF16).unwrap();
    call1("matmul", &[&x1, &w], &[]);
    assert_eq!(autocast_stats().cache_hits, 0);
    assert_eq!(autocast_stats().casts, 2);
}

/// Eager two-layer MLP loss on fixed data; returns (loss, grads of w1, b1, w2).
fn eager_mlp(low: Option<DType>) -> (f64, Vec<Tensor>) {
    let w1 = normal(&[16, 8], 11).mul_scalar_f(0.3);
    let b1 = normal(&[16], 12).mul_scalar_f(0.1);
    let w2 = normal(&[5, 16], 13).mul_scalar_f(0.3);
    for p in [&w1, &b1, &w2] {
        p.set_requires_grad(true);
    }
    let x = normal(&[32, 8], 14);
    let labels = Tensor::from_slice(&(0..32).map(|i| (i * 7 % 5) as i64).collect::<Vec<_>>(), &[32]).unwrap();
    let loss = {
        let _ac = low.map(|d| autocast(d).unwrap());
        let h = call1("relu", &[&call1("linear", &[&x, &w1, &b1], &[])], &[]);
        let logits = call1("linear", &[&h, &w2], &[]);
        call1("cross_entropy", &[&logits, &labels], &[])
    };
    assert_eq!(loss.dtype(), DType::F32);
    backward(&loss).unwrap();
    let grads = [&w1, &b1, &w2]
        .iter()
        .map(|p| match p.gradient() {
            Some(Gradient::Dense(g)) => g,
            other => panic!("gradient {other:?}"),
        })
        .collect();
    (loss.item().unwrap(), grads)
}

trait ScaleF {
    fn mul_scalar_f(&self, v: f64) -> Tensor;
}
impl ScaleF for Tensor {
    fn mul_scalar_f(&self, v: f64) -> Tensor {
        call1("mul_scalar", &[self], &[("value", Attr::Float(v))])
    }
}

#[test]
fn eager_gradients_of_f32_leaves_are_f32_and_close_to_the_f32_run() {
    let (l32, g32) = eager_mlp(None);
    let (l16, g16) = eager_mlp(Some(DType::BF16));
    assert!((l32 - l16).abs() / l32.abs() < 1e-2, "loss {l32} vs {l16}");
    assert_ne!(l32, l16, "autocast changed nothing: the matmuls did not run in bf16");
    for (a, b) in g16.iter().zip(&g32) {
        assert_eq!(a.dtype(), DType::F32);
        let e = rel_err(&f32s(a), &f32s(b));
        assert!(e < 3e-2, "gradient relative error {e}");
    }
}

/// A graph MLP whose first weight feeds two matmuls (so its cast must be shared).
fn tiny_mlp(seed: u64) -> (Graph, Vec<(String, Tensor)>) {
    let mut g = Generator::new(seed);
    let mut b = GraphBuilder::new();
    let batch = Dim::Sym("batch".into());
    let x = b.input("x", DType::F32, &[batch.clone(), Dim::Fixed(8)]).unwrap();
    let y = b.input("y", DType::I64, &[batch]).unwrap();
    let w1t = Tensor::rand_normal(&[16, 8], 0.0, 0.3, DType::F32, Device::Cpu, &mut g).unwrap();
    let w2t = Tensor::rand_normal(&[5, 16], 0.0, 0.3, DType::F32, Device::Cpu, &mut g).unwrap();
    let b1t = Tensor::zeros(&[16], DType::F32, Device::Cpu).unwrap();
    let w1 = b.param("w1", &w1t, true).unwrap();
    let b1 = b.param("b1", &b1t, true).unwrap();
    let w2 = b.param("w2", &w2t, true).unwrap();
    let h = b.op1("linear", &[x, w1, b1], &[]).unwrap();
    let h2 = b.op1("linear", &[x, w1], &[]).unwrap();
    let h = b.op1("add", &[h, h2], &[]).unwrap();
    let h = b.op1("relu", &[h], &[]).unwrap();
    let logits = b.op1("linear", &[h, w2], &[]).unwrap();
    let loss = b.op1("cross_entropy", &[logits, y], &[]).unwrap();
    b.output("logits", logits).unwrap();
    b.output("loss", loss).unwrap();
    (b.finish().unwrap(), vec![("w1".into(), w1t), ("b1".into(), b1t), ("w2".into(), w2t)])
}

fn graph_grads(g: &Graph, level: u8) -> (f64, Vec<Tensor>) {
    let (with, grads) = append_gradients(g, "loss", None).unwrap();
    let exec = Executor::new(&with, ExecOptions { opt_level: level, ..ExecOptions::default() }).unwrap();
    let x = normal(&[32, 8], 21);
    let y = Tensor::from_slice(&(0..32).map(|i| (i * 3 % 5) as i64).collect::<Vec<_>>(), &[32]).unwrap();
    let mut fetch = vec!["loss".to_string()];
    fetch.extend(grads.iter().map(|(_, g)| match g {
        deepseek::graph::ParamGrad::Dense(n) => n.clone(),
        other => panic!("{other:?}"),
    }));
    let fetch: Vec<&str> = fetch.iter().map(String::as_str).collect();
    let mut out = exec.run(&[("x", &x), ("y", &y)], &fetch).unwrap();
    let loss = out.remove(0).item().unwrap();
    (loss, out)
}

#[test]
fn graph_pass_casts_each_weight_once_and_gives_f32_gradients() {
    let (g, _) = tiny_mlp(3);
    let cast = passes::autocast(&g, DType::BF16).unwrap();
    let stat = cast.pass_stats().last().unwrap().clone();
    // To bf16: x and w1 (two consumers each: one cast, one reuse), b1, w2; the add of two
    // bf16 values needs none. To f32: the logits, once, shared by cross_entropy and the
    // `logits` output (which keeps its declared f32).
    assert!(stat.starts_with("autocast: "), "{stat}");
    let casts_to = |d: DType| {
        cast.nodes()
            .iter()
            .filter(|n| n.kind.op().is_some_and(|o| o.name == "cast") && cast.value(n.outputs[0]).ty.dtype == d)
            .count()
    };
    assert_eq!(casts_to(DType::BF16), 4, "{stat}");
    assert_eq!(casts_to(DType::F32), 1, "{stat}");
    assert!(stat.contains("5 casts inserted, 3 reused"), "{stat}");
    assert!(stat.contains("1 ops kept f32") && stat.contains("3 ops in bf16"), "{stat}");

    let (l32, g32) = graph_grads(&g, 2);
    let (l0, g0) = graph_grads(&cast, 0);
    let (l2, g2) = graph_grads(&cast, 2);
    assert_ne!(l32, l2, "the pass changed nothing");
    assert!((l32 - l2).abs() / l32 < 1e-2, "{l32} vs {l2}");
    // Folding, CSE and fusion keep the casts' meaning: level 0 and level 2 agree.
    assert_eq!(l0, l2);
    for ((a, b), c) in g2.iter().zip(&g0).zip(&g32) {
        assert_eq!(a.dtype(), DType::F32, "f32 parameters get f32 gradients");
        assert_eq!(f32s(a), f32s(b), "opt level 2 vs 0");
        // bf16 rounds inputs, weights and every backward product (u = 2^-9): a few percent.
        let e = rel_err(&f32s(a), &f32s(c));
        assert!(e < 6e-2, "gradient relative error vs f32: {e}");
    }
}

#[test]
fn ops_called_inside_kernels_are_not_autocast() {
    let w = normal(&[4, 3], 1);
    let x = normal(&[2, 4], 2);
    let _ac = autocast(DType::BF16).unwrap();
    let y = call1("matmul", &[&x, &w], &[]);
    assert_eq!(y.dtype(), DType::BF16);
    // Kernels' inner op calls are not autocast: softmax's f32 result is exact f32 softmax of
    // the f32-cast input.
    let s = call1("softmax", &[&y], &[("axis", Attr::Int(-1))]);
    let reference = {
        let _off = autocast_disabled();
        call1("softmax", &[&y.cast(DType::F32).unwrap()], &[("axis", Attr::Int(-1))])
    };
    assert_eq!(f32s(&s), f32s(&reference));
}
