//! Graph IR, builder, tracer, autodiff, passes and executor: equivalence with eager, node counts, and every bad input.

use deepseek::exec::{CancelToken, ExecOptions, Executor, RunOptions};
use deepseek::graph::{Dim, GraphBuilder, append_gradients, trace};
use deepseek::ops::Attr;
use deepseek::{DType, Device, Error, Generator, Result, Tensor};

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 0.5, DType::F32, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.contiguous().unwrap().to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

fn level(opt_level: u8) -> ExecOptions {
    ExecOptions { opt_level, ..ExecOptions::default() }
}

struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

impl Mlp {
    fn new() -> Mlp {
        Mlp { w1: normal(&[16, 8], 1), b1: normal(&[16], 2), w2: normal(&[4, 16], 3), b2: normal(&[4], 4) }
    }

    fn params(&self) -> [&Tensor; 4] {
        [&self.w1, &self.b1, &self.w2, &self.b2]
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.linear(&self.w1, Some(&self.b1))?.relu()?.linear(&self.w2, Some(&self.b2))
    }
}

#[test]
fn builder_graph_matches_eager_at_every_level_with_a_symbolic_batch() {
    let m = Mlp::new();
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(8)]).unwrap();
    let names = ["w1", "b1", "w2", "b2"];
    let p: Vec<_> = m.params().iter().zip(names).map(|(t, n)| b.param(n, t, true).unwrap()).collect();
    let h = b.op1("linear", &[x, p[0], p[1]], &[]).unwrap();
    let h = b.op1("relu", &[h], &[]).unwrap();
    let y = b.op1("linear", &[h, p[2], p[3]], &[]).unwrap();
    assert_eq!(b.value_type(y).unwrap().to_string(), "f32[batch, 4]");
    b.output("y", y).unwrap();
    let g = b.finish().unwrap();
    let dump = g.to_string();
    assert!(
        dump.contains("input \"x\"") && dump.contains("f32[batch, 8]") && dump.contains("linear(%0, %1, %2)"),
        "{dump}"
    );
    for lvl in 0..=2 {
        let ex = Executor::new(&g, level(lvl)).unwrap();
        for batch in [1, 3, 70] {
            let xt = normal(&[batch, 8], 10 + batch as u64);
            let out = ex.run(&[("x", &xt)], &["y"]).unwrap();
            assert_eq!(bits(&out[0]), bits(&m.forward(&xt).unwrap()), "level {lvl} batch {batch}");
        }
    }
}

#[test]
fn traced_graph_matches_eager_and_names_parameters() {
    let m = Mlp::new();
    for p in m.params() {
        p.set_requires_grad(true);
    }
    let x = normal(&[5, 8], 7);
    let g = trace(|tr| {
        tr.input("x", &x, Some(&[Dim::sym("n"), Dim::Fixed(8)]))?;
        tr.param("w1", &m.w1, true)?;
        let y = m.forward(&x)?;
        tr.output("y", &y)
    })
    .unwrap();
    let names: Vec<&str> = g.params().iter().map(|p| p.0).collect();
    assert_eq!(names, ["w1", "param0", "param1", "param2"]);
    assert_eq!(g.op_count(), 3);
    let ex = Executor::new(&g, ExecOptions::default()).unwrap();
    let x2 = normal(&[9, 8], 8);
    let y = ex.run(&[("x", &x2)], &["y"]).unwrap();
    assert_eq!(bits(&y[0]), bits(&m.forward(&x2).unwrap()));
}

#[test]
fn trace_errors_are_reported_and_the_scope_ends() {
    let x = normal(&[4, 8], 1);
    let err = trace(|tr| {
        tr.input("x", &x, Some(&[Dim::sym("b"), Dim::Fixed(8)]))?;
        // A reshape that bakes the traced batch size cannot hold for every batch.
        let y = x.reshape(&[2, -1, 8])?;
        tr.output("y", &y)
    })
    .unwrap_err();
    assert!(err.to_string().contains("reshape"), "{err}");
    // The scope ended: ops after it are not recorded anywhere and still work.
    assert!(x.relu().is_ok());
    let err = trace(|tr| {
        tr.input("x", &x, Some(&[Dim::sym("b")]))?;
        Ok(())
    })
    .unwrap_err();
    assert!(err.to_string().contains("rank"), "{err}");
    let err = trace(|tr| tr.input("x", &x, None)).unwrap_err();
    assert!(err.to_string().contains("no outputs"), "{err}");
}

#[test]
fn graph_gradients_match_eager_gradients() {
    let m = Mlp::new();
    for p in m.params() {
        p.set_requires_grad(true);
    }
    let x = normal(&[6, 8], 5);
    let labels = Tensor::from_slice(&[0i64, 3, 1, 2, 3, 0], &[6]).unwrap();
    let g = trace(|tr| {
        tr.input("x", &x, Some(&[Dim::sym("batch"), Dim::Fixed(8)]))?;
        tr.input("labels", &labels, Some(&[Dim::sym("batch")]))?;
        for (p, n) in m.params().iter().zip(["w1", "b1", "w2", "b2"]) {
            tr.param(n, p, true)?;
        }
        let loss = m.forward(&x)?.cross_entropy(&labels)?;
        tr.output("loss", &loss)
    })
    .unwrap();
    let (g, grads) = append_gradients(&g, "loss", None).unwrap();
    assert_eq!(grads.len(), 4);
    let loss = m.forward(&x).unwrap().cross_entropy(&labels).unwrap();
    loss.backward().unwrap();
    let fetches = ["loss", "grad/w1", "grad/b1", "grad/w2", "grad/b2"];
    for lvl in 0..=2 {
        let ex = Executor::new(&g, level(lvl)).unwrap();
        let out = ex.run(&[("x", &x), ("labels", &labels)], &fetches).unwrap();
        assert_eq!(bits(&out[0]), bits(&loss), "loss at level {lvl}");
        for (i, p) in m.params().iter().enumerate() {
            assert_eq!(bits(&out[i + 1]), bits(&p.grad().unwrap().unwrap()), "{} at level {lvl}", fetches[i + 1]);
        }
    }
    // Not a one-element loss.
    let mut b = GraphBuilder::new();
    let xv = b.input("x", DType::F32, &[Dim::Fixed(3)]).unwrap();
    b.output("y", xv).unwrap();
    let err = append_gradients(&b.finish().unwrap(), "y", None).unwrap_err();
    assert!(err.to_string().contains("one-element"), "{err}");
}

fn small_graph() -> deepseek::graph::Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("n"), Dim::Fixed(3)]).unwrap();
    let y = b.input("y", DType::F32, &[Dim::sym("n"), Dim::Fixed(3)]).unwrap();
    let s = b.op1("add", &[x, y], &[]).unwrap();
    b.output("s", s).unwrap();
    b.finish().unwrap()
}

#[test]
fn bad_feeds_and_fetches_name_the_value() {
    let ex = Executor::new(&small_graph(), ExecOptions::default()).unwrap();
    let a = normal(&[2, 3], 1);
    let b3 = normal(&[3, 3], 2);
    let msg = |r: Result<Vec<Tensor>>| r.unwrap_err().to_string();
    assert!(msg(ex.run(&[("x", &a), ("z", &a)], &["s"])).contains("feed `z`"));
    assert!(msg(ex.run(&[("x", &a)], &["s"])).contains("input `y`"));
    assert!(msg(ex.run(&[("x", &a), ("y", &a)], &["t"])).contains("no output `t`"));
    let m = msg(ex.run(&[("x", &a), ("y", &b3)], &["s"]));
    assert!(m.contains("symbol `n` is 2 in another feed, 3 here"), "{m}");
    let m = msg(ex.run(&[("x", &normal(&[2, 4], 3)), ("y", &a)], &["s"]));
    assert!(m.contains("`x` expects f32[n, 3]"), "{m}");
    let m = msg(ex.run(&[("x", &a.cast(DType::F64).unwrap()), ("y", &a)], &["s"]));
    assert!(m.contains("`x` expects f32"), "{m}");
    let m = msg(ex.run(&[("x", &a), ("x", &a)], &["s"]));
    assert!(m.contains("fed twice"), "{m}");
    // The executor still works after every failure.
    let ok = ex.run(&[("x", &a), ("y", &a)], &["s"]).unwrap();
    assert_eq!(bits(&ok[0]), bits(&a.add(&a).unwrap()));
}

#[test]
fn builder_rejects_bad_graphs_naming_the_node() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::Fixed(2), Dim::Fixed(3)]).unwrap();
    let w = b.input("w", DType::F32, &[Dim::Fixed(4), Dim::Fixed(5)]).unwrap();
    let e = b.op("matmul", &[x, w], &[]).unwrap_err().to_string();
    assert!(e.contains("node 2 (`matmul`)") && e.contains("inner"), "{e}");
    let e = b.op("nosuchop", &[x], &[]).unwrap_err().to_string();
    assert!(e.contains("nosuchop"), "{e}");
    let e = b.op("relu", &[deepseek::graph::ValueId(99)], &[]).unwrap_err().to_string();
    assert!(e.contains("%99") && e.contains("dangling"), "{e}");
    let e = b.op("relu", &[x, w], &[]).unwrap_err().to_string();
    assert!(e.contains("expected 1 inputs"), "{e}");
    let e = b.op("sum", &[x], &[("axes", Attr::Float(1.0))]).unwrap_err().to_string();
    assert!(e.contains("axes"), "{e}");
    assert!(b.input("x", DType::F32, &[]).unwrap_err().to_string().contains("already"));
    assert!(b.output("o", deepseek::graph::ValueId(42)).is_err());
    assert!(GraphBuilder::new().finish().unwrap_err().to_string().contains("no outputs"));
}

#[test]
fn executor_outlives_its_graph_and_param_feeds_override() {
    let w = normal(&[3, 3], 1);
    let ex = {
        let mut b = GraphBuilder::new();
        let x = b.input("x", DType::F32, &[Dim::sym("n"), Dim::Fixed(3)]).unwrap();
        let p = b.param("w", &w, true).unwrap();
        let y = b.op1("matmul", &[x, p], &[]).unwrap();
        b.output("y", y).unwrap();
        Executor::new(&b.finish().unwrap(), ExecOptions::default()).unwrap()
    };
    let x = normal(&[2, 3], 2);
    assert_eq!(bits(&ex.run(&[("x", &x)], &["y"]).unwrap()[0]), bits(&x.matmul(&w).unwrap()));
    let w2 = normal(&[3, 3], 3);
    assert_eq!(bits(&ex.run(&[("x", &x), ("w", &w2)], &["y"]).unwrap()[0]), bits(&x.matmul(&w2).unwrap()));
}

#[test]
fn a_cancelled_run_stops_with_cancelled() {
    let ex = Executor::new(&small_graph(), ExecOptions::default()).unwrap();
    let a = normal(&[2, 3], 1);
    let token = CancelToken::new();
    token.cancel();
    let opts = RunOptions { cancel: Some(token.clone()), ..Default::default() };
    let err = ex.run_with(&[("x", &a), ("y", &a)], &["s"], &opts).unwrap_err();
    assert!(matches!(err, Error::Cancelled(_)), "{err}");
    token.reset();
    assert!(ex.run_with(&[("x", &a), ("y", &a)], &["s"], &opts).is_ok());
}

#[test]
fn a_profiled_run_times_every_node_by_op_and_types() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("n"), Dim::Fixed(3)]).unwrap();
    let w = b.param("w", &normal(&[3, 3], 1), true).unwrap();
    let h = b.op1("matmul", &[x, w], &[]).unwrap();
    let h2 = b.op1("matmul", &[h, w], &[]).unwrap();
    let s = b.op1("sum", &[h2], &[]).unwrap();
    b.output("s", s).unwrap();
    let ex = Executor::new(&b.finish().unwrap(), level(0)).unwrap();
    let x = normal(&[4, 3], 2);
    let (_, plain) = ex.run_with(&[("x", &x)], &["s"], &RunOptions::default()).unwrap();
    assert!(plain.profile.is_none(), "profiling is off by default");
    let (out, stats) = ex.run_with(&[("x", &x)], &["s"], &RunOptions { profile: true, ..Default::default() }).unwrap();
    assert_eq!(bits(&out[0]), bits(&ex.run(&[("x", &x)], &["s"]).unwrap()[0]));
    let p = stats.profile.expect("a profile");
    // The two matmuls share a signature (same op, same types): one row with two calls.
    let mm: Vec<_> = p.ops.iter().filter(|o| o.signature.starts_with("matmul(")).collect();
    assert_eq!(mm.len(), 1, "{p}");
    assert_eq!(mm[0].calls, 2);
    assert!(mm[0].signature.contains("f32[n, 3]"), "{}", mm[0].signature);
    assert_eq!(p.ops.iter().map(|o| o.calls).sum::<usize>(), stats.nodes_run);
    assert!(p.ops.windows(2).all(|w| w[0].nanos >= w[1].nanos), "slowest first");
    assert!(p.to_string().lines().count() == p.ops.len() + 1);
}
