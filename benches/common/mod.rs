//! Timing helpers the benchmark binaries share.

use std::time::Instant;

/// Median seconds per call of `f`, over `samples` samples of `reps` calls each (after warm-up).
pub fn median_secs(samples: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..reps.max(1) {
        f();
    }
    let mut t: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}
