//! Graph benchmarks behind BENCHMARKS.md: executor latency and throughput on MLP inference, the
//! training step through the graph vs eager, the fused elementwise chain, and memory planning.
//! Run: `cargo bench --bench graph [-- --quick]`. Peers: `benches/graph_peer.py`.

use deepseek::exec::{ExecOptions, Executor, RunOptions};
use deepseek::graph::{Dim, Graph, GraphBuilder, append_gradients, trace};
use deepseek::ops::Attr;
use deepseek::tensor::grad::Gradient;
use deepseek::train::optim::{Optimizer, OptimizerConfig};
use deepseek::{DType, Device, Generator, Result, Tensor};
use std::time::{Duration, Instant};

const DIMS: [usize; 4] = [784, 512, 512, 10];

fn randn(shape: &[usize], std: f64, seed: u64) -> Result<Tensor> {
    Tensor::rand_normal(shape, 0.0, std, DType::F32, Device::Cpu, &mut Generator::new(seed))
}

/// Per-call seconds of `f` (after warm-up, for at least `min` time): (p50, p99).
fn latency(min: Duration, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..20 {
        f();
    }
    let mut t = Vec::new();
    let start = Instant::now();
    while start.elapsed() < min || t.len() < 50 {
        let s = Instant::now();
        f();
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[(t.len() - 1) * 99 / 100])
}

/// He-initialised MLP parameters: [w1, b1, w2, b2, w3, b3].
fn mlp_params() -> Result<Vec<Tensor>> {
    let mut p = Vec::new();
    for (l, io) in DIMS.windows(2).enumerate() {
        p.push(randn(&[io[1], io[0]], (2.0 / io[0] as f64).sqrt(), l as u64 + 1)?);
        p.push(Tensor::zeros(&[io[1]], DType::F32, Device::Cpu)?);
    }
    Ok(p)
}

fn mlp_forward(x: &Tensor, p: &[Tensor]) -> Result<Tensor> {
    let mut h = x.clone();
    for (l, wb) in p.chunks(2).enumerate() {
        h = h.linear(&wb[0], Some(&wb[1]))?;
        if l + 1 < DIMS.len() - 1 {
            h = h.relu()?;
        }
    }
    Ok(h)
}

const PARAM_NAMES: [&str; 6] = ["w1", "b1", "w2", "b2", "w3", "b3"];

/// The MLP traced with a symbolic batch; with `labels`, the loss and its gradients too.
fn mlp_graph(p: &[Tensor], labels: Option<&Tensor>) -> Result<Graph> {
    let x = randn(&[4, DIMS[0]], 1.0, 99)?;
    let y4 = labels.map(|y| y.slice(0, 0, 4, 1)?.contiguous()).transpose()?;
    let g = trace(|tr| {
        tr.input("x", &x, Some(&[Dim::sym("batch"), Dim::Fixed(DIMS[0])]))?;
        for (t, n) in p.iter().zip(PARAM_NAMES) {
            tr.param(n, t, true)?;
        }
        let out = mlp_forward(&x, p)?;
        tr.output("out", &out)?;
        if let Some(y4) = &y4 {
            tr.input("y", y4, Some(&[Dim::sym("batch")]))?;
            tr.output("loss", &out.cross_entropy(y4)?)?;
        }
        Ok(())
    })?;
    if labels.is_some() { Ok(append_gradients(&g, "loss", None)?.0) } else { Ok(g) }
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let min = Duration::from_millis(if quick { 200 } else { 1500 });
    let threads: usize = std::env::var("DS_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    deepseek::runtime::set_num_threads(threads)?;
    println!("# libdeepseek {} graph bench, {threads} threads", deepseek::VERSION);

    // MLP inference: executor at level 2 vs eager.
    let params = mlp_params()?;
    let ex = Executor::new(&mlp_graph(&params, None)?, ExecOptions::default())?;
    for batch in [1usize, 256] {
        let x = randn(&[batch, DIMS[0]], 1.0, 7)?;
        let (p50, p99) = latency(min, || {
            ex.run(&[("x", &x)], &["out"]).unwrap();
        });
        println!(
            "graph mlp inference batch {batch}: p50 {:.1} us, p99 {:.1} us, {:.0} samples/s",
            p50 * 1e6,
            p99 * 1e6,
            batch as f64 / p50
        );
        let (e50, e99) = latency(min, || {
            deepseek::autograd::no_grad(|| mlp_forward(&x, &params)).unwrap();
        });
        println!(
            "eager mlp inference batch {batch}: p50 {:.1} us, p99 {:.1} us, {:.0} samples/s",
            e50 * 1e6,
            e99 * 1e6,
            batch as f64 / e50
        );
    }

    // Training step (batch 128, forward + backward + SGD): the graph vs eager.
    let x = randn(&[128, DIMS[0]], 1.0, 100)?;
    let y =
        Tensor::rand_uniform(&[128], 0.0, 10.0, DType::F32, Device::Cpu, &mut Generator::new(101))?.cast(DType::I64)?;
    let fetches: Vec<String> =
        std::iter::once("loss".to_string()).chain(PARAM_NAMES.iter().map(|n| format!("grad/{n}"))).collect();
    let fetches: Vec<&str> = fetches.iter().map(String::as_str).collect();
    let train_graph = mlp_graph(&params, Some(&y))?;
    // Both ways update the parameters with the engine's SGD optimizer, in place, one pass
    // over each (as the trainer and the eager bench do); each way keeps its own optimizer.
    let sgd = || OptimizerConfig::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 }.build();
    let graph_step = |train: &Executor, gp: &mut Vec<Tensor>, opt: &mut Box<dyn Optimizer>| {
        let mut feeds: Vec<(&str, &Tensor)> = vec![("x", &x), ("y", &y)];
        feeds.extend(PARAM_NAMES.iter().copied().zip(gp.iter()));
        let out = train.run(&feeds, &fetches).unwrap();
        drop(feeds);
        for ((p, g), name) in gp.iter_mut().zip(out.into_iter().skip(1)).zip(PARAM_NAMES) {
            opt.update(name, p, &Gradient::Dense(g), 0.01).unwrap();
        }
    };
    let eager_step = |ep: &mut Vec<Tensor>, opt: &mut Box<dyn Optimizer>| {
        // One statement, so the forward graph (which holds the weights) is gone before the
        // in-place update, as in the eager bench.
        mlp_forward(&x, ep).unwrap().cross_entropy(&y).unwrap().backward().unwrap();
        for (p, name) in ep.iter_mut().zip(PARAM_NAMES) {
            let g = p.gradient().expect("every parameter has a gradient");
            p.zero_grad();
            opt.update(name, p, &g, 0.01).unwrap();
        }
    };
    // The three ways take turns, a few steps each, so a slow phase of a shared host falls on
    // all of them alike; the ratio (eager against the executor's default options, which run
    // this graph's levels one node at a time) is
    // the median of the rounds' ratios.
    let default = Executor::new(&train_graph, ExecOptions::default())?;
    let side_by_side = deepseek::runtime::num_threads().max(2);
    let parallel = Executor::new(&train_graph, ExecOptions { inter_op_threads: side_by_side, ..Default::default() })?;
    // Each way its own copy of the parameters (the updates write them in place).
    let copy = || -> Result<Vec<Tensor>> {
        params.iter().map(|p| Tensor::from_slice(&p.to_vec::<f32>()?, p.shape())).collect()
    };
    let (mut gp0, mut gp1, mut ep) = (copy()?, copy()?, copy()?);
    for p in &ep {
        p.set_requires_grad(true);
    }
    let (mut opt0, mut opt1, mut opt2) = (sgd(), sgd(), sgd());
    let steps = 5;
    let timed = |f: &mut dyn FnMut()| {
        let s = Instant::now();
        for _ in 0..steps {
            f();
        }
        s.elapsed().as_secs_f64() / steps as f64
    };
    // Warm-up: the caching allocator and each executor's arenas settle.
    for _ in 0..steps {
        graph_step(&default, &mut gp0, &mut opt0);
        graph_step(&parallel, &mut gp1, &mut opt1);
        eager_step(&mut ep, &mut opt2);
    }
    let (mut t_default, mut t_par, mut t_eager, mut ratios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while start.elapsed() < min * 2 || ratios.len() < 10 {
        // Each round starts with a different one of the three, so none always follows another.
        let mut t = [0.0; 3];
        for i in 0..3 {
            let way = (i + ratios.len()) % 3;
            t[way] = match way {
                0 => timed(&mut || graph_step(&default, &mut gp0, &mut opt0)),
                1 => timed(&mut || graph_step(&parallel, &mut gp1, &mut opt1)),
                _ => timed(&mut || eager_step(&mut ep, &mut opt2)),
            };
        }
        let [a, b, e] = t;
        t_default.push(a);
        t_par.push(b);
        t_eager.push(e);
        ratios.push(e / a);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rounds = ratios.len();
    println!(
        "train step mlp batch 128: graph {:.3} ms (default options) / {:.3} ms (levels side by side), eager {:.3} ms (eager/graph {:.3}x, median of {rounds} interleaved rounds)",
        median(&mut t_default) * 1e3,
        median(&mut t_par) * 1e3,
        median(&mut t_eager) * 1e3,
        median(&mut ratios)
    );

    // The elementwise chain x*a + b -> relu -> *c + d on 16M f32 (scalar a..d, ALGORITHMS.md §7):
    // level 1 runs five ops, level 2 one fused node.
    let n = 16usize << 20;
    let chain = chain_graph(n)?;
    let xc = randn(&[n], 1.0, 8)?;
    let mut chain_ms = Vec::new();
    for level in [1u8, 2] {
        let ex = Executor::new(&chain, ExecOptions { opt_level: level, ..Default::default() })?;
        let (t, _) = latency(min, || {
            ex.run(&[("x", &xc)], &["y"]).unwrap();
        });
        chain_ms.push(t);
    }
    let (unfused_bytes, fused_bytes) = (5.0 * 8.0 * n as f64, 8.0 * n as f64);
    println!(
        "fused chain 16M f32 (5 ops): unfused {:.2} ms ({:.0} MB, {:.1} GB/s), fused {:.2} ms ({:.0} MB, {:.1} GB/s): {:.2}x",
        chain_ms[0] * 1e3,
        unfused_bytes / 1e6,
        unfused_bytes / chain_ms[0] / 1e9,
        chain_ms[1] * 1e3,
        fused_bytes / 1e6,
        fused_bytes / chain_ms[1] / 1e9,
        chain_ms[0] / chain_ms[1]
    );

    // Memory planning: peak bytes of values computed during one inference run.
    let conv = conv_graph()?;
    let img = randn(&[64, 3, 32, 32], 1.0, 5)?;
    let x256 = randn(&[256, DIMS[0]], 1.0, 6)?;
    let mlp = mlp_graph(&params, None)?;
    for (name, graph, feed) in [("mlp batch 256", &mlp, ("x", &x256)), ("conv net batch 64", &conv, ("img", &img))] {
        let peak = |level: u8| -> Result<usize> {
            let ex = Executor::new(graph, ExecOptions { opt_level: level, ..Default::default() })?;
            let opts = RunOptions { track_memory: true, ..Default::default() };
            Ok(ex.run_with(&[feed], &["out"], &opts)?.1.peak_bytes)
        };
        let (unplanned, planned) = (peak(1)?, peak(2)?);
        println!(
            "memory plan {name}: peak {:.2} MiB planned vs {:.2} MiB unplanned ({:.0}%)",
            planned as f64 / (1 << 20) as f64,
            unplanned as f64 / (1 << 20) as f64,
            100.0 * planned as f64 / unplanned as f64
        );
    }
    Ok(())
}

/// `(x * a + b).relu() * c + d` over `[n]` with scalar constants.
fn chain_graph(n: usize) -> Result<Graph> {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::Fixed(n)])?;
    let mut k = Vec::new();
    for v in [1.5, 0.25, 0.75, -0.5] {
        k.push(b.constant(&Tensor::full(&[], v, DType::F32, Device::Cpu)?)?);
    }
    let h = b.op1("mul", &[x, k[0]], &[])?;
    let h = b.op1("add", &[h, k[1]], &[])?;
    let h = b.op1("relu", &[h], &[])?;
    let h = b.op1("mul", &[h, k[2]], &[])?;
    let y = b.op1("add", &[h, k[3]], &[])?;
    b.output("y", y)?;
    b.finish()
}

/// A small conv net for inference: two conv-relu-pool blocks and a classifier.
fn conv_graph() -> Result<Graph> {
    let mut b = GraphBuilder::new();
    let x = b.input("img", DType::F32, &[Dim::sym("n"), Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)])?;
    let mut h = x;
    let mut c_in = 3;
    for (i, c) in [16usize, 32].into_iter().enumerate() {
        let k = b.param(&format!("k{i}"), &randn(&[c, c_in, 3, 3], 0.2, 10 + i as u64)?, false)?;
        let kb = b.param(&format!("kb{i}"), &Tensor::zeros(&[c], DType::F32, Device::Cpu)?, false)?;
        h = b.op1("conv2d", &[h, k, kb], &[("padding", Attr::Ints(vec![1, 1]))])?;
        h = b.op1("relu", &[h], &[])?;
        h = b.op1("max_pool2d", &[h], &[("kernel_size", Attr::Ints(vec![2, 2]))])?;
        c_in = c;
    }
    h = b.op1("reshape", &[h], &[("shape", Attr::Ints(vec![-1, 32 * 8 * 8]))])?;
    let w = b.param("w", &randn(&[10, 32 * 8 * 8], 0.05, 20)?, false)?;
    let wb = b.param("wb", &Tensor::zeros(&[10], DType::F32, Device::Cpu)?, false)?;
    let out = b.op1("linear", &[h, w, wb], &[])?;
    b.output("out", out)?;
    b.finish()
}
