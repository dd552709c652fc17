//! GradScaler (ALGORITHMS.md §2): update rules, unscaling with the f64 inverse, bf16 no-op, and the trainer's skipped steps, growth, stall error and checkpointed state.

use deepseek::amp::{GradScaler, GradScalerOptions};
use deepseek::graph::{Dim, Graph, GraphBuilder};
use deepseek::tensor::grad::Gradient;
use deepseek::train::checkpoint::Checkpoint;
use deepseek::train::trainer::{Trainer, TrainerOptions};
use deepseek::{DType, Device, Error, Generator, Tensor};

fn bits(t: &Tensor) -> Vec<u8> {
    let mut b = vec![0u8; t.nbytes()];
    t.copy_to_bytes(&mut b).unwrap();
    b
}

#[test]
fn update_backs_off_on_overflow_and_grows_after_the_interval() {
    let mut s = GradScaler::new(GradScalerOptions::default()).unwrap();
    assert_eq!(s.scale(), 65536.0);
    for _ in 0..10 {
        s.update(false).unwrap();
    }
    assert_eq!(s.growth_tracker(), 10);
    s.update(true).unwrap();
    assert_eq!((s.scale(), s.growth_tracker()), (32768.0, 0), "overflow halves and resets");
    for _ in 0..1999 {
        s.update(false).unwrap();
    }
    assert_eq!((s.scale(), s.growth_tracker()), (32768.0, 1999));
    s.update(false).unwrap();
    assert_eq!((s.scale(), s.growth_tracker()), (65536.0, 0), "2000 clean steps double");
}

#[test]
fn a_scale_near_f32_max_never_grows_to_infinity() {
    let big = 0.75 * f32::MAX;
    let mut s = GradScaler::new(GradScalerOptions { init_scale: big, ..Default::default() }).unwrap();
    for _ in 0..4000 {
        s.update(false).unwrap();
    }
    assert_eq!(s.scale(), big);
    assert!(s.scale().is_finite());
    assert_eq!(s.growth_tracker(), 0, "the tracker still resets at the interval");
}

#[test]
fn unscale_multiplies_by_the_f64_inverse_rounded_once() {
    let s = GradScaler::new(GradScalerOptions { init_scale: 3.0, ..Default::default() }).unwrap();
    let inv = (1.0f64 / 3.0) as f32;
    assert_eq!(s.inv_scale(), inv);
    let vals = [3.0f32, 1.5, -7.25, 1e-30];
    let mut grads = vec![
        Gradient::Dense(Tensor::from_slice(&vals, &[4]).unwrap()),
        Gradient::Rows {
            indices: Tensor::from_slice(&[2i64], &[1]).unwrap(),
            rows: Tensor::from_slice(&vals, &[1, 4]).unwrap(),
        },
    ];
    assert!(!s.unscale(&mut grads).unwrap());
    let want: Vec<f32> = vals.iter().map(|v| v * inv).collect();
    let Gradient::Dense(d) = &grads[0] else { unreachable!() };
    assert_eq!(d.to_vec::<f32>().unwrap(), want);
    let Gradient::Rows { rows, .. } = &grads[1] else { unreachable!() };
    assert_eq!(rows.to_vec::<f32>().unwrap(), want);
    for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        let mut g = vec![Gradient::Dense(Tensor::from_slice(&[1.0f32, bad], &[2]).unwrap())];
        assert!(s.unscale(&mut g).unwrap(), "{bad} found");
    }
    let mut half = vec![Gradient::Dense(Tensor::from_slice(&[1.0f32], &[1]).unwrap().cast(DType::F16).unwrap())];
    let e = s.unscale(&mut half).unwrap_err();
    assert!(e.to_string().contains("f16"), "{e}");
}

#[test]
fn bad_options_are_errors_naming_the_setting() {
    let cases: [(GradScalerOptions, &str); 5] = [
        (GradScalerOptions { init_scale: f32::INFINITY, ..Default::default() }, "init_scale"),
        (GradScalerOptions { growth_factor: 1.0, ..Default::default() }, "growth_factor"),
        (GradScalerOptions { backoff_factor: 1.0, ..Default::default() }, "backoff_factor"),
        (GradScalerOptions { growth_interval: 0, ..Default::default() }, "growth_interval"),
        (GradScalerOptions { max_consecutive_skips: 0, ..Default::default() }, "max_consecutive_skips"),
    ];
    for (o, name) in cases {
        let e = GradScaler::new(o).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn with_bf16_the_scaler_is_a_no_op() {
    let mut s = GradScaler::for_dtype(GradScalerOptions::default(), DType::BF16).unwrap();
    assert!(!s.is_enabled());
    assert_eq!(s.scale(), 1.0);
    let t = Tensor::from_slice(&[1.0f32, f32::NAN, 3.0], &[3]).unwrap();
    let before = bits(&t);
    let mut g = vec![Gradient::Dense(t)];
    assert!(!s.unscale(&mut g).unwrap());
    let Gradient::Dense(t) = &g[0] else { unreachable!() };
    assert_eq!(bits(t), before);
    for _ in 0..100 {
        s.update(true).unwrap();
    }
    assert_eq!((s.scale(), s.growth_tracker(), s.skipped_steps()), (1.0, 0, 0));
    assert!(GradScaler::for_dtype(GradScalerOptions::default(), DType::F16).unwrap().is_enabled());
}

/// A tiny regression model: y = relu(x W1ᵀ + b1) W2ᵀ, mse loss.
fn model() -> Graph {
    let mut g = Generator::new(5);
    let mut b = GraphBuilder::new();
    let batch = Dim::Sym("batch".into());
    let x = b.input("x", DType::F32, &[batch.clone(), Dim::Fixed(3)]).unwrap();
    let y = b.input("y", DType::F32, &[batch, Dim::Fixed(1)]).unwrap();
    let w1 = Tensor::rand_normal(&[4, 3], 0.0, 0.5, DType::F32, Device::Cpu, &mut g).unwrap();
    let w2 = Tensor::rand_normal(&[1, 4], 0.0, 0.5, DType::F32, Device::Cpu, &mut g).unwrap();
    let w1 = b.param("w1", &w1, true).unwrap();
    let b1 = b.param("b1", &Tensor::zeros(&[4], DType::F32, Device::Cpu).unwrap(), true).unwrap();
    let w2 = b.param("w2", &w2, true).unwrap();
    let h = b.op1("linear", &[x, w1, b1], &[]).unwrap();
    let h = b.op1("relu", &[h], &[]).unwrap();
    let p = b.op1("linear", &[h, w2], &[]).unwrap();
    let loss = b.op1("mse_loss", &[p, y], &[]).unwrap();
    b.output("pred", p).unwrap();
    b.output("loss", loss).unwrap();
    b.finish().unwrap()
}

fn data(k: u64, poison: Option<f32>) -> (Tensor, Tensor) {
    let mut g = Generator::new(77 + k);
    let mut x: Vec<f32> = (0..8 * 3).map(|_| g.normal() as f32).collect();
    let y: Vec<f32> = x.chunks(3).map(|r| r[0] - 0.5 * r[2]).collect();
    if let Some(v) = poison {
        x[4] = v;
    }
    (Tensor::from_slice(&x, &[8, 3]).unwrap(), Tensor::from_slice(&y, &[8, 1]).unwrap())
}

fn trainer(scaler: GradScalerOptions, autocast: Option<DType>) -> Trainer {
    let options = TrainerOptions { loss_scaling: Some(scaler), autocast, lr: 1e-2, ..TrainerOptions::default() };
    Trainer::new(&model(), "loss", options).unwrap()
}

fn step(t: &mut Trainer, k: u64, poison: Option<f32>) -> deepseek::Result<f64> {
    let (x, y) = data(k, poison);
    t.step(&[("x", &x), ("y", &y)])
}

/// (step count, parameter bytes, optimizer slot names and bytes): what a skipped step keeps.
type Snapshot = (u64, Vec<Vec<u8>>, Vec<(String, Vec<u8>)>);

fn snapshot(t: &Trainer) -> Snapshot {
    let c: Checkpoint = t.checkpoint();
    (
        t.step_count(),
        t.params().iter().map(|(_, p)| bits(p)).collect(),
        c.optimizer_state.iter().map(|(n, s)| (n.clone(), bits(s))).collect(),
    )
}

#[test]
fn an_injected_inf_skips_the_step_bitwise_and_halves_the_scale() {
    let mut t = trainer(GradScalerOptions::default(), None);
    for k in 0..3 {
        step(&mut t, k, None).unwrap();
    }
    assert_eq!(t.grad_scaler().unwrap().growth_tracker(), 3);
    let before = snapshot(&t);
    let loss = step(&mut t, 3, Some(f32::INFINITY)).unwrap();
    assert!(!loss.is_finite(), "the poisoned step's loss is returned: {loss}");
    assert_eq!(snapshot(&t), before, "parameters, optimizer slots and step count bitwise unchanged");
    let s = t.grad_scaler().unwrap();
    assert_eq!((s.scale(), s.growth_tracker(), s.skipped_steps()), (32768.0, 0, 1));
    assert!(t.amp_status().unwrap().contains("loss scale 32768"), "{:?}", t.amp_status());
    assert!(t.amp_status().unwrap().contains("1 steps skipped"), "{:?}", t.amp_status());
    // Training goes on and the parameters move again.
    step(&mut t, 4, None).unwrap();
    assert_ne!(snapshot(&t).1, before.1);
    assert_eq!(t.step_count(), 4);
}

#[test]
fn gradients_equal_the_unscaled_run() {
    // Power-of-two scales make scaling exact: the scaled run's parameters equal the plain one's.
    let mut plain = Trainer::new(&model(), "loss", TrainerOptions { lr: 1e-2, ..TrainerOptions::default() }).unwrap();
    let mut scaled = trainer(GradScalerOptions::default(), None);
    for k in 0..5 {
        let a = step(&mut plain, k, None).unwrap();
        let b = step(&mut scaled, k, None).unwrap();
        assert_eq!(a, b, "the reported loss is unscaled");
    }
    assert_eq!(snapshot(&plain).1, snapshot(&scaled).1);
}

#[test]
fn two_thousand_clean_steps_double_the_scale() {
    let mut t = trainer(GradScalerOptions::default(), None);
    for k in 0..1999 {
        step(&mut t, k % 16, None).unwrap();
    }
    assert_eq!(t.grad_scaler().unwrap().scale(), 65536.0);
    step(&mut t, 0, None).unwrap();
    let s = t.grad_scaler().unwrap();
    assert_eq!((s.scale(), s.growth_tracker()), (131072.0, 0));
}

#[test]
fn nan_gradients_from_the_first_step_fail_after_n_skips() {
    let opts = GradScalerOptions { max_consecutive_skips: 5, ..Default::default() };
    let mut t = trainer(opts, None);
    let before = snapshot(&t);
    for k in 0..4 {
        let loss = step(&mut t, k, Some(f32::NAN)).unwrap();
        assert!(loss.is_nan());
    }
    let e = step(&mut t, 4, Some(f32::NAN)).unwrap_err();
    assert!(matches!(e, Error::NonFinite(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("skipped 5 steps") && msg.contains("scale now 2.048e3"), "{msg}");
    assert_eq!(snapshot(&t), before, "nothing trained");
}

#[test]
fn scaler_state_is_saved_and_restored_with_checkpoints() {
    let dir = std::env::temp_dir().join(format!("ds-amp-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = || TrainerOptions {
        loss_scaling: Some(GradScalerOptions::default()),
        checkpoint_dir: Some(dir.clone()),
        lr: 1e-2,
        ..TrainerOptions::default()
    };
    let mut t = Trainer::new(&model(), "loss", options()).unwrap();
    step(&mut t, 0, None).unwrap();
    step(&mut t, 1, Some(f32::INFINITY)).unwrap();
    step(&mut t, 2, None).unwrap();
    step(&mut t, 3, None).unwrap();
    let ckpt = t.checkpoint();
    let names: Vec<&str> = ckpt.amp_state.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["scale", "growth_tracker"]);
    t.save_checkpoint().unwrap();
    let resumed = Trainer::new(&model(), "loss", options()).unwrap();
    let s = resumed.grad_scaler().unwrap();
    assert_eq!((s.scale(), s.growth_tracker()), (32768.0, 2));
    assert_eq!(resumed.step_count(), 3);
    // A checkpoint without amp entries (written before loss scaling existed) still loads.
    let mut old = ckpt.clone();
    old.amp_state.clear();
    let bytes = old.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&bytes, "old").unwrap();
    let mut fresh = trainer(GradScalerOptions::default(), None);
    fresh.restore(back).unwrap();
    assert_eq!(fresh.grad_scaler().unwrap().scale(), 65536.0);
    // A damaged scale is refused.
    let mut bad = ckpt;
    bad.amp_state[0].1 = Tensor::from_slice(&[f32::INFINITY], &[]).unwrap();
    assert!(fresh.restore(bad).unwrap_err().to_string().contains("amp/scale"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loss_scaling_with_bf16_autocast_is_off_and_non_finite_steps_are_refused() {
    let mut t = trainer(GradScalerOptions::default(), Some(DType::BF16));
    assert!(!t.grad_scaler().unwrap().is_enabled());
    let status = t.amp_status().unwrap();
    assert!(status.contains("autocast bf16") && status.contains("not needed with bf16"), "{status}");
    assert!(t.report().iter().any(|l| l.starts_with("autocast: ")), "{:?}", t.report());
    let first = step(&mut t, 0, None).unwrap();
    let before = snapshot(&t);
    assert!(matches!(step(&mut t, 1, Some(f32::NAN)), Err(Error::NonFinite(_))));
    assert_eq!(snapshot(&t), before);
    for k in 2..60 {
        step(&mut t, k % 16, None).unwrap();
    }
    let last = step(&mut t, 0, None).unwrap();
    assert!(last < first, "bf16 autocast training reduces the loss: {first} -> {last}");
    // Master weights stay f32.
    assert!(t.params().iter().all(|(_, p)| p.dtype() == DType::F32));
}

#[test]
fn f16_autocast_with_loss_scaling_trains() {
    let mut t = trainer(GradScalerOptions::default(), Some(DType::F16));
    assert!(t.grad_scaler().unwrap().is_enabled());
    let first = step(&mut t, 0, None).unwrap();
    for k in 1..60 {
        step(&mut t, k % 16, None).unwrap();
    }
    let last = step(&mut t, 0, None).unwrap();
    assert!(last < first, "{first} -> {last}");
    assert_eq!(t.grad_scaler().unwrap().skipped_steps(), 0);
}
