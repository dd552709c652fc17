//! Checkpoint files: exact round trips, readable by the reference safetensors reader, damage detected, fallback to the previous file, atomic saves into bad directories.

use deepseek::train::checkpoint::{Checkpoint, CheckpointDir};
use deepseek::{Error, Tensor};
use std::path::PathBuf;

fn sample(step: u64) -> Checkpoint {
    let w = Tensor::from_slice(&[1.5f32, -2.0, 3.25, step as f32], &[2, 2]).unwrap();
    let emb = Tensor::from_slice(&[0.5f64; 6], &[3, 2]).unwrap();
    let slot = Tensor::from_slice(&[0.25f32, 0.125], &[2]).unwrap();
    let count = Tensor::from_slice(&[step as i64], &[]).unwrap();
    Checkpoint {
        step,
        rng_state: 0xdead_beef_0000_0000 + step,
        data_cursor: 128 * step,
        params: vec![("dense/weight".into(), w), ("emb/0/weight".into(), emb)],
        optimizer_state: vec![("emb/0/weight/row_sum".into(), slot), ("emb/0/weight/step".into(), count)],
        amp_state: Vec::new(),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ds-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn bits(t: &Tensor) -> Vec<u8> {
    let mut b = vec![0u8; t.nbytes()];
    t.copy_to_bytes(&mut b).unwrap();
    b
}

fn assert_same(a: &Checkpoint, b: &Checkpoint) {
    assert_eq!((a.step, a.rng_state, a.data_cursor), (b.step, b.rng_state, b.data_cursor));
    for (x, y) in [(&a.params, &b.params), (&a.optimizer_state, &b.optimizer_state)] {
        let mut x: Vec<_> = x.iter().map(|(n, t)| (n.clone(), t.dtype(), t.shape().to_vec(), bits(t))).collect();
        let mut y: Vec<_> = y.iter().map(|(n, t)| (n.clone(), t.dtype(), t.shape().to_vec(), bits(t))).collect();
        x.sort_by(|p, q| p.0.cmp(&q.0));
        y.sort_by(|p, q| p.0.cmp(&q.0));
        assert_eq!(x, y);
    }
}

#[test]
fn round_trip_is_exact_and_deterministic() {
    let c = sample(7);
    let bytes = c.to_bytes().unwrap();
    assert_eq!(bytes, c.to_bytes().unwrap(), "one checkpoint, one byte string");
    assert_same(&c, &Checkpoint::from_bytes(&bytes, "mem").unwrap());
}

#[test]
fn the_reference_reader_sees_params_under_graph_names() {
    let c = sample(3);
    let bytes = c.to_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["dense/weight", "emb/0/weight", "optimizer/emb/0/weight/row_sum", "optimizer/emb/0/weight/step"]
    );
    let w = st.tensor("dense/weight").unwrap();
    assert_eq!(w.shape(), [2, 2]);
    assert_eq!(w.data(), bits(&c.params[0].1).as_slice());
}

#[test]
fn damage_is_reported_never_loaded() {
    let bytes = sample(5).to_bytes().unwrap();
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        ("truncated", bytes[..bytes.len() - 3].to_vec(), "outside"),
        ("flipped bit", flipped, "checksum mismatch"),
        ("garbage", b"not a checkpoint at all".to_vec(), "header length"),
    ];
    for (case, b, want) in cases {
        match Checkpoint::from_bytes(&b, "f.safetensors") {
            Err(Error::Corrupt { what, msg }) => {
                assert_eq!(what, "f.safetensors");
                assert!(msg.contains(want), "{case}: {msg}");
            }
            other => panic!("{case}: expected Corrupt, got {other:?}"),
        }
    }
    // A graph file is a safetensors file too, but not a checkpoint.
    let mut b = deepseek::graph::GraphBuilder::new();
    let x = b.input("x", deepseek::DType::F32, &[deepseek::graph::Dim::Fixed(2)]).unwrap();
    b.output("y", x).unwrap();
    let g = b.finish().unwrap().to_bytes().unwrap();
    let err = Checkpoint::from_bytes(&g, "g").unwrap_err().to_string();
    assert!(err.contains("no `step`") || err.contains("not a deepseek checkpoint"), "{err}");
}

#[test]
fn newer_format_versions_are_refused_by_name() {
    let c = sample(1);
    let mut bytes = c.to_bytes().unwrap();
    let key = b"\"format_version\":\"1\"";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
    bytes[at + key.len() - 2] = b'9';
    let err = Checkpoint::from_bytes(&bytes, "v9").unwrap_err().to_string();
    assert!(err.contains("newer checkpoint format version 9"), "{err}");
}

#[test]
fn directory_keeps_the_newest_and_falls_back_past_a_damaged_one() {
    let dir = scratch("fallback");
    let d = CheckpointDir::new(&dir, 2).unwrap();
    assert!(d.load_newest().unwrap().is_none(), "an empty directory holds no checkpoint");
    for step in [10, 20, 30] {
        d.save(&sample(step)).unwrap();
    }
    let steps: Vec<u64> = d.list().unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(steps, [30, 20], "only the newest two are kept");
    // Truncate the newest, as a crash of a non-atomic writer or a bad disk would.
    let newest = dir.join(Checkpoint::file_name(30));
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let found = d.load_newest().unwrap().unwrap();
    assert_eq!(found.checkpoint.step, 20);
    assert_eq!(found.skipped.len(), 1);
    assert!(
        found.skipped[0].contains("ckpt-000000000030") && found.skipped[0].contains("truncated"),
        "{:?}",
        found.skipped
    );
    // Every file damaged: an error naming each.
    let older = dir.join(Checkpoint::file_name(20));
    std::fs::write(&older, b"x").unwrap();
    let err = d.load_newest().unwrap_err().to_string();
    assert!(err.contains("no checkpoint") && err.contains("000000000020") && err.contains("000000000030"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn parameter_differences_are_listed() {
    let c = sample(2);
    let expected = vec![
        ("dense/weight".to_string(), Tensor::zeros(&[3, 2], deepseek::DType::F32, deepseek::Device::Cpu).unwrap()),
        ("head/bias".to_string(), Tensor::zeros(&[1], deepseek::DType::F32, deepseek::Device::Cpu).unwrap()),
    ];
    let diffs = c.param_differences(&expected);
    assert_eq!(diffs.len(), 3, "{diffs:?}");
    assert!(diffs[0].contains("dense/weight") && diffs[0].contains("[2, 2]") && diffs[0].contains("[3, 2]"));
    assert!(diffs[1].contains("head/bias") && diffs[1].contains("missing"));
    assert!(diffs[2].contains("emb/0/weight") && diffs[2].contains("not a parameter"));
}

#[test]
fn a_failed_save_names_the_file_and_leaves_the_previous_checkpoint() {
    let dir = scratch("blocked");
    let d = CheckpointDir::new(&dir, 3).unwrap();
    d.save(&sample(1)).unwrap();
    let before = std::fs::read(dir.join(Checkpoint::file_name(1))).unwrap();
    // A non-empty directory where the new file must go makes the final rename fail, the
    // portable stand-in for a full or read-only disk (root ignores mode bits).
    let target = dir.join(Checkpoint::file_name(2));
    std::fs::create_dir_all(target.join("occupied")).unwrap();
    let err = d.save(&sample(2)).unwrap_err().to_string();
    assert!(err.contains("cannot write checkpoint") && err.contains("ckpt-000000000002"), "{err}");
    assert_eq!(std::fs::read(dir.join(Checkpoint::file_name(1))).unwrap(), before, "the previous file is intact");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "the temporary file is removed");
    assert_eq!(d.load_newest().unwrap().unwrap().checkpoint.step, 1);
    // A directory that cannot be created is an error naming it.
    let err = CheckpointDir::new(dir.join(Checkpoint::file_name(1)).join("sub"), 3).unwrap_err().to_string();
    assert!(err.contains("cannot create checkpoint directory"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keep_zero_is_refused() {
    let err = CheckpointDir::new(scratch("keep0"), 0).unwrap_err().to_string();
    assert!(err.contains("at least 1"), "{err}");
}
