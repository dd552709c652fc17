//! Layers: FM fast form = naive pair sum; cross network forward = hand loop and gradients = f64 finite differences (full and low rank); EmbeddingBag forward and row gradient = gather/scatter references, bitwise; the registry, attributes and errors.

use deepseek::exec::{ExecOptions, Executor};
use deepseek::graph::{Dim, Graph, GraphBuilder, ParamGrad, ValueId, append_gradients};
use deepseek::nn::{self, LayerCtx, add_layer, find_layer, layer_names};
use deepseek::ops::Attr;
use deepseek::{DType, Device, Generator, Tensor};

fn normal64(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn run(g: &Graph, feeds: &[(&str, &Tensor)], fetches: &[&str]) -> Vec<Tensor> {
    Executor::new(g, ExecOptions { opt_level: 0, ..Default::default() }).unwrap().run(feeds, fetches).unwrap()
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.contiguous().unwrap().to_vec::<f64>().unwrap()
}

fn v32(t: &Tensor) -> Vec<f32> {
    t.contiguous().unwrap().to_vec::<f32>().unwrap()
}

/// Adds `loss = sum(out ⊙ r)` for a constant r of out's (concrete) shape; returns the graph with gradients.
fn with_loss(mut b: GraphBuilder, out: ValueId, r: &Tensor) -> (Graph, Vec<(String, ParamGrad)>) {
    let rc = b.constant(r).unwrap();
    let prod = b.op1("mul", &[out, rc], &[]).unwrap();
    let loss = b.op1("sum", &[prod], &[]).unwrap();
    b.output("out", out).unwrap();
    b.output("loss", loss).unwrap();
    let g = b.finish().unwrap();
    append_gradients(&g, "loss", None).unwrap()
}

#[test]
fn fm_fast_formula_equals_naive_pair_sum() {
    let (bs, f, k) = (3, 6, 5);
    let mut b = GraphBuilder::new();
    let v = b.input("v", DType::F64, &[Dim::sym("batch"), Dim::Fixed(f), Dim::Fixed(k)]).unwrap();
    let first = b.input("first", DType::F64, &[Dim::sym("batch"), Dim::Fixed(4)]).unwrap();
    let mut rng = Generator::new(1);
    let pair = nn::fm(&mut LayerCtx::new(&mut b, "fm", &mut rng), v, None).unwrap();
    let both = nn::fm(&mut LayerCtx::new(&mut b, "fm2", &mut rng), v, Some(first)).unwrap();
    b.output("pair", pair).unwrap();
    b.output("both", both).unwrap();
    let g = b.finish().unwrap();
    assert!(g.params().is_empty(), "fm has no parameters");
    let (vt, ft) = (normal64(&[bs, f, k], 2), normal64(&[bs, 4], 3));
    let out = run(&g, &[("v", &vt), ("first", &ft)], &["pair", "both"]);
    assert_eq!(out[0].shape(), &[bs]);
    let (vs, fs) = (v64(&vt), v64(&ft));
    for s in 0..bs {
        let mut naive = 0.0;
        for a in 0..f {
            for c in a + 1..f {
                naive += (0..k).map(|j| vs[(s * f + a) * k + j] * vs[(s * f + c) * k + j]).sum::<f64>();
            }
        }
        let lin: f64 = fs[s * 4..s * 4 + 4].iter().sum();
        for (got, want) in [(v64(&out[0])[s], naive), (v64(&out[1])[s], naive + lin)] {
            assert!((got - want).abs() <= 1e-6 * want.abs().max(1e-300), "sample {s}: {got} vs {want}");
        }
    }
}

/// Cross network of `layers` layers at `rank`: forward against a hand loop, every parameter
/// gradient against central differences in f64.
fn check_cross(rank: usize) {
    let (bs, d, layers) = (3, 5, 2);
    let mut b = GraphBuilder::new();
    let x0 = b.input("x0", DType::F64, &[Dim::Fixed(bs), Dim::Fixed(d)]).unwrap();
    let mut rng = Generator::new(7);
    let out = nn::cross_net(&mut LayerCtx::new(&mut b, "cross", &mut rng), x0, layers, rank).unwrap();
    let r = normal64(&[bs, d], 11);
    let (g, grads) = with_loss(b, out, &r);
    let mut names: Vec<&str> = g.params().iter().map(|p| p.0).collect();
    names.sort();
    let want: Vec<String> = (0..layers)
        .flat_map(|l| {
            if rank == 0 { vec!["bias", "weight"] } else { vec!["bias", "u", "v"] }
                .into_iter()
                .map(move |n| format!("cross/{l}/{n}"))
        })
        .collect();
    assert_eq!(names, want);
    // Biases start at zero; give them values so the check covers them.
    let mut params: Vec<(String, Tensor)> =
        g.params().iter().enumerate().map(|(i, p)| (p.0.to_string(), normal64(p.2.shape(), 100 + i as u64))).collect();
    let x = normal64(&[bs, d], 5);
    let feeds = |ps: &[(String, Tensor)]| -> Vec<Tensor> {
        let mut f: Vec<(&str, &Tensor)> = vec![("x0", &x)];
        f.extend(ps.iter().map(|(n, t)| (n.as_str(), t)));
        run(&g, &f, &["out", "loss"])
    };
    // Hand loop: x_{l+1}[i] = x0[i]·(Σ_j W[i][j] x_l[j] + b[i]) + x_l[i], W = u·v at low rank.
    let get = |n: &str| v64(&params.iter().find(|p| p.0 == n).unwrap().1);
    let xs = v64(&x);
    let mut want_out = vec![0.0; bs * d];
    for s in 0..bs {
        let x0s = &xs[s * d..(s + 1) * d];
        let mut xl = x0s.to_vec();
        for l in 0..layers {
            let w: Vec<f64> = if rank == 0 {
                get(&format!("cross/{l}/weight"))
            } else {
                let (u, v) = (get(&format!("cross/{l}/u")), get(&format!("cross/{l}/v")));
                (0..d * d).map(|ij| (0..rank).map(|q| u[(ij / d) * rank + q] * v[q * d + ij % d]).sum()).collect()
            };
            let bias = get(&format!("cross/{l}/bias"));
            xl = (0..d)
                .map(|i| x0s[i] * ((0..d).map(|j| w[i * d + j] * xl[j]).sum::<f64>() + bias[i]) + xl[i])
                .collect();
        }
        want_out[s * d..(s + 1) * d].copy_from_slice(&xl);
    }
    let base = feeds(&params);
    for (a, w) in v64(&base[0]).iter().zip(&want_out) {
        assert!((a - w).abs() <= 1e-12 * w.abs().max(1.0), "rank {rank}: forward {a} vs {w}");
    }
    let grad_names: Vec<String> = grads
        .iter()
        .map(|(_, pg)| match pg {
            ParamGrad::Dense(n) => n.clone(),
            other => panic!("dense gradients expected, got {other:?}"),
        })
        .collect();
    let mut f: Vec<(&str, &Tensor)> = vec![("x0", &x)];
    f.extend(params.iter().map(|(n, t)| (n.as_str(), t)));
    let fetch: Vec<&str> = grad_names.iter().map(String::as_str).collect();
    let analytic = run(&g, &f, &fetch);
    let eps = 1e-6;
    for (pi, ((pname, _), an)) in grads.iter().zip(&analytic).enumerate() {
        let idx = params.iter().position(|p| &p.0 == pname).unwrap();
        let orig = v64(&params[idx].1);
        let an = v64(an);
        for e in 0..orig.len() {
            let mut at = |delta: f64| {
                let mut p = orig.clone();
                p[e] += delta;
                params[idx].1 = Tensor::from_slice(&p, params[idx].1.shape()).unwrap();
                v64(&feeds(&params)[1])[0]
            };
            let num = (at(eps) - at(-eps)) / (2.0 * eps);
            params[idx].1 = Tensor::from_slice(&orig, params[idx].1.shape()).unwrap();
            assert!(
                (num - an[e]).abs() <= 1e-6 * num.abs().max(1.0),
                "rank {rank} {pname}[{e}] (#{pi}): {} vs {num}",
                an[e]
            );
        }
    }
}

#[test]
fn cross_net_full_rank_forward_and_gradients() {
    check_cross(0);
}

#[test]
fn cross_net_low_rank_forward_and_gradients() {
    check_cross(2);
}

/// EmbeddingBag layer: forward = gather + reduce in index order, and the table's row gradient
/// scattered densely = the per-position reference, bitwise, for each mode.
#[test]
fn embedding_bag_forward_and_row_gradient_bitwise() {
    let (num, dim) = (7usize, 3usize);
    let idx: Vec<i64> = vec![2, 5, 2, 0, 6, 6, 1, 3];
    let offs: Vec<i64> = vec![0, 3, 3, 6];
    let psw: Vec<f32> = vec![0.5, -1.25, 2.0, 1.5, 0.75, -0.5, 3.0, 0.25];
    let nb = offs.len();
    for (mode, weighted) in [("sum", false), ("sum", true), ("mean", false), ("max", false)] {
        let mut b = GraphBuilder::new();
        let i = b.input("indices", DType::I64, &[Dim::sym("n")]).unwrap();
        let o = b.input("offsets", DType::I64, &[Dim::Fixed(nb)]).unwrap();
        let mut ins = vec![i, o];
        if weighted {
            ins.push(b.input("psw", DType::F32, &[Dim::sym("n")]).unwrap());
        }
        let attrs = [("num", Attr::Int(num as i64)), ("dim", Attr::Int(dim as i64)), ("mode", Attr::Str(mode.into()))];
        let out = add_layer(&mut b, "embedding_bag", "bag", &ins, &attrs, &mut Generator::new(3)).unwrap()[0];
        let r = Tensor::rand_normal(&[nb, dim], 0.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(4)).unwrap();
        let (g, grads) = with_loss(b, out, &r);
        assert_eq!(
            grads,
            vec![(
                "bag/weight".to_string(),
                ParamGrad::Rows { indices: "grad/bag/weight/indices".into(), rows: "grad/bag/weight/rows".into() }
            )]
        );
        let table = v32(g.params()[0].2);
        let (it, ot, pt) = (
            Tensor::from_slice(&idx, &[idx.len()]).unwrap(),
            Tensor::from_slice(&offs, &[nb]).unwrap(),
            Tensor::from_slice(&psw, &[psw.len()]).unwrap(),
        );
        let mut feeds: Vec<(&str, &Tensor)> = vec![("indices", &it), ("offsets", &ot)];
        if weighted {
            feeds.push(("psw", &pt));
        }
        let res = run(&g, &feeds, &["out", "grad/bag/weight/indices", "grad/bag/weight/rows"]);
        let rs = v32(&r);
        let mut fwd = vec![0f32; nb * dim];
        let mut dense_ref = vec![0f32; num * dim];
        for bag in 0..nb {
            let (s, e) = (offs[bag] as usize, if bag + 1 < nb { offs[bag + 1] as usize } else { idx.len() });
            for j in 0..dim {
                let col = |p: usize| table[idx[p] as usize * dim + j];
                let mut acc = 0f32;
                match mode {
                    "max" if e > s => {
                        let best = (s..e).fold(s, |bp, p| if col(p) > col(bp) { p } else { bp });
                        acc = col(best);
                        dense_ref[idx[best] as usize * dim + j] += rs[bag * dim + j];
                    }
                    "max" => {}
                    _ => {
                        for p in s..e {
                            let c = if weighted { psw[p] } else { 1.0 };
                            acc = if weighted { acc + c * col(p) } else { acc + col(p) };
                            let gv = rs[bag * dim + j];
                            let gp = if mode == "mean" {
                                gv / (e - s) as f32
                            } else if weighted {
                                c * gv
                            } else {
                                gv
                            };
                            dense_ref[idx[p] as usize * dim + j] += gp;
                        }
                        if mode == "mean" && e > s {
                            acc /= (e - s) as f32;
                        }
                    }
                }
                fwd[bag * dim + j] = acc;
            }
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&v32(&res[0])), bits(&fwd), "{mode} weighted={weighted}: forward");
        let (gi, gr) = (res[1].contiguous().unwrap().to_vec::<i64>().unwrap(), v32(&res[2]));
        assert_eq!(gi, idx, "one gradient row per index position");
        let mut dense = vec![0f32; num * dim];
        for (p, &row) in gi.iter().enumerate() {
            for j in 0..dim {
                dense[row as usize * dim + j] += gr[p * dim + j];
            }
        }
        assert_eq!(bits(&dense), bits(&dense_ref), "{mode} weighted={weighted}: row gradient");
    }
}

#[test]
fn embedding_hashing_takes_ids_modulo_num_and_plain_lookup_rejects_out_of_range() {
    let mut b = GraphBuilder::new();
    let ids = b.input("ids", DType::I64, &[Dim::sym("batch")]).unwrap();
    let attrs = |h: bool| [("num", Attr::Int(5)), ("dim", Attr::Int(2)), ("hashing", Attr::Bool(h))];
    let hashed = add_layer(&mut b, "embedding", "h", &[ids], &attrs(true), &mut Generator::new(1)).unwrap()[0];
    let plain = add_layer(&mut b, "embedding", "p", &[ids], &attrs(false), &mut Generator::new(1)).unwrap()[0];
    b.output("hashed", hashed).unwrap();
    b.output("plain", plain).unwrap();
    let g = b.finish().unwrap();
    let table = v32(g.params()[0].2);
    let raw: Vec<i64> = vec![0, 4, 5, 13, -1, -7, i64::MAX];
    let t = Tensor::from_slice(&raw, &[raw.len()]).unwrap();
    let out = v32(&run(&g, &[("ids", &t)], &["hashed"])[0]);
    for (k, &id) in raw.iter().enumerate() {
        let row = id.rem_euclid(5) as usize;
        assert_eq!(&out[k * 2..k * 2 + 2], &table[row * 2..row * 2 + 2], "id {id}");
    }
    let err = Executor::new(&g, ExecOptions::default()).unwrap().run(&[("ids", &t)], &["plain"]).unwrap_err();
    assert!(err.to_string().contains("indices"), "{err}");
}

#[test]
fn registry_lists_every_layer_and_bad_input_is_a_clear_error() {
    let names: Vec<&str> = layer_names().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for n in [
        "linear",
        "mlp",
        "embedding",
        "embedding_bag",
        "cross_net",
        "fm",
        "layer_norm",
        "batch_norm",
        "dropout",
        "conv2d",
        "max_pool2d",
        "avg_pool2d",
    ] {
        assert!(find_layer(n).is_some(), "{n}");
    }
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(4)]).unwrap();
    let before = b.graph().nodes().len();
    let mut rng = Generator::new(0);
    let mut err = |name: &str, prefix: &str, ins: &[ValueId], attrs: &[(&str, Attr)]| {
        add_layer(&mut b, name, prefix, ins, attrs, &mut rng).unwrap_err().to_string()
    };
    let e = err("lenear", "a", &[x], &[]);
    assert!(e.contains("no layer named `lenear`") && e.contains("linear"), "{e}");
    let e = err("linear", "a", &[x], &[("out_features", Attr::Float(3.0))]);
    assert!(e.contains("`out_features` must be int, given float"), "{e}");
    let e = err("linear", "a", &[x], &[("out_featurs", Attr::Int(3))]);
    assert!(e.contains("unknown attribute `out_featurs`"), "{e}");
    let e = err("linear", "a", &[x], &[]);
    assert!(e.contains("missing required attribute `out_features`"), "{e}");
    let e = err("mlp", "m", &[x], &[("widths", Attr::Ints(vec![8, 0]))]);
    assert!(e.contains("`widths[1]` must be at least 1, given 0"), "{e}");
    let e = err("mlp", "m", &[x], &[("widths", Attr::Ints(vec![8])), ("activation", Attr::Str("swish".into()))]);
    assert!(e.contains("`activation` must be") && e.contains("swish"), "{e}");
    let e = err("linear", "a", &[x, x], &[("out_features", Attr::Int(2))]);
    assert!(e.contains("takes 1 inputs (x), given 2"), "{e}");
    let e = err("linear", "", &[x], &[("out_features", Attr::Int(2))]);
    assert!(e.contains("non-empty parameter prefix"), "{e}");
    let e = err("embedding", "e", &[x], &[("num", Attr::Int(3)), ("dim", Attr::Int(2))]);
    assert!(e.contains("`ids` must hold i32 or i64 ids, given f32"), "{e}");
    let e = err("cross_net", "c", &[x], &[("rank", Attr::Int(9))]);
    assert!(e.contains("`rank` must be in [0, d = 4], given 9"), "{e}");
    // Part of an MLP fails late (the second layer's norm): nothing of it stays.
    let e = err("mlp", "m", &[x], &[("widths", Attr::Ints(vec![8, 2])), ("norm", Attr::Str("group_norm".into()))]);
    assert!(e.contains("`norm` must be"), "{e}");
    assert_eq!(b.graph().nodes().len(), before, "failed layers leave the builder unchanged");
    add_layer(&mut b, "linear", "a", &[x], &[("out_features", Attr::Int(2))], &mut rng).unwrap();
    let e = add_layer(&mut b, "linear", "a", &[x], &[("out_features", Attr::Int(2))], &mut rng).unwrap_err();
    assert!(e.to_string().contains("already has a parameter or input named `a/weight`"), "{e}");
}

#[test]
fn initialisation_follows_each_layers_documentation() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(400)]).unwrap();
    let mut rng = Generator::new(9);
    let ku = [("out_features", Attr::Int(300))];
    add_layer(&mut b, "linear", "ku", &[x], &ku, &mut rng).unwrap();
    let he = [("out_features", Attr::Int(300)), ("init", Attr::Str("he_normal".into()))];
    add_layer(&mut b, "linear", "he", &[x], &he, &mut rng).unwrap();
    let g = b.graph();
    let p = |n: &str| v32(g.params().iter().find(|p| p.0 == n).unwrap().2);
    let bound = 1.0 / 400f32.sqrt();
    let w = p("ku/weight");
    assert!(w.iter().all(|v| v.abs() <= bound), "U(±1/√in)");
    assert!(w.iter().any(|v| v.abs() > 0.9 * bound), "fills the range");
    assert!(p("ku/bias").iter().all(|&v| v == 0.0) && p("he/bias").iter().all(|&v| v == 0.0));
    let h = p("he/weight");
    let var = h.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / h.len() as f64;
    assert!((var / (2.0 / 400.0) - 1.0).abs() < 0.03, "He-normal variance 2/in, got {var}");
    // The same seed gives the same parameters.
    let mut b2 = GraphBuilder::new();
    let x2 = b2.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(400)]).unwrap();
    add_layer(&mut b2, "linear", "ku", &[x2], &ku, &mut Generator::new(9)).unwrap();
    assert_eq!(v32(b2.graph().params()[0].2), w);
}

#[test]
fn batch_norm_names_its_running_statistic_updates_and_set_training_switches_mode() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(3)]).unwrap();
    let attrs =
        [("widths", Attr::Ints(vec![4, 2])), ("norm", Attr::Str("batch_norm".into())), ("dropout", Attr::Float(0.5))];
    let out = add_layer(&mut b, "mlp", "m", &[x], &attrs, &mut Generator::new(1)).unwrap()[0];
    b.output("out", out).unwrap();
    let g = b.finish().unwrap();
    let frozen: Vec<&str> = g.params().iter().filter(|p| !p.3).map(|p| p.0).collect();
    assert_eq!(frozen, ["m/0/norm/running_mean", "m/0/norm/running_var"]);
    let xt = Tensor::rand_normal(&[8, 3], 2.0, 3.0, DType::F32, Device::Cpu, &mut Generator::new(2)).unwrap();
    let upd = run(&g, &[("x", &xt)], &["update/m/0/norm/running_mean", "update/m/0/norm/running_var", "out"]);
    assert!(v32(&upd[0]).iter().any(|&v| v != 0.0), "training moves the running mean");
    let (inf, changed) = nn::set_training(&g, false).unwrap();
    assert_eq!(changed, 2, "one batch_norm and one dropout node");
    // Inference with the initial running statistics (0, 1) is deterministic and differs from training.
    let a = run(&inf, &[("x", &xt)], &["out"]);
    assert_ne!(v32(&a[0]), v32(&upd[2]));
    assert_eq!(nn::set_training(&inf, false).unwrap().1, 0);
}

#[test]
fn conv_and_pool_layers_build_and_run() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(2), Dim::Fixed(6), Dim::Fixed(6)]).unwrap();
    let mut rng = Generator::new(4);
    let c = nn::conv2d(&mut LayerCtx::new(&mut b, "conv", &mut rng), x, 4, 3, 1, 1).unwrap();
    let p =
        add_layer(&mut b, "max_pool2d", "pool", &[c], &[("kernel_size", Attr::Ints(vec![2, 2]))], &mut rng).unwrap();
    let a =
        add_layer(&mut b, "avg_pool2d", "avg", &[p[0]], &[("kernel_size", Attr::Ints(vec![3, 3]))], &mut rng).unwrap();
    b.output("out", a[0]).unwrap();
    let g = b.finish().unwrap();
    let names: Vec<&str> = g.params().iter().map(|p| p.0).collect();
    assert_eq!(names, ["conv/weight", "conv/bias"]);
    assert_eq!(g.params()[0].2.shape(), &[4, 2, 3, 3]);
    let xt = Tensor::rand_normal(&[2, 2, 6, 6], 0.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(5)).unwrap();
    assert_eq!(run(&g, &[("x", &xt)], &["out"])[0].shape(), &[2, 4, 1, 1]);
}
