//! Engine micro-benchmarks behind BENCHMARKS.md: matmul, elementwise bandwidth, dispatch
//! overhead, an eager MLP training step and a fused elementwise chain.
//! Run: `cargo bench --bench engine [-- --quick] [sections...]`, where sections are any of
//! `matmul elementwise dispatch mlp fused` (all when none is named).
//! Prints one line per figure (median of repeated samples after warm-up).

use deepseek::ops::fused::{FusedProgram, FusedStep, Reg, run_fused};
use deepseek::ops::{Attrs, find_op};
use deepseek::train::optim::OptimizerConfig;
use deepseek::{DType, Device, Generator, Result, Tensor};

mod common;
use common::median_secs;

fn randn(shape: &[usize], seed: u64) -> Result<Tensor> {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(seed))
}

/// x*a -> +b -> relu -> *c + d (ALGORITHMS.md §7) over inputs x, a, b, c, d.
fn chain_program() -> Result<FusedProgram> {
    use Reg::{Input as I, Step as S};
    let step = |name: &str, args: &[Reg]| -> Result<FusedStep> {
        Ok(FusedStep { op: find_op(name)?, attrs: Attrs::none(), args: args.to_vec() })
    };
    Ok(FusedProgram {
        n_inputs: 5,
        steps: vec![
            step("mul", &[I(0), I(1)])?,
            step("add", &[S(0), I(2)])?,
            step("relu", &[S(1)])?,
            step("mul", &[S(2), I(3)])?,
            step("add", &[S(3), I(4)])?,
        ],
        outputs: vec![S(4)],
    })
}

/// The fused chain against op-by-op eager execution over 16M f32 elements, with a..d either
/// scalars (ALGORITHMS.md §7's measurement) or full tensors. Bytes moved are analytic: unfused
/// is the sum over the five ops of their reads and writes, fused is the inputs plus the output.
fn fused_chain(quick: bool) -> Result<()> {
    let n = 16 << 20;
    let prog = chain_program()?;
    let x = randn(&[n], 20)?;
    for (label, operand) in [("a..d scalar", &[][..]), ("a..d full", &[n][..])] {
        let mut inputs = vec![x.clone()];
        for i in 0..4 {
            inputs.push(randn(operand, 21 + i)?);
        }
        let t = &inputs;
        let unfused = median_secs(if quick { 3 } else { 9 }, 1, || {
            t[0].mul(&t[1]).unwrap().add(&t[2]).unwrap().relu().unwrap().mul(&t[3]).unwrap().add(&t[4]).unwrap();
        });
        let fused = median_secs(if quick { 3 } else { 9 }, 1, || {
            run_fused(&prog, t, &[n], DType::F32).unwrap();
        });
        let m = operand.iter().product::<usize>() as f64; // elements of each of a..d
        let n = n as f64;
        // mul, add, mul, add read two operands and write one; relu reads one and writes one.
        let unfused_bytes = 4.0 * (4.0 * (n + m + n) + 2.0 * n);
        let fused_bytes = 4.0 * (n + 4.0 * m + n);
        println!(
            "fused_chain_f32 16M ({label}): unfused {:.2} ms ({:.0} MB, {:.1} GB/s), fused {:.2} ms ({:.0} MB, {:.1} GB/s): {:.2}x (bytes {:.2}x)",
            unfused * 1e3,
            unfused_bytes / 1e6,
            unfused_bytes / unfused / 1e9,
            fused * 1e3,
            fused_bytes / 1e6,
            fused_bytes / fused / 1e9,
            unfused / fused,
            unfused_bytes / fused_bytes
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Sections to run: the bare words on the command line (cargo adds `--bench`), all when none.
    let sections: Vec<&str> = args.iter().filter(|a| !a.starts_with('-')).map(String::as_str).collect();
    let want = |name: &str| sections.is_empty() || sections.contains(&name);
    let threads: usize = std::env::var("DS_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    deepseek::runtime::set_num_threads(threads)?;
    println!("# libdeepseek {} engine bench, {threads} threads", deepseek::VERSION);

    if want("matmul") {
        matmul(quick)?;
    }
    if want("elementwise") {
        elementwise(quick)?;
    }
    if want("dispatch") {
        dispatch(quick)?;
    }
    if want("mlp") {
        mlp(quick)?;
    }
    if want("fused") {
        fused_chain(quick)?;
    }
    Ok(())
}

fn matmul(quick: bool) -> Result<()> {
    for n in [256usize, 512, 1024, 2048] {
        let (a, b) = (randn(&[n, n], 1)?, randn(&[n, n], 2)?);
        let reps = (2_000_000_000 / (2 * n * n * n)).clamp(1, 200);
        let s = median_secs(if quick { 3 } else { 7 }, reps, || {
            a.matmul(&b).unwrap();
        });
        println!("matmul_f32 n={n}: {:.1} GFLOP/s ({:.3} ms)", 2.0 * (n * n * n) as f64 / s / 1e9, s * 1e3);
    }
    Ok(())
}

fn elementwise(quick: bool) -> Result<()> {
    let n = 16 << 20;
    let (x, y) = (randn(&[n], 3)?, randn(&[n], 4)?);
    // The memory-copy reference: an identity map reads 4n and writes 4n bytes, with the
    // same allocation and parallel loop as every elementwise kernel.
    let memcpy = median_secs(if quick { 3 } else { 9 }, 1, || {
        deepseek::backend::cpu::elementwise::map_unary::<f32, f32>(&x, |v| v).unwrap();
    });
    println!("copy_f32 16M: {:.1} GB/s (read+write, parallel)", 8.0 * n as f64 / memcpy / 1e9);
    let add = median_secs(if quick { 3 } else { 9 }, 1, || {
        x.add(&y).unwrap();
    });
    println!(
        "add_f32 16M: {:.1} GB/s ({:.2} ms; {:.0}% of copy)",
        12.0 * n as f64 / add / 1e9,
        add * 1e3,
        100.0 * (12.0 / add) / (8.0 / memcpy)
    );
    let relu = median_secs(if quick { 3 } else { 9 }, 1, || {
        x.relu().unwrap();
    });
    println!(
        "relu_f32 16M: {:.1} GB/s ({:.2} ms; {:.0}% of copy)",
        8.0 * n as f64 / relu / 1e9,
        relu * 1e3,
        100.0 * (8.0 / relu) / (8.0 / memcpy)
    );
    let exp = median_secs(if quick { 3 } else { 9 }, 1, || {
        x.exp().unwrap();
    });
    println!("exp_f32 16M: {:.1} GB/s ({:.2} ms)", 8.0 * n as f64 / exp / 1e9, exp * 1e3);
    Ok(())
}

fn dispatch(quick: bool) -> Result<()> {
    let (s1, s2) = (randn(&[100], 5)?, randn(&[100], 6)?);
    let per_op = median_secs(if quick { 5 } else { 15 }, 20_000, || {
        s1.add(&s2).unwrap();
    });
    println!("dispatch add 100 elems: {:.3} us/op", per_op * 1e6);
    s1.set_requires_grad(true);
    let per_op_grad = median_secs(if quick { 5 } else { 15 }, 20_000, || {
        s1.add(&s2).unwrap();
    });
    println!("dispatch add 100 elems, input requires grad: {:.3} us/op", per_op_grad * 1e6);
    Ok(())
}

/// Names the optimizer keys the MLP's parameters by.
const PARAM_NAMES: [&str; 6] = ["w1", "b1", "w2", "b2", "w3", "b3"];

fn mlp(quick: bool) -> Result<()> {
    // Eager MLP step: 784-512-512-10, batch 128, forward + backward + SGD.
    let dims = [784usize, 512, 512, 10];
    let mut params: Vec<Tensor> = Vec::new();
    for (l, io) in dims.windows(2).enumerate() {
        params.push(Tensor::rand_normal(
            &[io[1], io[0]],
            0.0,
            (2.0 / io[0] as f64).sqrt(),
            DType::F32,
            Device::Cpu,
            &mut Generator::new(l as u64),
        )?);
        params.push(Tensor::zeros(&[io[1]], DType::F32, Device::Cpu)?);
    }
    let xb = randn(&[128, 784], 9)?;
    let yb =
        Tensor::rand_uniform(&[128], 0.0, 10.0, DType::F32, Device::Cpu, &mut Generator::new(10))?.cast(DType::I64)?;
    // The engine's SGD optimizer updates each parameter in place, one pass over it, as
    // torch.optim.SGD does in the peer script.
    let mut sgd = OptimizerConfig::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 }.build();
    for p in &params {
        p.set_requires_grad(true);
    }
    let step = median_secs(if quick { 5 } else { 31 }, 3, || {
        let mut h = xb.clone();
        for (l, wb) in params.chunks(2).enumerate() {
            h = h.linear(&wb[0], Some(&wb[1])).unwrap();
            if l < 2 {
                h = h.relu().unwrap();
            }
        }
        h.cross_entropy(&yb).unwrap().backward().unwrap();
        drop(h);
        for (i, p) in params.iter_mut().enumerate() {
            let g = p.gradient().expect("every parameter has a gradient");
            p.zero_grad();
            sgd.update(PARAM_NAMES[i], p, &g, 0.01).unwrap();
        }
    });
    println!("mlp_train_step 784-512-512-10 b128: {:.3} ms", step * 1e3);
    Ok(())
}
