//! Ready-made models: each builds, runs through an Executor at a symbolic batch, has the documented inputs, outputs and parameter names, and a loss gradient for every parameter (row gradients for embedding tables).

use deepseek::exec::{ExecOptions, Executor};
use deepseek::graph::{Graph, ParamGrad, append_gradients};
use deepseek::nn::{
    CrossStructure, CtrModelConfig, MlpClassifierConfig, dcn_v2, deepfm, logistic_regression, mlp_classifier,
    model_by_name,
};
use deepseek::ops::Attr;
use deepseek::{DType, Device, Generator, Tensor};

fn small() -> CtrModelConfig {
    CtrModelConfig {
        num_dense: 3,
        vocab_sizes: vec![5, 7, 4],
        embed_dim: 4,
        cross_layers: 2,
        cross_rank: 0,
        mlp: vec![8, 6],
        structure: CrossStructure::Parallel,
        seed: 1,
    }
}

fn ctr_feeds(cfg: &CtrModelConfig, batch: usize) -> Vec<(&'static str, Tensor)> {
    let mut rng = Generator::new(3);
    let dense = Tensor::rand_normal(&[batch, cfg.num_dense], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let f = cfg.vocab_sizes.len();
    let ids: Vec<i64> = (0..batch * f).map(|i| (rng.next_u64() % cfg.vocab_sizes[i % f] as u64) as i64).collect();
    let label: Vec<f32> = (0..batch).map(|i| (i % 2) as f32).collect();
    vec![
        ("dense", dense),
        ("ids", Tensor::from_slice(&ids, &[batch, f]).unwrap()),
        ("label", Tensor::from_slice(&label, &[batch]).unwrap()),
    ]
}

/// Runs the model with its gradients at batch sizes 5 and 2: finite loss, output shapes, and a
/// non-zero gradient output for every trainable parameter. Returns the parameter names.
fn check_trains(g: &Graph, feeds: &[(&'static str, Tensor)], outputs: &[(&str, &[usize])]) -> Vec<String> {
    let (full, grads) = append_gradients(g, "loss", None).unwrap();
    let trainable: Vec<String> = g.params().iter().filter(|p| p.3).map(|p| p.0.to_string()).collect();
    let grad_of: Vec<&String> = grads.iter().map(|(n, _)| n).collect();
    assert_eq!(grad_of, trainable.iter().collect::<Vec<_>>(), "a gradient for every trainable parameter");
    let ex = Executor::new(&full, ExecOptions::default()).unwrap();
    let f: Vec<(&str, &Tensor)> = feeds.iter().map(|(n, t)| (*n, t)).collect();
    let mut fetch: Vec<String> = vec!["loss".into()];
    fetch.extend(outputs.iter().map(|(n, _)| n.to_string()));
    for (_, pg) in &grads {
        match pg {
            ParamGrad::Dense(n) => fetch.push(n.clone()),
            ParamGrad::Rows { rows, .. } => fetch.push(rows.clone()),
        }
    }
    let fetch_refs: Vec<&str> = fetch.iter().map(String::as_str).collect();
    let out = ex.run(&f, &fetch_refs).unwrap();
    let loss = out[0].item().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    for (k, (name, shape)) in outputs.iter().enumerate() {
        assert_eq!(out[1 + k].shape(), *shape, "{name}");
    }
    for ((pname, _), t) in grads.iter().zip(&out[1 + outputs.len()..]) {
        let v = t.contiguous().unwrap().cast(DType::F64).unwrap().to_vec::<f64>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{pname}");
        assert!(v.iter().any(|&x| x != 0.0), "{pname} has an all-zero gradient");
    }
    trainable
}

fn emb_names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|f| format!("{prefix}/{f}/weight")).collect()
}

#[test]
fn mlp_classifier_gmix_shape_trains_with_documented_names() {
    let g = mlp_classifier(&MlpClassifierConfig::default()).unwrap();
    let x = Tensor::rand_normal(&[5, 32], 0.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(1)).unwrap();
    let label = Tensor::from_slice(&[0i64, 7, 3, 3, 1], &[5]).unwrap();
    let names = check_trains(&g, &[("x", x), ("label", label)], &[("logits", &[5, 8])]);
    let want: Vec<String> = (0..3).flat_map(|i| [format!("mlp/{i}/weight"), format!("mlp/{i}/bias")]).collect();
    assert_eq!(names, want);
    let w0 = g.params()[0].2.contiguous().unwrap().to_vec::<f32>().unwrap();
    let var = w0.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w0.len() as f64;
    assert!((var / (2.0 / 32.0) - 1.0).abs() < 0.05, "He-normal: variance 2/32, got {var}");
    assert_eq!(g.params()[4].2.shape(), &[8, 256]);
}

#[test]
fn dcn_v2_parallel_and_stacked_train_with_row_gradients_for_tables() {
    for (structure, rank) in [(CrossStructure::Parallel, 0), (CrossStructure::Stacked, 3)] {
        let cfg = CtrModelConfig { structure, cross_rank: rank, ..small() };
        let g = dcn_v2(&cfg).unwrap();
        let names = check_trains(&g, &ctr_feeds(&cfg, 5), &[("logit", &[5]), ("prob", &[5])]);
        let mut want = emb_names("emb", 3);
        for l in 0..2 {
            let ws: &[&str] = if rank == 0 { &["bias", "weight"] } else { &["bias", "v", "u"] };
            want.extend(ws.iter().map(|w| format!("cross/{l}/{w}")));
        }
        for i in 0..2 {
            want.extend([format!("deep/{i}/weight"), format!("deep/{i}/bias")]);
        }
        want.extend(["head/weight".to_string(), "head/bias".to_string()]);
        assert_eq!(names, want, "{structure:?}");
        let (_, grads) = append_gradients(&g, "loss", None).unwrap();
        for (n, pg) in grads {
            assert_eq!(n.starts_with("emb/"), matches!(pg, ParamGrad::Rows { .. }), "{n}: {pg:?}");
        }
        // Head input width: parallel = d + 6 with d = 3 + 3·4; stacked = 6.
        let head = g.params().into_iter().find(|p| p.0 == "head/weight").unwrap().2.shape().to_vec();
        assert_eq!(head, if structure == CrossStructure::Parallel { vec![1, 21] } else { vec![1, 6] });
        // The symbolic batch: a second batch size runs through the same graph.
        check_trains(&g, &ctr_feeds(&cfg, 2), &[("logit", &[2])]);
    }
}

#[test]
fn deepfm_and_logistic_regression_train_with_documented_names() {
    let cfg = small();
    let g = deepfm(&cfg).unwrap();
    let names = check_trains(&g, &ctr_feeds(&cfg, 4), &[("logit", &[4]), ("prob", &[4])]);
    let mut want = emb_names("emb", 3);
    want.extend(["dense_emb/weight".into(), "first/dense/weight".into(), "first/dense/bias".into()]);
    want.extend(emb_names("first", 3));
    want.extend(
        ["deep/0/weight", "deep/0/bias", "deep/1/weight", "deep/1/bias", "head/weight", "head/bias"].map(String::from),
    );
    assert_eq!(names, want);
    let g = logistic_regression(&cfg).unwrap();
    let names = check_trains(&g, &ctr_feeds(&cfg, 4), &[("logit", &[4]), ("prob", &[4])]);
    let mut want = vec!["first/dense/weight".to_string(), "first/dense/bias".to_string()];
    want.extend(emb_names("first", 3));
    assert_eq!(names, want);
}

#[test]
fn prob_is_the_sigmoid_of_logit_and_loss_the_mean_bce() {
    let cfg = small();
    let g = dcn_v2(&cfg).unwrap();
    let feeds = ctr_feeds(&cfg, 6);
    let f: Vec<(&str, &Tensor)> = feeds.iter().map(|(n, t)| (*n, t)).collect();
    let out = Executor::new(&g, ExecOptions::default()).unwrap().run(&f, &["logit", "prob", "loss"]).unwrap();
    let (z, p) = (out[0].to_vec::<f32>().unwrap(), out[1].to_vec::<f32>().unwrap());
    let y = feeds[2].1.to_vec::<f32>().unwrap();
    let mut want = 0.0f64;
    for i in 0..6 {
        let zi = z[i] as f64;
        assert!((p[i] as f64 - 1.0 / (1.0 + (-zi).exp())).abs() < 1e-6);
        want += zi.max(0.0) - zi * y[i] as f64 + (-zi.abs()).exp().ln_1p();
    }
    assert!((out[2].item().unwrap() - want / 6.0).abs() < 1e-5);
}

#[test]
fn model_by_name_matches_the_config_builders_and_rejects_bad_input() {
    let attrs = [
        ("num_dense", Attr::Int(3)),
        ("vocab_sizes", Attr::Ints(vec![5, 7, 4])),
        ("embed_dim", Attr::Int(4)),
        ("cross_layers", Attr::Int(2)),
        ("mlp", Attr::Ints(vec![8, 6])),
        ("seed", Attr::Int(1)),
    ];
    let by_name = model_by_name("dcn_v2", &attrs).unwrap();
    let direct = dcn_v2(&small()).unwrap();
    let pv = |g: &Graph| -> Vec<(String, Vec<f32>)> {
        g.params().iter().map(|p| (p.0.to_string(), p.2.contiguous().unwrap().to_vec::<f32>().unwrap())).collect()
    };
    assert_eq!(pv(&by_name), pv(&direct), "same names, same seeded values");
    let mlp = model_by_name("ctr_mlp", &attrs).unwrap();
    let names: Vec<String> = mlp.params().iter().map(|p| p.0.to_string()).collect();
    assert!(
        names.iter().all(|n| n.starts_with("emb/") || n.starts_with("deep/") || n.starts_with("head/")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("deep/")) && !names.iter().any(|n| n.starts_with("cross/")));
    let m = model_by_name(
        "mlp_classifier",
        &[("inputs", Attr::Int(4)), ("hidden", Attr::Ints(vec![3])), ("classes", Attr::Int(2))],
    )
    .unwrap();
    assert_eq!(m.params().len(), 4);
    let err = |name: &str, attrs: &[(&str, Attr)]| model_by_name(name, attrs).unwrap_err().to_string();
    let e = err("dcn", &[]);
    assert!(e.contains("no model named `dcn`") && e.contains("dcn_v2"), "{e}");
    let e = err("dcn_v2", &[("embed_dim", Attr::Str("16".into()))]);
    assert!(e.contains("`embed_dim` must be int, given string"), "{e}");
    let e = err("deepfm", &[("vocab_sizes", Attr::Ints(vec![5, 0]))]);
    assert!(e.contains("`vocab_sizes[1]` must be at least 1, given 0"), "{e}");
    let e = err("dcn_v2", &[("vocab_sizes", Attr::Ints(vec![5])), ("mlp", Attr::Ints(vec![]))]);
    assert!(e.contains("`mlp` must not be empty"), "{e}");
    let e = err("dcn_v2", &[("vocab_sizes", Attr::Ints(vec![5])), ("structure", Attr::Str("serial".into()))]);
    assert!(e.contains("`structure` must be \"parallel\" or \"stacked\""), "{e}");
    let e = err("mlp_classifier", &[("hidden", Attr::Ints(vec![-3]))]);
    assert!(e.contains("`hidden[0]` must be >= 0, given -3"), "{e}");
}

#[test]
fn ids_outside_a_fields_vocabulary_are_an_error_not_a_read() {
    let cfg = small();
    let g = dcn_v2(&cfg).unwrap();
    let mut feeds = ctr_feeds(&cfg, 2);
    feeds[1].1 = Tensor::from_slice(&[0i64, 6, 3, 1, 7, 0], &[2, 3]).unwrap(); // 7 >= vocab 7 of field 1
    let f: Vec<(&str, &Tensor)> = feeds.iter().map(|(n, t)| (*n, t)).collect();
    let e = Executor::new(&g, ExecOptions::default()).unwrap().run(&f, &["loss"]).unwrap_err().to_string();
    assert!(e.contains("indices") && e.contains('7'), "{e}");
}
