//! bf16 vs f16 vs f32 square matmul throughput, single-threaded and on all threads.
//! Run: `cargo bench --bench lowp_matmul [-- --quick]`; `DS_BENCH_THREADS` sets "all" (default 2).
//! Prints GFLOP/s per dtype and size (median of samples after warm-up); the `bf16-fallback`
//! line forces the portable path (convert to f32, f32 gemm) and `bf16-avx512` the AVX-512
//! kernel on a CPU whose bf16 products otherwise run on AMX, for comparison.
//! PyTorch's figures for the same shapes: benches/torch_lowp_peer.py.
//! `-- shapes` times only the training products of the autocast workloads (forward x·Wᵀ,
//! input gradient g·W, weight gradient gᵀ·x of the DCN-v2 and MLP layers), f32 against bf16.

use deepseek::backend::cpu::lowp::{set_amx_disabled, set_force_fallback};
use deepseek::{DType, Device, Generator, Result, Tensor};

mod common;
use common::median_secs;

fn randn(shape: &[usize], seed: u64, dtype: DType) -> Result<Tensor> {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(seed))?.cast(dtype)
}

/// The three products of a linear layer's training step, `batch` rows, `inf` → `outf`,
/// in f32 and bf16 on all threads: GFLOP/s of each.
fn training_shapes(all: usize, quick: bool) -> Result<()> {
    deepseek::runtime::set_num_threads(all)?;
    for (label, batch, inf, outf) in
        [("dcn cross", 4096, 429, 429), ("dcn deep0", 4096, 429, 512), ("mlp hidden0", 128, 784, 512)]
    {
        let flop = 2.0 * (batch * inf * outf) as f64;
        let reps = (1_000_000_000 / flop as usize).clamp(1, 200);
        let mut line = format!("threads={all} {label} [{batch}x{inf}]->[{batch}x{outf}]:");
        for dtype in [DType::F32, DType::BF16] {
            let x = randn(&[batch, inf], 1, dtype)?;
            let w = randn(&[outf, inf], 2, dtype)?;
            let g = randn(&[batch, outf], 3, dtype)?;
            let (gt, wt) = (g.transpose(0, 1)?, w.transpose(0, 1)?);
            let samples = if quick { 3 } else { 7 };
            let fwd = median_secs(samples, reps, || {
                x.matmul(&wt).unwrap();
            });
            let dgrad = median_secs(samples, reps, || {
                g.matmul(&w).unwrap();
            });
            let wgrad = median_secs(samples, reps, || {
                gt.matmul(&x).unwrap();
            });
            line += &format!(
                " {dtype} fwd {:.1} dgrad {:.1} wgrad {:.1}",
                flop / fwd / 1e9,
                flop / dgrad / 1e9,
                flop / wgrad / 1e9
            );
        }
        println!("{line}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let all: usize = std::env::var("DS_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    println!("# libdeepseek {} low-precision matmul bench (GFLOP/s, median)", deepseek::VERSION);
    if std::env::args().any(|a| a == "shapes") {
        return training_shapes(all, quick);
    }
    for threads in [1, all] {
        deepseek::runtime::set_num_threads(threads)?;
        for n in [512usize, 1024, 2048] {
            let flop = 2.0 * (n * n * n) as f64;
            let reps = (2_000_000_000 / (2 * n * n * n)).clamp(1, 200);
            let mut line = format!("threads={threads} n={n}:");
            for (name, dtype, fallback, no_amx) in [
                ("f32", DType::F32, false, false),
                ("bf16", DType::BF16, false, false),
                ("f16", DType::F16, false, false),
                ("bf16-fallback", DType::BF16, true, false),
                ("bf16-avx512", DType::BF16, false, true),
            ] {
                let (a, b) = (randn(&[n, n], 1, dtype)?, randn(&[n, n], 2, dtype)?);
                set_force_fallback(fallback);
                set_amx_disabled(no_amx);
                let s = median_secs(if quick { 3 } else { 7 }, reps, || {
                    a.matmul(&b).unwrap();
                });
                set_force_fallback(false);
                set_amx_disabled(false);
                line += &format!(" {name} {:.1}", flop / s / 1e9);
            }
            println!("{line}");
        }
    }
    Ok(())
}
