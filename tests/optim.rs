//! Optimizers, row coalescing, schedules and clipping against hand-computed steps; state round trips; bad input.

use deepseek::Tensor;
use deepseek::ops::Attr;
use deepseek::tensor::grad::Gradient;
use deepseek::train::optim::{LrSchedule, Optimizer, OptimizerConfig, clip_grad_norm, coalesce_rows};

/// A name, its attributes, and what to expect (an error text or a learning rate).
type Case<X> = (&'static str, Vec<(&'static str, Attr)>, X);

fn t64(data: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape).unwrap()
}

fn dense(data: &[f64], shape: &[usize]) -> Gradient {
    Gradient::Dense(t64(data, shape))
}

fn rows(idx: &[i64], data: &[f64], shape: &[usize]) -> Gradient {
    Gradient::Rows { indices: Tensor::from_slice(idx, &[idx.len()]).unwrap(), rows: t64(data, shape) }
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>().unwrap()
}

fn close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "got {got:?}, want {want:?}");
    }
}

fn opt(name: &str, attrs: &[(&str, Attr)]) -> Box<dyn Optimizer> {
    OptimizerConfig::from_name(name, attrs).unwrap().build()
}

fn slot(o: &dyn Optimizer, name: &str) -> Tensor {
    o.state().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no slot {name}")).1
}

fn err_text<T>(r: deepseek::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn sgd_plain_two_steps() {
    // w = [1, -2], lr 0.1: g1 = [0.5, 1] → [0.95, -2.1]; g2 = [-1, 2] → [1.05, -2.3].
    let mut o = opt("sgd", &[]);
    let mut w = t64(&[1.0, -2.0], &[2]);
    o.update("w", &mut w, &dense(&[0.5, 1.0], &[2]), 0.1).unwrap();
    close(&vals(&w), &[0.95, -2.1], 1e-15);
    o.update("w", &mut w, &dense(&[-1.0, 2.0], &[2]), 0.1).unwrap();
    close(&vals(&w), &[1.05, -2.3], 1e-15);
    assert!(o.state().is_empty(), "plain SGD keeps no state");
}

#[test]
fn sgd_heavy_ball_and_nesterov_two_steps() {
    // μ 0.9, wd 0.1, lr 0.1, w0 1, g1 0.5, g2 0.2.
    // Heavy ball: d1 = 0.5 + 0.1·1 = 0.6, v1 = 0.6, w1 = 1 − 0.06 = 0.94;
    //             d2 = 0.2 + 0.1·0.94 = 0.294, v2 = 0.9·0.6 + 0.294 = 0.834, w2 = 0.94 − 0.0834 = 0.8566.
    // Nesterov:   v1 = 0.6, step 0.6 + 0.9·0.6 = 1.14, w1 = 0.886;
    //             d2 = 0.2 + 0.0886 = 0.2886, v2 = 0.54 + 0.2886 = 0.8286,
    //             step 0.2886 + 0.9·0.8286 = 1.03434, w2 = 0.886 − 0.103434 = 0.782566.
    for (nesterov, w1, w2, v2) in [(false, 0.94, 0.8566, 0.834), (true, 0.886, 0.782566, 0.8286)] {
        let attrs =
            [("momentum", Attr::Float(0.9)), ("nesterov", Attr::Bool(nesterov)), ("weight_decay", Attr::Float(0.1))];
        let mut o = opt("sgd", &attrs);
        let mut w = t64(&[1.0], &[1]);
        o.update("w", &mut w, &dense(&[0.5], &[1]), 0.1).unwrap();
        close(&vals(&w), &[w1], 1e-14);
        o.update("w", &mut w, &dense(&[0.2], &[1]), 0.1).unwrap();
        close(&vals(&w), &[w2], 1e-14);
        close(&vals(&slot(&*o, "w/momentum")), &[v2], 1e-14);
    }
}

#[test]
fn adam_two_steps() {
    // β 0.9/0.999, eps 1e-8, lr 0.01, w0 [1, −1], g1 [0.5, 0.1], g2 [−0.25, 0.3].
    // Step 1: m = 0.1·g = [0.05, 0.01], v = 0.001·g² = [2.5e-4, 1e-5]; m̂ = g, √v̂ = |g|,
    //   w = w − 0.01·g/(|g| + 1e-8) = [1 − 0.0099999998, −1 − 0.009999999] = [0.9900000002, −1.009999999].
    // Step 2: m = 0.9·m + 0.1·g2 = [0.02, 0.039], v = 0.999·v + 0.001·g2² = [3.1225e-4, 9.999e-5];
    //   bc1 = 0.19, bc2 = 0.001999; w −= 0.01·(m/0.19)/(√(v/0.001999) + 1e-8)
    //   = [0.9900000002 − 0.0026633703, −1.009999999 − 0.0091778108].
    let mut o = opt("adam", &[]);
    let mut w = t64(&[1.0, -1.0], &[2]);
    o.update("w", &mut w, &dense(&[0.5, 0.1], &[2]), 0.01).unwrap();
    close(&vals(&w), &[0.9900000002, -1.009999999], 1e-13);
    o.update("w", &mut w, &dense(&[-0.25, 0.3], &[2]), 0.01).unwrap();
    close(&vals(&w), &[0.9873366298707846, -1.019177809779441], 1e-13);
    close(&vals(&slot(&*o, "w/exp_avg")), &[0.02, 0.039], 1e-13);
    close(&vals(&slot(&*o, "w/exp_avg_sq")), &[3.1225e-4, 9.999e-5], 1e-13);
    assert_eq!(slot(&*o, "w/step").to_vec::<i64>().unwrap(), vec![2]);
}

#[test]
fn adamw_decouples_decay_where_adam_adds_it_to_the_gradient() {
    // wd 0.1, otherwise as adam_two_steps.
    // Adam step 1: g' = g + 0.1·w = [0.6, 0.0]: element 0 moves by 0.01·0.6/(0.6 + 1e-8), element 1
    //   has g' = 0 and does not move at all: [0.9900000001666667, −1].
    // AdamW step 1: w ·= 1 − 0.01·0.1 = 0.999 → [0.999, −0.999], then the plain Adam step
    //   (±0.0099999998, ±0.009999999): [0.9890000002, −1.008999999].
    let wd = [("weight_decay", Attr::Float(0.1))];
    let (mut adam, mut adamw) = (opt("adam", &wd), opt("adamw", &wd));
    let (mut a, mut b) = (t64(&[1.0, -1.0], &[2]), t64(&[1.0, -1.0], &[2]));
    adam.update("w", &mut a, &dense(&[0.5, 0.1], &[2]), 0.01).unwrap();
    adamw.update("w", &mut b, &dense(&[0.5, 0.1], &[2]), 0.01).unwrap();
    close(&vals(&a), &[0.9900000001666667, -1.0], 1e-13);
    close(&vals(&b), &[0.9890000002, -1.008999999], 1e-13);
    adam.update("w", &mut a, &dense(&[-0.25, 0.3], &[2]), 0.01).unwrap();
    adamw.update("w", &mut b, &dense(&[-0.25, 0.3], &[2]), 0.01).unwrap();
    close(&vals(&a), &[0.9853191993058599, -1.0074413677096172], 1e-13);
    close(&vals(&b), &[0.9853476298705847, -1.017168809780441], 1e-13);
}

#[test]
fn adagrad_two_steps_with_initial_accumulator_and_decay() {
    // init 0.1, eps 1e-10, wd 0.05, lr 0.1, w0 [1, 2], g1 [0.3, −1], g2 [−0.4, 0.5].
    // Step 1: g' = [0.35, −0.9], sum = [0.1 + 0.1225, 0.1 + 0.81] = [0.2225, 0.91],
    //   w = [1 − 0.035/√0.2225, 2 + 0.09/√0.91] = [0.92580015, 2.09434564].
    // Step 2: g' = [−0.4 + 0.0462900, 0.5 + 0.1047173], sum += g'², w −= 0.1·g'/√sum.
    let attrs = [("initial_accumulator", Attr::Float(0.1)), ("weight_decay", Attr::Float(0.05))];
    let mut o = opt("adagrad", &attrs);
    let mut w = t64(&[1.0, 2.0], &[2]);
    o.update("w", &mut w, &dense(&[0.3, -1.0], &[2]), 0.1).unwrap();
    close(&vals(&w), &[0.9258001484152851, 2.0943456352950824], 1e-13);
    close(&vals(&slot(&*o, "w/sum")), &[0.2225, 0.91], 1e-13);
    o.update("w", &mut w, &dense(&[-0.4, 0.5], &[2]), 0.1).unwrap();
    close(&vals(&w), &[0.9857931683686292, 2.040805310969114], 1e-13);
    close(&vals(&slot(&*o, "w/sum")), &[0.347610758850403, 1.275682990864953], 1e-13);
}

#[test]
fn rowwise_adagrad_two_steps_as_in_algorithms_section_5() {
    // Table [[1, 2], [3, 4], [5, 6]], lr 0.1, eps 1e-10, no decay.
    // Step 1, rows {0: [0.3, 0.4], 2: [1, −1]}:
    //   row 0: G = (0.09 + 0.16)/2 = 0.125, m = 0.1/√0.125 = 0.28284271, w = [1 − 0.0848528, 2 − 0.1131371];
    //   row 2: G = (1 + 1)/2 = 1, m = 0.1/(1 + 1e-10), w = [4.90000000001, 6.09999999999].
    // Step 2, indices [2, 0, 2] (unsorted, duplicated) with rows [0.5, 0.5], [0, 0.2], [0.5, −0.5]
    //   coalesce to {0: [0, 0.2], 2: [1, 0]}:
    //   row 0: G = 0.125 + 0.04/2 = 0.145, m = 0.1/√0.145 = 0.26261287, w[1] = 1.88686292 − 0.05252257;
    //   row 2: G = 1 + 1/2 = 1.5, m = 0.1/√1.5 = 0.08164966, w[0] = 4.9 − 0.08164966.
    // Row 1 and its accumulator are never touched.
    let mut o = opt("rowwise_adagrad", &[]);
    let mut w = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]);
    o.update("emb", &mut w, &rows(&[0, 2], &[0.3, 0.4, 1.0, -1.0], &[2, 2]), 0.1).unwrap();
    let want1 = [0.9151471862816143, 1.8868629150421523, 3.0, 4.0, 4.90000000001, 6.09999999999];
    close(&vals(&w), &want1, 1e-13);
    close(&vals(&slot(&*o, "emb/row_sum")), &[0.125, 0.0, 1.0], 1e-15);
    o.update("emb", &mut w, &rows(&[2, 0, 2], &[0.5, 0.5, 0.0, 0.2, 0.5, -0.5], &[3, 2]), 0.1).unwrap();
    let want2 = [0.9151471862816143, 1.8343403419120563, 3.0, 4.0, 4.818350341923894, 6.09999999999];
    close(&vals(&w), &want2, 1e-13);
    close(&vals(&slot(&*o, "emb/row_sum")), &[0.145, 0.0, 1.5], 1e-15);
    assert_eq!(slot(&*o, "emb/row_sum").shape(), &[3]);
}

#[test]
fn rowwise_adagrad_l2_and_decoupled_decay() {
    // w [1, 2], g [0.3, 0.4], lr 0.1, wd 0.1.
    // L2: g' = [0.4, 0.6], G = (0.16 + 0.36)/2 = 0.26, m = 0.1/√0.26 = 0.19611614,
    //   w = (1 − 0.1·m)·w − m·g = [0.92155355, 1.88233032].
    // Decoupled: G = 0.125, m = 0.28284271, w = 0.99·w − m·g = [0.90514719, 1.86686292].
    for (decoupled, want, g_sum) in [
        (false, [0.9215535459601111, 1.8823303189401666], 0.26),
        (true, [0.9051471862816143, 1.8668629150421523], 0.125),
    ] {
        let attrs = [("weight_decay", Attr::Float(0.1)), ("decoupled_decay", Attr::Bool(decoupled))];
        let mut o = opt("rowwise_adagrad", &attrs);
        let mut w = t64(&[1.0, 2.0], &[1, 2]);
        o.update("emb", &mut w, &rows(&[0], &[0.3, 0.4], &[1, 2]), 0.1).unwrap();
        close(&vals(&w), &want, 1e-13);
        close(&vals(&slot(&*o, "emb/row_sum")), &[g_sum], 1e-14);
    }
}

#[test]
fn lazy_adam_two_steps_touches_only_rows_in_the_batch() {
    // Table [[1, 2], [3, 4], [5, 6]], lr 0.01, β 0.9/0.999, eps 1e-8.
    // Step 1 (t = 1), row 1 g [0.5, −0.5]: α = 0.01·√0.001/0.1 = 0.0031622777;
    //   m = [0.05, −0.05], v = [2.5e-4, 2.5e-4], w −= α·m/(√v + 1e-8) = ±0.0099999937.
    // Step 2 (t = 2), indices [1, 2, 1] rows [0.1, 0.1], [1, 0], [0.1, 0.1] → {1: [0.2, 0.2], 2: [1, 0]}:
    //   α = 0.01·√0.001999/0.19 = 0.0023531673; row 1: m = [0.065, −0.025], v = 2.8975e-4;
    //   row 2 (first touch): m = [0.1, 0], v = [0.001, 0], w[2][0] = 5 − α·0.1/(√0.001 + 1e-8).
    let mut o = opt("lazy_adam", &[]);
    let mut w = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]);
    o.update("emb", &mut w, &rows(&[1], &[0.5, -0.5], &[1, 2]), 0.01).unwrap();
    close(&vals(&w), &[1.0, 2.0, 2.9900000063245513, 4.009999993675448, 5.0, 6.0], 1e-13);
    o.update("emb", &mut w, &rows(&[1, 2, 1], &[0.1, 0.1, 1.0, 0.0, 0.1, 0.1], &[3, 2]), 0.01).unwrap();
    let want = [1.0, 2.0, 2.9810142595577123, 4.0134560501242325, 4.992558634117497, 6.0];
    close(&vals(&w), &want, 1e-13);
    close(&vals(&slot(&*o, "emb/exp_avg")), &[0.0, 0.0, 0.065, -0.025, 0.1, 0.0], 1e-13);
    close(&vals(&slot(&*o, "emb/exp_avg_sq")), &[0.0, 0.0, 2.8975e-4, 2.8975e-4, 0.001, 0.0], 1e-13);
    assert_eq!(vals(&w)[..2], [1.0, 2.0], "row 0 never touched");
}

/// A big f32 table (parallel path) and a Zipf-ish batch with duplicates: untouched rows and slots
/// must stay bitwise unchanged, touched rows must match a per-row reference.
#[test]
fn sparse_optimizers_leave_untouched_rows_and_slots_bitwise_unchanged() {
    let (n, d) = (20_000usize, 16usize);
    let mut g = deepseek::Generator::new(7);
    let table: Vec<f32> = (0..n * d).map(|_| g.normal() as f32).collect();
    let batch = |seed: u64| -> (Vec<i64>, Vec<f32>) {
        let mut g = deepseek::Generator::new(seed);
        let idx: Vec<i64> = (0..6000).map(|_| ((g.uniform().powi(3)) * n as f64) as i64).collect();
        let r: Vec<f32> = (0..idx.len() * d).map(|_| g.normal() as f32).collect();
        (idx, r)
    };
    // Decoupled decay on row-wise Adagrad: a densified update would shrink every row.
    let decay = [("weight_decay", Attr::Float(0.01)), ("decoupled_decay", Attr::Bool(true))];
    for (name, attrs) in [("rowwise_adagrad", &decay[..]), ("lazy_adam", &[][..])] {
        let mut o = opt(name, attrs);
        let mut w = Tensor::from_slice(&table, &[n, d]).unwrap();
        let mut before_w = table.clone();
        let mut before_state: Vec<(String, Vec<f32>)> = Vec::new();
        for seed in [1, 2] {
            let (idx, r) = batch(seed);
            let grad = Gradient::Rows {
                indices: Tensor::from_slice(&idx, &[idx.len()]).unwrap(),
                rows: Tensor::from_slice(&r, &[idx.len(), d]).unwrap(),
            };
            o.update("emb", &mut w, &grad, 0.05).unwrap();
            let after_w = w.to_vec::<f32>().unwrap();
            let touched: std::collections::BTreeSet<usize> = idx.iter().map(|&i| i as usize).collect();
            assert!(touched.len() < n / 2 && touched.len() > 100, "{name}: a real sparse batch");
            let state: Vec<(String, Vec<f32>)> = o
                .state()
                .iter()
                .filter(|(s, _)| !s.ends_with("/step"))
                .map(|(s, t)| (s.clone(), t.to_vec().unwrap()))
                .collect();
            for row in (0..n).filter(|r| !touched.contains(r)) {
                assert_eq!(
                    after_w[row * d..(row + 1) * d].iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    before_w[row * d..(row + 1) * d].iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "{name}: untouched row {row} changed"
                );
                for (s, v) in &state {
                    let per = v.len() / n;
                    let old: Vec<u32> = match before_state.iter().find(|(b, _)| b == s) {
                        Some((_, b)) => b[row * per..(row + 1) * per].iter().map(|x| x.to_bits()).collect(),
                        None => vec![0f32.to_bits(); per],
                    };
                    let new: Vec<u32> = v[row * per..(row + 1) * per].iter().map(|x| x.to_bits()).collect();
                    assert_eq!(new, old, "{name}: slot {s} of untouched row {row} changed");
                }
            }
            for &row in &touched {
                assert!(after_w[row * d..(row + 1) * d] != before_w[row * d..(row + 1) * d], "{name}: row {row} moved");
            }
            before_w = after_w;
            before_state = state;
        }
    }
}

#[test]
fn parallel_row_updates_match_a_per_row_reference() {
    // Row-wise Adagrad over many rows (the pool splits them) against the formula applied row by row.
    let (n, d) = (30_000usize, 8usize);
    let mut g = deepseek::Generator::new(3);
    let table: Vec<f64> = (0..n * d).map(|_| g.normal()).collect();
    let idx: Vec<i64> = (0..n as i64).filter(|i| i % 3 != 1).rev().collect();
    let r: Vec<f64> = (0..idx.len() * d).map(|_| g.normal()).collect();
    let mut o = opt("rowwise_adagrad", &[]);
    let mut w = t64(&table, &[n, d]);
    let grad =
        Gradient::Rows { indices: Tensor::from_slice(&idx, &[idx.len()]).unwrap(), rows: t64(&r, &[idx.len(), d]) };
    o.update("emb", &mut w, &grad, 0.1).unwrap();
    let got = vals(&w);
    let mut want = table.clone();
    for (k, &i) in idx.iter().enumerate() {
        let (i, gk) = (i as usize, &r[k * d..(k + 1) * d]);
        let big_g = gk.iter().map(|x| x * x).sum::<f64>() / d as f64;
        let m = 0.1 / (big_g.sqrt() + 1e-10);
        for j in 0..d {
            want[i * d + j] -= m * gk[j];
        }
    }
    close(&got, &want, 1e-12);
}

#[test]
fn every_touched_row_loop_over_many_scattered_rows_matches_its_reference() {
    // Rows far apart in a big table, as embedding batches touch them: the pool splits the
    // rows into pieces and each loop prefetches rows ahead of the one it updates, up to each
    // piece's end. Plain SGD and Adagrad without decay must equal their dense updates
    // bitwise; lazy Adam's first step must equal its formula row by row.
    let (n, d) = (50_000usize, 4usize);
    let mut g = deepseek::Generator::new(5);
    let table: Vec<f64> = (0..n * d).map(|_| g.normal()).collect();
    let idx: Vec<i64> = (0..n as i64).filter(|i| i % 7 == 3 || i % 11 == 0).collect();
    let r: Vec<f64> = (0..idx.len() * d).map(|_| g.normal()).collect();
    let mut scattered = vec![0.0; n * d];
    for (k, &i) in idx.iter().enumerate() {
        scattered[i as usize * d..(i as usize + 1) * d].copy_from_slice(&r[k * d..(k + 1) * d]);
    }
    for name in ["sgd", "adagrad"] {
        let (mut by_rows, mut by_dense) = (t64(&table, &[n, d]), t64(&table, &[n, d]));
        opt(name, &[]).update("emb", &mut by_rows, &rows(&idx, &r, &[idx.len(), d]), 0.1).unwrap();
        opt(name, &[]).update("emb", &mut by_dense, &dense(&scattered, &[n, d]), 0.1).unwrap();
        assert_eq!(vals(&by_rows), vals(&by_dense), "{name}: row update differs from the dense one");
    }
    let mut w = t64(&table, &[n, d]);
    opt("lazy_adam", &[]).update("emb", &mut w, &rows(&idx, &r, &[idx.len(), d]), 0.01).unwrap();
    let alpha = 0.01 * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
    let mut want = table.clone();
    for (k, &i) in idx.iter().enumerate() {
        for j in 0..d {
            let gk = r[k * d + j];
            let (m, v) = (0.1 * gk, 0.001 * gk * gk);
            want[i as usize * d + j] -= alpha * m / (v.sqrt() + 1e-8);
        }
    }
    close(&vals(&w), &want, 1e-12);
}

#[test]
fn dense_optimizers_apply_row_gradients_as_scattered_dense_ones() {
    // Rows {2: a, 0: b, 2: c} equal the dense gradient [b, 0, a + c] (values exact in binary).
    let idx = [2, 0, 2];
    let r = [0.5, 0.25, 1.0, -1.0, 0.125, 2.0];
    let d = [1.0, -1.0, 0.0, 0.0, 0.625, 2.25];
    let configs: [(&str, Vec<(&str, Attr)>); 5] = [
        ("sgd", vec![]),
        ("sgd", vec![("momentum", Attr::Float(0.9)), ("weight_decay", Attr::Float(0.01))]),
        ("adam", vec![]),
        ("adagrad", vec![]),
        ("adagrad", vec![("weight_decay", Attr::Float(0.1))]),
    ];
    for (name, attrs) in configs {
        let (mut a, mut b) = (opt(name, &attrs), opt(name, &attrs));
        let init = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (mut wa, mut wb) = (t64(&init, &[3, 2]), t64(&init, &[3, 2]));
        for _ in 0..2 {
            a.update("w", &mut wa, &rows(&idx, &r, &[3, 2]), 0.1).unwrap();
            b.update("w", &mut wb, &dense(&d, &[3, 2]), 0.1).unwrap();
        }
        let bits = |t: &Tensor| vals(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&wa), bits(&wb), "{name} {attrs:?}");
        for ((na, ta), (nb, tb)) in a.state().iter().zip(b.state().iter()) {
            assert_eq!(na, nb);
            if ta.dtype() == deepseek::DType::F64 {
                assert_eq!(bits(ta), bits(tb), "{name}: slot {na}");
            } else {
                assert_eq!(ta.to_vec::<i64>().unwrap(), tb.to_vec::<i64>().unwrap(), "{name}: {na}");
            }
        }
    }
}

#[test]
fn f32_parameters_compute_in_f32_close_to_f64() {
    for name in ["sgd", "adam", "adamw", "adagrad", "rowwise_adagrad", "lazy_adam"] {
        let (mut a, mut b) = (opt(name, &[]), opt(name, &[]));
        let init = [0.5, -1.5, 2.0, 0.25];
        let mut w64 = t64(&init, &[2, 2]);
        let mut w32 = Tensor::from_slice(&init.map(|x| x as f32), &[2, 2]).unwrap();
        for g in [[0.1, -0.2, 0.3, 0.4], [-0.5, 0.25, 0.125, 1.0]] {
            a.update("w", &mut w64, &dense(&g, &[2, 2]), 0.05).unwrap();
            let g32 = Gradient::Dense(Tensor::from_slice(&g.map(|x| x as f32), &[2, 2]).unwrap());
            b.update("w", &mut w32, &g32, 0.05).unwrap();
        }
        assert_eq!(w32.dtype(), deepseek::DType::F32);
        let got: Vec<f64> = w32.to_vec::<f32>().unwrap().iter().map(|&x| x as f64).collect();
        close(&got, &vals(&w64), 1e-6);
        assert!(b.state().iter().all(|(n, t)| n.ends_with("/step") || t.dtype() == deepseek::DType::F32), "{name}");
    }
}

#[test]
fn coalesce_rows_sums_duplicates_in_ascending_order() {
    let idx = Tensor::from_slice(&[3i64, 1, 3, 0, 1], &[5]).unwrap();
    let r = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], &[5, 2]);
    let (ui, ur) = coalesce_rows(&idx, &r).unwrap();
    assert_eq!(ui.to_vec::<i64>().unwrap(), vec![0, 1, 3]);
    assert_eq!(ur.shape(), &[3, 2]);
    assert_eq!(vals(&ur), vec![7.0, 8.0, 12.0, 14.0, 6.0, 8.0]);
    // i32 indices are widened; trailing row dimensions are kept.
    let idx32 = Tensor::from_slice(&[2i32, 2], &[2]).unwrap();
    let r3 = Tensor::from_slice(&[1f32, 2.0, 3.0, 4.0], &[2, 1, 2]).unwrap();
    let (ui, ur) = coalesce_rows(&idx32, &r3).unwrap();
    assert_eq!(ui.to_vec::<i64>().unwrap(), vec![2]);
    assert_eq!(ur.shape(), &[1, 1, 2]);
    assert_eq!(ur.to_vec::<f32>().unwrap(), vec![4.0, 6.0]);
    // Empty stays empty.
    let (ui, ur) = coalesce_rows(&Tensor::from_slice::<i64>(&[], &[0]).unwrap(), &t64(&[], &[0, 3])).unwrap();
    assert_eq!((ui.shape(), ur.shape()), (&[0usize][..], &[0usize, 3][..]));
}

#[test]
fn coalesce_rows_of_many_indices_and_strided_rows_matches_its_reference() {
    // Enough indices for the radix sort, with duplicates: indices below 2^31 (three radix
    // passes) and below 2^39 (too wide to pack: the comparison sort). The rows are one field of
    // a [n, 3, 2] batch gradient, read in place through its stride, as a graph's per-table row
    // gradient is.
    let n = 1000usize;
    let mut g = deepseek::Generator::new(9);
    let batch: Vec<f64> = (0..n * 6).map(|_| g.normal()).collect();
    let rows = t64(&batch, &[n, 3, 2]).slice(1, 1, 2, 1).unwrap().reshape(&[n as i64, 2]).unwrap();
    assert!(!rows.is_contiguous());
    for drop_bits in [33, 25] {
        let idx: Vec<i64> =
            (0..n).map(|k| if k % 3 == 0 { (k % 40) as i64 } else { (g.next_u64() >> drop_bits) as i64 }).collect();
        // Reference: ascending unique indices, each row the sum in order of appearance.
        let mut want: std::collections::BTreeMap<i64, [f64; 2]> = Default::default();
        for (k, &i) in idx.iter().enumerate() {
            let r = [batch[k * 6 + 2], batch[k * 6 + 3]];
            want.entry(i).and_modify(|s| (s[0], s[1]) = (s[0] + r[0], s[1] + r[1])).or_insert(r);
        }
        let (ui, ur) = coalesce_rows(&Tensor::from_slice(&idx, &[n]).unwrap(), &rows).unwrap();
        assert_eq!(
            ui.to_vec::<i64>().unwrap(),
            want.keys().copied().collect::<Vec<_>>(),
            "indices < 2^{}",
            64 - drop_bits
        );
        let sums: Vec<f64> = want.values().flatten().copied().collect();
        assert_eq!(vals(&ur), sums, "indices < 2^{}: sums must be bitwise, in order of appearance", 64 - drop_bits);
    }
    // The optimizers coalesce the same way: on a small table (indices modulo its rows), SGD
    // given the uncoalesced strided rows equals SGD given coalesce_rows' result, bitwise.
    let small: Vec<i64> = (0..n as i64).map(|k| (k * 37) % 97).collect();
    let small_t = Tensor::from_slice(&small, &[n]).unwrap();
    let (si, sr) = coalesce_rows(&small_t, &rows).unwrap();
    let table: Vec<f64> = (0..97 * 2).map(|k| k as f64 * 0.5).collect();
    let (mut a, mut b) = (t64(&table, &[97, 2]), t64(&table, &[97, 2]));
    opt("sgd", &[]).update("emb", &mut a, &Gradient::Rows { indices: small_t, rows }, 0.1).unwrap();
    opt("sgd", &[]).update("emb", &mut b, &Gradient::Rows { indices: si, rows: sr }, 0.1).unwrap();
    assert_eq!(vals(&a), vals(&b));
}

#[test]
fn coalesce_rows_rejects_bad_input() {
    let r = t64(&[1.0, 2.0], &[2, 1]);
    assert!(err_text(coalesce_rows(&Tensor::from_slice(&[0i64, -1], &[2]).unwrap(), &r)).contains("-1"));
    assert!(err_text(coalesce_rows(&Tensor::from_slice(&[0i64, 1, 2], &[3]).unwrap(), &r)).contains("[3, ...]"));
    assert!(err_text(coalesce_rows(&Tensor::from_slice(&[0i64, 1], &[1, 2]).unwrap(), &r)).contains("one-dimensional"));
    assert!(err_text(coalesce_rows(&t64(&[0.0, 1.0], &[2]), &r)).contains("i64"));
    let ints = Tensor::from_slice(&[1i64, 2], &[2, 1]).unwrap();
    assert!(err_text(coalesce_rows(&Tensor::from_slice(&[0i64, 1], &[2]).unwrap(), &ints)).contains("f32 or f64"));
}

/// Two parameters (a dense matrix and a table fed rows) for three steps; `state()` after step 1
/// loaded into a fresh optimizer continues bitwise like the original.
#[test]
fn state_round_trip_continues_bitwise() {
    let grads = |k: u64| {
        let mut g = deepseek::Generator::new(100 + k);
        let gd: Vec<f32> = (0..12).map(|_| g.normal() as f32).collect();
        let gr: Vec<f32> = (0..12).map(|_| g.normal() as f32).collect();
        let idx = [(k % 5) as i64, 7, (k % 5) as i64];
        (
            Gradient::Dense(Tensor::from_slice(&gd, &[4, 3]).unwrap()),
            Gradient::Rows {
                indices: Tensor::from_slice(&idx, &[3]).unwrap(),
                rows: Tensor::from_slice(&gr, &[3, 4]).unwrap(),
            },
        )
    };
    let all: [(&str, Vec<(&str, Attr)>); 6] = [
        ("sgd", vec![("momentum", Attr::Float(0.9)), ("nesterov", Attr::Bool(true))]),
        ("adam", vec![("weight_decay", Attr::Float(0.01))]),
        ("adamw", vec![]),
        ("adagrad", vec![("initial_accumulator", Attr::Float(0.1))]),
        ("rowwise_adagrad", vec![("weight_decay", Attr::Float(0.01)), ("decoupled_decay", Attr::Bool(true))]),
        ("lazy_adam", vec![]),
    ];
    for (name, attrs) in all {
        let mut a = opt(name, &attrs);
        let mut g = deepseek::Generator::new(1);
        let mut dense_w = Tensor::from_slice(&(0..12).map(|_| g.normal() as f32).collect::<Vec<_>>(), &[4, 3]).unwrap();
        let mut table = Tensor::from_slice(&(0..40).map(|_| g.normal() as f32).collect::<Vec<_>>(), &[10, 4]).unwrap();
        let mut saved = None;
        for k in 0..3 {
            let (gd, gr) = grads(k);
            a.update("layer/w", &mut dense_w, &gd, 0.05).unwrap();
            a.update("emb", &mut table, &gr, 0.05).unwrap();
            if k == 0 {
                saved = Some((a.state(), dense_w.to_vec::<f32>().unwrap(), table.to_vec::<f32>().unwrap()));
            }
        }
        let (state, wd, wt) = saved.unwrap();
        let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{name}: state sorted by name");
        assert!(name == "sgd" || names.iter().any(|n| n.starts_with("layer/w/")), "{name}: {names:?}");
        let mut b = opt(name, &attrs);
        b.load_state(&state).unwrap();
        let mut dense_b = Tensor::from_slice(&wd, &[4, 3]).unwrap();
        let mut table_b = Tensor::from_slice(&wt, &[10, 4]).unwrap();
        for k in 1..3 {
            let (gd, gr) = grads(k);
            b.update("layer/w", &mut dense_b, &gd, 0.05).unwrap();
            b.update("emb", &mut table_b, &gr, 0.05).unwrap();
        }
        let bits = |t: &Tensor| t.to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&dense_b), bits(&dense_w), "{name}: dense parameter");
        assert_eq!(bits(&table_b), bits(&table), "{name}: table");
        for ((na, ta), (nb, tb)) in a.state().iter().zip(b.state().iter()) {
            assert_eq!(na, nb);
            let raw = |t: &Tensor| t.raw_cast(deepseek::DType::F64).unwrap().to_vec::<f64>().unwrap();
            assert_eq!(
                raw(ta).iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                raw(tb).iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                "{name}: {na}"
            );
        }
        // The snapshot taken after step 1 did not follow the later updates (copy-on-write).
        if let Some((sname, st)) = state.iter().find(|(n, _)| !n.ends_with("/step")) {
            let now = a.state().into_iter().find(|(n, _)| n == sname).unwrap().1;
            assert_ne!(
                st.to_vec::<f32>().unwrap(),
                now.to_vec::<f32>().unwrap(),
                "{name}: the {sname} snapshot followed later updates"
            );
        }
    }
}

#[test]
fn load_state_rejects_bad_state_and_lists_every_problem() {
    let mut o = opt("adam", &[]);
    let mut w = t64(&[1.0, 2.0], &[2]);
    o.update("w", &mut w, &dense(&[0.5, 0.5], &[2]), 0.1).unwrap();
    let good = o.state();
    let m = t64(&[0.0, 0.0], &[2]);
    let step = Tensor::from_slice(&[1i64], &[]).unwrap();
    let bad = vec![
        ("a/exp_avg".to_string(), m.clone()),
        ("a/exp_avg_sq".to_string(), t64(&[0.0, 0.0, 0.0], &[3])),
        ("a/step".to_string(), step.clone()),
        ("b/exp_avg".to_string(), m.clone()),
        ("b/momentum".to_string(), m.clone()),
        ("b/step".to_string(), Tensor::from_slice(&[1.0f64], &[]).unwrap()),
        ("noslash".to_string(), m.clone()),
        ("c/exp_avg".to_string(), Tensor::from_slice(&[0i64, 0], &[2]).unwrap()),
        ("c/exp_avg_sq".to_string(), m.clone()),
        ("c/step".to_string(), Tensor::from_slice(&[-3i64], &[]).unwrap()),
    ];
    let e = err_text(o.load_state(&bad));
    for part in [
        "`a/exp_avg_sq` has shape [3] but another slot has [2]",
        "`b/momentum`: unknown slot `momentum`",
        "`b/exp_avg_sq` missing",
        "`b/step` must be one i64",
        "`noslash` is not of the form",
        "`c/exp_avg` is i64",
        "`c/step` is negative",
    ] {
        assert!(e.contains(part), "missing `{part}` in: {e}");
    }
    assert_eq!(o.state().len(), good.len(), "a failed load leaves the state as it was");
    // A state whose shapes do not fit the parameter is refused at the next update, naming it.
    let wrong = vec![
        ("w/exp_avg".to_string(), t64(&[0.0; 3], &[3])),
        ("w/exp_avg_sq".to_string(), t64(&[0.0; 3], &[3])),
        ("w/step".to_string(), step),
    ];
    o.load_state(&wrong).unwrap();
    let before = vals(&w);
    let e = err_text(o.update("w", &mut w, &dense(&[0.5, 0.5], &[2]), 0.1));
    assert!(e.contains("`w/exp_avg`") && e.contains("[3]") && e.contains("[2]"), "{e}");
    assert_eq!(vals(&w), before);
    // SGD without momentum keeps nothing, so any state is unknown to it.
    let e = err_text(opt("sgd", &[]).load_state(&good));
    assert!(e.contains("none: this optimizer keeps no state"), "{e}");
}

#[test]
fn update_rejects_bad_gradients_parameters_and_rates() {
    for name in ["sgd", "adam", "adamw", "adagrad", "rowwise_adagrad", "lazy_adam"] {
        let mut o = opt(name, &[]);
        let mut w = t64(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let cases: Vec<(Gradient, f64, &str)> = vec![
            (
                Gradient::Dense(Tensor::from_slice(&[0f32; 4], &[2, 2]).unwrap()),
                0.1,
                "gradient is f32 but the parameter is f64",
            ),
            (dense(&[0.0; 4], &[4]), 0.1, "gradient shape [4] differs from the parameter's [2, 2]"),
            (rows(&[0], &[0.0; 3], &[1, 3]), 0.1, "need rows of shape [1, 2]"),
            (rows(&[2], &[0.0; 2], &[1, 2]), 0.1, "row index 2 at position 0 is outside the table's 2 rows"),
            (rows(&[-1], &[0.0; 2], &[1, 2]), 0.1, "row index -1"),
            (
                Gradient::Rows { indices: t64(&[0.0], &[1]), rows: t64(&[0.0; 2], &[1, 2]) },
                0.1,
                "row indices must be i64",
            ),
            (
                Gradient::Rows {
                    indices: Tensor::from_slice(&[0i64], &[1]).unwrap(),
                    rows: Tensor::from_slice(&[0f32; 2], &[1, 2]).unwrap(),
                },
                0.1,
                "gradient rows are f32 but the parameter is f64",
            ),
            (dense(&[0.0; 4], &[2, 2]), -0.1, "learning rate must be finite and >= 0, given -0.1"),
            (dense(&[0.0; 4], &[2, 2]), f64::NAN, "given NaN"),
        ];
        for (g, lr, want) in cases {
            let e = err_text(o.update("tbl", &mut w, &g, lr));
            assert!(e.contains(want) && e.contains("`tbl`") && e.contains(name), "{name}: `{want}` not in: {e}");
            assert_eq!(vals(&w), vec![1.0, 2.0, 3.0, 4.0], "{name}: a refused update changes nothing");
        }
        let mut ints = Tensor::from_slice(&[1i64, 2], &[2]).unwrap();
        let g = Gradient::Dense(ints.clone());
        let e = err_text(o.update("ids", &mut ints, &g, 0.1));
        assert!(e.contains("`ids`") && e.contains("f32 or f64"), "{e}");
        let mut scalar = t64(&[1.0], &[]);
        let e = err_text(o.update("s", &mut scalar, &rows(&[0], &[1.0], &[1]), 0.1));
        assert!(e.contains("`s`") && e.contains("scalar"), "{e}");
    }
}

#[test]
fn from_name_defaults_names_and_bad_values() {
    assert_eq!(
        OptimizerConfig::from_name("adam", &[]).unwrap(),
        OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    );
    assert_eq!(
        OptimizerConfig::from_name("rowwise_adagrad", &[]).unwrap(),
        OptimizerConfig::RowwiseAdagrad { eps: 1e-10, weight_decay: 0.0, decoupled_decay: false }
    );
    assert_eq!(
        OptimizerConfig::from_name("adamw", &[("weight_decay", Attr::Int(0))]).unwrap(),
        OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
        "ints are accepted for float attributes"
    );
    for name in ["sgd", "adam", "adamw", "adagrad", "rowwise_adagrad", "lazy_adam"] {
        let c = OptimizerConfig::from_name(name, &[]).unwrap();
        assert_eq!(c.name(), name);
        assert_eq!(c.build().name(), name);
        assert!(!OptimizerConfig::attr_specs(name).unwrap().is_empty());
    }
    let bad: [Case<&str>; 11] = [
        ("adamm", vec![], "optimizer `adamm` (known: sgd, adam"),
        ("adam", vec![("lr", Attr::Float(0.1))], "unknown attribute `lr`"),
        ("adam", vec![("eps", Attr::Str("x".into()))], "`eps` must be float"),
        ("adam", vec![("beta1", Attr::Float(1.0))], "adam: `beta1` must be in [0, 1), given 1"),
        ("lazy_adam", vec![("beta2", Attr::Float(-0.1))], "lazy_adam: `beta2` must be in [0, 1), given -0.1"),
        ("adamw", vec![("eps", Attr::Float(0.0))], "adamw: `eps` must be finite and > 0, given 0"),
        ("adagrad", vec![("initial_accumulator", Attr::Float(-1.0))], "`initial_accumulator` must be finite and >= 0"),
        (
            "rowwise_adagrad",
            vec![("weight_decay", Attr::Float(f64::NAN))],
            "`weight_decay` must be finite and >= 0, given NaN",
        ),
        ("sgd", vec![("nesterov", Attr::Bool(true))], "Nesterov momentum needs momentum > 0"),
        ("sgd", vec![("momentum", Attr::Float(1.0))], "sgd: `momentum` must be in [0, 1)"),
        ("sgd", vec![("momentum", Attr::Float(0.5)), ("momentum", Attr::Float(0.5))], "given twice"),
    ];
    for (name, attrs, want) in bad {
        let e = err_text(OptimizerConfig::from_name(name, &attrs));
        assert!(e.contains(want), "{name} {attrs:?}: `{want}` not in: {e}");
    }
    let direct = OptimizerConfig::Adagrad { eps: -1.0, initial_accumulator: 0.0, weight_decay: 0.0 };
    assert!(err_text(direct.validate()).contains("`eps` must be finite and > 0, given -1"));
}

#[test]
fn schedules_at_chosen_steps() {
    let base = 0.5;
    assert_eq!(LrSchedule::Constant.lr(base, 12345), 0.5);
    // Step: 0.5·0.1^⌊s/10⌋ — unchanged through step 9, decayed at 10 and 20.
    let s = LrSchedule::from_name("step", &[("every", Attr::Int(10))]).unwrap();
    assert_eq!(s, LrSchedule::Step { every: 10, gamma: 0.1 });
    close(
        &[s.lr(base, 0), s.lr(base, 9), s.lr(base, 10), s.lr(base, 19), s.lr(base, 20)],
        &[0.5, 0.5, 0.05, 0.05, 0.005],
        1e-15,
    );
    // Cosine over 100 steps to 0.1: 0.5 at 0, 0.1 + 0.4·(1 + cos(π/2))/2 = 0.3 at 50, 0.1 from 100 on;
    // at 25: 0.1 + 0.2·(1 + √½) = 0.44142136.
    let c = LrSchedule::Cosine { total_steps: 100, min_lr: 0.1 };
    close(
        &[c.lr(base, 0), c.lr(base, 25), c.lr(base, 50), c.lr(base, 100), c.lr(base, 1000)],
        &[0.5, 0.4414213562373095, 0.3, 0.1, 0.1],
        1e-15,
    );
    // Warm-up over 4 steps from 0, then the cosine counted from the end of the warm-up.
    let wc = LrSchedule::from_name(
        "cosine",
        &[("total_steps", Attr::Int(100)), ("min_lr", Attr::Float(0.1)), ("warmup_steps", Attr::Int(4))],
    )
    .unwrap();
    assert_eq!(wc, LrSchedule::Warmup { steps: 4, then: Box::new(c.clone()) });
    let got: Vec<f64> = [0, 1, 2, 3, 4, 54, 104, 500].iter().map(|&s| wc.lr(base, s)).collect();
    close(&got, &[0.0, 0.125, 0.25, 0.375, 0.5, 0.3, 0.1, 0.1], 1e-15);
    let wconst = LrSchedule::from_name("constant", &[("warmup_steps", Attr::Int(2))]).unwrap();
    close(&[wconst.lr(1.0, 0), wconst.lr(1.0, 1), wconst.lr(1.0, 2), wconst.lr(1.0, 9)], &[0.0, 0.5, 1.0, 1.0], 0.0);
    assert_eq!(LrSchedule::from_name("constant", &[]).unwrap(), LrSchedule::Constant);
}

#[test]
fn schedules_reject_bad_input() {
    let bad: [Case<&str>; 8] = [
        ("linear", vec![], "schedule `linear` (known: constant, step, cosine)"),
        ("step", vec![], "missing required attribute `every`"),
        ("step", vec![("every", Attr::Int(0))], "`every` must be > 0"),
        ("step", vec![("every", Attr::Int(5)), ("gamma", Attr::Float(1.5))], "`gamma` must be in (0, 1], given 1.5"),
        ("step", vec![("every", Attr::Int(-5))], "`every` must be >= 0, given -5"),
        ("cosine", vec![("total_steps", Attr::Int(0))], "`total_steps` must be > 0"),
        (
            "cosine",
            vec![("total_steps", Attr::Int(9)), ("min_lr", Attr::Float(-1.0))],
            "`min_lr` must be finite and >= 0",
        ),
        ("constant", vec![("warmup_steps", Attr::Int(-1))], "`warmup_steps` must be >= 0, given -1"),
    ];
    for (name, attrs, want) in bad {
        let e = err_text(LrSchedule::from_name(name, &attrs));
        assert!(e.contains(want), "{name} {attrs:?}: `{want}` not in: {e}");
    }
}

#[test]
fn clip_grad_norm_over_dense_and_coalesced_rows() {
    // Dense [3, 4] (Σ² = 25) and rows {1: [1, 1], 1: [1, 1]} coalesced to {1: [2, 2]} (Σ² = 8):
    // norm √33 (counting the duplicate rows separately would give √29). Clipping to 1 scales by
    // 1/(√33 + 1e-6).
    let mut grads = vec![dense(&[3.0, 4.0], &[2]), rows(&[1, 1], &[1.0, 1.0, 1.0, 1.0], &[2, 2])];
    let norm = clip_grad_norm(&mut grads, 1.0).unwrap();
    close(&[norm], &[33f64.sqrt()], 1e-15);
    let k = 1.0 / (33f64.sqrt() + 1e-6);
    let Gradient::Dense(d) = &grads[0] else { panic!("dense stays dense") };
    close(&vals(d), &[3.0 * k, 4.0 * k], 1e-15);
    let Gradient::Rows { indices, rows: r } = &grads[1] else { panic!("rows stay rows") };
    assert_eq!(indices.to_vec::<i64>().unwrap(), vec![1], "rows are left coalesced");
    close(&vals(r), &[2.0 * k, 2.0 * k], 1e-15);
    // Below the bound nothing changes (bitwise).
    let mut small = vec![dense(&[0.3, 0.4], &[2])];
    assert_eq!(clip_grad_norm(&mut small, 1.0).unwrap(), 0.5);
    let Gradient::Dense(d) = &small[0] else { panic!() };
    assert_eq!(vals(d), vec![0.3, 0.4]);
    // f32 gradients are scaled in f32.
    let mut g32 = vec![Gradient::Dense(Tensor::from_slice(&[6f32, 8.0], &[2]).unwrap())];
    close(&[clip_grad_norm(&mut g32, 5.0).unwrap()], &[10.0], 1e-15);
    let Gradient::Dense(d) = &g32[0] else { panic!() };
    close(&d.to_vec::<f32>().unwrap().iter().map(|&x| x as f64).collect::<Vec<_>>(), &[3.0, 4.0], 1e-6);
}

#[test]
fn clip_grad_norm_rejects_bad_input_and_leaves_gradients_alone() {
    for max in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(err_text(clip_grad_norm(&mut [dense(&[1.0], &[1])], max)).contains("max_norm"));
    }
    let mut grads = vec![rows(&[1, 0], &[1.0, 2.0], &[2, 1]), dense(&[1.0, f64::NAN], &[2])];
    let e = err_text(clip_grad_norm(&mut grads, 1.0));
    assert!(e.contains("gradient 1 has a non-finite norm"), "{e}");
    let Gradient::Rows { indices, .. } = &grads[0] else { panic!() };
    assert_eq!(indices.to_vec::<i64>().unwrap(), vec![1, 0], "untouched on error");
    let mut huge = vec![dense(&[1e200, 1e200], &[2])];
    assert!(err_text(clip_grad_norm(&mut huge, 1.0)).contains("non-finite"));
    let mut ints = vec![Gradient::Dense(Tensor::from_slice(&[1i64], &[1]).unwrap())];
    assert!(err_text(clip_grad_norm(&mut ints, 1.0)).contains("gradient 0 is i64"));
}

#[test]
fn every_optimizer_minimises_a_quadratic() {
    // f(w) = Σ c_i (w_i − t_i)², gradient 2c(w − t); rows optimizers get the gradient as rows.
    let c = [1.0, 4.0, 0.5, 2.0];
    let target = [1.0, -2.0, 3.0, 0.5];
    let runs: [Case<f64>; 7] = [
        ("sgd", vec![], 0.05),
        ("sgd", vec![("momentum", Attr::Float(0.9)), ("nesterov", Attr::Bool(true))], 0.02),
        ("adam", vec![], 0.05),
        ("adamw", vec![("weight_decay", Attr::Float(0.0))], 0.05),
        ("adagrad", vec![], 0.5),
        ("rowwise_adagrad", vec![], 0.5),
        ("lazy_adam", vec![], 0.05),
    ];
    for (name, attrs, lr) in runs {
        let mut o = opt(name, &attrs);
        let mut w = t64(&[0.0; 4], &[4, 1]);
        let loss = |w: &[f64]| w.iter().zip(&target).zip(&c).map(|((w, t), c)| c * (w - t) * (w - t)).sum::<f64>();
        let start = loss(&vals(&w));
        for _ in 0..1000 {
            let cur = vals(&w);
            let g: Vec<f64> = cur.iter().zip(&target).zip(&c).map(|((w, t), c)| 2.0 * c * (w - t)).collect();
            let grad = if name == "rowwise_adagrad" || name == "lazy_adam" {
                rows(&[3, 2, 1, 0], &[g[3], g[2], g[1], g[0]], &[4, 1])
            } else {
                dense(&g, &[4, 1])
            };
            o.update("w", &mut w, &grad, lr).unwrap();
        }
        let end = loss(&vals(&w));
        assert!(end < start * 1e-4, "{name} {attrs:?}: loss {start} → {end}");
    }
}

#[test]
fn a_parameter_updated_while_its_graph_is_alive_stays_a_parameter() {
    // The last step's loss (and its graph, which holds the parameter) outlives the update,
    // as in a loop that keeps `loss` to print it: the update copies the shared parameter,
    // which must keep requiring grad and keep its accumulated gradient.
    let mut w = t64(&[1.0, -2.0], &[2]);
    w.set_requires_grad(true);
    let x = t64(&[3.0, 0.5], &[2]);
    let mut sgd = opt("sgd", &[]);
    let mut losses = vec![];
    for _ in 0..3 {
        let loss = w.mul(&x).unwrap().sum(&[], false).unwrap();
        loss.backward().unwrap();
        let g = w.gradient().expect("a gradient after backward");
        sgd.update("w", &mut w, &g, 0.1).unwrap();
        assert!(w.requires_grad(), "the update detached the parameter");
        // Not zeroed: the gradient accumulated so far is still there after the copy.
        close(
            &vals(&match w.gradient().expect("the gradient moved with the parameter") {
                Gradient::Dense(t) => t,
                other => panic!("dense expected, got {other:?}"),
            }),
            &vals(&x).iter().map(|v| v * (losses.len() + 1) as f64).collect::<Vec<_>>(),
            0.0,
        );
        losses.push(vals(&loss)[0]);
    }
    // d(sum(w·x))/dw = x, accumulated: the steps subtract 0.1·x, 0.2·x, 0.3·x.
    close(&vals(&w), &[1.0 - 0.6 * 3.0, -2.0 - 0.6 * 0.5], 1e-12);
    close(&losses, &[2.0, 2.0 - 0.1 * 9.25, 2.0 - 0.3 * 9.25], 1e-12);
}
