//! Metrics against hand-computed values (ties included), a brute-force AUC reference, and every bad input.

use deepseek::Error;
use deepseek::rng::Generator;
use deepseek::train::metrics::{LOG_LOSS_EPS, accuracy, accuracy_multiclass, auc, log_loss};

/// AUC as the fraction of (positive, negative) pairs ordered correctly, ties counting ½: O(n²).
fn brute_auc(scores: &[f64], labels: &[f64]) -> f64 {
    let (mut good, mut pairs) = (0.0, 0.0);
    for (i, &si) in scores.iter().enumerate() {
        for (j, &sj) in scores.iter().enumerate() {
            if labels[i] == 1.0 && labels[j] == 0.0 {
                pairs += 1.0;
                good += if si > sj {
                    1.0
                } else if si == sj {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    good / pairs
}

#[test]
fn auc_matches_hand_computed_values() {
    // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered.
    assert_eq!(auc(&[0.1f32, 0.4, 0.35, 0.8], &[0f32, 0., 1., 1.]).unwrap(), 0.75);
    // A tie between a positive and a negative counts ½: (1 + ½ + 2) / 4.
    assert_eq!(auc(&[0.1f64, 0.5, 0.5, 0.9], &[0i64, 0, 1, 1]).unwrap(), 0.875);
    // All scores tied: ½.
    assert_eq!(auc(&[0.3f32; 4], &[0f32, 1., 0., 1.]).unwrap(), 0.5);
    // Perfect and reversed orderings; logits work as well as probabilities.
    assert_eq!(auc(&[-3.0f64, -1.0, 2.0, 5.0], &[0f64, 0., 1., 1.]).unwrap(), 1.0);
    assert_eq!(auc(&[-3.0f64, -1.0, 2.0, 5.0], &[1f64, 1., 0., 0.]).unwrap(), 0.0);
}

#[test]
fn auc_equals_the_pair_count_on_random_data_with_many_ties() {
    let mut g = Generator::new(3);
    for n in [2usize, 5, 50, 333] {
        // Scores on a coarse grid, so that ties are frequent.
        let scores: Vec<f64> = (0..n).map(|_| (g.uniform() * 7.0).floor()).collect();
        let mut labels: Vec<f64> = (0..n).map(|_| f64::from(g.uniform() < 0.4)).collect();
        labels[0] = 0.0;
        labels[1] = 1.0;
        let got = auc(&scores, &labels).unwrap();
        let want = brute_auc(&scores, &labels);
        assert!((got - want).abs() <= 1e-12, "n={n}: {got} vs {want}");
    }
}

#[test]
fn auc_refuses_bad_input() {
    let single = auc(&[0.1f32, 0.2], &[1f32, 1.]).unwrap_err();
    assert!(single.to_string().contains("both classes"), "{single}");
    let mismatch = auc(&[0.1f32, 0.2, 0.3], &[0f32, 1.]).unwrap_err();
    assert!(matches!(mismatch, Error::ShapeMismatch { arg: "labels", .. }), "{mismatch}");
    let nan = auc(&[0.1f32, f32::NAN], &[0f32, 1.]).unwrap_err();
    assert!(nan.to_string().contains("scores") && nan.to_string().contains("element 1"), "{nan}");
    let inf = auc(&[f64::INFINITY, 0.0], &[0f64, 1.]).unwrap_err();
    assert!(inf.to_string().contains("not finite"), "{inf}");
    let label = auc(&[0.1f32, 0.2], &[0f32, 2.]).unwrap_err();
    assert!(label.to_string().contains("label 1 is 2"), "{label}");
    let empty = auc::<f32, f32>(&[], &[]).unwrap_err();
    assert!(empty.to_string().contains("empty"), "{empty}");
}

#[test]
fn log_loss_matches_hand_computed_values_and_clamps() {
    // −(ln 0.9 + ln 0.8) / 2.
    let got = log_loss(&[0.9f64, 0.2], &[1f64, 0.]).unwrap();
    assert!((got - 0.164_252_033_486_018).abs() < 1e-15, "{got}");
    // A certain, wrong prediction costs −ln(eps), not infinity.
    let clamped = log_loss(&[0.0f64, 1.0], &[1f64, 0.]).unwrap();
    assert!((clamped - (-LOG_LOSS_EPS.ln())).abs() < 1e-9, "{clamped}");
    assert!((clamped - 16.118_095_650_958_32).abs() < 1e-9);
    // Exact and certain predictions cost (almost) nothing.
    assert!(log_loss(&[1.0f32, 0.0], &[1f32, 0.]).unwrap() < 1e-6);
}

#[test]
fn log_loss_refuses_logits_and_bad_labels() {
    let logits = log_loss(&[2.5f32, 0.1], &[1f32, 0.]).unwrap_err();
    assert!(logits.to_string().contains("[0, 1]") && logits.to_string().contains("probs"), "{logits}");
    assert!(log_loss(&[0.5f32], &[0.5f32]).unwrap_err().to_string().contains("must be 0 or 1"));
    assert!(log_loss(&[f32::NAN], &[1f32]).is_err());
    assert!(matches!(log_loss(&[0.5f32], &[1f32, 0.]), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn binary_accuracy_thresholds_at_one_half() {
    // Predictions 1, 0 (exactly 0.5 predicts 0), 0, 1 against 1, 0, 1, 1.
    assert_eq!(accuracy(&[0.7f32, 0.5, 0.2, 0.9], &[1f32, 0., 1., 1.]).unwrap(), 0.75);
    assert_eq!(accuracy(&[0.5000001f64], &[1f64]).unwrap(), 1.0);
    assert!(accuracy(&[1.5f32], &[1f32]).is_err());
    assert!(accuracy::<f32, f32>(&[], &[]).is_err());
}

#[test]
fn multiclass_accuracy_takes_the_first_largest_logit() {
    // Row 0 predicts 1 (right), row 1 ties 0 and 1 and predicts 0 (wrong), row 2 predicts 2 (right).
    let logits = [1.0f32, 2.0, 0.0, 3.0, 3.0, 1.0, 0.0, 0.0, 5.0];
    let got = accuracy_multiclass(&logits, 3, &[1, 1, 2]).unwrap();
    assert!((got - 2.0 / 3.0).abs() < 1e-15, "{got}");
    assert_eq!(accuracy_multiclass(&logits, 3, &[1, 0, 2]).unwrap(), 1.0);
}

#[test]
fn multiclass_accuracy_refuses_bad_input() {
    let logits = [1.0f32, 2.0, 0.0, 3.0];
    let shape = accuracy_multiclass(&logits, 3, &[0]).unwrap_err();
    assert!(matches!(shape, Error::ShapeMismatch { arg: "labels", .. }), "{shape}");
    let range = accuracy_multiclass(&logits, 2, &[0, 2]).unwrap_err();
    assert!(matches!(range, Error::OutOfRange { arg: "labels", .. }), "{range}");
    assert!(accuracy_multiclass(&logits, 2, &[0, -1]).is_err());
    assert!(accuracy_multiclass(&logits, 0, &[]).unwrap_err().to_string().contains("n_classes"));
    assert!(accuracy_multiclass(&[f64::NAN, 0.0], 2, &[0]).is_err());
    assert!(accuracy_multiclass::<f32>(&[], 2, &[]).unwrap_err().to_string().contains("empty"));
}
