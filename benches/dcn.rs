//! DCN-v2 benchmark behind BENCHMARKS.md: the Criteo-shaped CTR model's training step and exported-graph inference.
//!
//! The same workload and measuring method as the peer `../shared/peers/dcn_infer.py`: 26 tables
//! of 100,000 × 16, 13 dense features, 3 full-rank cross layers in parallel with a 512-256-128
//! deep tower; uniform random ids and labels, inputs cycling through a pool of distinct batches
//! so that the gathers from the 166 MB of tables are not all cache hits.
//! Run: `cargo bench --bench dcn [-- --quick] [-- --only=train|infer]` (threads: `DS_BENCH_THREADS`,
//! default 2; `--only` is for profiling one half).
//! Prints a readable table, then one JSON line.

use deepseek::exec::{ExecOptions, Executor};
use deepseek::graph::NodeKind;
use deepseek::nn::models::{CtrModelConfig, dcn_v2};
use deepseek::train::optim::OptimizerConfig;
use deepseek::train::trainer::{Trainer, TrainerOptions};
use deepseek::{DType, Device, Generator, Result, Tensor};
use serde_json::{Value, json};
use std::time::Instant;

/// Training batch, as in the peer.
const TRAIN_BATCH: usize = 4096;
/// Distinct batches per pool, as in the peer: (batch, pool size).
const POOLS: [(usize, usize); 2] = [(1, 4096), (256, 64)];

/// One pool of random CTR batches: (dense, ids, label).
struct Pool(Vec<(Tensor, Tensor, Tensor)>);

impl Pool {
    /// `n` batches of `batch` samples: dense ~ N(0, 1), ids uniform over each field's vocabulary,
    /// labels uniform in {0, 1}.
    fn new(cfg: &CtrModelConfig, batch: usize, n: usize, g: &mut Generator) -> Result<Pool> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let dense = Tensor::rand_normal(&[batch, cfg.num_dense], 0.0, 1.0, DType::F32, Device::Cpu, g)?;
            let ids: Vec<i64> = (0..batch)
                .flat_map(|_| {
                    cfg.vocab_sizes.iter().map(|&vocab| (g.next_u64() % vocab as u64) as i64).collect::<Vec<_>>()
                })
                .collect();
            let ids = Tensor::from_slice(&ids, &[batch, cfg.vocab_sizes.len()])?;
            let labels: Vec<f32> = (0..batch).map(|_| (g.next_u64() & 1) as f32).collect();
            v.push((dense, ids, Tensor::from_slice(&labels, &[batch])?));
        }
        Ok(Pool(v))
    }

    fn feeds(&self, i: usize) -> [(&str, &Tensor); 3] {
        let (d, ids, l) = &self.0[i % self.0.len()];
        [("dense", d), ("ids", ids), ("label", l)]
    }
}

/// The peer's percentile: nearest rank on the sorted list.
fn pct(sorted: &[f64], q: f64) -> f64 {
    let i = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Per-call latency of `f(i)` over `iters` calls after `warmup` calls, as the peer's `time_calls`.
fn time_calls(batch: usize, warmup: usize, iters: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<Value> {
    for i in 0..warmup {
        f(i)?;
    }
    let mut ts = Vec::with_capacity(iters);
    let all = Instant::now();
    for i in 0..iters {
        let t = Instant::now();
        f(i)?;
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total = all.elapsed().as_secs_f64();
    ts.sort_by(f64::total_cmp);
    Ok(json!({
        "p50_ms": pct(&ts, 0.5),
        "p99_ms": pct(&ts, 0.99),
        "mean_ms": ts.iter().sum::<f64>() / ts.len() as f64,
        "samples_per_s": (batch * iters) as f64 / total,
        "iters": iters,
    }))
}

/// Median step time of a trainer over `steps` steps after `warm` steps (the peer's method).
fn train_variant(
    graph: &deepseek::graph::Graph,
    pool: &Pool,
    options: TrainerOptions,
    warm: usize,
    steps: usize,
) -> Result<(Value, Trainer)> {
    let mut tr = Trainer::new(graph, "loss", options)?;
    let first = tr.step(&pool.feeds(0))?;
    for i in 0..warm {
        tr.step(&pool.feeds(i))?;
    }
    let mut ts = Vec::with_capacity(steps);
    for i in 0..steps {
        let t = Instant::now();
        tr.step(&pool.feeds(i))?;
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let last = tr.step(&pool.feeds(0))?;
    let mut sorted = ts.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    let r = json!({
        "median_ms": median,
        "min_ms": sorted[0],
        "max_ms": sorted[n - 1],
        "samples_per_s": TRAIN_BATCH as f64 / (median / 1e3),
        "steps": steps,
        "loss_first": first,
        "loss_last": last,
    });
    Ok((r, tr))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let only = std::env::args().find_map(|a| a.strip_prefix("--only=").map(str::to_string));
    let (run_train, run_infer) = (only.as_deref() != Some("infer"), only.as_deref() != Some("train"));
    let threads: usize = std::env::var("DS_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    deepseek::runtime::set_num_threads(threads)?;
    println!(
        "# libdeepseek {} DCN-v2 bench, {threads} threads{}",
        deepseek::VERSION,
        if quick { " (quick)" } else { "" }
    );

    let cfg = CtrModelConfig::default();
    let graph = dcn_v2(&cfg)?;
    let mut g = Generator::new(1);

    // ---- training step, batch 4096 ------------------------------------------------------
    let train_pool = Pool::new(&cfg, TRAIN_BATCH, 8, &mut g)?;
    let (warm, steps) = if quick { (1, 3) } else { (2, 10) };
    let rowwise = OptimizerConfig::RowwiseAdagrad { eps: 1e-10, weight_decay: 0.0, decoupled_decay: false };
    let adagrad = OptimizerConfig::Adagrad { eps: 1e-10, initial_accumulator: 0.0, weight_decay: 0.0 };
    let adam = OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
    // Learning rates as the peer's: Adagrad 1e-2, Adam 1e-3; tables 1e-2 with row-wise Adagrad.
    let variants = [("adagrad_rowwise_adagrad", adagrad, 1e-2), ("adam_rowwise_adagrad", adam, 1e-3)];
    let mut train = serde_json::Map::new();
    let mut trained = None;
    for (name, dense_opt, lr) in variants.into_iter().filter(|_| run_train) {
        let options = TrainerOptions {
            optimizer: dense_opt,
            sparse_optimizer: Some(rowwise),
            lr,
            sparse_lr: Some(1e-2),
            ..Default::default()
        };
        let (r, tr) = train_variant(&graph, &train_pool, options, warm, steps)?;
        println!(
            "train step batch {TRAIN_BATCH}, {name}: median {:.1} ms (min {:.1}, max {:.1}), {:.0} samples/s, loss {:.4} -> {:.4}",
            f(&r, "median_ms"),
            f(&r, "min_ms"),
            f(&r, "max_ms"),
            f(&r, "samples_per_s"),
            f(&r, "loss_first"),
            f(&r, "loss_last")
        );
        train.insert(name.into(), r);
        trained.get_or_insert(tr);
    }
    drop(train_pool);

    // ---- inference of the exported graph ------------------------------------------------
    // Untrained weights serve as well as trained ones for timing (`--only=infer`).
    let trainer = match trained {
        Some(t) => t,
        None => Trainer::new(&graph, "loss", TrainerOptions::default())?,
    };
    let exported = trainer.export_inference(&["prob"])?;
    let op_nodes = exported.nodes().iter().filter(|n| matches!(n.kind, NodeKind::Op { .. })).count();
    let run_nodes = Executor::new(&exported, ExecOptions::default())?.graph().op_count();
    println!("exported inference graph: {op_nodes} op nodes, {run_nodes} after the executor's passes");
    let mut infer = serde_json::Map::new();
    let modes = [("graph", 0usize), ("graph_sequential", 1)];
    for (label, inter_op_threads) in modes.into_iter().filter(|_| run_infer) {
        let ex = Executor::new(&exported, ExecOptions { inter_op_threads, ..Default::default() })?;
        let mut per_batch = serde_json::Map::new();
        for (batch, pool_len) in POOLS {
            let (warmup, iters) = match (batch, quick) {
                (1, false) => (200, 3000),
                (1, true) => (20, 200),
                (_, false) => (20, 400),
                (_, true) => (5, 40),
            };
            let pool = Pool::new(&cfg, batch, pool_len, &mut g)?;
            let r = time_calls(batch, warmup, iters, |i| {
                let (d, ids, _) = &pool.0[i % pool.0.len()];
                ex.run(&[("dense", d), ("ids", ids)], &["prob"]).map(drop)
            })?;
            println!(
                "inference batch {batch:>3}, {label:<16}: p50 {:.4} ms, p99 {:.4} ms, mean {:.4} ms, {:.0} samples/s",
                f(&r, "p50_ms"),
                f(&r, "p99_ms"),
                f(&r, "mean_ms"),
                f(&r, "samples_per_s")
            );
            per_batch.insert(format!("batch{batch}"), r);
        }
        infer.insert(label.into(), per_batch.into());
    }

    println!(
        "{}",
        json!({
            "bench": "dcn_engine",
            "model": "DCN-v2: 26x Embedding(100000,16) + 13 dense; 3 full-rank cross layers || MLP 512-256-128; Linear(557,1); sigmoid",
            "threads": threads,
            "engine": deepseek::VERSION,
            "quick": quick,
            "exported_op_nodes": op_nodes,
            "executed_op_nodes": run_nodes,
            "results": {"inference": infer, "train": train, "train_batch": TRAIN_BATCH},
        })
    );
    Ok(())
}
