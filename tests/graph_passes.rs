//! Optimisation passes on hand-built graphs: node counts before and after, and unchanged results.

use deepseek::exec::{ExecOptions, Executor};
use deepseek::graph::passes::{cse, dce, fold_constants, fuse_lookups, optimize, simplify};
use deepseek::graph::{Dim, Graph, GraphBuilder, ValueId};
use deepseek::ops::Attr;
use deepseek::{DType, Device, Generator, Tensor};

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F32, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn x_input(b: &mut GraphBuilder) -> ValueId {
    b.input("x", DType::F32, &[Dim::sym("n"), Dim::Fixed(4)]).unwrap()
}

/// Runs `g` at level 0 and `opt` at level 0 on the same input; outputs must match bitwise.
fn same_results(g: &Graph, opt: &Graph) {
    let x = normal(&[3, 4], 9);
    let names: Vec<&str> = g.outputs().iter().map(|(n, _)| n.as_str()).collect();
    let run = |g: &Graph| {
        let ex = Executor::new(g, ExecOptions { opt_level: 0, ..Default::default() }).unwrap();
        ex.run(&[("x", &x)], &names)
            .unwrap()
            .iter()
            .map(|t| t.contiguous().unwrap().to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(g), run(opt));
}

#[test]
fn cse_merges_duplicate_pure_nodes_but_not_random_ones() {
    let mut b = GraphBuilder::new();
    let x = x_input(&mut b);
    let a = b.op1("relu", &[x], &[]).unwrap();
    let a2 = b.op1("relu", &[x], &[]).unwrap();
    let s = b.op1("add", &[a, a2], &[]).unwrap();
    let s2 = b.op1("add", &[a2, a], &[]).unwrap(); // inputs swapped: merged only after relu is
    let m = b.op1("mul", &[s, s2], &[]).unwrap();
    let d1 = b.op1("dropout", &[m], &[("p", Attr::Float(0.5)), ("seed", Attr::Int(1))]).unwrap();
    let d2 = b.op1("dropout", &[m], &[("p", Attr::Float(0.5)), ("seed", Attr::Int(1))]).unwrap();
    let o = b.op1("add", &[d1, d2], &[]).unwrap();
    b.output("o", o).unwrap();
    let g = b.finish().unwrap();
    assert_eq!(g.op_count(), 8);
    let c = cse(&g).unwrap();
    // relu x2 -> 1; add(a,a) twice -> 1 (swapped operands are different inputs until a2 maps to a).
    assert_eq!(c.count_op("relu"), 1);
    assert_eq!(c.count_op("add"), 2);
    assert_eq!(c.count_op("dropout"), 2, "dropout draws random numbers: never merged");
    assert!(c.to_string().contains("cse: merged 2 duplicate nodes"), "{c}");
    same_results(&g, &c);
}

#[test]
fn dce_removes_unreachable_nodes_and_keeps_inputs() {
    let mut b = GraphBuilder::new();
    let x = x_input(&mut b);
    let _unused_input = b.input("unused", DType::F32, &[Dim::Fixed(2)]).unwrap();
    let e = b.op1("exp", &[x], &[]).unwrap();
    let _dead = b.op1("sin", &[e], &[]).unwrap();
    let _dead2 = b.op1("cos", &[x], &[]).unwrap();
    let c = b.constant(&normal(&[4], 1)).unwrap();
    let _dead3 = b.op1("add", &[c, c], &[]).unwrap();
    let y = b.op1("tanh", &[e], &[]).unwrap();
    b.output("y", y).unwrap();
    let g = b.finish().unwrap();
    let d = dce(&g).unwrap();
    assert_eq!((g.op_count(), d.op_count()), (5, 2));
    assert_eq!(d.inputs().len(), 2, "inputs stay so that feeds keep working");
    assert_eq!(d.nodes().len(), 4);
    same_results(&g, &d);
}

#[test]
fn folding_removes_every_constant_only_subgraph_but_never_random_ops() {
    let mut b = GraphBuilder::new();
    let x = x_input(&mut b);
    let c1 = b.constant(&normal(&[4], 1)).unwrap();
    let c2 = b.constant(&normal(&[4], 2)).unwrap();
    let c3 = b.op1("add", &[c1, c2], &[]).unwrap();
    let c4 = b.op1("mul", &[c3, c1], &[]).unwrap();
    let c5 = b.op1("exp", &[c4], &[]).unwrap();
    let c6 = b.op1("sum", &[c5], &[("axes", Attr::Ints(vec![0])), ("keepdim", Attr::Bool(true))]).unwrap();
    let y = b.op1("add", &[x, c6], &[]).unwrap();
    let r = b.op1("dropout", &[c1], &[("p", Attr::Float(0.5)), ("seed", Attr::Int(3))]).unwrap();
    let z = b.op1("mul", &[y, r], &[]).unwrap();
    b.output("z", z).unwrap();
    let g = b.finish().unwrap();
    assert_eq!(g.op_count(), 7);
    let f = fold_constants(&g).unwrap();
    assert_eq!(f.op_count(), 3, "{f}");
    assert_eq!(f.count_op("dropout"), 1);
    assert!(f.to_string().contains("fold: evaluated 4 constant-only op nodes"), "{f}");
    same_results(&g, &f);
    let o = optimize(&g, 1).unwrap();
    assert_eq!(o.op_count(), 3);
    let stats = o.pass_stats().join("\n");
    assert!(stats.contains("fold") && stats.contains("cse") && stats.contains("dce") && stats.contains("simplify"));
}

#[test]
fn simplify_removes_identities_double_transposes_reshape_chains_and_exact_cast_round_trips() {
    let mut b = GraphBuilder::new();
    let x = x_input(&mut b);
    let one = b.constant(&Tensor::ones(&[4], DType::F32, Device::Cpu).unwrap()).unwrap();
    let zero = b.constant(&Tensor::zeros(&[], DType::F32, Device::Cpu).unwrap()).unwrap();
    let a = b.op1("mul", &[x, one], &[]).unwrap();
    let a = b.op1("add", &[zero, a], &[]).unwrap();
    let a = b.op1("mul_scalar", &[a], &[("value", Attr::Float(1.0))]).unwrap();
    let t = b.op1("transpose", &[a], &[("dim0", Attr::Int(0)), ("dim1", Attr::Int(1))]).unwrap();
    let t = b.op1("transpose", &[t], &[("dim0", Attr::Int(-1)), ("dim1", Attr::Int(0))]).unwrap();
    let p = b.op1("permute", &[t], &[("dims", Attr::Ints(vec![1, 0]))]).unwrap();
    let p = b.op1("permute", &[p], &[("dims", Attr::Ints(vec![1, 0]))]).unwrap();
    let r = b.op1("reshape", &[p], &[("shape", Attr::Ints(vec![-1, 2, 2]))]).unwrap();
    let r = b.op1("reshape", &[r], &[("shape", Attr::Ints(vec![-1, 4]))]).unwrap();
    let w = b.op1("cast", &[r], &[("dtype", Attr::Int(DType::F64.code() as i64))]).unwrap();
    let w = b.op1("cast", &[w], &[("dtype", Attr::Int(DType::F32.code() as i64))]).unwrap();
    let y = b.op1("relu", &[w], &[]).unwrap();
    // Narrowing round trip: f32 -> f16 -> f32 loses bits and must stay.
    let h = b.op1("cast", &[y], &[("dtype", Attr::Int(DType::F16.code() as i64))]).unwrap();
    let h = b.op1("cast", &[h], &[("dtype", Attr::Int(DType::F32.code() as i64))]).unwrap();
    // Broadcasting multiply by ones changes the shape: must stay.
    let big = b.constant(&Tensor::ones(&[2, 1, 4], DType::F32, Device::Cpu).unwrap()).unwrap();
    let k = b.op1("mul", &[h, big], &[]).unwrap();
    b.output("y", k).unwrap();
    let g = b.finish().unwrap();
    assert_eq!(g.op_count(), 15);
    let s = dce(&simplify(&g).unwrap()).unwrap();
    let ops: Vec<&str> = s.nodes().iter().filter_map(|n| n.kind.op()).map(|o| o.name).collect();
    assert_eq!(ops, ["reshape", "relu", "cast", "cast", "mul"], "{s}");
    same_results(&g, &s);
}

#[test]
fn fusion_turns_an_elementwise_chain_into_one_node_with_identical_results() {
    let mut b = GraphBuilder::new();
    let x = x_input(&mut b);
    let a = b.constant(&normal(&[4], 1)).unwrap();
    let bias = b.constant(&normal(&[4], 2)).unwrap();
    let c = b.input("c", DType::F32, &[Dim::sym("n"), Dim::Fixed(4)]).unwrap();
    let d = b.constant(&Tensor::full(&[], 0.5, DType::F32, Device::Cpu).unwrap()).unwrap();
    let h = b.op1("mul", &[x, a], &[]).unwrap();
    let h = b.op1("add", &[h, bias], &[]).unwrap();
    let h = b.op1("relu", &[h], &[]).unwrap();
    let h = b.op1("mul", &[h, c], &[]).unwrap();
    let h = b.op1("add", &[h, d], &[]).unwrap();
    b.output("y", h).unwrap();
    let g = b.finish().unwrap();
    let f = deepseek::graph::passes::fuse(&g).unwrap();
    assert_eq!((f.op_count(), f.fused_count()), (1, 1), "{f}");
    assert!(f.to_string().contains("fuse: 5 pointwise ops into 1 fused nodes"), "{f}");
    let xs = normal(&[5, 4], 3);
    let cs = normal(&[5, 4], 4);
    let run = |g: &Graph, level: u8| {
        let ex = Executor::new(g, ExecOptions { opt_level: level, ..Default::default() }).unwrap();
        ex.run(&[("x", &xs), ("c", &cs)], &["y"]).unwrap().remove(0).to_vec::<f32>().unwrap()
    };
    let (plain, fused) = (run(&g, 0), run(&f, 0));
    assert_eq!(
        plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        fused.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(run(&g, 2), plain);
}

#[test]
fn fusion_never_crosses_an_opaque_op_and_exports_values_read_outside() {
    let mut b = GraphBuilder::new();
    let x = x_input(&mut b);
    let a = b.op1("exp", &[x], &[]).unwrap();
    let n = b.op1("neg", &[a], &[]).unwrap();
    let s = b.op1("softmax", &[n], &[("axis", Attr::Int(-1))]).unwrap();
    let e = b.op1("exp", &[s], &[]).unwrap();
    let t = b.op1("tanh", &[e], &[]).unwrap();
    let r = b.op1("sum", &[a], &[]).unwrap();
    b.output("t", t).unwrap();
    b.output("r", r).unwrap();
    let g = b.finish().unwrap();
    let f = deepseek::graph::passes::fuse(&g).unwrap();
    assert_eq!(f.fused_count(), 2, "{f}");
    assert_eq!(f.count_op("softmax"), 1);
    assert_eq!(f.count_op("sum"), 1);
    // exp(x) is read by `sum` outside its chain: the first fused node returns it too.
    let first = f.nodes().iter().find(|n| matches!(n.kind, deepseek::graph::NodeKind::Fused { .. })).unwrap();
    assert_eq!(first.outputs.len(), 2, "{f}");
    same_results(&g, &f);
}

#[test]
fn fusion_respects_the_size_cap_and_shape_changes() {
    let mut b = GraphBuilder::new();
    let x = x_input(&mut b);
    let mut h = x;
    for _ in 0..70 {
        h = b.op1("neg", &[h], &[]).unwrap();
    }
    // A broadcast to a larger shape starts a new chain over the new shape.
    let big = b.input("big", DType::F32, &[Dim::Fixed(2), Dim::sym("n"), Dim::Fixed(4)]).unwrap();
    let w = b.op1("add", &[h, big], &[]).unwrap();
    let w = b.op1("relu", &[w], &[]).unwrap();
    b.output("w", w).unwrap();
    let g = b.finish().unwrap();
    let f = deepseek::graph::passes::fuse(&g).unwrap();
    assert_eq!(deepseek::graph::passes::MAX_FUSION_SIZE, 64);
    assert_eq!(f.fused_count(), 3, "{f}");
    let sizes: Vec<usize> = f
        .nodes()
        .iter()
        .filter_map(|n| match &n.kind {
            deepseek::graph::NodeKind::Fused { program, .. } => Some(program.steps.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [64, 6, 2]);
    let xs = normal(&[3, 4], 1);
    let bs = normal(&[2, 3, 4], 2);
    let run = |g: &Graph| {
        let ex = Executor::new(g, ExecOptions { opt_level: 0, ..Default::default() }).unwrap();
        ex.run(&[("x", &xs), ("big", &bs)], &["w"]).unwrap().remove(0).to_vec::<f32>().unwrap()
    };
    assert_eq!(run(&g), run(&f));
}

#[test]
fn the_memory_plan_frees_dead_values_and_overwrites_dying_inputs_in_place() {
    // conv -> relu -> pool: relu may overwrite the conv output, which nothing else reads.
    let mut b = GraphBuilder::new();
    let x = b.input("img", DType::F32, &[Dim::sym("n"), Dim::Fixed(2), Dim::Fixed(8), Dim::Fixed(8)]).unwrap();
    let k = b.param("k", &normal(&[4, 2, 3, 3], 1), false).unwrap();
    let h = b.op1("conv2d", &[x, k], &[("padding", Attr::Ints(vec![1, 1]))]).unwrap();
    let h = b.op1("relu", &[h], &[]).unwrap();
    let h = b.op1("max_pool2d", &[h], &[("kernel_size", Attr::Ints(vec![2, 2]))]).unwrap();
    let y = b.op1("sigmoid", &[h], &[]).unwrap();
    b.output("y", y).unwrap();
    b.output("pooled", h).unwrap(); // an output: sigmoid must not overwrite it
    let g = b.finish().unwrap();
    let img = normal(&[3, 2, 8, 8], 2);
    let opts = deepseek::exec::RunOptions { track_memory: true, ..Default::default() };
    let run = |level: u8| {
        let ex = Executor::new(&g, ExecOptions { opt_level: level, ..Default::default() }).unwrap();
        ex.run_with(&[("img", &img)], &["y", "pooled"], &opts).unwrap()
    };
    let (plain, unplanned) = run(1);
    let (planned, stats) = run(2);
    for (a, b) in plain.iter().zip(&planned) {
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    }
    // conv out 3*4*8*8 f32 = 3 KiB (+ relu 3 KiB unplanned), pooled 768 B, sigmoid 768 B.
    let conv = 3 * 4 * 8 * 8 * 4;
    assert_eq!(unplanned.peak_bytes, 2 * conv + 2 * conv / 4);
    assert_eq!(stats.peak_bytes, conv + conv / 4, "relu in place, conv output freed after pooling");
    assert_eq!(stats.nodes_run, 4);
}

/// Tables `[5 + f, 3]` looked up by columns of `ids` `[n, fields]` and joined along
/// dimension 1 (`order` gives the column each lookup reads); `extra` also reads lookup 0.
fn field_lookups(fields: usize, order: &[usize], extra: bool, padding: bool) -> Graph {
    let mut b = GraphBuilder::new();
    let ids = b.input("ids", DType::I64, &[Dim::sym("n"), Dim::Fixed(fields)]).unwrap();
    let mut cols = Vec::new();
    for (k, &f) in order.iter().enumerate() {
        let sl = [("dim", Attr::Int(1)), ("start", Attr::Int(f as i64)), ("end", Attr::Int(f as i64 + 1))];
        let col = b.op1("slice", &[ids], &sl).unwrap();
        let table = b.param(&format!("t{k}"), &normal(&[5 + f, 3], k as u64), true).unwrap();
        let pad = if padding && k == 1 { vec![("padding_idx", Attr::Int(0))] } else { vec![] };
        cols.push(b.op1("embedding", &[table, col], &pad).unwrap());
    }
    let joined = b.op1("concat", &cols, &[("dim", Attr::Int(1))]).unwrap();
    b.output("emb", joined).unwrap();
    if extra {
        let r = b.op1("relu", &[cols[0]], &[]).unwrap();
        b.output("extra", r).unwrap();
    }
    b.finish().unwrap()
}

#[test]
fn lookup_fusion_makes_one_node_of_a_concat_of_column_lookups() {
    let ids = Tensor::from_slice(&[0i64, 5, 6, 4, 4, 3, 2, 1, 0, 4, 5, 1], &[4, 3]).unwrap();
    let run = |g: &Graph, level: u8| {
        let ex = Executor::new(g, ExecOptions { opt_level: level, ..Default::default() }).unwrap();
        let outs = ex.run(&[("ids", &ids)], &["emb"]).unwrap();
        outs[0].to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    let g = field_lookups(3, &[0, 1, 2], false, false);
    assert_eq!((g.op_count(), g.count_op("slice"), g.count_op("embedding")), (7, 3, 3));
    let fused = fuse_lookups(&g).unwrap();
    assert_eq!(fused.op_count(), 1, "{fused}");
    assert_eq!(fused.count_op("embedding_fields"), 1);
    assert!(fused.to_string().contains("lookups: 3 column lookups into 1 embedding_fields nodes"), "{fused}");
    assert_eq!(optimize(&g, 2).unwrap().op_count(), 1);
    assert_eq!(run(&g, 2), run(&g, 0), "the same bits as the separate lookups");
    // Left alone: columns out of order, a lookup read elsewhere, a padding row, a column missing.
    for (g, why) in [
        (field_lookups(3, &[0, 2, 1], false, false), "columns out of order"),
        (field_lookups(3, &[0, 1, 2], true, false), "lookup 0 also read by relu"),
        (field_lookups(3, &[0, 1, 2], false, true), "lookup 1 has a padding row"),
        (field_lookups(4, &[0, 1, 2], false, false), "column 3 not looked up"),
    ] {
        let f = fuse_lookups(&g).unwrap();
        assert_eq!((f.count_op("embedding_fields"), f.op_count()), (0, g.op_count()), "{why}");
    }
}
