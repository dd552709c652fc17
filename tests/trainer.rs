//! The trainer: steps against eager references, refused non-finite steps, checkpoints that resume bitwise, fallback past damage, export for serving.

use deepseek::graph::{Dim, Graph, GraphBuilder};
use deepseek::ops::Attr;
use deepseek::ops::dispatch::call_named;
use deepseek::tensor::grad::Gradient;
use deepseek::train::checkpoint::Checkpoint;
use deepseek::train::optim::{LrSchedule, OptimizerConfig};
use deepseek::train::trainer::{Trainer, TrainerOptions};
use deepseek::{DType, Device, Error, Generator, Tensor};
use std::path::PathBuf;

const VOCAB: usize = 10;

/// A tiny CTR-like model: dense features and one embedded id, concatenated, one logit.
fn model(seed: u64) -> Graph {
    let mut g = Generator::new(seed);
    let mut b = GraphBuilder::new();
    let batch = Dim::Sym("batch".into());
    let x = b.input("x", DType::F32, &[batch.clone(), Dim::Fixed(4)]).unwrap();
    let ids = b.input("ids", DType::I64, std::slice::from_ref(&batch)).unwrap();
    let label = b.input("label", DType::F32, &[batch, Dim::Fixed(1)]).unwrap();
    let emb = Tensor::rand_normal(&[VOCAB, 3], 0.0, 0.1, DType::F32, Device::Cpu, &mut g).unwrap();
    let w = Tensor::rand_normal(&[1, 7], 0.0, 0.3, DType::F32, Device::Cpu, &mut g).unwrap();
    let emb = b.param("emb/weight", &emb, true).unwrap();
    let w = b.param("head/weight", &w, true).unwrap();
    let bias = b.param("head/bias", &Tensor::zeros(&[1], DType::F32, Device::Cpu).unwrap(), true).unwrap();
    let e = b.op1("embedding", &[emb, ids], &[]).unwrap();
    let h = b.op1("concat", &[x, e], &[("dim", Attr::Int(1))]).unwrap();
    let logit = b.op1("linear", &[h, w, bias], &[]).unwrap();
    let prob = b.op1("sigmoid", &[logit], &[]).unwrap();
    let loss = b.op1("binary_cross_entropy_with_logits", &[logit, label], &[]).unwrap();
    b.output("logit", logit).unwrap();
    b.output("prob", prob).unwrap();
    b.output("loss", loss).unwrap();
    b.finish().unwrap()
}

/// Batch `k` of a fixed synthetic stream: the label depends on x[0] and on the id's parity.
fn batch(k: u64, n: usize) -> (Tensor, Tensor, Tensor) {
    let mut g = Generator::new(1000 + k);
    let mut x = Vec::with_capacity(n * 4);
    let (mut ids, mut y) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let row: Vec<f32> = (0..4).map(|_| g.normal() as f32).collect();
        // Only even ids appear in the first rows of each batch, so odd rows stay untouched
        // when the batch is small (see the sparse test).
        let id = (g.next_u64() % VOCAB as u64) as i64;
        let z = 2.0 * row[0] as f64 + if id % 2 == 0 { 1.0 } else { -1.0 };
        y.push(if g.uniform() < 1.0 / (1.0 + (-z).exp()) { 1.0f32 } else { 0.0 });
        x.extend(row);
        ids.push(id);
    }
    (
        Tensor::from_slice(&x, &[n, 4]).unwrap(),
        Tensor::from_slice(&ids, &[n]).unwrap(),
        Tensor::from_slice(&y, &[n, 1]).unwrap(),
    )
}

fn step(t: &mut Trainer, k: u64) -> deepseek::Result<f64> {
    let (x, ids, y) = batch(k, 32);
    t.step(&[("x", &x), ("ids", &ids), ("label", &y)])
}

fn bits(t: &Tensor) -> Vec<u8> {
    let mut b = vec![0u8; t.nbytes()];
    t.copy_to_bytes(&mut b).unwrap();
    b
}

fn param_bits(t: &Trainer) -> Vec<(String, Vec<u8>)> {
    t.params().into_iter().map(|(n, p)| (n.to_string(), bits(p))).collect()
}

fn adam() -> OptimizerConfig {
    OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ds-trainer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn one_sgd_step_matches_eager_autograd() {
    let g = model(1);
    let lr = 0.5;
    let opts = TrainerOptions {
        optimizer: OptimizerConfig::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 },
        lr,
        ..Default::default()
    };
    let mut t = Trainer::new(&g, "loss", opts).unwrap();
    let (x, ids, y) = batch(0, 16);
    // The same computation eagerly, with the tape.
    let p: Vec<(String, Tensor)> = g
        .params()
        .into_iter()
        .map(|(n, _, t, _)| (n.to_string(), t.detach().set_requires_grad(true).clone()))
        .collect();
    let op =
        |name: &str, inputs: &[&Tensor], attrs: &[(&str, Attr)]| call_named(name, inputs, attrs).unwrap().remove(0);
    let e = op("embedding", &[&p[0].1, &ids], &[]);
    let h = op("concat", &[&x, &e], &[("dim", Attr::Int(1))]);
    let logit = op("linear", &[&h, &p[1].1, &p[2].1], &[]);
    let loss = op("binary_cross_entropy_with_logits", &[&logit, &y], &[]);
    loss.backward().unwrap();
    let got = t.step(&[("x", &x), ("ids", &ids), ("label", &y)]).unwrap();
    assert!((got - loss.item().unwrap()).abs() < 1e-6, "{got} vs {}", loss.item().unwrap());
    for (name, param) in &p {
        let before = param.to_vec::<f32>().unwrap();
        let grad = match param.gradient().unwrap() {
            Gradient::Dense(g) => g.to_vec::<f32>().unwrap(),
            Gradient::Rows { indices, rows } => {
                let mut dense = vec![0.0f32; param.numel()];
                let width = param.shape()[1];
                for (k, &i) in indices.to_vec::<i64>().unwrap().iter().enumerate() {
                    for (d, v) in rows.to_vec::<f32>().unwrap()[k * width..(k + 1) * width].iter().enumerate() {
                        dense[i as usize * width + d] += v;
                    }
                }
                dense
            }
        };
        let after = t.param(name).unwrap().to_vec::<f32>().unwrap();
        for i in 0..before.len() {
            let want = before[i] - lr as f32 * grad[i];
            assert!((after[i] - want).abs() <= 1e-6 * (1.0 + want.abs()), "{name}[{i}]: {} vs {want}", after[i]);
        }
    }
    assert_eq!((t.step_count(), t.data_cursor()), (1, 16));
}

#[test]
fn training_lowers_the_loss_and_sparse_rows_stay_untouched() {
    let g = model(2);
    let opts = TrainerOptions {
        optimizer: adam(),
        sparse_optimizer: Some(OptimizerConfig::RowwiseAdagrad {
            eps: 1e-10,
            weight_decay: 0.0,
            decoupled_decay: false,
        }),
        lr: 0.05,
        ..Default::default()
    };
    let mut t = Trainer::new(&g, "loss", opts).unwrap();
    let emb_before = t.param("emb/weight").unwrap().to_vec::<f32>().unwrap();
    // One step on ids {0, 2} only: the other eight rows must not move by a single bit.
    let x = Tensor::from_slice(&[0.5f32, 0.1, 0.2, 0.3, -0.5, 0.0, 0.1, 0.0], &[2, 4]).unwrap();
    let ids = Tensor::from_slice(&[0i64, 2], &[2]).unwrap();
    let y = Tensor::from_slice(&[1.0f32, 0.0], &[2, 1]).unwrap();
    t.step(&[("x", &x), ("ids", &ids), ("label", &y)]).unwrap();
    let emb_after = t.param("emb/weight").unwrap().to_vec::<f32>().unwrap();
    for row in 0..VOCAB {
        let (a, b) = (&emb_before[row * 3..row * 3 + 3], &emb_after[row * 3..row * 3 + 3]);
        let bitwise_same = a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
        assert_eq!(bitwise_same, row != 0 && row != 2, "row {row}: {a:?} -> {b:?}");
    }
    let first: f64 = (0..5).map(|k| step(&mut t, k).unwrap()).sum::<f64>() / 5.0;
    for k in 5..200 {
        step(&mut t, k).unwrap();
    }
    let last: f64 = (200..205).map(|k| step(&mut t, k).unwrap()).sum::<f64>() / 5.0;
    assert!(last < first * 0.85, "loss {first} -> {last}");
}

#[test]
fn non_finite_losses_are_refused_and_change_nothing() {
    let g = model(3);
    let mut t = Trainer::new(&g, "loss", TrainerOptions { optimizer: adam(), lr: 0.1, ..Default::default() }).unwrap();
    step(&mut t, 0).unwrap();
    let before = param_bits(&t);
    let state_before: Vec<(String, Vec<u8>)> =
        t.checkpoint().optimizer_state.iter().map(|(n, s)| (n.clone(), bits(s))).collect();
    let (mut x, ids, y) = batch(1, 8);
    x.host_data_mut::<f32>().unwrap()[3] = f32::NAN;
    let err = t.step(&[("x", &x), ("ids", &ids), ("label", &y)]).unwrap_err();
    assert!(matches!(err, Error::NonFinite(_)), "{err:?}");
    assert!(err.to_string().contains("step 1") && err.to_string().contains("nothing changed"), "{err}");
    assert_eq!(param_bits(&t), before);
    let state_after: Vec<(String, Vec<u8>)> =
        t.checkpoint().optimizer_state.iter().map(|(n, s)| (n.clone(), bits(s))).collect();
    assert_eq!(state_after, state_before);
    assert_eq!((t.step_count(), t.data_cursor()), (1, 32));
    step(&mut t, 2).unwrap();
    assert_eq!(t.step_count(), 2, "the trainer keeps working");
}

#[test]
fn bad_feeds_and_options_are_named() {
    let g = model(4);
    let err = |r: deepseek::Result<Trainer>| r.err().map(|e| e.to_string()).unwrap_or_default();
    let msg = err(Trainer::new(&g, "prob", TrainerOptions::default()));
    assert!(msg.contains("prob"), "a non-scalar loss: {msg}");
    let msg = err(Trainer::new(&g, "nope", TrainerOptions::default()));
    assert!(msg.contains("nope"), "{msg}");
    let msg = err(Trainer::new(&g, "loss", TrainerOptions { lr: f64::NAN, ..Default::default() }));
    assert!(msg.contains("learning rate"), "{msg}");
    let msg = err(Trainer::new(&g, "loss", TrainerOptions { clip_norm: Some(-1.0), ..Default::default() }));
    assert!(msg.contains("clipping norm"), "{msg}");
    let mut t = Trainer::new(&g, "loss", TrainerOptions::default()).unwrap();
    let (x, ids, y) = batch(0, 4);
    let msg = t.step(&[("x", &x), ("ids", &ids)]).unwrap_err().to_string();
    assert!(msg.contains("label"), "a missing label is named: {msg}");
    let msg = t.step(&[("x", &x), ("ids", &ids), ("label", &y), ("head/bias", &y)]).unwrap_err().to_string();
    assert!(msg.contains("head/bias") && msg.contains("trainer owns"), "{msg}");
    let two = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 1.0], &[4, 1]).unwrap();
    let msg = t.step(&[("x", &x), ("ids", &ids), ("label", &two)]).unwrap_err().to_string();
    assert!(msg.contains("targets must lie in [0, 1]") && msg.contains("element 2 is 2"), "{msg}");
    let bad_ids = Tensor::from_slice(&[0i64, 1, 99, 2], &[4]).unwrap();
    let msg = t.step(&[("x", &x), ("ids", &bad_ids), ("label", &y)]).unwrap_err().to_string();
    assert!(msg.contains("99"), "an id outside the table is an error naming it: {msg}");
    assert_eq!(t.step_count(), 0);
    assert!(t.save_checkpoint().unwrap_err().to_string().contains("without a checkpoint directory"));
}

fn ckpt_options(dir: &std::path::Path, every: u64) -> TrainerOptions {
    TrainerOptions {
        optimizer: adam(),
        sparse_optimizer: Some(OptimizerConfig::LazyAdam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }),
        lr: 0.01,
        schedule: LrSchedule::Cosine { total_steps: 40, min_lr: 0.0 },
        clip_norm: Some(1.0),
        checkpoint_dir: Some(dir.to_path_buf()),
        checkpoint_every: every,
        keep_checkpoints: 2,
        ..Default::default()
    }
}

#[test]
fn resuming_from_a_checkpoint_continues_bitwise() {
    let g = model(5);
    let plain = scratch("plain");
    let mut whole = Trainer::new(&g, "loss", ckpt_options(&plain, 0)).unwrap();
    for k in 0..30 {
        step(&mut whole, k).unwrap();
    }
    let dir = scratch("resume");
    {
        let mut first = Trainer::new(&g, "loss", ckpt_options(&dir, 10)).unwrap();
        assert!(first.report().is_empty(), "a fresh directory: {:?}", first.report());
        for k in 0..25 {
            step(&mut first, k).unwrap();
        }
        // Dropped at step 25: the newest checkpoint is step 20.
    }
    let mut second = Trainer::new(&g, "loss", ckpt_options(&dir, 10)).unwrap();
    assert_eq!(second.step_count(), 20);
    assert_eq!(second.data_cursor(), 20 * 32);
    assert!(second.report()[0].contains("resumed from") && second.report()[0].contains("step 20"));
    for k in second.step_count()..30 {
        step(&mut second, k).unwrap();
    }
    assert_eq!(param_bits(&second), param_bits(&whole));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&plain);
}

#[test]
fn a_corrupt_newest_checkpoint_falls_back_and_says_so() {
    let g = model(6);
    let dir = scratch("corrupt");
    {
        let mut t = Trainer::new(&g, "loss", ckpt_options(&dir, 5)).unwrap();
        for k in 0..10 {
            step(&mut t, k).unwrap();
        }
    }
    let newest = dir.join(Checkpoint::file_name(10));
    let mut bytes = std::fs::read(&newest).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    std::fs::write(&newest, bytes).unwrap();
    let t = Trainer::new(&g, "loss", ckpt_options(&dir, 5)).unwrap();
    assert_eq!(t.step_count(), 5);
    let report = t.report().join("\n");
    assert!(report.contains("ckpt-000000000010") && report.contains("checksum mismatch"), "{report}");
    assert!(report.contains("resumed from") && report.contains("ckpt-000000000005"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_checkpoint_of_another_graph_is_an_error_listing_differences() {
    let dir = scratch("other");
    {
        let mut t = Trainer::new(&model(7), "loss", ckpt_options(&dir, 0)).unwrap();
        step(&mut t, 0).unwrap();
        t.save_checkpoint().unwrap();
    }
    // Same names, one shape different.
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::Fixed(2), Dim::Fixed(3)]).unwrap();
    let w = b.param("head/weight", &Tensor::zeros(&[1, 3], DType::F32, Device::Cpu).unwrap(), true).unwrap();
    let y = b.op1("linear", &[x, w], &[]).unwrap();
    let loss = b.op1("mean", &[y], &[]).unwrap();
    b.output("loss", loss).unwrap();
    let other = b.finish().unwrap();
    let msg = Trainer::new(&other, "loss", ckpt_options(&dir, 0)).err().unwrap().to_string();
    assert!(msg.contains("not of this graph"), "{msg}");
    assert!(msg.contains("head/weight") && msg.contains("[1, 7]") && msg.contains("[1, 3]"), "{msg}");
    assert!(msg.contains("emb/weight") && msg.contains("not a parameter"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exported_inference_graph_serves_without_labels() {
    let g = model(8);
    let mut t = Trainer::new(&g, "loss", TrainerOptions { optimizer: adam(), lr: 0.05, ..Default::default() }).unwrap();
    for k in 0..20 {
        step(&mut t, k).unwrap();
    }
    let served = t.export_inference(&["prob"]).unwrap();
    assert!(served.inputs().iter().all(|(n, _)| *n != "label"), "labels are not needed to serve");
    assert!(served.params().iter().all(|(_, _, _, trainable)| !trainable), "weights are frozen");
    let (x, ids, y) = batch(99, 64);
    let want = t.evaluate(&[("x", &x), ("ids", &ids), ("label", &y)], &["prob"]).unwrap();
    let ex = deepseek::exec::Executor::new(&served, Default::default()).unwrap();
    let got = ex.run(&[("x", &x), ("ids", &ids)], &["prob"]).unwrap();
    let (a, b) = (want[0].to_vec::<f32>().unwrap(), got[0].to_vec::<f32>().unwrap());
    assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-6), "{a:?} vs {b:?}");
    // Training on does not change the exported weights.
    let before = got[0].to_vec::<f32>().unwrap();
    step(&mut t, 21).unwrap();
    assert_eq!(ex.run(&[("x", &x), ("ids", &ids)], &["prob"]).unwrap()[0].to_vec::<f32>().unwrap(), before);
    assert!(t.export_inference(&["nope"]).is_err() && t.export_inference(&[]).is_err());
}

const KILL_STEPS: u64 = 60;

fn params_file_bytes(t: &Trainer) -> Vec<u8> {
    param_bits(t).into_iter().flat_map(|(n, b)| n.into_bytes().into_iter().chain(b)).collect()
}

/// Runs in the child process only: trains to `KILL_STEPS` on the directory named by the
/// environment (resuming from whatever is there), printing each finished step, then writes
/// the final parameters beside the checkpoints.
#[test]
#[ignore = "run by a_training_process_killed_with_sigkill_resumes_bitwise in a child process"]
fn child_trains_with_checkpoints() {
    let dir = PathBuf::from(std::env::var("DS_TRAIN_DIR").expect("DS_TRAIN_DIR"));
    let pause = std::env::var("DS_TRAIN_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut t = Trainer::new(&model(9), "loss", ckpt_options(&dir, 5)).unwrap();
    for k in t.step_count()..KILL_STEPS {
        step(&mut t, k).unwrap();
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "step {}", k + 1).unwrap();
        out.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(pause));
    }
    std::fs::write(dir.join("final.bin"), params_file_bytes(&t)).unwrap();
}

#[test]
fn a_training_process_killed_with_sigkill_resumes_bitwise() {
    use std::io::BufRead;
    let dir = scratch("sigkill");
    let child = |pause: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_trains_with_checkpoints", "--ignored", "--nocapture", "--test-threads", "1"])
            .env("DS_TRAIN_DIR", &dir)
            .env("DS_TRAIN_PAUSE_MS", pause)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // First run: killed part-way, between checkpoints (every 5 steps), at step 23.
    let mut first = child("20");
    let lines = std::io::BufReader::new(first.stdout.take().unwrap()).lines();
    for line in lines {
        if line.unwrap() == "step 23" {
            break;
        }
    }
    first.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no goodbye.
    first.wait().unwrap();
    assert!(!dir.join("final.bin").exists(), "the first run must not have finished");
    // Second run on the same directory: resumes from step 20 by itself and finishes.
    let second = child("0").wait_with_output().unwrap();
    assert!(second.status.success(), "the resumed child failed");
    let text = String::from_utf8_lossy(&second.stdout);
    // Step 20's checkpoint is the newest unless the machine was slow enough for the first
    // run to reach step 25 before the kill landed.
    let after = text.split("step ").nth(1).unwrap_or_default();
    let first_step: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert!(first_step == "21" || first_step == "26", "resumed from a checkpoint, not from scratch: {text}");
    let resumed = std::fs::read(dir.join("final.bin")).expect("the resumed child wrote no parameters");
    // The same length of training without interruption.
    let plain = scratch("sigkill-plain");
    let mut t = Trainer::new(&model(9), "loss", ckpt_options(&plain, 5)).unwrap();
    for k in 0..KILL_STEPS {
        step(&mut t, k).unwrap();
    }
    assert_eq!(resumed, params_file_bytes(&t), "parameters after kill + resume differ from an uninterrupted run");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&plain);
}

#[test]
fn a_profiled_trainer_reports_where_each_step_went() {
    let g = model(2);
    let mut plain = Trainer::new(&g, "loss", TrainerOptions { optimizer: adam(), ..Default::default() }).unwrap();
    step(&mut plain, 0).unwrap();
    assert!(plain.last_profile().is_none());
    let opts = TrainerOptions { optimizer: adam(), profile: true, ..Default::default() };
    let mut t = Trainer::new(&g, "loss", opts).unwrap();
    assert!(t.last_profile().is_none(), "no step yet");
    step(&mut t, 0).unwrap();
    let p = t.last_profile().expect("a profile after a step").clone();
    assert!(p.total_nanos() > 0);
    // The forward and backward graph of the model: its embedding lookup and its products.
    assert!(p.ops.iter().any(|o| o.signature.starts_with("embedding")), "{p}");
    assert!(p.ops.iter().any(|o| o.signature.contains("matmul") || o.signature.contains("linear")), "{p}");
    step(&mut t, 1).unwrap();
    assert_eq!(t.last_profile().unwrap().ops.len(), p.ops.len(), "each step replaces the last profile");
}
