//! bf16 autocast against f32: median training-step time of the MLP (784-512-512-10, batch 128, SGD) and the Criteo-shaped DCN-v2 (batch 4096, Adagrad + row-wise Adagrad), the workloads `benches/torch_amp_peer.py` times in PyTorch.

use deepseek::data::{CtrConfig, CtrGenerator};
use deepseek::graph::Graph;
use deepseek::nn::models::{CtrModelConfig, MlpClassifierConfig, dcn_v2, mlp_classifier};
use deepseek::train::optim::OptimizerConfig;
use deepseek::train::trainer::{Trainer, TrainerOptions};
use deepseek::{DType, Device, Generator, Result, Tensor};
use std::time::Instant;

/// Feeds of one step, by name.
type Batch = Vec<(&'static str, Tensor)>;

/// Median milliseconds of `steps` timed steps (after `warm` untimed ones) cycling `pool`,
/// and the first and last loss.
fn time_steps(
    graph: &Graph,
    options: TrainerOptions,
    pool: &[Batch],
    warm: usize,
    steps: usize,
) -> Result<(f64, f64, f64)> {
    let mut tr = Trainer::new(graph, "loss", options)?;
    let feeds = |i: usize| pool[i % pool.len()].iter().map(|(n, t)| (*n, t)).collect::<Vec<_>>();
    let first = tr.step(&feeds(0))?;
    for i in 0..warm {
        tr.step(&feeds(i))?;
    }
    let mut ms: Vec<f64> = (0..steps)
        .map(|i| {
            let t = Instant::now();
            tr.step(&feeds(i)).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_>>()?;
    let last = tr.step(&feeds(0))?;
    if let Some(p) = tr.last_profile() {
        // The top rows of the last step: where the time goes.
        let top: String = p.to_string().lines().take(26).map(|l| format!("    {l}\n")).collect();
        println!("  profile of one step ({:.2} ms in nodes):\n{top}", p.total_nanos() as f64 / 1e6);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], first, last))
}

/// Times `graph` in f32 and under bf16 autocast and prints both and their ratio.
fn compare(label: &str, graph: &Graph, base: TrainerOptions, pool: &[Batch], warm: usize, steps: usize) -> Result<()> {
    let (f32_ms, f1, f2) = time_steps(graph, base.clone(), pool, warm, steps)?;
    let amp = TrainerOptions { autocast: Some(DType::BF16), ..base };
    let (bf16_ms, b1, b2) = time_steps(graph, amp, pool, warm, steps)?;
    println!(
        "{label}: f32 {f32_ms:.2} ms (loss {f1:.4} -> {f2:.4}), bf16 autocast {bf16_ms:.2} ms (loss {b1:.4} -> {b2:.4}), \
         bf16/f32 {:.2}x time",
        bf16_ms / f32_ms
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--profile` prints each configuration's per-op times; `mlp` or `dcn` runs one workload.
    let profile = args.iter().any(|a| a == "--profile");
    let only = |w: &str| !args.iter().any(|a| a == "mlp" || a == "dcn") || args.iter().any(|a| a == w);
    deepseek::runtime::set_num_threads(2)?;
    println!("# libdeepseek {} bf16 autocast vs f32 training step, 2 threads (median)", deepseek::VERSION);
    let mut g = Generator::new(3);
    if only("mlp") {
        let mlp = mlp_classifier(&MlpClassifierConfig {
            inputs: 784,
            hidden: vec![512, 512],
            classes: 10,
            activation: "relu".into(),
            seed: 0,
        })?;
        let pool: Vec<Batch> = (0..8)
            .map(|_| {
                let x = Tensor::rand_normal(&[128, 784], 0.0, 1.0, DType::F32, Device::Cpu, &mut g)?;
                let labels: Vec<i64> = (0..128).map(|_| (g.next_u64() % 10) as i64).collect();
                Ok(vec![("x", x), ("label", Tensor::from_slice(&labels, &[128])?)])
            })
            .collect::<Result<_>>()?;
        let sgd = OptimizerConfig::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 };
        let steps = if quick { 20 } else { 200 };
        compare(
            "mlp 784-512-512-10 batch 128 sgd",
            &mlp,
            TrainerOptions { optimizer: sgd, lr: 0.01, profile, ..Default::default() },
            &pool,
            20,
            steps,
        )?;
    }
    if !only("dcn") {
        return Ok(());
    }

    let dcn = dcn_v2(&CtrModelConfig::default())?;
    let mut stream = CtrGenerator::new(CtrConfig::criteo_bench(), 1)?;
    let pool: Vec<Batch> = (0..4)
        .map(|_| {
            let b = stream.next_batch(4096)?;
            Ok(vec![("dense", b.dense), ("ids", b.ids), ("label", b.labels)])
        })
        .collect::<Result<_>>()?;
    let options = TrainerOptions {
        optimizer: OptimizerConfig::Adagrad { eps: 1e-10, initial_accumulator: 0.0, weight_decay: 0.0 },
        sparse_optimizer: Some(OptimizerConfig::RowwiseAdagrad {
            eps: 1e-10,
            weight_decay: 0.0,
            decoupled_decay: false,
        }),
        lr: 1e-2,
        sparse_lr: Some(1e-2),
        profile,
        ..Default::default()
    };
    let (warm, steps) = if quick { (1, 3) } else { (2, 10) };
    compare("dcn-v2 criteo-shaped batch 4096 adagrad", &dcn, options, &pool, warm, steps)
}
