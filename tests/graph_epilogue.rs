//! Epilogue fusion: which products absorb the pointwise chain after them, and that the fused node gives the bits of the unfused graph on every path of the product (one row, serial, split by columns, gemm's own split).

use deepseek::exec::{ExecOptions, Executor};
use deepseek::graph::passes::optimize;
use deepseek::graph::{Dim, Graph, GraphBuilder, NodeKind, ParamGrad, append_gradients};
use deepseek::ops::Attr;
use deepseek::{DType, Device, Generator, Tensor};

fn normal(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 0.5, dtype, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

/// Three threads, so that products of 256 or fewer rows with 384 or more columns are split by
/// columns into uneven pieces (blocks of 144 columns, computed 64 at a time) on any machine.
fn three_threads() {
    deepseek::runtime::set_num_threads(3).unwrap();
}

/// The products in `g` that absorbed a chain, by op name.
fn epilogue_products(g: &Graph) -> Vec<&'static str> {
    g.nodes()
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Fused { product: Some(p), .. } => Some(p.op.name),
            _ => None,
        })
        .collect()
}

/// Runs `g` at optimisation levels 1 (no fusion) and 2 on `feeds`; every fetch must have the
/// same bits.
fn same_bits_at_levels_1_and_2(g: &Graph, feeds: &[(&str, &Tensor)], fetches: &[&str]) {
    let run = |level: u8| {
        let ex = Executor::new(g, ExecOptions { opt_level: level, ..Default::default() }).unwrap();
        ex.run(feeds, fetches)
            .unwrap()
            .iter()
            .map(|t| {
                let t = t.cast(DType::F64).unwrap().contiguous().unwrap();
                t.to_vec::<f64>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let (plain, fused) = (run(1), run(2));
    for ((name, p), f) in fetches.iter().zip(&plain).zip(&fused) {
        assert_eq!(
            p,
            f,
            "`{name}` differs with epilogues, feeds {:?}",
            feeds.iter().map(|f| f.1.shape()).collect::<Vec<_>>()
        );
    }
}

/// x [batch, 256] -> linear 400 -> relu -> linear 384 -> gelu (tanh form) -> linear 10,
/// output `y`, and `loss` (the mean square of `y`) when asked.
fn mlp(dtype: DType, loss: bool) -> Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("x", dtype, &[Dim::sym("batch"), Dim::Fixed(256)]).unwrap();
    let mut h = x;
    let widths = [256, 400, 384, 10];
    for (l, io) in widths.windows(2).enumerate() {
        let w = b.param(&format!("w{l}"), &normal(&[io[1], io[0]], dtype, 10 + l as u64), true).unwrap();
        let bias = b.param(&format!("b{l}"), &normal(&[io[1]], dtype, 20 + l as u64), true).unwrap();
        h = b.op1("linear", &[h, w, bias], &[]).unwrap();
        h = match l {
            0 => b.op1("relu", &[h], &[]).unwrap(),
            1 => b.op1("gelu", &[h], &[("approximate", Attr::Str("tanh".into()))]).unwrap(),
            _ => h,
        };
    }
    b.output("y", h).unwrap();
    if loss {
        let sq = b.op1("mul", &[h, h], &[]).unwrap();
        let mean = b.op1("mean", &[sq], &[]).unwrap();
        b.output("loss", mean).unwrap();
    }
    b.finish().unwrap()
}

#[test]
fn linear_layers_absorb_their_activations_with_the_bits_of_the_unfused_graph() {
    three_threads();
    for dtype in [DType::F32, DType::F64] {
        let g = mlp(dtype, false);
        let opt = optimize(&g, 2).unwrap();
        assert_eq!(epilogue_products(&opt), ["linear", "linear"], "{opt}");
        assert_eq!(opt.count_op("linear"), 1, "the last layer has nothing after it: {opt}");
        assert!(opt.to_string().contains("epilogues: 2 pointwise ops into 2 products"), "{opt}");
        // One row (GEMV), a few rows (one serial product), 200 rows (split by columns),
        // 600 rows (gemm's own split).
        for batch in [1, 3, 200, 600] {
            let x = normal(&[batch, 256], dtype, batch as u64);
            same_bits_at_levels_1_and_2(&g, &[("x", &x)], &["y"]);
        }
    }
}

#[test]
fn fixed_weights_kept_in_panels_give_the_bits_of_eager() {
    three_threads();
    // x [batch, 640] -> linear 400 -> relu (an epilogue node) -> linear 384 (a linear node).
    // At level 2 both weights are also kept in panels, which products of 32 to 512 rows
    // split by columns read in calls of 48 rows; the first sums over more than gemm's
    // 512-deep block. A weight fed at run time replaces the fixed one, panels and all.
    let (w1, b1, w2) =
        (normal(&[400, 640], DType::F32, 31), normal(&[400], DType::F32, 32), normal(&[384, 400], DType::F32, 33));
    let forward = |x: &Tensor, w1: &Tensor| x.linear(w1, Some(&b1))?.relu()?.linear(&w2, None);
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(640)]).unwrap();
    let [pw1, pb1, pw2] = [("w1", &w1), ("b1", &b1), ("w2", &w2)].map(|(n, t)| b.param(n, t, false).unwrap());
    let h = b.op1("linear", &[x, pw1, pb1], &[]).unwrap();
    let h = b.op1("relu", &[h], &[]).unwrap();
    let y = b.op1("linear", &[h, pw2], &[]).unwrap();
    b.output("y", y).unwrap();
    let ex = Executor::new(&b.finish().unwrap(), ExecOptions::default()).unwrap();
    let other_w1 = normal(&[400, 640], DType::F32, 34);
    let bits = |t: &Tensor| t.to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    // 600 rows take gemm's own split, which reads no panels.
    for batch in [32, 100, 256, 600] {
        let x = normal(&[batch, 640], DType::F32, 35 + batch as u64);
        let got = ex.run(&[("x", &x)], &["y"]).unwrap();
        assert_eq!(bits(&got[0]), bits(&forward(&x, &w1).unwrap()), "batch {batch}");
        let fed = ex.run(&[("x", &x), ("w1", &other_w1)], &["y"]).unwrap();
        assert_eq!(bits(&fed[0]), bits(&forward(&x, &other_w1).unwrap()), "batch {batch}, fed w1");
    }
}

#[test]
fn a_training_step_fuses_the_activation_gradient_into_the_input_gradient_product() {
    three_threads();
    let (train, grads) = append_gradients(&mlp(DType::F32, true), "loss", None).unwrap();
    let opt = optimize(&train, 2).unwrap();
    // The forward activations' inputs are read again by their gradients, so only the
    // backward products (gradient times weight, then the activation's mask) take epilogues.
    assert!(epilogue_products(&opt).contains(&"matmul"), "{opt}");
    let x = normal(&[200, 256], DType::F32, 5);
    let fetches: Vec<String> = std::iter::once("loss".to_string())
        .chain(grads.iter().map(|(_, g)| match g {
            ParamGrad::Dense(name) => name.clone(),
            other => panic!("a dense layer's gradient is dense, given {other:?}"),
        }))
        .collect();
    let fetches: Vec<&str> = fetches.iter().map(String::as_str).collect();
    same_bits_at_levels_1_and_2(&train, &[("x", &x)], &fetches);
}

/// p = x · w (a 2-D matmul, 200 × 400 by depth 256), then `chain(p)`; outputs `y` and,
/// when asked, `p` itself.
fn product_then(chain: impl FnOnce(&mut GraphBuilder, deepseek::graph::ValueId) -> deepseek::graph::ValueId) -> Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(256)]).unwrap();
    let w = b.param("w", &normal(&[256, 400], DType::F32, 1), false).unwrap();
    let p = b.op1("matmul", &[x, w], &[]).unwrap();
    let y = chain(&mut b, p);
    b.output("y", y).unwrap();
    b.finish().unwrap()
}

#[test]
fn chains_read_full_inputs_rows_and_scalars_beside_the_product() {
    three_threads();
    // The DCN cross update x0 * p + r, then a row shift, a scalar scale and tanh: one chain
    // whose links read the product second and first, a full input, a row and a scalar.
    let g = product_then(|b, p| {
        let x0 = b.input("x0", DType::F32, &[Dim::sym("batch"), Dim::Fixed(400)]).unwrap();
        let row = b.constant(&normal(&[400], DType::F32, 2)).unwrap();
        let half = b.constant(&Tensor::full(&[], 0.5, DType::F32, Device::Cpu).unwrap()).unwrap();
        let h = b.op1("mul", &[x0, p], &[]).unwrap();
        let h = b.op1("add", &[h, x0], &[]).unwrap();
        let h = b.op1("sub", &[row, h], &[]).unwrap();
        let h = b.op1("mul", &[h, half], &[]).unwrap();
        b.op1("tanh", &[h], &[]).unwrap()
    });
    let opt = optimize(&g, 2).unwrap();
    assert_eq!(epilogue_products(&opt), ["matmul"], "{opt}");
    assert!(opt.to_string().contains("epilogues: 5 pointwise ops into 1 products"), "{opt}");
    for batch in [1, 7, 200, 600] {
        let (x, x0) = (normal(&[batch, 256], DType::F32, 3), normal(&[batch, 400], DType::F32, 4));
        same_bits_at_levels_1_and_2(&g, &[("x", &x), ("x0", &x0)], &["y"]);
    }
}

#[test]
fn a_program_that_reads_the_product_twice_runs_through_registers() {
    three_threads();
    // silu written out: p * sigmoid(p) reads the product in two steps (no chain).
    let g = product_then(|b, p| {
        let s = b.op1("sigmoid", &[p], &[]).unwrap();
        b.op1("mul", &[p, s], &[]).unwrap()
    });
    let opt = optimize(&g, 2).unwrap();
    assert_eq!(epilogue_products(&opt), ["matmul"], "{opt}");
    for batch in [1, 200, 600] {
        let x = normal(&[batch, 256], DType::F32, 6);
        same_bits_at_levels_1_and_2(&g, &[("x", &x)], &["y"]);
    }
}

#[test]
fn products_read_elsewhere_fetched_or_batched_keep_their_chain_apart() {
    // Read by the chain and by a reduction: the product must stay a value.
    let g = product_then(|b, p| {
        let r = b.op1("relu", &[p], &[]).unwrap();
        let s = b.op1("sum", &[p], &[("axes", Attr::Ints(vec![1])), ("keepdim", Attr::Bool(true))]).unwrap();
        b.op1("add", &[r, s], &[]).unwrap()
    });
    assert!(epilogue_products(&optimize(&g, 2).unwrap()).is_empty());
    let x = normal(&[200, 256], DType::F32, 7);
    same_bits_at_levels_1_and_2(&g, &[("x", &x)], &["y"]);

    // Fetched as an output as well as read by the chain.
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(8)]).unwrap();
    let w = b.param("w", &normal(&[8, 8], DType::F32, 8), false).unwrap();
    let p = b.op1("matmul", &[x, w], &[]).unwrap();
    let y = b.op1("relu", &[p], &[]).unwrap();
    b.output("p", p).unwrap();
    b.output("y", y).unwrap();
    let fetched = b.finish().unwrap();
    assert!(epilogue_products(&optimize(&fetched, 2).unwrap()).is_empty());

    // A batched (3-D) product is several GEMMs: no epilogue.
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::Fixed(2), Dim::sym("n"), Dim::Fixed(8)]).unwrap();
    let w = b.param("w", &normal(&[2, 8, 8], DType::F32, 9), false).unwrap();
    let p = b.op1("matmul", &[x, w], &[]).unwrap();
    let y = b.op1("relu", &[p], &[]).unwrap();
    b.output("y", y).unwrap();
    let batched = b.finish().unwrap();
    let opt = optimize(&batched, 2).unwrap();
    assert!(epilogue_products(&opt).is_empty(), "{opt}");
    let xs = normal(&[2, 5, 8], DType::F32, 10);
    same_bits_at_levels_1_and_2(&batched, &[("x", &xs)], &["y"]);
}

#[test]
fn an_epilogue_node_reports_a_bad_feed_by_name_and_the_executor_keeps_working() {
    let g = mlp(DType::F32, false);
    let ex = Executor::new(&g, ExecOptions::default()).unwrap();
    let wrong = normal(&[4, 255], DType::F32, 11);
    let e = ex.run(&[("x", &wrong)], &["y"]).unwrap_err().to_string();
    assert!(e.contains("`x`"), "{e}");
    let x = normal(&[4, 256], DType::F32, 12);
    assert_eq!(ex.run(&[("x", &x)], &["y"]).unwrap()[0].shape(), &[4, 10]);
}
