//! Optimisation passes and the pipeline that runs them per optimisation level; each pass adds a statistics line to the graph.

mod autocast;
mod checkpoint;
mod cse;
mod dce;
mod epilogue;
mod fold;
mod fuse;
mod lookups;
mod rewrite;
mod simplify;

pub use autocast::autocast;
pub use checkpoint::{CheckpointReport, Checkpointing, append_gradients_checkpointed, checkpoint};
pub use cse::cse;
pub use dce::dce;
pub use epilogue::fuse_epilogues;
pub use fold::fold_constants;
pub use fuse::{MAX_FUSION_SIZE, fuse};
pub use lookups::fuse_lookups;
pub use simplify::simplify;

use super::ir::Graph;
use crate::error::Result;

/// Runs the passes of `level` on a copy of `graph`: 0 none; 1 constant folding,
/// simplification, CSE and DCE; 2 the same plus lookup fusion, pointwise fusion and
/// epilogue fusion.
pub fn optimize(graph: &Graph, level: u8) -> Result<Graph> {
    if level == 0 {
        return Ok(graph.clone());
    }
    let mut g = fold_constants(graph)?;
    g = simplify(&g)?;
    g = cse(&g)?;
    // Simplification and CSE expose more constant subgraphs and dead nodes.
    g = fold_constants(&g)?;
    g = dce(&g)?;
    if level >= 2 {
        g = fuse_lookups(&g)?;
        g = fuse(&g)?;
        g = fuse_epilogues(&g)?;
    }
    Ok(g)
}
