//! Ready-made models as graphs: an MLP classifier and the CTR models (DCN-v2, DeepFM, logistic regression), by config or by name.
//!
//! Every model has trainable parameters and a scalar output `loss` (a mean), and a symbolic
//! batch dimension `batch`.
//!
//! * MLP classifier: inputs `x` f32 `[batch, inputs]`, `label` i64 `[batch]`; outputs
//!   `logits` `[batch, classes]`, `loss` (mean cross-entropy). Parameters `mlp/<i>/weight`,
//!   `mlp/<i>/bias` (He-normal weights, zero biases).
//! * CTR models: inputs `dense` f32 `[batch, num_dense]`, `ids` i64 `[batch, num_fields]`
//!   (field f's id in column f, in `[0, vocab_sizes[f])`; others are an error), `label` f32
//!   `[batch]` (0 or 1); outputs `logit` `[batch]`, `prob` `[batch]` (sigmoid) and `loss`
//!   (mean binary cross-entropy with logits). Embedding tables `emb/<f>/weight`
//!   `[vocab_f, embed_dim]` ~ N(0, 0.01); graph autodiff gives them row gradients.
//!   - DCN-v2: x0 = [dense, emb/0 … emb/F−1 flattened]; cross network `cross/<l>/...`
//!     (full rank, or `u`/`v` at rank r); deep tower `deep/<i>/...` (ReLU after every layer);
//!     parallel: `head` (linear to 1) over [cross, deep]; stacked: `head` over deep(cross).
//!   - DeepFM: FM over the fields [dense_j·`dense_emb/weight`[j], emb/f] plus the first-order
//!     terms (`first/dense/weight`, `first/dense/bias` = w_0, `first/<f>/weight` `[vocab_f, 1]`),
//!     plus the deep tower over x0 through `head`.
//!   - Logistic regression: the first-order terms only (the baseline).

use super::embedding::EMBEDDING;
use super::{LayerCtx, apply_layer, cross_net, fm, linear};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::{Dim, Graph, GraphBuilder, ValueId};
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};
use crate::rng::Generator;
use crate::tensor::Tensor;

/// The MLP classifier's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpClassifierConfig {
    /// Input features.
    pub inputs: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Classes.
    pub classes: usize,
    /// Activation between layers: relu, gelu, silu, tanh or none.
    pub activation: String,
    /// Seeds the initial weights.
    pub seed: u64,
}

impl Default for MlpClassifierConfig {
    /// The gmix classifier (ALGORITHMS.md §1.4): 32-256-256-8, ReLU.
    fn default() -> Self {
        MlpClassifierConfig { inputs: 32, hidden: vec![256, 256], classes: 8, activation: "relu".into(), seed: 0 }
    }
}

/// How DCN-v2 joins its cross network and deep tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossStructure {
    /// [cross(x0), deep(x0)] → logit.
    Parallel,
    /// deep(cross(x0)) → logit.
    Stacked,
}

/// The CTR models' shape.
#[derive(Debug, Clone, PartialEq)]
pub struct CtrModelConfig {
    /// Dense features.
    pub num_dense: usize,
    /// Vocabulary of each categorical field.
    pub vocab_sizes: Vec<usize>,
    /// Embedding width.
    pub embed_dim: usize,
    /// Cross layers (DCN-v2).
    pub cross_layers: usize,
    /// Cross rank, 0 = full (DCN-v2).
    pub cross_rank: usize,
    /// Deep tower widths (DCN-v2, DeepFM).
    pub mlp: Vec<usize>,
    /// Parallel or stacked (DCN-v2).
    pub structure: CrossStructure,
    /// Seeds the initial weights.
    pub seed: u64,
}

impl Default for CtrModelConfig {
    /// Criteo-shaped: 13 dense features, 26 fields of 100,000 ids, width 16, 3 full-rank
    /// cross layers, deep tower 512-256-128, parallel.
    fn default() -> Self {
        CtrModelConfig {
            num_dense: 13,
            vocab_sizes: vec![100_000; 26],
            embed_dim: 16,
            cross_layers: 3,
            cross_rank: 0,
            mlp: vec![512, 256, 128],
            structure: CrossStructure::Parallel,
            seed: 0,
        }
    }
}

fn batch() -> Dim {
    Dim::sym("batch")
}

fn check_sizes(what: &str, v: &[usize], allow_empty: bool) -> Result<()> {
    if v.is_empty() && !allow_empty {
        return Err(Error::invalid("config", format!("`{what}` must not be empty")));
    }
    if let Some(i) = v.iter().position(|&n| n == 0) {
        return Err(Error::range("config", format!("`{what}[{i}]` must be at least 1, given 0")));
    }
    Ok(())
}

/// The MLP classifier (see the module doc).
pub fn mlp_classifier(cfg: &MlpClassifierConfig) -> Result<Graph> {
    check_sizes("inputs", &[cfg.inputs], false)?;
    check_sizes("hidden", &cfg.hidden, true)?;
    check_sizes("classes", &[cfg.classes], false)?;
    let mut rng = Generator::new(cfg.seed);
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[batch(), Dim::Fixed(cfg.inputs)])?;
    let label = b.input("label", DType::I64, &[batch()])?;
    let widths: Vec<i64> = cfg.hidden.iter().chain([&cfg.classes]).map(|&w| w as i64).collect();
    let attrs = [
        ("widths", Attr::Ints(widths)),
        ("activation", Attr::Str(cfg.activation.clone())),
        ("init", Attr::Str("he_normal".into())),
    ];
    let logits = apply_layer(&mut LayerCtx::new(&mut b, "mlp", &mut rng), &super::mlp::MLP, &[x], &attrs)?[0];
    let loss = b.op1("cross_entropy", &[logits, label], &[])?;
    b.output("logits", logits)?;
    b.output("loss", loss)?;
    b.finish()
}

/// The CTR inputs, validated config and generator.
struct Ctr {
    b: GraphBuilder,
    rng: Generator,
    dense: ValueId,
    ids: ValueId,
    label: ValueId,
}

impl Ctr {
    fn new(cfg: &CtrModelConfig, deep: bool) -> Result<Ctr> {
        check_sizes("num_dense", &[cfg.num_dense], false)?;
        check_sizes("vocab_sizes", &cfg.vocab_sizes, false)?;
        check_sizes("embed_dim", &[cfg.embed_dim], false)?;
        if deep {
            check_sizes("mlp", &cfg.mlp, false)?;
        }
        let mut b = GraphBuilder::new();
        let dense = b.input("dense", DType::F32, &[batch(), Dim::Fixed(cfg.num_dense)])?;
        let ids = b.input("ids", DType::I64, &[batch(), Dim::Fixed(cfg.vocab_sizes.len())])?;
        let label = b.input("label", DType::F32, &[batch()])?;
        Ok(Ctr { b, rng: Generator::new(cfg.seed), dense, ids, label })
    }

    /// One table per field, named `<prefix>/<f>/weight` `[vocab_f, dim]`, looked up by column
    /// f of `ids`; returns `[batch, fields, dim]`.
    fn fields(&mut self, prefix: &str, vocab: &[usize], dim: usize) -> Result<ValueId> {
        let mut cols = Vec::with_capacity(vocab.len());
        for (f, &num) in vocab.iter().enumerate() {
            let sl = [("dim", Attr::Int(1)), ("start", Attr::Int(f as i64)), ("end", Attr::Int(f as i64 + 1))];
            let col = self.b.op1("slice", &[self.ids], &sl)?;
            let attrs = [("num", Attr::Int(num as i64)), ("dim", Attr::Int(dim as i64))];
            let mut ctx = LayerCtx::new(&mut self.b, &format!("{prefix}/{f}"), &mut self.rng);
            cols.push(apply_layer(&mut ctx, &EMBEDDING, &[col], &attrs)?[0]);
        }
        self.b.op1("concat", &cols, &[("dim", Attr::Int(1))])
    }

    /// x0 = [dense, flattened field embeddings] `[batch, num_dense + fields·dim]`.
    fn x0(&mut self, emb: ValueId, fields: usize, dim: usize) -> Result<ValueId> {
        let flat = self.b.op1("reshape", &[emb], &[("shape", Attr::Ints(vec![-1, (fields * dim) as i64]))])?;
        self.b.op1("concat", &[self.dense, flat], &[("dim", Attr::Int(1))])
    }

    /// First-order terms `[batch, 1 + fields]`: the dense linear part (with w_0) and one
    /// weight per id (`first/<f>/weight`).
    fn first_order(&mut self, vocab: &[usize]) -> Result<ValueId> {
        let lin = linear(&mut LayerCtx::new(&mut self.b, "first/dense", &mut self.rng), self.dense, 1, true)?;
        let ids = self.fields("first", vocab, 1)?;
        let ids = self.b.op1("reshape", &[ids], &[("shape", Attr::Ints(vec![-1, vocab.len() as i64]))])?;
        self.b.op1("concat", &[lin, ids], &[("dim", Attr::Int(1))])
    }

    fn deep(&mut self, x: ValueId, widths: &[usize]) -> Result<ValueId> {
        let attrs =
            [("widths", Attr::Ints(widths.iter().map(|&w| w as i64).collect())), ("activate_last", Attr::Bool(true))];
        apply_layer(&mut LayerCtx::new(&mut self.b, "deep", &mut self.rng), &super::mlp::MLP, &[x], &attrs)
            .map(|o| o[0])
    }

    /// A `[batch, 1]` head as `[batch]`.
    fn head(&mut self, x: ValueId) -> Result<ValueId> {
        let h = linear(&mut LayerCtx::new(&mut self.b, "head", &mut self.rng), x, 1, true)?;
        self.flat(h)
    }

    fn flat(&mut self, v: ValueId) -> Result<ValueId> {
        self.b.op1("reshape", &[v], &[("shape", Attr::Ints(vec![-1]))])
    }

    /// Names `logit`, `prob` and `loss` and finishes.
    fn finish(mut self, logit: ValueId) -> Result<Graph> {
        let prob = self.b.op1("sigmoid", &[logit], &[])?;
        let loss = self.b.op1("binary_cross_entropy_with_logits", &[logit, self.label], &[])?;
        self.b.output("logit", logit)?;
        self.b.output("prob", prob)?;
        self.b.output("loss", loss)?;
        self.b.finish()
    }
}

/// DCN-v2 (see the module doc).
pub fn dcn_v2(cfg: &CtrModelConfig) -> Result<Graph> {
    check_sizes("cross_layers", &[cfg.cross_layers], false)?;
    let mut m = Ctr::new(cfg, true)?;
    let f = cfg.vocab_sizes.len();
    let emb = m.fields("emb", &cfg.vocab_sizes, cfg.embed_dim)?;
    let x0 = m.x0(emb, f, cfg.embed_dim)?;
    let cross = cross_net(&mut LayerCtx::new(&mut m.b, "cross", &mut m.rng), x0, cfg.cross_layers, cfg.cross_rank)?;
    let top = match cfg.structure {
        CrossStructure::Parallel => {
            let deep = m.deep(x0, &cfg.mlp)?;
            m.b.op1("concat", &[cross, deep], &[("dim", Attr::Int(1))])?
        }
        CrossStructure::Stacked => m.deep(cross, &cfg.mlp)?,
    };
    let logit = m.head(top)?;
    m.finish(logit)
}

/// The deep tower alone on the same inputs (embeddings and dense features, concatenated, then
/// the MLP and a head): the "MLP without explicit crosses" baseline between logistic
/// regression and DCN-v2. Parameters `emb/<f>/weight`, `deep/<i>/...`, `head/...`.
pub fn ctr_mlp(cfg: &CtrModelConfig) -> Result<Graph> {
    let mut m = Ctr::new(cfg, true)?;
    let f = cfg.vocab_sizes.len();
    let emb = m.fields("emb", &cfg.vocab_sizes, cfg.embed_dim)?;
    let x0 = m.x0(emb, f, cfg.embed_dim)?;
    let deep = m.deep(x0, &cfg.mlp)?;
    let logit = m.head(deep)?;
    m.finish(logit)
}

/// DeepFM (see the module doc).
pub fn deepfm(cfg: &CtrModelConfig) -> Result<Graph> {
    let mut m = Ctr::new(cfg, true)?;
    let (f, k, nd) = (cfg.vocab_sizes.len(), cfg.embed_dim, cfg.num_dense);
    let emb = m.fields("emb", &cfg.vocab_sizes, k)?;
    // Dense field j's FM vector is x_j · dense_emb[j] (the FM of the paper, x_i v_i).
    let w = Tensor::rand_normal(&[nd, k], 0.0, 0.01, DType::F32, Device::Cpu, &mut m.rng)?;
    let w = m.b.param("dense_emb/weight", &w, true)?;
    let d3 = m.b.op1("reshape", &[m.dense], &[("shape", Attr::Ints(vec![-1, nd as i64, 1]))])?;
    let dv = m.b.op1("mul", &[d3, w], &[])?;
    let v = m.b.op1("concat", &[dv, emb], &[("dim", Attr::Int(1))])?;
    let first = m.first_order(&cfg.vocab_sizes)?;
    let fm_out = fm(&mut LayerCtx::new(&mut m.b, "fm", &mut m.rng), v, Some(first))?;
    let x0 = m.x0(emb, f, k)?;
    let deep = m.deep(x0, &cfg.mlp)?;
    let deep = m.head(deep)?;
    let logit = m.b.op1("add", &[fm_out, deep], &[])?;
    m.finish(logit)
}

/// Logistic regression over the dense features and one weight per id (see the module doc).
pub fn logistic_regression(cfg: &CtrModelConfig) -> Result<Graph> {
    let mut m = Ctr::new(cfg, false)?;
    let first = m.first_order(&cfg.vocab_sizes)?;
    let logit = m.b.op1("sum", &[first], &[("axes", Attr::Ints(vec![1]))])?;
    m.finish(logit)
}

const MLP_SPECS: &[AttrSpec] = &[
    AttrSpec::with_default("inputs", AttrKind::Int, AttrDefault::Int(32), "input features"),
    AttrSpec::with_default("hidden", AttrKind::Ints, AttrDefault::Ints(&[256, 256]), "hidden widths"),
    AttrSpec::with_default("classes", AttrKind::Int, AttrDefault::Int(8), "classes"),
    AttrSpec::with_default("activation", AttrKind::Str, AttrDefault::Str("relu"), "relu, gelu, silu, tanh or none"),
    AttrSpec::with_default("seed", AttrKind::Int, AttrDefault::Int(0), "seeds the initial weights"),
];

const CTR_SPECS: &[AttrSpec] = &[
    AttrSpec::with_default("num_dense", AttrKind::Int, AttrDefault::Int(13), "dense features"),
    AttrSpec::with_default(
        "vocab_sizes",
        AttrKind::Ints,
        AttrDefault::Ints(&[100_000; 26]),
        "vocabulary of each field",
    ),
    AttrSpec::with_default("embed_dim", AttrKind::Int, AttrDefault::Int(16), "embedding width"),
    AttrSpec::with_default("cross_layers", AttrKind::Int, AttrDefault::Int(3), "cross layers (dcn_v2)"),
    AttrSpec::with_default("cross_rank", AttrKind::Int, AttrDefault::Int(0), "cross rank, 0 = full (dcn_v2)"),
    AttrSpec::with_default("mlp", AttrKind::Ints, AttrDefault::Ints(&[512, 256, 128]), "deep tower widths"),
    AttrSpec::with_default("structure", AttrKind::Str, AttrDefault::Str("parallel"), "parallel or stacked (dcn_v2)"),
    AttrSpec::with_default("seed", AttrKind::Int, AttrDefault::Int(0), "seeds the initial weights"),
];

/// The models [`model_by_name`] builds.
pub fn model_names() -> &'static [&'static str] {
    &["ctr_mlp", "dcn_v2", "deepfm", "logistic_regression", "mlp_classifier"]
}

/// The attribute specs of model `name` (for introspection).
pub fn model_attrs(name: &str) -> Result<&'static [AttrSpec]> {
    match name {
        "mlp_classifier" => Ok(MLP_SPECS),
        "ctr_mlp" | "dcn_v2" | "deepfm" | "logistic_regression" => Ok(CTR_SPECS),
        other => Err(Error::NotFound(format!("no model named `{other}` (models: {:?})", model_names()))),
    }
}

fn size(attrs: &Attrs, name: &str) -> Result<usize> {
    let v = attrs.int(name);
    usize::try_from(v).map_err(|_| Error::range("attrs", format!("`{name}` must be >= 0, given {v}")))
}

fn sizes(attrs: &Attrs, name: &str) -> Result<Vec<usize>> {
    attrs
        .ints(name)
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            usize::try_from(v).map_err(|_| Error::range("attrs", format!("`{name}[{i}]` must be >= 0, given {v}")))
        })
        .collect()
}

/// Builds model `name` (`mlp_classifier`, `dcn_v2`, `deepfm`, `logistic_regression`) from
/// typed attributes named like the config fields (`structure` is "parallel" or "stacked",
/// `seed` an int); omitted ones take the config defaults.
pub fn model_by_name(name: &str, attrs: &[(&str, Attr)]) -> Result<Graph> {
    let what = format!("model `{name}`");
    let a = Attrs::resolve(&what, model_attrs(name)?, attrs)?;
    let tag = |e| crate::ops::util::prefix(&what, e);
    if name == "mlp_classifier" {
        let cfg = MlpClassifierConfig {
            inputs: size(&a, "inputs").map_err(tag)?,
            hidden: sizes(&a, "hidden").map_err(tag)?,
            classes: size(&a, "classes").map_err(tag)?,
            activation: a.str("activation").to_string(),
            seed: a.int("seed") as u64,
        };
        return mlp_classifier(&cfg).map_err(tag);
    }
    let structure = match a.str("structure") {
        "parallel" => CrossStructure::Parallel,
        "stacked" => CrossStructure::Stacked,
        other => {
            return Err(tag(Error::invalid(
                "attrs",
                format!("`structure` must be \"parallel\" or \"stacked\", given {other:?}"),
            )));
        }
    };
    let cfg = CtrModelConfig {
        num_dense: size(&a, "num_dense").map_err(tag)?,
        vocab_sizes: sizes(&a, "vocab_sizes").map_err(tag)?,
        embed_dim: size(&a, "embed_dim").map_err(tag)?,
        cross_layers: size(&a, "cross_layers").map_err(tag)?,
        cross_rank: size(&a, "cross_rank").map_err(tag)?,
        mlp: sizes(&a, "mlp").map_err(tag)?,
        structure,
        seed: a.int("seed") as u64,
    };
    match name {
        "dcn_v2" => dcn_v2(&cfg),
        "deepfm" => deepfm(&cfg),
        "ctr_mlp" => ctr_mlp(&cfg),
        _ => logistic_regression(&cfg),
    }
    .map_err(tag)
}
