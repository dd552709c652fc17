//! Activation checkpointing: the graph rewrite (peak activation bytes, bitwise gradients, dropout, bad boundaries, budgets), eager checkpoint and the trainer's memory statistics.

use deepseek::autograd::{CheckpointOptions, SequentialFn, checkpoint, checkpoint_sequential};
use deepseek::exec::{ExecOptions, Executor, RunOptions, RunStats};
use deepseek::graph::passes::{CheckpointReport, Checkpointing, append_gradients_checkpointed};
use deepseek::graph::{Dim, Graph, GraphBuilder, ParamGrad, append_gradients};
use deepseek::ops::Attr;
use deepseek::{DType, Device, Error, Generator, Tensor};
use std::sync::Arc;

const WIDTH: usize = 512;
const BATCH: usize = 64;
const LAYERS: usize = 16;

fn normal(shape: &[usize], std: f64, seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, std, DType::F32, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

/// `layers` × [linear(width, width) + relu (+ dropout)], the last linear without activation,
/// then cross-entropy over `width` classes. Hidden activations after layers listed in
/// `named` are also graph outputs `h<i>` (so tests can name them as boundaries).
fn mlp(layers: usize, dropout: Option<f64>, named: &[usize]) -> Graph {
    let mut b = GraphBuilder::new();
    let mut x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(WIDTH)]).unwrap();
    let label = b.input("label", DType::I64, &[Dim::sym("batch")]).unwrap();
    let std = (2.0 / WIDTH as f64).sqrt();
    for i in 0..layers {
        let w = b.param(&format!("l{i}/weight"), &normal(&[WIDTH, WIDTH], std, 100 + i as u64), true).unwrap();
        let bias = b.param(&format!("l{i}/bias"), &normal(&[WIDTH], 0.1, 200 + i as u64), true).unwrap();
        x = b.op1("linear", &[x, w, bias], &[]).unwrap();
        if i + 1 == layers {
            break;
        }
        x = b.op1("relu", &[x], &[]).unwrap();
        if let Some(p) = dropout {
            let attrs = [("p", Attr::Float(p)), ("training", Attr::Bool(true)), ("seed", Attr::Int(1000 + i as i64))];
            x = b.op1("dropout", &[x], &attrs).unwrap();
        }
        if named.contains(&i) {
            b.output(&format!("h{i}"), x).unwrap();
        }
    }
    let loss = b.op1("cross_entropy", &[x, label], &[]).unwrap();
    b.output("loss", loss).unwrap();
    b.finish().unwrap()
}

fn batch() -> (Tensor, Tensor) {
    let x = normal(&[BATCH, WIDTH], 1.0, 7);
    let labels: Vec<i64> = (0..BATCH as i64).map(|i| (i * 37) % WIDTH as i64).collect();
    (x, Tensor::from_slice(&labels, &[BATCH]).unwrap())
}

/// Runs the training graph once with memory tracking; returns the loss and every gradient
/// (as bit patterns) and what the run measured.
fn run(train: &Graph, grads: &[(String, ParamGrad)]) -> (Vec<Vec<u32>>, RunStats) {
    let ex = Executor::new(train, ExecOptions { inter_op_threads: 1, ..Default::default() }).unwrap();
    let (x, label) = batch();
    let mut fetches = vec!["loss".to_string()];
    fetches.extend(grads.iter().map(|(_, g)| match g {
        ParamGrad::Dense(n) => n.clone(),
        other => panic!("unexpected {other:?}"),
    }));
    let fetches: Vec<&str> = fetches.iter().map(String::as_str).collect();
    let (outs, stats) = ex
        .run_with(&[("x", &x), ("label", &label)], &fetches, &RunOptions { track_memory: true, ..Default::default() })
        .unwrap();
    let bits = outs
        .iter()
        .map(|t| t.contiguous().unwrap().to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect())
        .collect();
    (bits, stats)
}

fn checkpointed(g: &Graph, how: &Checkpointing) -> (Graph, Vec<(String, ParamGrad)>, CheckpointReport) {
    append_gradients_checkpointed(g, "loss", None, how).unwrap()
}

fn baseline(g: &Graph) -> (Vec<Vec<u32>>, RunStats) {
    let (train, grads) = append_gradients(g, "loss", None).unwrap();
    run(&train, &grads)
}

#[test]
fn sqrt_checkpointing_cuts_peak_activation_bytes_and_keeps_gradients_bitwise() {
    let g = mlp(LAYERS, None, &[]);
    let (base, base_stats) = baseline(&g);
    let (train, grads, report) = checkpointed(&g, &Checkpointing::Sqrt);
    assert_eq!((report.layers, report.segments), (LAYERS, 4), "{report:?}");
    assert!(report.recomputed_nodes > 0);
    let (ck, ck_stats) = run(&train, &grads);
    assert_eq!(base, ck, "loss and gradients must be bitwise equal");
    let (b, c) = (base_stats.peak_intermediate_bytes as f64, ck_stats.peak_intermediate_bytes as f64);
    let unit = (BATCH * WIDTH * 4) as f64;
    println!(
        "peak activation bytes: baseline {b} ({:.1} units of B·d), checkpointed {c} ({:.1} units): -{:.1}%",
        b / unit,
        c / unit,
        100.0 * (1.0 - c / b)
    );
    assert!(c <= 0.6 * b, "peak activation bytes fell only from {b} to {c}");
    assert!(train.to_string().contains("pass checkpoint: 4 segments of 16 layers"), "{}", train);
}

#[test]
fn dropout_inside_segments_is_recomputed_identically() {
    let g = mlp(LAYERS, Some(0.2), &[]);
    let (base, base_stats) = baseline(&g);
    // The mask is really there: without dropout the loss differs.
    let (plain, _) = baseline(&mlp(LAYERS, None, &[]));
    assert_ne!(base[0], plain[0]);
    let (train, grads, report) = checkpointed(&g, &Checkpointing::Sqrt);
    assert_eq!(report.segments, 4);
    assert!(train.count_op("dropout") > g.count_op("dropout"), "dropout nodes are recomputed");
    let (ck, ck_stats) = run(&train, &grads);
    assert_eq!(base, ck, "gradients with dropout inside segments must be bitwise equal");
    assert!(ck_stats.peak_intermediate_bytes < base_stats.peak_intermediate_bytes);
}

#[test]
fn named_boundaries_are_used_and_invalid_ones_are_errors_naming_them() {
    let g = mlp(8, None, &[1, 3, 5]);
    let how = Checkpointing::Boundaries(vec!["h3".into(), "h1".into(), "h5".into()]);
    let (train, grads, report) = checkpointed(&g, &how);
    assert_eq!(report.segments, 4);
    let ids: Vec<_> = ["h1", "h3", "h5"].iter().map(|n| g.output(n).unwrap()).collect();
    assert_eq!(report.boundaries, ids);
    assert_eq!(run(&train, &grads).0, baseline(&g).0);
    // A value id works too.
    let by_id = Checkpointing::Boundaries(vec![format!("%{}", ids[1].0)]);
    assert_eq!(checkpointed(&g, &by_id).2.boundaries, vec![ids[1]]);

    // A residual block: h is read after y, so y is not a cut.
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(8)]).unwrap();
    let label = b.input("label", DType::I64, &[Dim::sym("batch")]).unwrap();
    let w = b.param("w", &normal(&[8, 8], 0.3, 1), true).unwrap();
    let h = b.op1("relu", &[x], &[]).unwrap();
    let y = b.op1("linear", &[h, w], &[]).unwrap();
    let z = b.op1("add", &[y, h], &[]).unwrap();
    let loss = b.op1("cross_entropy", &[z, label], &[]).unwrap();
    b.output("y", y).unwrap();
    b.output("loss", loss).unwrap();
    let res = b.finish().unwrap();
    let err = append_gradients_checkpointed(&res, "loss", None, &Checkpointing::Boundaries(vec!["y".into()]))
        .expect_err("y is not a valid cut");
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(msg.contains("`y`") && msg.contains("not a valid cut") && msg.contains("relu"), "{msg}");
    let err = append_gradients_checkpointed(&res, "loss", None, &Checkpointing::Boundaries(vec!["nope".into()]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("`nope`"), "{err}");
    let err = append_gradients_checkpointed(&res, "loss", None, &Checkpointing::Boundaries(vec!["%999".into()]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("`%999`"), "{err}");
}

#[test]
fn budget_closes_segments_where_the_saved_bytes_reach_it() {
    let g = mlp(LAYERS, None, &[]);
    let sqrt = checkpointed(&g, &Checkpointing::Sqrt).2;
    // Each hidden layer saves one [batch, width] f32 value: its relu output, which both
    // relu's gradient and the next layer's weight gradient read.
    let per_layer = BATCH as u64 * WIDTH as u64 * 4;
    let four = Checkpointing::Budget { bytes: 4 * per_layer, symbol_size: BATCH as u64 };
    let (train, grads, report) = checkpointed(&g, &four);
    // Where √L cuts, and once more after the last linear layer: its output, the logits
    // that cross_entropy's gradient reads, fills the last four-layer budget.
    assert_eq!(report.boundaries[..3], sqrt.boundaries[..], "a budget of four layers cuts where √L does");
    assert_eq!(report.boundaries.len(), 4, "{report:?}");
    assert_eq!(run(&train, &grads).0, baseline(&g).0);
    let two = Checkpointing::Budget { bytes: 2 * per_layer, symbol_size: BATCH as u64 };
    // Sixteen saved outputs (fifteen relu outputs and the logits), two per segment, and the
    // loss alone after the last cut.
    assert_eq!(checkpointed(&g, &two).2.segments, 9);
    let all = Checkpointing::Budget { bytes: u64::MAX, symbol_size: 1 };
    let r = checkpointed(&g, &all).2;
    assert_eq!((r.segments, r.recomputed_nodes), (1, 0), "a budget above the whole model needs no segment");
    let bad = Checkpointing::Budget { bytes: 0, symbol_size: 1 };
    assert!(append_gradients_checkpointed(&g, "loss", None, &bad).is_err());
}

#[test]
fn wrong_forward_node_count_is_an_error() {
    let g = mlp(3, None, &[]);
    let (train, _) = append_gradients(&g, "loss", None).unwrap();
    let err = deepseek::graph::passes::checkpoint(&train, 3, "loss", &Checkpointing::Sqrt).err().unwrap();
    assert!(err.to_string().contains("forward_nodes"), "{err}");
}

/// Eager parameters of an `n`-layer MLP (weights, biases), leaves requiring grad.
fn eager_params(n: usize) -> Vec<(Tensor, Tensor)> {
    let std = (2.0 / WIDTH as f64).sqrt();
    (0..n)
        .map(|i| {
            let w = normal(&[WIDTH, WIDTH], std, 100 + i as u64);
            let b = normal(&[WIDTH], 0.1, 200 + i as u64);
            w.set_requires_grad(true);
            b.set_requires_grad(true);
            (w, b)
        })
        .collect()
}

/// The eager layers: linear + relu + dropout (mask seed drawn from the generator).
fn eager_layers(params: &[(Tensor, Tensor)], p: f64) -> Vec<SequentialFn> {
    params
        .iter()
        .map(|(w, b)| {
            let (w, b) = (w.clone(), b.clone());
            let f: SequentialFn = Arc::new(move |x: &Tensor, rng: &mut Generator| {
                x.linear(&w, Some(&b))?.relu()?.dropout(p, true, rng.next_u64() >> 1)
            });
            f
        })
        .collect()
}

/// Forward + backward of the eager MLP; returns the gradients' bit patterns.
fn eager_grads(segments: Option<(usize, CheckpointOptions)>) -> Vec<Vec<u32>> {
    let params = eager_params(LAYERS);
    let layers = eager_layers(&params, 0.2);
    let (x, label) = batch();
    let mut rng = Generator::new(5);
    let out = match segments {
        None => layers.iter().try_fold(x, |h, f| f(&h, &mut rng)).unwrap(),
        Some((k, opts)) => checkpoint_sequential(&layers, k, &x, &mut rng, opts).unwrap(),
    };
    out.cross_entropy(&label).unwrap().backward().unwrap();
    params
        .iter()
        .flat_map(|(w, b)| [w, b])
        .map(|t| t.grad().unwrap().expect("a gradient").to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn eager_checkpoint_sequential_replays_dropout_and_detects_a_missing_rng_restore() {
    let base = eager_grads(None);
    let ck = eager_grads(Some((4, CheckpointOptions::default())));
    assert_eq!(base, ck, "eager checkpointed gradients with dropout must be bitwise equal");
    let no_restore = eager_grads(Some((4, CheckpointOptions { preserve_rng_state: false })));
    let differing = base.iter().zip(&no_restore).filter(|(a, b)| a != b).count();
    assert!(differing > 0, "without the RNG restore the recomputed masks differ, and so do the gradients");
}

#[test]
fn eager_checkpoint_keeps_no_intermediates_and_reaches_captured_parameters() {
    // The input does not require grad: the parameter inside still gets its gradient
    // (what the non-reentrant variant adds over the reentrant one).
    let w = normal(&[4, 4], 0.5, 3);
    w.set_requires_grad(true);
    let x = normal(&[2, 4], 1.0, 4);
    let wc = w.clone();
    let f = move |ins: &[Tensor], _: &mut Generator| Ok(vec![ins[0].matmul(&wc)?.tanh()?.sum(&[], false)?]);
    let y = checkpoint(f, std::slice::from_ref(&x), &mut Generator::new(0), CheckpointOptions::default())
        .unwrap()
        .remove(0);
    y.backward().unwrap();
    let got = w.grad().unwrap().unwrap().to_vec::<f32>().unwrap();
    let w2 = w.detach();
    w2.set_requires_grad(true);
    x.matmul(&w2).unwrap().tanh().unwrap().sum(&[], false).unwrap().backward().unwrap();
    assert_eq!(got, w2.grad().unwrap().unwrap().to_vec::<f32>().unwrap());
    // A second backward without retain_graph is refused with a message.
    let err = y.backward().unwrap_err();
    assert!(err.to_string().contains("second time"), "{err}");
    // A function that records different ops when re-run is caught.
    let flip = std::sync::atomic::AtomicBool::new(false);
    let odd = move |ins: &[Tensor], _: &mut Generator| {
        let h = ins[0].tanh()?;
        let h = if flip.fetch_xor(true, std::sync::atomic::Ordering::Relaxed) { h.exp()? } else { h };
        Ok(vec![h.sum(&[], false)?])
    };
    let v = normal(&[3], 1.0, 9);
    v.set_requires_grad(true);
    let y = checkpoint(odd, &[v], &mut Generator::new(0), CheckpointOptions::default()).unwrap().remove(0);
    let err = y.backward().unwrap_err();
    assert!(err.to_string().contains("different ops"), "{err}");
    assert!(checkpoint_sequential(&[], 1, &x, &mut Generator::new(0), CheckpointOptions::default()).is_err());
}

#[test]
fn trainer_reports_memory_by_category_and_checkpoints_when_asked() {
    use deepseek::train::trainer::{Trainer, TrainerOptions};
    let g = mlp(8, None, &[]);
    let (x, label) = batch();
    let feeds = [("x", &x), ("label", &label)];
    let make = |how: Checkpointing| {
        let exec = ExecOptions { inter_op_threads: 1, ..Default::default() };
        Trainer::new(&g, "loss", TrainerOptions { checkpointing: how, exec, ..Default::default() }).unwrap()
    };
    let (mut plain, mut ck) = (make(Checkpointing::None), make(Checkpointing::Sqrt));
    let params = 8 * (WIDTH * WIDTH + WIDTH) as u64 * 4;
    let before = plain.memory_stats();
    assert_eq!((before.parameters, before.optimizer_state, before.activations_peak), (params, 0, 0));
    for _ in 0..2 {
        assert_eq!(plain.step(&feeds).unwrap().to_bits(), ck.step(&feeds).unwrap().to_bits());
    }
    let (a, b) = (plain.memory_stats(), ck.memory_stats());
    assert_eq!((a.parameters, a.parameters_peak), (params, params));
    assert_eq!(a.optimizer_state, 2 * params + 8 * 16, "Adam: two moments per parameter, an i64 step per tensor");
    assert_eq!((a.activations, a.gradients, a.workspace), (0, 0, 0), "a finished step holds none");
    assert!(a.gradients_peak >= params, "{a:?}");
    assert!(b.activations_peak * 4 <= a.activations_peak * 3, "a quarter less at least: {a:?} vs {b:?}");
    assert!(a.allocator_peak >= a.allocator_in_use && a.allocator_in_use > 0);
    plain.reset_peak_memory();
    let r = plain.memory_stats();
    assert_eq!((r.activations_peak, r.gradients_peak, r.workspace_peak, r.parameters_peak), (0, 0, 0, params));
    plain.step(&feeds).unwrap();
    assert_eq!(plain.memory_stats().activations_peak, a.activations_peak, "the same step peaks the same again");

    let bad = TrainerOptions { checkpointing: Checkpointing::Boundaries(vec!["h99".into()]), ..Default::default() };
    let err = Trainer::new(&g, "loss", bad).err().expect("an unknown boundary");
    assert!(err.to_string().contains("`h99`"), "{err}");
}

#[test]
fn eager_recomputation_runs_under_the_autocast_state_of_the_forward() {
    // Forward under bf16 autocast, backward outside any scope: the recomputation must cast
    // as the forward did (else it records other ops and is refused), and the gradient must
    // equal the uncheckpointed autocast run bit for bit.
    let w = normal(&[8, 8], 0.5, 5);
    w.set_requires_grad(true);
    let x = normal(&[4, 8], 1.0, 6);
    let wc = w.clone();
    let f = move |ins: &[Tensor], _: &mut Generator| Ok(vec![ins[0].matmul(&wc)?.tanh()?.sum(&[], false)?]);
    let y = {
        let _bf16 = deepseek::amp::autocast(DType::BF16).unwrap();
        checkpoint(f, std::slice::from_ref(&x), &mut Generator::new(0), CheckpointOptions::default()).unwrap().remove(0)
    };
    y.backward().unwrap();
    let got = w.grad().unwrap().unwrap();
    assert_eq!(got.dtype(), DType::F32);
    let w2 = w.detach();
    w2.set_requires_grad(true);
    {
        let _bf16 = deepseek::amp::autocast(DType::BF16).unwrap();
        x.matmul(&w2).unwrap().tanh().unwrap().sum(&[], false).unwrap()
    }
    .backward()
    .unwrap();
    assert_eq!(got.to_vec::<f32>().unwrap(), w2.grad().unwrap().unwrap().to_vec::<f32>().unwrap());
}
