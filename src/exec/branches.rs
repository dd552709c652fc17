//! Whether a plan's levels are worth running side by side: they pair matrix products of unequal size.

use super::plan::Plan;
use crate::graph::{Dim, Graph, NodeId, NodeKind};
use crate::ops::{OpDef, OpKind, linalg};

/// Whether some level of `plan` holds two matrix products whose sizes differ by more than an
/// eighth (or whose sizes cannot be told from their types), as where a DCN-v2's cross network
/// and MLP run beside each other. Only there does the executor run a level's nodes side by
/// side by default: each product already splits itself over the pool, and it takes threads
/// stealing pieces of both products to keep every thread busy when one is larger. Where a
/// level's products are equal, or it holds one product beside light nodes (the MLP training
/// step's backward levels: a layer's weight and input gradients, of equal size, and the bias
/// gradient's sum), one node at a time on the calling thread was faster: in one process,
/// eager's time over the MLP training graph's (median of eight interleaved rounds, two runs)
/// was 0.98 and 0.95 side by side, 1.01 and 1.08 one node at a time.
pub(crate) fn pairs_unequal_products(plan: &Plan) -> bool {
    let graph = &plan.graph;
    plan.levels.iter().any(|level| {
        let products: Vec<Option<usize>> =
            level.iter().filter_map(|&n| product_size(graph, n, &|d| d.fixed().unwrap_or(SYMBOLIC_DIM))).collect();
        let sizes: Option<Vec<usize>> = products.iter().copied().collect();
        match sizes {
            _ if products.len() < 2 => false,
            // The largest and the smallest decide whether any two differ.
            Some(sizes) => {
                let (min, max) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
                max - min > max / 8
            }
            None => true,
        }
    })
}

/// A symbolic dimension's stand-in when sizes are compared: a serving batch.
const SYMBOLIC_DIM: usize = 256;

/// Multiply-adds of all of `plan`'s matrix products, each dimension sized by `size`; `None`
/// when some product's size is not estimated here (a convolution).
pub(crate) fn product_work(plan: &Plan, size: &dyn Fn(&Dim) -> usize) -> Option<usize> {
    let mut sizes = plan.levels.iter().flatten().filter_map(|&n| product_size(&plan.graph, n, size));
    sizes.try_fold(0usize, |total, s| s.map(|s| total.saturating_add(s)))
}

/// `None` if node `n` is no matrix product; else its multiply-adds, each dimension sized by
/// `size`, or `Some(None)` for a product whose size is not estimated here (a convolution).
fn product_size(graph: &Graph, n: NodeId, size: &dyn Fn(&Dim) -> usize) -> Option<Option<usize>> {
    let node = graph.node(n);
    let op: &OpDef = match &node.kind {
        NodeKind::Op { op, .. } => op,
        NodeKind::Fused { product: Some(p), .. } => p.op,
        _ => return None,
    };
    if op.kind != OpKind::MatmulLike {
        return None;
    }
    let dims = |i: usize| -> Option<Vec<usize>> {
        let v = node.inputs.get(i)?;
        Some(graph.value(*v).ty.dims.iter().map(size).collect())
    };
    let (Some(x), Some(other)) = (dims(0), dims(1)) else { return Some(None) };
    // x [.., k] times a k × n matrix (matmul, bmm) or an n × k weight (linear): numel(x) · n.
    let columns = match other.as_slice() {
        [n, _] if std::ptr::eq(op, &linalg::LINEAR) => Some(*n),
        [.., n] if std::ptr::eq(op, &linalg::MATMUL) || std::ptr::eq(op, &linalg::BMM) => Some(*n),
        _ => None,
    };
    Some(columns.map(|n| x.iter().fold(n, |m, &d| m.saturating_mul(d))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Dim, GraphBuilder};
    use crate::ops::Attr;
    use crate::{DType, Device, Tensor};

    fn weight(shape: &[usize]) -> Tensor {
        Tensor::zeros(shape, DType::F32, Device::Cpu).unwrap()
    }

    /// A graph with input x [batch, 64] and, in one level, a linear node per weight.
    fn level_of_linears(weights: &[&[usize]]) -> bool {
        let mut b = GraphBuilder::new();
        let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(64)]).unwrap();
        for (i, shape) in weights.iter().enumerate() {
            let w = b.param(&format!("w{i}"), &weight(shape), false).unwrap();
            let h = b.op1("linear", &[x, w], &[]).unwrap();
            b.output(&format!("h{i}"), h).unwrap();
        }
        pairs_unequal_products(&Plan::new(b.finish().unwrap(), false).unwrap())
    }

    #[test]
    fn only_levels_of_unequal_products_run_side_by_side() {
        assert!(level_of_linears(&[&[512, 64], &[128, 64]]), "4x apart");
        assert!(level_of_linears(&[&[100, 64], &[86, 64], &[100, 64]]), "an eighth and more apart");
        assert!(!level_of_linears(&[&[100, 64], &[90, 64]]), "within an eighth");
        assert!(!level_of_linears(&[&[512, 64]]), "one product");
    }

    #[test]
    fn a_weight_gradient_beside_an_input_gradient_of_equal_size_stays_one_at_a_time() {
        // dW = dyᵀ · x ([64, batch] · [batch, 32]) and dx = dy · W ([batch, 64] · [64, 32]).
        let mut b = GraphBuilder::new();
        let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(32)]).unwrap();
        let dy = b.input("dy", DType::F32, &[Dim::sym("batch"), Dim::Fixed(64)]).unwrap();
        let w = b.param("w", &weight(&[64, 32]), false).unwrap();
        let dyt = b.op1("transpose", &[dy], &[("dim0", Attr::Int(0)), ("dim1", Attr::Int(1))]).unwrap();
        let dw = b.op1("matmul", &[dyt, x], &[]).unwrap();
        let dx = b.op1("matmul", &[dy, w], &[]).unwrap();
        b.output("dw", dw).unwrap();
        b.output("dx", dx).unwrap();
        assert!(!pairs_unequal_products(&Plan::new(b.finish().unwrap(), false).unwrap()));
    }

    #[test]
    fn dcn_v2_pairs_its_cross_network_with_its_deep_tower() {
        use crate::nn::models::{CtrModelConfig, dcn_v2};
        let cfg = CtrModelConfig { vocab_sizes: vec![50; 26], ..CtrModelConfig::default() };
        let graph = crate::graph::passes::optimize(&dcn_v2(&cfg).unwrap(), 2).unwrap();
        assert!(pairs_unequal_products(&Plan::new(graph, true).unwrap()));
    }

    #[test]
    fn convolutions_side_by_side_count_as_unequal() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(3), Dim::Fixed(8), Dim::Fixed(8)]).unwrap();
        for i in 0..2 {
            let w = b.param(&format!("w{i}"), &weight(&[4, 3, 3, 3]), false).unwrap();
            let y = b.op1("conv2d", &[x, w], &[]).unwrap();
            b.output(&format!("y{i}"), y).unwrap();
        }
        assert!(pairs_unequal_products(&Plan::new(b.finish().unwrap(), false).unwrap()));
    }
}
