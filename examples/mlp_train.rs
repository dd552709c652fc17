//! Eager training of a 784-512-512-10 MLP on seeded random data with plain SGD.
//!
//! `cargo run --release --example mlp_train -- [steps] [--hex]` prints one loss per step;
//! `--hex` prints the exact bits, so the C twin (`examples/c/mlp_train.c`) can be compared
//! bit for bit. Both build the same data and weights from the engine's seeded generator.

use deepseek::{DType, Device, Generator, Result, Tensor};

const DIMS: [usize; 4] = [784, 512, 512, 10];
const BATCH: usize = 128;
const LR: f64 = 0.01;

fn normal(shape: &[usize], std: f64, seed: u64) -> Result<Tensor> {
    Tensor::rand_normal(shape, 0.0, std, DType::F32, Device::Cpu, &mut Generator::new(seed))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20);
    let hex = args.iter().any(|a| a == "--hex");
    deepseek::runtime::set_num_threads(2)?;

    // Parameters: He-normal weights [out, in] (seeds 1, 2, 3), zero biases.
    let mut params = Vec::new();
    for (l, io) in DIMS.windows(2).enumerate() {
        let w = normal(&[io[1], io[0]], (2.0 / io[0] as f64).sqrt(), l as u64 + 1)?;
        let b = Tensor::zeros(&[io[1]], DType::F32, Device::Cpu)?;
        params.push(w);
        params.push(b);
    }
    // Data: x ~ N(0, 1) (seed 100); labels = floor(U[0, 10)) (seed 101).
    let x = normal(&[BATCH, DIMS[0]], 1.0, 100)?;
    let y = Tensor::rand_uniform(&[BATCH], 0.0, 10.0, DType::F32, Device::Cpu, &mut Generator::new(101))?
        .cast(DType::I64)?;
    let lr = Tensor::full(&[], LR, DType::F32, Device::Cpu)?;

    for step in 0..steps {
        for p in &params {
            p.set_requires_grad(true);
        }
        let mut h = x.clone();
        for (l, wb) in params.chunks(2).enumerate() {
            h = h.linear(&wb[0], Some(&wb[1]))?;
            if l + 1 < DIMS.len() - 1 {
                h = h.relu()?;
            }
        }
        let loss = h.cross_entropy(&y)?;
        loss.backward()?;
        // SGD: p <- p - lr * grad, as fresh leaves.
        params = params
            .iter()
            .map(|p| {
                let g = p.grad()?.expect("every parameter reaches the loss");
                deepseek::autograd::no_grad(|| p.sub(&g.mul(&lr)?))
            })
            .collect::<Result<_>>()?;
        let v = loss.item()? as f32;
        if hex {
            println!("{step} {:08x}", v.to_bits());
        } else {
            println!("step {step:3}  loss {v:.6}");
        }
    }
    Ok(())
}
