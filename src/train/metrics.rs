//! Evaluation metrics: exact ROC AUC (ties averaged), log-loss and accuracy (binary and multiclass).
//!
//! Every metric is computed in f64 and checks its input: lengths must agree, the set must not
//! be empty, scores must be finite and labels must be valid, so a mistake upstream (NaN
//! scores, logits passed as probabilities, labels of another length) is an error naming the
//! argument rather than a silently wrong number.

use crate::error::{Error, Result};

/// The probability clamp of [`log_loss`]: probabilities are taken in `[LOG_LOSS_EPS, 1 −
/// LOG_LOSS_EPS]`, so a confidently wrong prediction costs at most `−ln(1e-7) ≈ 16.1` rather than
/// infinity (the value Keras uses).
pub const LOG_LOSS_EPS: f64 = 1e-7;

/// A number a metric reads: scores and labels may be f32, f64 or integers.
pub trait MetricValue: Copy {
    /// The value as f64.
    fn to_f64(self) -> f64;
}

macro_rules! metric_value {
    ($($t:ty),*) => {$(
        impl MetricValue for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
metric_value!(f32, f64, i64, i32, u8);

fn check_lengths(n_scores: usize, n_labels: usize, scores: &'static str) -> Result<()> {
    if n_scores != n_labels {
        return Err(Error::shape("labels", format!("{n_labels} labels for {n_scores} {scores}")));
    }
    if n_scores == 0 {
        return Err(Error::invalid(scores, "is empty: a metric needs at least one sample"));
    }
    Ok(())
}

/// Binary labels as booleans: each must be exactly 0 or 1.
fn binary_labels<L: MetricValue>(labels: &[L]) -> Result<Vec<bool>> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| match l.to_f64() {
            0.0 => Ok(false),
            1.0 => Ok(true),
            v => Err(Error::invalid("labels", format!("label {i} is {v}, binary labels must be 0 or 1"))),
        })
        .collect()
}

fn finite_scores<S: MetricValue>(scores: &[S], arg: &'static str) -> Result<Vec<f64>> {
    scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let v = s.to_f64();
            if v.is_finite() { Ok(v) } else { Err(Error::invalid(arg, format!("element {i} is {v}, not finite"))) }
        })
        .collect()
}

/// The exact area under the ROC curve: the Mann–Whitney U of the positives' ranks, with tied
/// scores given their average rank (so a tie between a positive and a negative counts ½).
/// Scores may be probabilities or logits (only their order matters).
///
/// Errors: lengths differ, the set is empty, a score is not finite, a label is not 0 or 1,
/// or only one class is present (AUC is then undefined).
pub fn auc<S: MetricValue, L: MetricValue>(scores: &[S], labels: &[L]) -> Result<f64> {
    check_lengths(scores.len(), labels.len(), "scores")?;
    let s = finite_scores(scores, "scores")?;
    let y = binary_labels(labels)?;
    let n_pos = y.iter().filter(|&&p| p).count();
    let n_neg = y.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(Error::invalid(
            "labels",
            format!("AUC needs both classes, given {n_pos} positives and {n_neg} negatives"),
        ));
    }
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_unstable_by(|&a, &b| s[a].total_cmp(&s[b]));
    // Ranks are 1-based; a run of equal scores at positions i..j shares the rank (i+1+j)/2.
    let mut pos_rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && s[order[j]] == s[order[i]] {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        let pos_in_run = order[i..j].iter().filter(|&&k| y[k]).count();
        pos_rank_sum += avg_rank * pos_in_run as f64;
        i = j;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    Ok((pos_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Mean binary cross-entropy `−[y ln p + (1−y) ln(1−p)]` of probabilities `probs` against 0/1
/// labels, with `p` clamped to `[LOG_LOSS_EPS, 1 − LOG_LOSS_EPS]` (see [`LOG_LOSS_EPS`]).
///
/// Errors: lengths differ, the set is empty, a probability is not finite or outside [0, 1]
/// (logits passed by mistake), a label is not 0 or 1.
pub fn log_loss<S: MetricValue, L: MetricValue>(probs: &[S], labels: &[L]) -> Result<f64> {
    check_lengths(probs.len(), labels.len(), "probs")?;
    let p = probabilities(probs)?;
    let y = binary_labels(labels)?;
    let total: f64 = p
        .iter()
        .zip(&y)
        .map(|(&p, &y)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            -(if y { p.ln() } else { (1.0 - p).ln() })
        })
        .sum();
    Ok(total / p.len() as f64)
}

fn probabilities<S: MetricValue>(probs: &[S]) -> Result<Vec<f64>> {
    let p = finite_scores(probs, "probs")?;
    if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(Error::invalid("probs", format!("element {i} is {}, probabilities must lie in [0, 1]", p[i])));
    }
    Ok(p)
}

/// The fraction of binary predictions that match 0/1 labels, predicting 1 when the probability
/// is above 0.5 (exactly 0.5 predicts 0, as a zero logit does in scikit-learn's `predict`).
///
/// Errors: as [`log_loss`].
pub fn accuracy<S: MetricValue, L: MetricValue>(probs: &[S], labels: &[L]) -> Result<f64> {
    check_lengths(probs.len(), labels.len(), "probs")?;
    let p = probabilities(probs)?;
    let y = binary_labels(labels)?;
    let hits = p.iter().zip(&y).filter(|&(&p, &y)| (p > 0.5) == y).count();
    Ok(hits as f64 / p.len() as f64)
}

/// The fraction of rows of `logits` (`[n, n_classes]`, row-major) whose largest entry is at the
/// label's index; on a tie the first largest entry is the prediction.
///
/// Errors: `n_classes` is 0, `logits.len()` is not `labels.len() · n_classes`, the set is empty,
/// a logit is not finite, a label is outside `[0, n_classes)`.
pub fn accuracy_multiclass<S: MetricValue>(logits: &[S], n_classes: usize, labels: &[i64]) -> Result<f64> {
    if n_classes == 0 {
        return Err(Error::invalid("n_classes", "must be at least 1"));
    }
    if labels.len().checked_mul(n_classes) != Some(logits.len()) {
        return Err(Error::shape(
            "labels",
            format!("{} labels for {} logits in rows of {n_classes}", labels.len(), logits.len()),
        ));
    }
    check_lengths(labels.len(), labels.len(), "logits")?;
    let z = finite_scores(logits, "logits")?;
    let mut hits = 0usize;
    for (i, (row, &label)) in z.chunks_exact(n_classes).zip(labels).enumerate() {
        if !(0..n_classes as i64).contains(&label) {
            return Err(Error::range("labels", format!("label {i} is {label}, classes are 0..{n_classes}")));
        }
        let mut best = 0;
        for (c, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = c;
            }
        }
        hits += usize::from(best as i64 == label);
    }
    Ok(hits as f64 / labels.len() as f64)
}
