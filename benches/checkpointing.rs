//! Activation checkpointing benchmark behind BENCHMARKS.md: training step time and peak activation bytes of the 16 × 512 MLP (batch 64) with and without ⌈√L⌉ recomputation.
//! Run: `cargo bench --bench checkpointing [-- --quick]`.

use deepseek::exec::{ExecOptions, Executor, RunOptions};
use deepseek::graph::passes::{Checkpointing, append_gradients_checkpointed};
use deepseek::graph::{Dim, Graph, GraphBuilder, ParamGrad};
use deepseek::{DType, Device, Generator, Result, Tensor};
use std::time::{Duration, Instant};

const WIDTH: usize = 512;
const LAYERS: usize = 16;
const BATCH: usize = 64;

fn randn(shape: &[usize], std: f64, seed: u64) -> Result<Tensor> {
    Tensor::rand_normal(shape, 0.0, std, DType::F32, Device::Cpu, &mut Generator::new(seed))
}

/// 16 × [linear(512, 512) + relu] (none after the last), cross-entropy over 512 classes.
fn mlp() -> Result<Graph> {
    let mut b = GraphBuilder::new();
    let mut x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(WIDTH)])?;
    let label = b.input("label", DType::I64, &[Dim::sym("batch")])?;
    for i in 0..LAYERS {
        let w =
            b.param(&format!("l{i}/weight"), &randn(&[WIDTH, WIDTH], (2.0 / WIDTH as f64).sqrt(), i as u64)?, true)?;
        let bias = b.param(&format!("l{i}/bias"), &Tensor::zeros(&[WIDTH], DType::F32, Device::Cpu)?, true)?;
        x = b.op1("linear", &[x, w, bias], &[])?;
        if i + 1 < LAYERS {
            x = b.op1("relu", &[x], &[])?;
        }
    }
    let loss = b.op1("cross_entropy", &[x, label], &[])?;
    b.output("loss", loss)?;
    b.finish()
}

/// Median seconds per training-graph run and the run's peak intermediate bytes.
fn measure(how: &Checkpointing, min: Duration) -> Result<(f64, usize)> {
    let (train, grads, _) = append_gradients_checkpointed(&mlp()?, "loss", None, how)?;
    let ex = Executor::new(&train, ExecOptions::default())?;
    let x = randn(&[BATCH, WIDTH], 1.0, 99)?;
    let labels: Vec<i64> = (0..BATCH as i64).map(|i| i % WIDTH as i64).collect();
    let label = Tensor::from_slice(&labels, &[BATCH])?;
    let mut fetches = vec!["loss".to_string()];
    fetches.extend(grads.iter().filter_map(|(_, g)| if let ParamGrad::Dense(n) = g { Some(n.clone()) } else { None }));
    let fetches: Vec<&str> = fetches.iter().map(String::as_str).collect();
    let feeds = [("x", &x), ("label", &label)];
    let tracked = RunOptions { track_memory: true, ..Default::default() };
    let peak = ex.run_with(&feeds, &fetches, &tracked)?.1.peak_intermediate_bytes;
    for _ in 0..5 {
        ex.run(&feeds, &fetches)?;
    }
    let mut t = Vec::new();
    let start = Instant::now();
    while start.elapsed() < min || t.len() < 10 {
        let s = Instant::now();
        ex.run(&feeds, &fetches)?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok((t[t.len() / 2], peak))
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let min = Duration::from_secs(if quick { 1 } else { 5 });
    println!(
        "MLP {LAYERS} x {WIDTH}, batch {BATCH}, {} threads: training step (forward + backward)",
        deepseek::runtime::num_threads()
    );
    let (base_t, base_peak) = measure(&Checkpointing::None, min)?;
    for (name, how) in [("none", Checkpointing::None), ("sqrt (4 segments)", Checkpointing::Sqrt)] {
        let (t, peak) = if matches!(how, Checkpointing::None) { (base_t, base_peak) } else { measure(&how, min)? };
        println!(
            "  {name:<18} step p50 {:>7.2} ms ({:.2}x)   peak activations {:>6.2} MiB ({:+.1}%)",
            t * 1e3,
            t / base_t,
            peak as f64 / (1 << 20) as f64,
            100.0 * (peak as f64 / base_peak as f64 - 1.0)
        );
    }
    Ok(())
}
