//! Eager vs graph on three models (MLP, small conv net, recommendation-shaped embedding bags + MLP): loss, outputs and every gradient, at every optimisation level; and one executor shared by 16 threads.

use deepseek::exec::{ExecOptions, Executor};
use deepseek::graph::{Dim, Graph, append_gradients, trace};
use deepseek::{DType, Device, Generator, Result, Tensor};
use std::sync::Arc;

fn normal(shape: &[usize], std: f64, seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, std, DType::F32, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.contiguous().unwrap().to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

type Forward = dyn Fn(&[Tensor], &[Tensor]) -> Result<(Tensor, Tensor)>;

/// A model: named inputs (with symbolic dims), named parameters, and a forward giving (output, loss).
struct Model {
    inputs: Vec<(&'static str, Tensor, Vec<Dim>)>,
    params: Vec<(&'static str, Tensor)>,
    forward: Box<Forward>,
}

impl Model {
    fn tensors(&self) -> (Vec<Tensor>, Vec<Tensor>) {
        (self.inputs.iter().map(|i| i.1.clone()).collect(), self.params.iter().map(|p| p.1.clone()).collect())
    }

    fn traced(&self) -> Graph {
        let (xs, ps) = self.tensors();
        let g = trace(|tr| {
            for (name, t, dims) in &self.inputs {
                tr.input(name, t, Some(dims))?;
            }
            for (name, t) in &self.params {
                tr.param(name, t, true)?;
            }
            let (out, loss) = (self.forward)(&xs, &ps)?;
            tr.output("out", &out)?;
            tr.output("loss", &loss)
        })
        .unwrap();
        append_gradients(&g, "loss", None).unwrap().0
    }

    /// Eager forward + backward, then the traced graph at levels 0-2: bitwise equal outputs, loss and gradients.
    fn check(&self) {
        let (xs, ps) = self.tensors();
        for p in &ps {
            p.zero_grad();
            p.set_requires_grad(true);
        }
        let (out, loss) = (self.forward)(&xs, &ps).unwrap();
        loss.backward().unwrap();
        let graph = self.traced();
        let feeds: Vec<(&str, &Tensor)> = self.inputs.iter().map(|(n, t, _)| (*n, t)).collect();
        for level in 0..=2 {
            let ex = Executor::new(&graph, ExecOptions { opt_level: level, ..Default::default() }).unwrap();
            let got = ex.run(&feeds, &["out", "loss"]).unwrap();
            assert_eq!(bits(&got[0]), bits(&out), "output at level {level}");
            assert_eq!(bits(&got[1]), bits(&loss), "loss at level {level}");
            for (name, p) in &self.params {
                let eager = p.grad().unwrap().unwrap();
                let dense = format!("grad/{name}");
                let g = if graph.output(&dense).is_ok() {
                    ex.run(&feeds, &[&dense]).unwrap().remove(0)
                } else {
                    let r = ex.run(&feeds, &[&format!("{dense}/indices"), &format!("{dense}/rows")]).unwrap();
                    Tensor::zeros(p.shape(), DType::F32, Device::Cpu).unwrap().index_add(0, &r[0], &r[1]).unwrap()
                };
                assert_eq!(bits(&g), bits(&eager), "gradient of {name} at level {level}");
            }
        }
    }
}

fn labels(n: usize, classes: usize, seed: u64) -> Tensor {
    Tensor::rand_uniform(&[n], 0.0, classes as f64, DType::F32, Device::Cpu, &mut Generator::new(seed))
        .unwrap()
        .cast(DType::I64)
        .unwrap()
}

fn mlp() -> Model {
    let batch = Dim::sym("batch");
    Model {
        inputs: vec![
            ("x", normal(&[12, 20], 1.0, 1), vec![batch.clone(), Dim::Fixed(20)]),
            ("y", labels(12, 5, 2), vec![batch]),
        ],
        params: vec![
            ("w1", normal(&[32, 20], 0.3, 3)),
            ("b1", normal(&[32], 0.1, 4)),
            ("w2", normal(&[32, 32], 0.2, 5)),
            ("b2", normal(&[32], 0.1, 6)),
            ("w3", normal(&[5, 32], 0.2, 7)),
            ("b3", normal(&[5], 0.1, 8)),
        ],
        forward: Box::new(|x, p| {
            let h = x[0].linear(&p[0], Some(&p[1]))?.relu()?;
            let h = h.linear(&p[2], Some(&p[3]))?.relu()?;
            let out = h.linear(&p[4], Some(&p[5]))?;
            let loss = out.cross_entropy(&x[1])?;
            Ok((out, loss))
        }),
    }
}

#[test]
fn mlp_graph_equals_eager() {
    mlp().check();
}

#[test]
fn conv_net_graph_equals_eager() {
    let n = Dim::sym("n");
    Model {
        inputs: vec![
            ("img", normal(&[3, 2, 8, 8], 1.0, 11), vec![n.clone(), Dim::Fixed(2), Dim::Fixed(8), Dim::Fixed(8)]),
            ("y", labels(3, 3, 12), vec![n]),
        ],
        params: vec![
            ("k", normal(&[4, 2, 3, 3], 0.3, 13)),
            ("kb", normal(&[4], 0.1, 14)),
            ("w", normal(&[3, 64], 0.2, 15)),
            ("b", normal(&[3], 0.1, 16)),
        ],
        forward: Box::new(|x, p| {
            let h = x[0].conv2d(&p[0], Some(&p[1]), [1, 1], [1, 1], [1, 1], 1)?.relu()?;
            let h = h.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1])?.reshape(&[-1, 64])?;
            let out = h.linear(&p[2], Some(&p[3]))?;
            let loss = out.cross_entropy(&x[1])?;
            Ok((out, loss))
        }),
    }
    .check();
}

#[test]
fn recommendation_model_graph_equals_eager() {
    let b = Dim::sym("batch");
    let idx = |n: usize, v: usize, seed: u64| labels(n, v, seed);
    let offsets = Tensor::from_slice(&[0i64, 2, 3, 6, 6], &[5]).unwrap();
    let mut inputs = vec![("dense", normal(&[5, 4], 1.0, 21), vec![b.clone(), Dim::Fixed(4)])];
    inputs.push(("offsets", offsets, vec![b.clone()]));
    for (i, (name, v)) in [("ids0", 50), ("ids1", 30), ("ids2", 20)].into_iter().enumerate() {
        inputs.push((name, idx(9, v, 30 + i as u64), vec![Dim::sym(&format!("nnz{i}"))]));
    }
    inputs.push((
        "click",
        Tensor::rand_uniform(&[5], 0.0, 2.0, DType::F32, Device::Cpu, &mut Generator::new(40))
            .unwrap()
            .cast(DType::I64)
            .unwrap()
            .cast(DType::F32)
            .unwrap(),
        vec![b],
    ));
    Model {
        inputs,
        params: vec![
            ("t0", normal(&[50, 8], 0.5, 41)),
            ("t1", normal(&[30, 8], 0.5, 42)),
            ("t2", normal(&[20, 8], 0.5, 43)),
            ("w1", normal(&[16, 28], 0.2, 44)),
            ("b1", normal(&[16], 0.1, 45)),
            ("w2", normal(&[1, 16], 0.2, 46)),
            ("b2", normal(&[1], 0.1, 47)),
        ],
        forward: Box::new(|x, p| {
            let mut parts = Vec::new();
            for (t, mode) in [(0, "sum"), (1, "mean"), (2, "max")] {
                parts.push(p[t].embedding_bag(&x[2 + t], &x[1], None, mode)?);
            }
            parts.push(x[0].clone());
            let refs: Vec<&Tensor> = parts.iter().collect();
            let h = Tensor::concat(&refs, 1)?;
            let h = h.linear(&p[3], Some(&p[4]))?.relu()?;
            let out = h.linear(&p[5], Some(&p[6]))?.reshape(&[-1])?;
            let loss = out.bce_with_logits(&x[5])?;
            Ok((out, loss))
        }),
    }
    .check();
}

#[test]
fn one_executor_shared_by_16_threads_gives_single_thread_results() {
    let model = mlp();
    let graph = model.traced();
    let ex = Arc::new(Executor::new(&graph, ExecOptions::default()).unwrap());
    let batches = [1usize, 3, 12, 7];
    let inputs: Vec<(Tensor, Tensor)> =
        batches.iter().map(|&n| (normal(&[n, 20], 1.0, 100 + n as u64), labels(n, 5, 200 + n as u64))).collect();
    let fetches = ["out", "loss", "grad/w1", "grad/b3"];
    let expected: Vec<Vec<Vec<u32>>> = inputs
        .iter()
        .map(|(x, y)| ex.run(&[("x", x), ("y", y)], &fetches).unwrap().iter().map(bits).collect())
        .collect();
    let inputs = Arc::new(inputs);
    let expected = Arc::new(expected);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (ex, inputs, expected) = (ex.clone(), inputs.clone(), expected.clone());
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let k = (t + i) % inputs.len();
                    let (x, y) = &inputs[k];
                    let got: Vec<Vec<u32>> =
                        ex.run(&[("x", x), ("y", y)], &fetches).unwrap().iter().map(bits).collect();
                    assert_eq!(got, expected[k], "thread {t} run {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn inference_graph_with_packed_weights_equals_eager() {
    // At level 2 frozen weights read only by linear nodes are kept packed, and handed to the
    // calls that would pack them (32 rows or more). Outputs keep eager's bits at every batch
    // size and level, and a weight fed at run time replaces the packed copy.
    let (w1, b1, w2) = (normal(&[96, 80], 0.2, 11), normal(&[96], 0.1, 12), normal(&[48, 96], 0.2, 13));
    let forward = |x: &Tensor, w1: &Tensor| x.linear(w1, Some(&b1))?.relu()?.linear(&w2, None);
    let graph = trace(|tr| {
        let x = normal(&[2, 80], 1.0, 14);
        tr.input("x", &x, Some(&[Dim::sym("batch"), Dim::Fixed(80)]))?;
        tr.param("w1", &w1, false)?;
        tr.param("b1", &b1, false)?;
        tr.param("w2", &w2, false)?;
        tr.output("out", &forward(&x, &w1)?)
    })
    .unwrap();
    let other_w1 = normal(&[96, 80], 0.2, 15);
    for level in 0..=2 {
        let ex = Executor::new(&graph, ExecOptions { opt_level: level, ..Default::default() }).unwrap();
        for batch in [1, 5, 32, 64] {
            let x = normal(&[batch, 80], 1.0, 16 + batch as u64);
            let got = ex.run(&[("x", &x)], &["out"]).unwrap();
            assert_eq!(bits(&got[0]), bits(&forward(&x, &w1).unwrap()), "level {level}, batch {batch}");
            let fed = ex.run(&[("x", &x), ("w1", &other_w1)], &["out"]).unwrap();
            assert_eq!(bits(&fed[0]), bits(&forward(&x, &other_w1).unwrap()), "level {level}, batch {batch}, fed w1");
        }
    }
}
