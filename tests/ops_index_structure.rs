//! Index and structure ops: forward values, gradients (including row gradients) and bad inputs.

use deepseek::autograd::gradcheck;
use deepseek::ops::{Attr, call_named};
use deepseek::tensor::grad::Gradient;
use deepseek::{DType, Device, Error, Generator, Tensor};

const TOL: f64 = 1e-6;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

fn ti64(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.raw_cast(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// `0, 1, 2, ..` as f64 of `shape`.
fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t64(&(0..n).map(|i| i as f64).collect::<Vec<_>>(), shape)
}

fn check(f: impl Fn(&[Tensor]) -> deepseek::Result<Tensor>, inputs: &[Tensor]) {
    let err = gradcheck(f, inputs, 1e-6).unwrap();
    assert!(err < TOL, "gradcheck error {err}");
}

fn arg_of(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument { arg, .. }
        | Error::InvalidDtype { arg, .. }
        | Error::ShapeMismatch { arg, .. }
        | Error::OutOfRange { arg, .. } => arg,
        other => panic!("unexpected error {other:?}"),
    }
}

/// Asserts the variant (by a matcher) and the argument name, and that the message names the op.
fn assert_err(r: deepseek::Result<impl std::fmt::Debug>, is: fn(&Error) -> bool, arg: &str, op: &str) {
    let e = r.unwrap_err();
    assert!(is(&e), "wrong variant: {e:?}");
    assert_eq!(arg_of(&e), arg, "{e}");
    assert!(e.to_string().contains(op), "message does not name {op}: {e}");
}

fn range(e: &Error) -> bool {
    matches!(e, Error::OutOfRange { .. })
}
fn invalid(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument { .. })
}
fn dtype(e: &Error) -> bool {
    matches!(e, Error::InvalidDtype { .. })
}
fn shape(e: &Error) -> bool {
    matches!(e, Error::ShapeMismatch { .. })
}

// ---------------------------------------------------------------------------------------------
// embedding

#[test]
fn embedding_forward_all_index_shapes_and_dtypes() {
    let w = iota(&[4, 3]);
    let idx = ti64(&[1, 3, 0, 1], &[2, 2]);
    let out = w.embedding(&idx).unwrap();
    assert_eq!(out.shape(), &[2, 2, 3]);
    assert_eq!(vals(&out), vec![3., 4., 5., 9., 10., 11., 0., 1., 2., 3., 4., 5.]);
    // i32 indices, a 0-d index, and f32 / bf16 / i64 tables (pure copies: exact).
    let i32idx = Tensor::from_slice(&[2i32], &[]).unwrap();
    assert_eq!(w.embedding(&i32idx).unwrap().shape(), &[3]);
    assert_eq!(vals(&w.embedding(&i32idx).unwrap()), vec![6., 7., 8.]);
    for dt in [DType::F32, DType::BF16, DType::I64] {
        let out = w.raw_cast(dt).unwrap().embedding(&idx).unwrap();
        assert_eq!(out.dtype(), dt);
        assert_eq!(vals(&out), vals(&w.embedding(&idx).unwrap()));
    }
    // A non-contiguous table.
    let wt = iota(&[3, 4]).transpose(0, 1).unwrap();
    assert_eq!(vals(&wt.embedding(&ti64(&[2], &[1])).unwrap()), vec![2., 6., 10.]);
}

#[test]
fn embedding_row_gradient_matches_finite_differences() {
    // Repeated indices must add.
    let idx = ti64(&[1, 3, 1, 0, 1, 3], &[2, 3]);
    check(|x| x[0].embedding(&idx), &[randn(&[5, 4], 1)]);
    // Through a non-leaf (transposed) table the rows are densified into the chain.
    check(|x| x[0].transpose(0, 1)?.embedding(&idx)?.exp(), &[randn(&[4, 5], 2)]);

    // The leaf keeps a row gradient: only the looked-up rows, repeats listed.
    let w = randn(&[5, 2], 3);
    w.set_requires_grad(true);
    w.embedding(&idx).unwrap().sum_all().unwrap().backward().unwrap();
    match w.gradient().unwrap() {
        Gradient::Rows { indices, rows } => {
            assert_eq!(indices.to_vec::<i64>().unwrap(), vec![1, 3, 1, 0, 1, 3]);
            assert_eq!(rows.shape(), &[6, 2]);
        }
        g => panic!("expected a row gradient, got {g:?}"),
    }
    // A second backward appends rows; the dense view adds them up.
    w.embedding(&ti64(&[4], &[1])).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(vals(&w.grad().unwrap().unwrap()), vec![1., 1., 3., 3., 0., 0., 2., 2., 1., 1.]);
}

#[test]
fn embedding_padding_idx_gets_no_gradient() {
    let w = randn(&[4, 2], 4);
    w.set_requires_grad(true);
    let idx = Tensor::from_slice(&[1i32, 2, 1, 0, 2], &[5]).unwrap();
    let out = w.embedding_padded(&idx, 2).unwrap();
    // The forward still looks the padding row up.
    assert_eq!(vals(&out)[2..4], vals(&w)[4..6]);
    out.mul(&out).unwrap().sum_all().unwrap().backward().unwrap();
    let wv = vals(&w);
    let expect = [2. * wv[0], 2. * wv[1], 4. * wv[2], 4. * wv[3], 0., 0., 0., 0.];
    assert_eq!(vals(&w.grad().unwrap().unwrap()), expect);
    // Negative padding_idx counts from the end: -2 is row 2 here too.
    w.zero_grad();
    w.embedding_padded(&idx, -2).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(vals(&w.grad().unwrap().unwrap()), vec![1., 1., 2., 2., 0., 0., 0., 0.]);
}

#[test]
fn embedding_bad_inputs() {
    let w = iota(&[4, 3]);
    assert_err(w.embedding(&ti64(&[0, 4], &[2])), range, "indices", "embedding");
    assert_err(w.embedding(&ti64(&[-1], &[1])), range, "indices", "embedding");
    assert_err(w.embedding(&t64(&[0.0], &[1])), dtype, "indices", "embedding");
    assert_err(iota(&[4]).embedding(&ti64(&[0], &[1])), shape, "weight", "embedding");
    assert_err(w.embedding_padded(&ti64(&[0], &[1]), 4), range, "padding_idx", "embedding");
}

// ---------------------------------------------------------------------------------------------
// embedding_fields

#[test]
fn embedding_fields_forward_picks_each_fields_row_from_its_own_table() {
    let (t0, t1) = (iota(&[3, 2]), iota(&[4, 2]).add_scalar(100.0).unwrap());
    let ids = ti64(&[2, 3, 0, 1], &[2, 2]);
    let out = ids.embedding_fields(&[&t0, &t1]).unwrap();
    assert_eq!(out.shape(), &[2, 2, 2]);
    assert_eq!(vals(&out), vec![4., 5., 106., 107., 0., 1., 102., 103.]);
    // The same bits as one embedding per column joined along the field dimension, for any
    // leading shape, i32 indices and every table dtype.
    let tables: Vec<Tensor> = (0..3).map(|f| randn(&[5 + f, 4], f as u64)).collect();
    let idx = ti64(&[0, 1, 2, 4, 5, 6, 3, 0, 1, 1, 2, 3], &[2, 2, 3]);
    for dt in [DType::F64, DType::F32, DType::BF16, DType::I64] {
        let ts: Vec<Tensor> = tables.iter().map(|t| t.raw_cast(dt).unwrap()).collect();
        let refs: Vec<&Tensor> = ts.iter().collect();
        let cols: Vec<Tensor> =
            (0..3).map(|f| ts[f].embedding(&idx.slice(2, f as i64, f as i64 + 1, 1).unwrap()).unwrap()).collect();
        let expect = Tensor::concat(&cols.iter().collect::<Vec<_>>(), 2).unwrap();
        let got = idx.embedding_fields(&refs).unwrap();
        assert_eq!((got.shape(), got.dtype()), (&[2usize, 2, 3, 4][..], dt));
        assert_eq!(vals(&got), vals(&expect), "{dt}");
        let i32idx = idx.raw_cast(DType::I32).unwrap();
        assert_eq!(vals(&i32idx.embedding_fields(&refs).unwrap()), vals(&expect), "{dt}, i32 indices");
    }
    // A non-contiguous table.
    let tt = iota(&[2, 3]).transpose(0, 1).unwrap();
    assert_eq!(vals(&ti64(&[2], &[1]).embedding_fields(&[&tt]).unwrap()), vec![2., 5.]);
}

#[test]
fn gathers_of_many_lookups_match_rows_read_one_by_one() {
    // Enough lookups that the gathers prefetch rows ahead and split over the pool, with the
    // first and last rows of each table among them.
    let (fields, width, samples) = (3usize, 16usize, 700usize);
    let tables: Vec<Tensor> = (0..fields).map(|f| randn(&[1000 + 7 * f, width], 10 + f as u64)).collect();
    let data: Vec<Vec<f64>> = tables.iter().map(vals).collect();
    let mut g = Generator::new(5);
    let ids: Vec<i64> = (0..samples * fields)
        .map(|k| {
            let rows = 1000 + 7 * (k % fields) as u64;
            match k / fields {
                0 => 0,
                1 => rows as i64 - 1,
                _ => (g.next_u64() % rows) as i64,
            }
        })
        .collect();
    let idx = ti64(&ids, &[samples, fields]);
    let row = |f: usize, i: i64| data[f][i as usize * width..(i as usize + 1) * width].to_vec();
    let expect: Vec<f64> = ids.iter().enumerate().flat_map(|(k, &i)| row(k % fields, i)).collect();
    let refs: Vec<&Tensor> = tables.iter().collect();
    assert_eq!(vals(&idx.embedding_fields(&refs).unwrap()), expect);
    let column: Vec<i64> = ids.iter().step_by(fields).copied().collect();
    let expect: Vec<f64> = column.iter().flat_map(|&i| row(0, i)).collect();
    assert_eq!(vals(&tables[0].embedding(&ti64(&column, &[samples])).unwrap()), expect);
    // Bags of one table over the same ids: three lookups a bag, and an empty bag at the end.
    let ids0: Vec<i64> = ids.iter().map(|&i| i.min(999)).collect();
    let offsets: Vec<i64> = (0..=samples).map(|b| (b * fields) as i64).collect();
    let (idx0, offs) = (ti64(&ids0, &[ids0.len()]), ti64(&offsets, &[samples + 1]));
    for mode in ["sum", "max"] {
        let mut expect = vec![0.0; (samples + 1) * width];
        for (b, bag) in ids0.chunks(fields).enumerate() {
            for c in 0..width {
                let v = bag.iter().map(|&i| row(0, i)[c]);
                expect[b * width + c] = if mode == "sum" { v.sum() } else { v.fold(f64::NEG_INFINITY, f64::max) };
            }
        }
        assert_eq!(vals(&tables[0].embedding_bag(&idx0, &offs, None, mode).unwrap()), expect, "{mode}");
    }
}

#[test]
fn embedding_fields_row_gradients_match_finite_differences() {
    // Repeated rows within a field must add.
    let idx = ti64(&[1, 0, 1, 2, 1, 0, 3, 2], &[4, 2]);
    check(|x| idx.embedding_fields(&[&x[0], &x[1]])?.exp(), &[randn(&[4, 3], 1), randn(&[3, 3], 2)]);
    // Each table keeps a row gradient: its own field's rows, in lookup order.
    let (t0, t1) = (randn(&[4, 2], 3), randn(&[3, 2], 4));
    t0.set_requires_grad(true);
    t1.set_requires_grad(true);
    let out = idx.embedding_fields(&[&t0, &t1]).unwrap();
    out.mul(&out).unwrap().sum_all().unwrap().backward().unwrap();
    for (t, rows) in [(&t0, vec![1, 1, 1, 3]), (&t1, vec![0, 2, 0, 2])] {
        match t.gradient().unwrap() {
            Gradient::Rows { indices, rows: r } => {
                assert_eq!(indices.to_vec::<i64>().unwrap(), rows);
                assert_eq!(r.shape(), &[4, 2]);
            }
            g => panic!("expected a row gradient, got {g:?}"),
        }
    }
    // The dense view: 2 · row, summed over the lookups of that row.
    let w0 = vals(&t0);
    let expect0: Vec<f64> = (0..8).map(|i| [0., 6., 0., 2.][i / 2] * w0[i]).collect();
    assert_eq!(vals(&t0.grad().unwrap().unwrap()), expect0);
}

#[test]
fn embedding_fields_bad_inputs() {
    let (t0, t1) = (iota(&[3, 2]), iota(&[4, 2]));
    let op = "embedding_fields";
    assert_err(ti64(&[0, 4], &[1, 2]).embedding_fields(&[&t0, &t1]), range, "indices", op);
    assert_err(ti64(&[3, 0], &[1, 2]).embedding_fields(&[&t0, &t1]), range, "indices", op);
    assert_err(ti64(&[-1, 0], &[1, 2]).embedding_fields(&[&t0, &t1]), range, "indices", op);
    assert_err(t64(&[0., 0.], &[1, 2]).embedding_fields(&[&t0, &t1]), dtype, "indices", op);
    assert_err(ti64(&[0, 0, 0], &[1, 3]).embedding_fields(&[&t0, &t1]), shape, "indices", op);
    assert_err(ti64(&[0], &[]).embedding_fields(&[&t0]), shape, "indices", op);
    assert_err(ti64(&[0, 0], &[1, 2]).embedding_fields(&[&t0, &iota(&[4, 3])]), shape, "tables", op);
    assert_err(ti64(&[0, 0], &[1, 2]).embedding_fields(&[&iota(&[3]), &t1]), shape, "tables", op);
    let t1f = t1.raw_cast(DType::F32).unwrap();
    assert_err(ti64(&[0, 0], &[1, 2]).embedding_fields(&[&t0, &t1f]), dtype, "tables", op);
    assert!(ti64(&[0], &[1]).embedding_fields(&[]).is_err(), "no tables");
    // The message says which field was out of range.
    let e = ti64(&[0, 4], &[1, 2]).embedding_fields(&[&t0, &t1]).unwrap_err();
    assert!(e.to_string().contains("field 1"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// embedding_bag

/// Reference: gather + reduce in f64, in index order.
fn bag_reference(w: &[f64], d: usize, idx: &[i64], offsets: &[i64], psw: Option<&[f64]>, mode: &str) -> Vec<f64> {
    let mut out = vec![0.0; offsets.len() * d];
    for b in 0..offsets.len() {
        let (s, e) = (offsets[b] as usize, offsets.get(b + 1).map_or(idx.len(), |&o| o as usize));
        for j in 0..d {
            let col = (s..e).map(|p| w[idx[p] as usize * d + j] * psw.map_or(1.0, |ws| ws[p]));
            out[b * d + j] = match mode {
                "max" => col.fold(f64::NEG_INFINITY, f64::max),
                _ => col.fold(0.0, |a, v| a + v),
            };
            if e == s {
                out[b * d + j] = 0.0;
            } else if mode == "mean" {
                out[b * d + j] /= (e - s) as f64;
            }
        }
    }
    out
}

#[test]
fn embedding_bag_forward_matches_gather_reduce() {
    let (v, d) = (6, 3);
    let w = randn(&[v, d], 10);
    let wv = vals(&w);
    // Bags: [0,1,2], [] (empty), [5], [2,2,4,0].
    let idx = [0i64, 1, 2, 5, 2, 2, 4, 0];
    let offsets = [0i64, 3, 3, 4];
    let (it, ot) = (ti64(&idx, &[8]), ti64(&offsets, &[4]));
    for mode in ["sum", "mean", "max"] {
        let out = w.embedding_bag(&it, &ot, None, mode).unwrap();
        assert_eq!(out.shape(), &[4, d]);
        assert_eq!(vals(&out), bag_reference(&wv, d, &idx, &offsets, None, mode), "mode {mode}");
        assert!(vals(&out)[3..6].iter().all(|&x| x == 0.0), "empty bag gives zeros ({mode})");
    }
    let psw: Vec<f64> = (0..8).map(|i| 0.5 + i as f64 * 0.25).collect();
    let out = w.embedding_bag(&it, &ot, Some(&t64(&psw, &[8])), "sum").unwrap();
    assert_eq!(vals(&out), bag_reference(&wv, d, &idx, &offsets, Some(&psw), "sum"));
    // f32 and bf16 tables with i32 indices (bf16 sums in f32, rounded once).
    let it32 = Tensor::from_slice(&idx.map(|i| i as i32), &[8]).unwrap();
    let w32 = w.raw_cast(DType::F32).unwrap();
    let out = w32.embedding_bag(&it32, &ot, None, "mean").unwrap();
    assert_eq!(out.dtype(), DType::F32);
    let r = bag_reference(&vals(&w32), d, &idx, &offsets, None, "mean");
    vals(&out).iter().zip(&r).for_each(|(a, b)| assert!((a - b).abs() < 1e-6, "{a} vs {b}"));
    let wb = w.raw_cast(DType::BF16).unwrap();
    let out = wb.embedding_bag(&it, &ot, None, "sum").unwrap();
    let r = bag_reference(&vals(&wb), d, &idx, &offsets, None, "sum");
    vals(&out).iter().zip(&r).for_each(|(a, b)| assert!((a - b).abs() <= 1e-2 * b.abs().max(1.0), "{a} vs {b}"));
    // No bags at all.
    let none = w.embedding_bag(&it, &ti64(&[], &[0]), None, "sum").unwrap();
    assert_eq!(none.shape(), &[0, d]);
}

#[test]
fn embedding_bag_gradients() {
    let idx = ti64(&[0, 1, 2, 5, 2, 2, 4, 0], &[8]);
    let offsets = ti64(&[0, 3, 3, 4], &[4]);
    for mode in ["sum", "mean", "max"] {
        check(|x| x[0].embedding_bag(&idx, &offsets, None, mode), &[randn(&[6, 3], 11)]);
    }
    check(|x| x[0].embedding_bag(&idx, &offsets, Some(&x[1]), "sum"), &[randn(&[6, 3], 12), randn(&[8], 13)]);
    // Non-contiguous table and weights.
    check(
        |x| x[0].transpose(0, 1)?.embedding_bag(&idx, &offsets, Some(&x[1].slice(0, 0, 16, 2)?), "sum"),
        &[randn(&[3, 6], 14), randn(&[16], 15)],
    );

    // The row gradient, densified, equals the dense-scatter reference bitwise.
    let w = randn(&[6, 3], 16);
    let psw = randn(&[8], 17);
    w.set_requires_grad(true);
    let seed = randn(&[4, 3], 18);
    let out = w.embedding_bag(&idx, &offsets, Some(&psw), "sum").unwrap();
    deepseek::autograd::backward_with(&out, Some(&seed), false).unwrap();
    assert!(matches!(w.gradient().unwrap(), Gradient::Rows { .. }));
    let (iv, sv, pv) = (idx.to_vec::<i64>().unwrap(), vals(&seed), vals(&psw));
    let bag = [0, 0, 0, 2, 3, 3, 3, 3];
    let mut dense = vec![0.0; 18];
    for p in 0..8 {
        for j in 0..3 {
            dense[iv[p] as usize * 3 + j] += pv[p] * sv[bag[p] * 3 + j];
        }
    }
    assert_eq!(vals(&w.grad().unwrap().unwrap()), dense);
}

#[test]
fn embedding_bag_bad_inputs() {
    let w = iota(&[4, 2]);
    let idx = ti64(&[0, 1, 3], &[3]);
    let bag = |off: &[i64]| w.embedding_bag(&idx, &ti64(off, &[off.len()]), None, "sum");
    assert_err(bag(&[1, 2]), invalid, "offsets", "embedding_bag");
    assert_err(bag(&[0, 2, 1]), invalid, "offsets", "embedding_bag");
    assert_err(bag(&[0, 4]), range, "offsets", "embedding_bag");
    assert_err(bag(&[0, -1]), range, "offsets", "embedding_bag");
    let off = ti64(&[0, 1], &[2]);
    assert_err(w.embedding_bag(&ti64(&[0, 4], &[2]), &off, None, "sum"), range, "indices", "embedding_bag");
    assert_err(w.embedding_bag(&t64(&[0., 1.], &[2]), &off, None, "sum"), dtype, "indices", "embedding_bag");
    assert_err(w.embedding_bag(&ti64(&[0, 1], &[1, 2]), &off, None, "sum"), shape, "indices", "embedding_bag");
    assert_err(w.embedding_bag(&idx, &off, None, "median"), invalid, "mode", "embedding_bag");
    let psw = t64(&[1., 1., 1.], &[3]);
    assert_err(w.embedding_bag(&idx, &off, Some(&psw), "mean"), invalid, "per_sample_weights", "embedding_bag");
    assert_err(
        w.embedding_bag(&idx, &off, Some(&t64(&[1.], &[1])), "sum"),
        shape,
        "per_sample_weights",
        "embedding_bag",
    );
    let psw32 = psw.raw_cast(DType::F32).unwrap();
    assert_err(w.embedding_bag(&idx, &off, Some(&psw32), "sum"), dtype, "per_sample_weights", "embedding_bag");
    let wi = w.raw_cast(DType::I64).unwrap();
    assert_err(wi.embedding_bag(&idx, &off, None, "sum"), dtype, "weight", "embedding_bag");
}

// ---------------------------------------------------------------------------------------------
// index_select, index_add

#[test]
fn index_select_and_index_add_forward() {
    let x = iota(&[3, 4]);
    let out = x.index_select(1, &ti64(&[3, 0, 3], &[3])).unwrap();
    assert_eq!(vals(&out), vec![3., 0., 3., 7., 4., 7., 11., 8., 11.]);
    let out = x.raw_cast(DType::I32).unwrap().index_select(-2, &Tensor::from_slice(&[2i32], &[1]).unwrap()).unwrap();
    assert_eq!((out.dtype(), out.to_vec::<i32>().unwrap()), (DType::I32, vec![8, 9, 10, 11]));

    let src = t64(&[1., 10., 100., 5., 2., 20., 200., 5.], &[2, 4]);
    let out = x.index_add(0, &ti64(&[2, 2], &[2]), &src).unwrap();
    // Row 2 gets both source rows (repeats add): [1,10,100,5] + [2,20,200,5].
    assert_eq!(vals(&out)[8..], [8. + 3., 9. + 30., 10. + 300., 11. + 10.]);
    assert_eq!(vals(&out)[..8], vals(&x)[..8]);
    // Along dim 1, in f16 (added in f32) and i64 (wrapping integer adds).
    let src = t64(&[1., 2., 3., 4., 5., 6.], &[3, 2]);
    let idx = ti64(&[0, 0], &[2]);
    let expect: Vec<f64> = vec![3., 1., 2., 3., 11., 5., 6., 7., 19., 9., 10., 11.];
    for dt in [DType::F64, DType::F16, DType::I64] {
        let out = x.raw_cast(dt).unwrap().index_add(1, &idx, &src.raw_cast(dt).unwrap()).unwrap();
        assert_eq!(out.dtype(), dt);
        assert_eq!(vals(&out), expect, "{dt}");
    }
}

#[test]
fn index_select_and_index_add_gradients() {
    let idx = ti64(&[2, 0, 2, 1], &[4]);
    check(|x| x[0].index_select(0, &idx), &[randn(&[3, 2], 20)]);
    check(|x| x[0].permute(&[2, 0, 1])?.index_select(2, &idx), &[randn(&[4, 3, 3], 21)]);
    check(|x| x[0].index_add(1, &idx, &x[1]), &[randn(&[2, 3, 2], 22), randn(&[2, 4, 2], 23)]);
    check(|x| x[0].index_add(0, &idx, &x[1].transpose(0, 1)?), &[randn(&[3, 5], 24), randn(&[5, 4], 25)]);
}

#[test]
fn index_select_and_index_add_bad_inputs() {
    let x = iota(&[3, 4]);
    assert_err(x.index_select(0, &ti64(&[3], &[1])), range, "index", "index_select");
    assert_err(x.index_select(2, &ti64(&[0], &[1])), range, "dim", "index_select");
    assert_err(x.index_select(0, &ti64(&[0], &[1, 1])), shape, "index", "index_select");
    assert_err(x.index_select(0, &t64(&[0.], &[1])), dtype, "index", "index_select");
    let idx = ti64(&[0, 1], &[2]);
    assert_err(x.index_add(0, &idx, &iota(&[2, 3])), shape, "src", "index_add");
    assert_err(x.index_add(0, &idx, &iota(&[2, 4]).raw_cast(DType::F32).unwrap()), dtype, "src", "index_add");
    assert_err(x.index_add(0, &ti64(&[0, 5], &[2]), &iota(&[2, 4])), range, "index", "index_add");
}

// ---------------------------------------------------------------------------------------------
// gather, scatter_add

#[test]
fn gather_and_scatter_add_forward() {
    let x = iota(&[3, 4]);
    // dim 1, index smaller than x in dimension 0.
    let out = x.gather(1, &ti64(&[3, 0, 0, 1, 2, 2], &[2, 3])).unwrap();
    assert_eq!(out.shape(), &[2, 3]);
    assert_eq!(vals(&out), vec![3., 0., 0., 5., 6., 6.]);
    // dim 0.
    let out = x.gather(0, &ti64(&[2, 1, 0, 2], &[1, 4])).unwrap();
    assert_eq!(vals(&out), vec![8., 5., 2., 11.]);
    // Non-contiguous x, i32 index, u8 values.
    let xt = x.transpose(0, 1).unwrap().raw_cast(DType::U8).unwrap();
    let out = xt.gather(1, &Tensor::from_slice(&[2i32, 0], &[2, 1]).unwrap()).unwrap();
    assert_eq!(out.to_vec::<u8>().unwrap(), vec![8, 1]);

    let z = Tensor::zeros(&[2, 3], DType::F64, Device::Cpu).unwrap();
    let src = t64(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let out = z.scatter_add(1, &ti64(&[0, 0, 2, 1, 1, 1], &[2, 3]), &src).unwrap();
    assert_eq!(vals(&out), vec![3., 0., 3., 0., 15., 0.]);
    // src larger than index: only index's extent is read.
    let out = z.scatter_add(0, &ti64(&[1, 0], &[1, 2]), &src).unwrap();
    assert_eq!(vals(&out), vec![0., 2., 0., 1., 0., 0.]);
    let out =
        z.raw_cast(DType::BF16).unwrap().scatter_add(0, &ti64(&[1, 0], &[1, 2]), &src.raw_cast(DType::BF16).unwrap());
    assert_eq!(vals(&out.unwrap()), vec![0., 2., 0., 1., 0., 0.]);
}

#[test]
fn gather_and_scatter_add_gradients() {
    let idx = ti64(&[2, 0, 1, 1, 2, 2], &[2, 3]);
    check(|x| x[0].gather(0, &idx), &[randn(&[3, 4], 30)]);
    check(|x| x[0].gather(1, &idx), &[randn(&[2, 3], 31)]);
    check(|x| x[0].transpose(0, 1)?.gather(1, &idx), &[randn(&[4, 3], 32)]);
    check(|x| x[0].scatter_add(1, &idx, &x[1]), &[randn(&[3, 4], 33), randn(&[2, 3], 34)]);
    // src larger than index: the unread part gets zero gradient.
    check(|x| x[0].scatter_add(0, &idx, &x[1]), &[randn(&[3, 3], 35), randn(&[3, 4], 36)]);
    let idx3 = ti64(&[1, 0, 1, 1, 0, 0, 1, 0], &[2, 2, 2]);
    check(|x| x[0].scatter_add(2, &idx3, &x[1].permute(&[1, 0, 2])?), &[randn(&[2, 3, 2], 37), randn(&[2, 2, 2], 38)]);
}

#[test]
fn gather_and_scatter_add_bad_inputs() {
    let x = iota(&[3, 4]);
    assert_err(x.gather(1, &ti64(&[4], &[1, 1])), range, "index", "gather");
    assert_err(x.gather(1, &ti64(&[0], &[1])), shape, "index", "gather");
    assert_err(x.gather(0, &ti64(&[0; 5], &[1, 5])), shape, "index", "gather");
    assert_err(x.gather(0, &Tensor::from_slice(&[0u8], &[1, 1]).unwrap()), dtype, "index", "gather");
    let idx = ti64(&[0, 1], &[1, 2]);
    assert_err(x.scatter_add(0, &idx, &iota(&[1, 1])), shape, "src", "scatter_add");
    assert_err(x.scatter_add(0, &idx, &iota(&[1, 2]).raw_cast(DType::F32).unwrap()), dtype, "src", "scatter_add");
    assert_err(x.scatter_add(0, &ti64(&[0, 3], &[1, 2]), &iota(&[1, 2])), range, "index", "scatter_add");
}

// ---------------------------------------------------------------------------------------------
// one_hot

#[test]
fn one_hot_values_and_errors() {
    let idx = ti64(&[2, 0, 1, 2], &[2, 2]);
    let out = idx.one_hot(4).unwrap();
    assert_eq!((out.shape(), out.dtype()), (&[2usize, 2, 4][..], DType::I64));
    assert_eq!(out.to_vec::<i64>().unwrap(), vec![0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
    let out = Tensor::from_slice(&[1i32, 2], &[2]).unwrap().one_hot(-1).unwrap();
    assert_eq!(out.to_vec::<i64>().unwrap(), vec![0, 1, 0, 0, 0, 1]);
    assert_err(idx.one_hot(2), range, "indices", "one_hot");
    assert_err(ti64(&[-1], &[1]).one_hot(3), range, "indices", "one_hot");
    assert_err(t64(&[0.], &[1]).one_hot(3), dtype, "indices", "one_hot");
    assert_err(ti64(&[], &[0]).one_hot(-1), invalid, "num_classes", "one_hot");
    assert_err(call_named("one_hot", &[&idx], &[("num_classes", Attr::Int(-3))]), invalid, "num_classes", "one_hot");
}

// ---------------------------------------------------------------------------------------------
// concat, stack, split

#[test]
fn concat_and_stack() {
    let a = iota(&[2, 2]);
    let b = t64(&[10., 11., 12., 13., 14., 15.], &[2, 3]);
    let out = Tensor::concat(&[&a, &b], 1).unwrap();
    assert_eq!(vals(&out), vec![0., 1., 10., 11., 12., 2., 3., 13., 14., 15.]);
    let out = Tensor::concat(&[&a, &b.slice(1, 0, 2, 1).unwrap(), &a], -2).unwrap();
    assert_eq!(out.shape(), &[6, 2]);
    assert_eq!(vals(&out), vec![0., 1., 2., 3., 10., 11., 13., 14., 0., 1., 2., 3.]);
    let s = Tensor::stack(&[&a, &a.neg().unwrap()], 2).unwrap();
    assert_eq!(s.shape(), &[2, 2, 2]);
    assert_eq!(vals(&s), vec![0., -0., 1., -1., 2., -2., 3., -3.]);
    let s = Tensor::stack(&[&a.raw_cast(DType::I32).unwrap(), &a.raw_cast(DType::I32).unwrap()], 0).unwrap();
    assert_eq!(s.to_vec::<i32>().unwrap(), vec![0, 1, 2, 3, 0, 1, 2, 3]);

    check(|x| Tensor::concat(&[&x[0], &x[1].transpose(0, 1)?, &x[0]], 1), &[randn(&[3, 2], 40), randn(&[4, 3], 41)]);
    check(|x| Tensor::stack(&[&x[0], &x[1].transpose(0, 1)?], -1), &[randn(&[3, 2], 42), randn(&[2, 3], 43)]);

    assert_err(Tensor::concat(&[&a, &b], 0), shape, "xs", "concat");
    assert_err(Tensor::concat(&[&a, &iota(&[2, 2, 1])], 0), shape, "xs", "concat");
    assert_err(Tensor::concat(&[&a, &a.raw_cast(DType::F32).unwrap()], 0), dtype, "xs", "concat");
    assert_err(Tensor::concat(&[&a, &a], 2), range, "dim", "concat");
    assert_err(Tensor::concat(&[], 0), invalid, "inputs", "concat");
    assert_err(Tensor::stack(&[&a, &b], 0), shape, "xs", "stack");
    assert_err(Tensor::stack(&[&a, &a], 3), range, "dim", "stack");
}

#[test]
fn split_views_and_gradients() {
    let x = iota(&[5, 2]);
    let pieces = x.split(0, &[2, 0, 3]).unwrap();
    assert_eq!(pieces.iter().map(|p| p.shape().to_vec()).collect::<Vec<_>>(), vec![vec![2, 2], vec![0, 2], vec![3, 2]]);
    assert!(pieces[2].shares_storage(&x), "split pieces are views");
    assert_eq!(vals(&pieces[2]), vec![4., 5., 6., 7., 8., 9.]);
    let by = call_named("split", &[&x], &[("dim", Attr::Int(0)), ("split_size", Attr::Int(2))]).unwrap();
    assert_eq!(by.iter().map(|p| p.shape()[0]).collect::<Vec<_>>(), vec![2, 2, 1]);
    let cols = x.split(-1, &[1, 1]).unwrap();
    assert_eq!(vals(&cols[1]), vec![1., 3., 5., 7., 9.]);

    // Gradients, including pieces that never reach the loss (zeros).
    check(
        |x| {
            let p = x[0].split(1, &[1, 2, 1])?;
            Tensor::concat(&[&p[2], &p[0].exp()?], 1)
        },
        &[randn(&[3, 4], 44)],
    );
    check(|x| x[0].split(0, &[3])?.remove(0).neg(), &[randn(&[3, 2], 45)]);

    assert_err(x.split(0, &[2, 2]), shape, "sizes", "split");
    assert_err(x.split(0, &[6, -1]), invalid, "sizes", "split");
    assert_err(x.split(2, &[5]), range, "dim", "split");
    assert_err(call_named("split", &[&x], &[]), invalid, "sizes", "split");
    assert_err(call_named("split", &[&x], &[("split_size", Attr::Int(0))]), invalid, "split_size", "split");
}

// ---------------------------------------------------------------------------------------------
// pad

#[test]
fn pad_modes_forward() {
    let x = iota(&[2, 3]);
    let c = x.pad(&[1, 2], "constant", -1.0).unwrap();
    assert_eq!(c.shape(), &[2, 6]);
    assert_eq!(vals(&c), vec![-1., 0., 1., 2., -1., -1., -1., 3., 4., 5., -1., -1.]);
    // Both dimensions: [left, right, top, bottom].
    let c = x.pad(&[0, 1, 1, 0], "constant", 0.0).unwrap();
    assert_eq!(vals(&c), vec![0., 0., 0., 0., 0., 1., 2., 0., 3., 4., 5., 0.]);
    // Negative pads crop.
    let c = x.pad(&[-1, 1, 0, -1], "constant", 9.0).unwrap();
    assert_eq!(vals(&c), vec![1., 2., 9.]);
    let r = x.pad(&[2, 1, 1, 1], "reflect", 0.0).unwrap();
    assert_eq!(r.shape(), &[4, 6]);
    assert_eq!(
        vals(&r),
        vec![5., 4., 3., 4., 5., 4., 2., 1., 0., 1., 2., 1., 5., 4., 3., 4., 5., 4., 2., 1., 0., 1., 2., 1.]
    );
    let p = x.pad(&[1, 2, 0, 1], "replicate", 0.0).unwrap();
    assert_eq!(vals(&p), vec![0., 0., 1., 2., 2., 2., 3., 3., 4., 5., 5., 5., 3., 3., 4., 5., 5., 5.]);
    // Integer and half dtypes, a non-contiguous input.
    let xi = x.raw_cast(DType::I64).unwrap().transpose(0, 1).unwrap();
    assert_eq!(xi.pad(&[1, 0], "constant", 7.0).unwrap().to_vec::<i64>().unwrap(), vec![7, 0, 3, 7, 1, 4, 7, 2, 5]);
    let xh = x.raw_cast(DType::F16).unwrap();
    assert_eq!(vals(&xh.pad(&[1, 1], "replicate", 0.0).unwrap())[..5], [0., 0., 1., 2., 2.]);
}

#[test]
fn pad_gradients() {
    check(|x| x[0].pad(&[1, 2, 0, 1], "constant", 3.0), &[randn(&[2, 3], 50)]);
    check(|x| x[0].pad(&[-1, 1, 1, -1], "constant", 0.0), &[randn(&[3, 3], 51)]);
    check(|x| x[0].pad(&[2, 1, 1, 2], "reflect", 0.0), &[randn(&[3, 4], 52)]);
    check(|x| x[0].transpose(0, 1)?.pad(&[3, 2, 1, 1], "replicate", 0.0), &[randn(&[3, 2], 53)]);
    check(|x| x[0].pad(&[1, 1, 0, 0, 2, 1], "reflect", 0.0)?.exp(), &[randn(&[3, 2, 3], 54)]);
    // pad_backward is itself differentiable (its adjoint is pad).
    check(
        |x| {
            let p = x[0].pad(&[2, 1], "reflect", 0.0)?;
            let w = x[0].pad(&[2, 1], "reflect", 0.0)?.exp()?;
            p.mul(&w)
        },
        &[randn(&[2, 4], 55)],
    );
}

#[test]
fn pad_bad_inputs() {
    let x = iota(&[2, 3]);
    assert_err(x.pad(&[1], "constant", 0.0), invalid, "pads", "pad");
    assert_err(x.pad(&[1, 1, 1, 1, 1, 1], "constant", 0.0), invalid, "pads", "pad");
    assert_err(x.pad(&[-2, -2], "constant", 0.0), invalid, "pads", "pad");
    assert_err(x.pad(&[3, 0], "reflect", 0.0), invalid, "pads", "pad");
    assert_err(x.pad(&[-1, 0], "replicate", 0.0), invalid, "pads", "pad");
    assert_err(x.pad(&[1, 1], "circular", 0.0), invalid, "mode", "pad");
}

// ---------------------------------------------------------------------------------------------
// Large inputs: the parallel paths against simple references.

#[test]
fn large_inputs_take_the_parallel_paths() {
    let (v, d, n) = (500usize, 64usize, 1000usize);
    let w = randn(&[v, d], 60);
    let wv = vals(&w);
    let idx: Vec<i64> = (0..n as i64).map(|i| (i * 37) % v as i64).collect();
    let it = ti64(&idx, &[n]);
    let out = vals(&w.embedding(&it).unwrap());
    assert!((0..n).all(|k| out[k * d..(k + 1) * d] == wv[idx[k] as usize * d..(idx[k] as usize + 1) * d]));
    let offsets: Vec<i64> = (0..n as i64).step_by(3).collect();
    let got = vals(&w.embedding_bag(&it, &ti64(&offsets, &[offsets.len()]), None, "mean").unwrap());
    assert_eq!(got, bag_reference(&wv, d, &idx, &offsets, None, "mean"));

    // index_add along dim 0 with repeats; scatter_add along dim 1 (parallel over rows of x).
    let src = randn(&[n, d], 61);
    let sv = vals(&src);
    let zeros = Tensor::zeros(&[v, d], DType::F64, Device::Cpu).unwrap();
    let got = vals(&zeros.index_add(0, &it, &src).unwrap());
    let mut expect = vec![0.0; v * d];
    for k in 0..n {
        for j in 0..d {
            expect[idx[k] as usize * d + j] += sv[k * d + j];
        }
    }
    assert_eq!(got, expect);
    let sidx: Vec<i64> = (0..n * d).map(|p| ((p * 7) % d) as i64).collect();
    let got = vals(
        &Tensor::zeros(&[n, d], DType::F64, Device::Cpu).unwrap().scatter_add(1, &ti64(&sidx, &[n, d]), &src).unwrap(),
    );
    let mut expect = vec![0.0; n * d];
    for p in 0..n * d {
        expect[(p / d) * d + sidx[p] as usize] += sv[p];
    }
    assert_eq!(got, expect);
    let g = vals(&src.gather(1, &ti64(&sidx, &[n, d])).unwrap());
    assert!((0..n * d).all(|p| g[p] == sv[(p / d) * d + sidx[p] as usize]));

    // concat along both dims and pad, against slices of the result.
    let cat = Tensor::concat(&[&src, &src.neg().unwrap()], 1).unwrap();
    assert_eq!(vals(&cat.slice(1, d as i64, 2 * d as i64, 1).unwrap()), vals(&src.neg().unwrap()));
    let cat = Tensor::concat(&[&src, &src], 0).unwrap();
    assert_eq!(vals(&cat.slice(0, n as i64, 2 * n as i64, 1).unwrap()), sv);
    let p = src.pad(&[2, 2, 1, 1], "reflect", 0.0).unwrap();
    assert_eq!(p.shape(), &[n + 2, d + 4]);
    assert_eq!(vals(&p.slice(0, 1, n as i64 + 1, 1).unwrap().slice(1, 2, d as i64 + 2, 1).unwrap()), sv);
}
