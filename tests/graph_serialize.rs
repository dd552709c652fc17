//! Graph files: round trips (in process and across processes), plain-safetensors readability, and every kind of bad file.

use deepseek::exec::{ExecOptions, Executor};
use deepseek::graph::passes::optimize;
use deepseek::graph::{Dim, Graph, GraphBuilder, trace};
use deepseek::ops::Attr;
use deepseek::{DType, Device, Error, Generator, Tensor};
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

const CHILD_GRAPH_VAR: &str = "DEEPSEEK_TEST_SER_GRAPH";
const CHILD_OUT_VAR: &str = "DEEPSEEK_TEST_SER_OUT";
const FETCHES: [&str; 3] = ["y", "picked", "s"];

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape, 0.0, 0.5, DType::F32, Device::Cpu, &mut Generator::new(seed)).unwrap()
}

fn raw(t: &Tensor) -> Vec<u8> {
    let mut v = vec![0u8; t.nbytes()];
    t.copy_to_bytes(&mut v).unwrap();
    v
}

/// An MLP with a symbolic batch, trainable and frozen f32 params, an f16 param, an f32 and
/// an i64 constant, and float (leaky_relu, clamp), int, ints and bool attributes.
fn model() -> Graph {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(8)]).unwrap();
    let w1 = b.param("w1", &normal(&[16, 8], 1), true).unwrap();
    let b1 = b.param("b1", &normal(&[16], 2), true).unwrap();
    let w2 = b.param("w2", &normal(&[4, 16], 3), true).unwrap();
    let b2 = b.param("b2", &normal(&[4], 4), false).unwrap();
    let half_bias = b.param("half_bias", &normal(&[4], 5).cast(DType::F16).unwrap(), false).unwrap();
    let h = b.op1("linear", &[x, w1, b1], &[]).unwrap();
    let h = b.op1("leaky_relu", &[h], &[("negative_slope", Attr::Float(0.1))]).unwrap();
    let y = b.op1("linear", &[h, w2, b2], &[]).unwrap();
    let hb = b.op1("cast", &[half_bias], &[("dtype", Attr::Int(DType::F32.code() as i64))]).unwrap();
    let y = b.op1("add", &[y, hb], &[]).unwrap();
    let scale = b.constant(&Tensor::from_slice(&[0.5f32, 2.0, -1.0, 3.0], &[4]).unwrap()).unwrap();
    let y = b.op1("mul", &[y, scale], &[]).unwrap();
    let y = b.op1("clamp", &[y], &[("min", Attr::Float(-0.75)), ("max", Attr::Float(1.25))]).unwrap();
    let idx = b.constant(&Tensor::from_slice(&[3i64, 0, 2], &[3]).unwrap()).unwrap();
    let picked = b.op1("index_select", &[y, idx], &[("dim", Attr::Int(1))]).unwrap();
    let s = b.op1("sum", &[picked], &[("axes", Attr::Ints(vec![1])), ("keepdim", Attr::Bool(true))]).unwrap();
    b.output("y", y).unwrap();
    b.output("picked", picked).unwrap();
    b.output("s", s).unwrap();
    b.finish().unwrap()
}

fn feed() -> Tensor {
    normal(&[5, 8], 42)
}

/// The raw bytes of every fetched output, concatenated.
fn run_bytes(g: &Graph, opt_level: u8) -> Vec<u8> {
    let ex = Executor::new(g, ExecOptions { opt_level, ..ExecOptions::default() }).unwrap();
    let x = feed();
    ex.run(&[("x", &x)], &FETCHES).unwrap().iter().flat_map(raw).collect()
}

fn round_trip(g: &Graph) -> Graph {
    let bytes = g.to_bytes().unwrap();
    let back = Graph::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes().unwrap(), bytes, "writing a loaded graph gives other bytes");
    back
}

#[test]
fn built_graph_round_trips_to_the_same_dump_and_the_same_output_bits() {
    let g = model();
    let dump = g.to_string();
    assert!(dump.contains("negative_slope=0.1") && dump.contains("f32[batch, 8]"), "{dump}");
    let back = round_trip(&g);
    assert_eq!(back.to_string(), dump);
    for lvl in 0..=2 {
        let out = run_bytes(&back, lvl);
        assert_eq!(out.len(), 5 * (4 + 3 + 1) * 4);
        assert_eq!(out, run_bytes(&g, lvl), "level {lvl}");
    }
    assert_eq!(g.to_bytes().unwrap(), g.to_bytes().unwrap(), "one graph must always give the same bytes");
    let params = back.params();
    assert_eq!(
        params.iter().map(|p| (p.0, p.3)).collect::<Vec<_>>(),
        [("w1", true), ("b1", true), ("w2", true), ("b2", false), ("half_bias", false)]
    );
    assert_eq!(params[4].2.dtype(), DType::F16);
}

#[test]
fn float_attributes_round_trip_bit_exactly() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F64, &[Dim::sym("n")]).unwrap();
    // Values with no short decimal form, the extremes and a default left unset (max = +inf).
    let lo = f64::from_bits(0x3fb9_9999_9999_999b);
    let y = b.op1("clamp", &[x], &[("min", Attr::Float(lo))]).unwrap();
    let y = b.op1("leaky_relu", &[y], &[("negative_slope", Attr::Float(f64::MIN_POSITIVE / 3.0))]).unwrap();
    b.output("y", y).unwrap();
    let g = b.finish().unwrap();
    let back = round_trip(&g);
    let floats = |g: &Graph| -> Vec<u64> {
        g.nodes()
            .iter()
            .filter_map(|n| match &n.kind {
                deepseek::graph::NodeKind::Op { attrs, .. } => Some(attrs.pairs().filter_map(|(_, a)| match a {
                    Attr::Float(v) => Some(v.to_bits()),
                    _ => None,
                })),
                _ => None,
            })
            .flatten()
            .collect()
    };
    assert_eq!(floats(&back), [lo.to_bits(), f64::INFINITY.to_bits(), (f64::MIN_POSITIVE / 3.0).to_bits()]);
    assert_eq!(floats(&back), floats(&g));
}

#[test]
fn traced_and_optimised_graphs_round_trip_with_their_pass_statistics() {
    let (w, bias) = (normal(&[6, 8], 11), normal(&[6], 12));
    let x = normal(&[3, 8], 13);
    let g = trace(|tr| {
        tr.input("x", &x, Some(&[Dim::sym("b"), Dim::Fixed(8)]))?;
        tr.param("w", &w, true)?;
        let h = x.linear(&w, Some(&bias))?.relu()?;
        tr.output("h", &h)
    })
    .unwrap();
    let opt = optimize(&g, 1).unwrap();
    assert!(!opt.pass_stats().is_empty());
    for graph in [&g, &opt] {
        let back = round_trip(graph);
        assert_eq!(back.to_string(), graph.to_string());
        assert_eq!(back.pass_stats(), graph.pass_stats());
        let x2 = normal(&[7, 8], 14);
        let run = |g: &Graph| {
            let ex = Executor::new(g, ExecOptions::default()).unwrap();
            raw(&ex.run(&[("x", &x2)], &["h"]).unwrap()[0])
        };
        assert_eq!(run(&back), run(graph));
    }
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deepseek-ser-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs in the child process only: loads the graph file named by the environment, runs it
/// and writes the raw output bytes. Without the variable (a normal test run) it does nothing.
#[test]
#[ignore = "run by saved_graph_runs_bitwise_identically_in_a_new_process in a child process"]
fn child_loads_and_runs_a_saved_graph() {
    let Ok(path) = std::env::var(CHILD_GRAPH_VAR) else { return };
    let out = std::env::var(CHILD_OUT_VAR).unwrap();
    let g = Graph::load(std::path::Path::new(&path)).unwrap();
    std::fs::write(out, run_bytes(&g, 2)).unwrap();
}

#[test]
fn saved_graph_runs_bitwise_identically_in_a_new_process() {
    let dir = temp_dir("child");
    let (file, out) = (dir.join("model.dsg"), dir.join("out.bin"));
    let g = model();
    g.save(&file).unwrap();
    // The save left only the file: its temp file was renamed, not copied.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["model.dsg"]);
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_loads_and_runs_a_saved_graph", "--ignored", "--nocapture"])
        .env(CHILD_GRAPH_VAR, &file)
        .env(CHILD_OUT_VAR, &out)
        .status()
        .unwrap();
    assert!(status.success(), "child failed: {status}");
    // Missing output would mean the child test never ran (a name filter that matched nothing).
    let child = std::fs::read(&out).expect("the child wrote no output");
    assert_eq!(child.len(), 5 * 8 * 4);
    assert_eq!(child, run_bytes(&g, 2));
    // Saving over an existing file replaces it whole.
    let small = trace(|tr| {
        let x = normal(&[2, 2], 1);
        tr.input("x", &x, None)?;
        tr.output("y", &x.relu()?)
    })
    .unwrap();
    small.save(&file).unwrap();
    assert_eq!(Graph::load(&file).unwrap().to_string(), small.to_string());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn weights_are_readable_as_plain_safetensors() {
    let g = model();
    let bytes = g.to_bytes().unwrap();
    // By hand, per the safetensors layout.
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "the header is padded so the data starts 8-byte aligned");
    let header: Value = serde_json::from_str(std::str::from_utf8(&bytes[8..8 + n]).unwrap()).unwrap();
    let w1 = &header["param:w1"];
    assert_eq!(w1["dtype"], "F32");
    assert_eq!(w1["shape"], json!([16, 8]));
    let (b, e) = (w1["data_offsets"][0].as_u64().unwrap() as usize, w1["data_offsets"][1].as_u64().unwrap() as usize);
    assert_eq!(&bytes[8 + n + b..8 + n + e], raw(&normal(&[16, 8], 1)).as_slice());
    assert_eq!(header["__metadata__"]["format"], "deepseek.graph");
    assert_eq!(header["__metadata__"]["format_version"], "1");
    assert_eq!(header["param:half_bias"]["dtype"], "F16");
    // By the reference reader (what PyTorch's safetensors runs).
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(names, ["const:11", "const:14", "param:b1", "param:b2", "param:half_bias", "param:w1", "param:w2"]);
    let idx = st.tensor("const:14").unwrap();
    assert_eq!(idx.dtype(), safetensors::Dtype::I64);
    assert_eq!(idx.shape(), [3]);
    assert_eq!(idx.data(), raw(&Tensor::from_slice(&[3i64, 0, 2], &[3]).unwrap()).as_slice());
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["format"], "deepseek.graph");
}

/// Loads `bytes`, proving it does not panic, and returns the error it must give.
fn load_err(bytes: &[u8], case: &str) -> Error {
    match catch_unwind(AssertUnwindSafe(|| Graph::from_bytes(bytes))) {
        Ok(Ok(_)) => panic!("{case}: a bad file loaded"),
        Ok(Err(e)) => e,
        Err(_) => panic!("{case}: loading panicked"),
    }
}

fn corrupt_msg(bytes: &[u8], case: &str) -> String {
    match load_err(bytes, case) {
        Error::Corrupt { what, msg } => {
            assert_eq!(what, "graph bytes");
            msg
        }
        other => panic!("{case}: expected Error::Corrupt, got {other:?}"),
    }
}

fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// FNV-1a 64, as the format documents it.
fn fnv(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// Rewrites a file: `edit` changes the header and the structure JSON; the checksum is
/// recomputed, so the loader's later checks are what the edit meets.
fn edit(bytes: &[u8], edit: impl FnOnce(&mut Value, &mut Value)) -> Vec<u8> {
    let n = header_len(bytes);
    let mut header: Value = serde_json::from_str(std::str::from_utf8(&bytes[8..8 + n]).unwrap()).unwrap();
    let data = &bytes[8 + n..];
    let mut graph: Value = serde_json::from_str(header["__metadata__"]["graph"].as_str().unwrap()).unwrap();
    edit(&mut header, &mut graph);
    let text = graph.to_string();
    let mut keys: Vec<String> = header.as_object().unwrap().keys().filter(|k| *k != "__metadata__").cloned().collect();
    keys.sort();
    let mut parts: Vec<&[u8]> = vec![text.as_bytes()];
    for k in &keys {
        let offs = &header[k.as_str()]["data_offsets"];
        let (b, e) = (offs[0].as_u64().unwrap() as usize, offs[1].as_u64().unwrap() as usize);
        parts.push(&data[b.min(data.len())..e.min(data.len())]);
    }
    let sum = fnv(&parts);
    header["__metadata__"]["graph"] = json!(text);
    header["__metadata__"]["checksum"] = json!(sum);
    let mut h = header.to_string().into_bytes();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// The index of the first op node applying `op` in the structure JSON.
fn node_of(graph: &Value, op: &str) -> usize {
    graph["nodes"].as_array().unwrap().iter().position(|n| n["op"] == op).unwrap()
}

#[test]
fn the_edit_helper_alone_keeps_a_file_loadable() {
    // Guards the tests below: their errors come from their edits, not from the helper.
    let bytes = model().to_bytes().unwrap();
    let same = edit(&bytes, |_, _| {});
    assert_eq!(Graph::from_bytes(&same).unwrap().to_string(), model().to_string());
}

#[test]
fn truncated_files_are_corrupt_at_every_cut() {
    let bytes = model().to_bytes().unwrap();
    let n = header_len(&bytes);
    let data = bytes.len() - 8 - n;
    assert!(data > 100);
    let cuts = (0..8 + n).chain([8 + n + 1, 8 + n + data / 3, 8 + n + data / 2, bytes.len() - 4, bytes.len() - 1]);
    for cut in cuts {
        let msg = corrupt_msg(&bytes[..cut], &format!("cut at {cut}"));
        if cut == 0 {
            assert!(msg.contains("empty"), "{msg}");
        } else if cut < 8 {
            assert!(msg.contains("8-byte header length"), "{msg}");
        } else if cut < 8 + n {
            assert!(msg.contains("truncated"), "{msg}");
        }
    }
    // Extra bytes after the data are damage too.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(corrupt_msg(&longer, "one extra byte").contains("extra bytes"));
}

#[test]
fn every_byte_flip_in_the_header_is_an_error_and_never_a_panic() {
    let bytes = model().to_bytes().unwrap();
    let n = header_len(&bytes);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for pos in 8..8 + n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mask = (seed % 255 + 1) as u8;
        let mut bad = bytes.clone();
        bad[pos] ^= mask;
        corrupt_msg(&bad, &format!("byte {pos} xor {mask:#04x}"));
    }
    // A flipped weight bit is caught by the checksum.
    for pos in [8 + n, 8 + n + 77, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x10;
        assert!(corrupt_msg(&bad, &format!("data byte {pos}")).contains("checksum mismatch"));
    }
}

#[test]
fn header_lengths_beyond_the_file_or_the_limit_are_corrupt() {
    let bytes = model().to_bytes().unwrap();
    let mut bad = bytes.clone();
    bad[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    let msg = corrupt_msg(&bad, "length = file size");
    assert!(msg.contains(&format!("header length {}", bytes.len())) && msg.contains("exceeds the file"), "{msg}");
    bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let msg = corrupt_msg(&bad, "length = u64::MAX");
    assert!(msg.contains("limit"), "{msg}");
    assert!(corrupt_msg(&[], "empty").contains("empty"));
}

#[test]
fn a_newer_format_version_is_refused_with_its_number() {
    let bytes = edit(&model().to_bytes().unwrap(), |h, _| h["__metadata__"]["format_version"] = json!("2"));
    assert_eq!(corrupt_msg(&bytes, "version 2"), "written by a newer format version 2; this library reads version 1");
    let bytes = edit(&model().to_bytes().unwrap(), |h, _| h["__metadata__"]["format"] = json!("other"));
    assert!(corrupt_msg(&bytes, "other format").contains("not a deepseek graph"));
}

#[test]
fn an_unknown_op_is_named() {
    let bytes = edit(&model().to_bytes().unwrap(), |_, g| {
        let i = node_of(g, "clamp");
        g["nodes"][i]["op"] = json!("frobnicate");
    });
    let msg = corrupt_msg(&bytes, "unknown op");
    assert!(msg.contains("unknown op `frobnicate`") && msg.contains("node "), "{msg}");
}

#[test]
fn dangling_and_forward_value_references_are_corrupt() {
    let bytes = model().to_bytes().unwrap();
    let dangling = edit(&bytes, |_, g| {
        let i = node_of(g, "mul");
        g["nodes"][i]["inputs"][0] = json!(999);
    });
    let msg = corrupt_msg(&dangling, "dangling");
    assert!(msg.starts_with("cycle or dangling reference at node ") && msg.contains("%999"), "{msg}");
    // The first linear reads the output of the second: a cycle once the order is ignored.
    let cyclic = edit(&bytes, |_, g| {
        let first = node_of(g, "linear");
        let later = node_of(g, "mul");
        g["nodes"][first]["inputs"][0] = json!(later);
    });
    let msg = corrupt_msg(&cyclic, "cycle");
    let first = 6; // x, w1, b1, w2, b2, half_bias, then the first linear
    assert!(msg.starts_with(&format!("cycle or dangling reference at node {first}")), "{msg}");
    let bad_output = edit(&bytes, |_, g| g["outputs"][0]["value"] = json!(500));
    assert!(corrupt_msg(&bad_output, "output").contains("output `y` names %500"));
}

#[test]
fn tensor_table_errors_are_corrupt_and_name_the_tensor() {
    let bytes = model().to_bytes().unwrap();
    let wrong_shape = edit(&bytes, |h, _| h["param:w1"]["shape"] = json!([16, 7]));
    let msg = corrupt_msg(&wrong_shape, "shape");
    assert!(msg.contains("param:w1") && msg.contains("needs 448"), "{msg}");
    // w1 starts 4 bytes early (same length), into the tensor laid out before it.
    let overlap = edit(&bytes, |h, _| {
        let offs = &mut h["param:w1"]["data_offsets"];
        *offs = json!([offs[0].as_u64().unwrap() - 4, offs[1].as_u64().unwrap() - 4]);
    });
    assert!(corrupt_msg(&overlap, "overlap").contains("overlaps"));
    let out_of_range = edit(&bytes, |h, _| h["param:w1"]["data_offsets"][1] = json!(1u64 << 40));
    assert!(corrupt_msg(&out_of_range, "range").contains("outside"));
    let dtype = edit(&bytes, |h, _| h["param:w1"]["dtype"] = json!("I8"));
    assert!(corrupt_msg(&dtype, "dtype").contains("dtype `I8`"));
    let missing = edit(&bytes, |_, g| {
        let i = g["nodes"].as_array().unwrap().iter().position(|n| n["name"] == "w1").unwrap();
        g["nodes"][i]["tensor"] = json!("param:nope");
    });
    assert!(corrupt_msg(&missing, "missing tensor").contains("`param:nope` is not in the file"));
    let stored_type = edit(&bytes, |_, g| g["nodes"][1]["outputs"][0]["dtype"] = json!("f64"));
    assert!(corrupt_msg(&stored_type, "stored type").contains("output types"));
    let bool_byte = {
        let mut b = GraphBuilder::new();
        let m = b.constant(&Tensor::from_slice(&[true, false], &[2]).unwrap()).unwrap();
        b.output("m", m).unwrap();
        let mut bytes = b.finish().unwrap().to_bytes().unwrap();
        *bytes.last_mut().unwrap() = 7;
        bytes
    };
    // The raw byte change breaks the checksum, so recompute it: the bool check must fire alone.
    let bool_byte = edit(&bool_byte, |_, _| {});
    assert!(corrupt_msg(&bool_byte, "bool byte").contains("bool tensors hold bytes 0 or 1"));
}

#[test]
fn missing_paths_are_not_found_and_name_the_path() {
    let path = std::env::temp_dir().join("deepseek-ser-no-such-dir").join("missing.dsg");
    match Graph::load(&path) {
        Err(Error::NotFound(msg)) => assert!(msg.contains(&path.display().to_string()), "{msg}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match model().save(&path) {
        Err(Error::NotFound(msg)) => assert!(msg.contains("missing.dsg"), "{msg}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // A corrupt file on disk names its path.
    let dir = temp_dir("corrupt");
    let file = dir.join("bad.dsg");
    std::fs::write(&file, b"not a graph").unwrap();
    match Graph::load(&file) {
        Err(Error::Corrupt { what, .. }) => assert_eq!(what, file.display().to_string()),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn impossible_input_sizes_and_bad_node_shapes_are_corrupt() {
    let bytes = model().to_bytes().unwrap();
    let huge = edit(&bytes, |_, g| g["nodes"][0]["outputs"][0]["dims"] = json!(["batch", 1u64 << 62]));
    let msg = corrupt_msg(&huge, "huge input");
    assert!(msg.starts_with("node 0: ") && msg.contains("overflows"), "{msg}");
    let input_with_inputs = edit(&bytes, |_, g| g["nodes"][1]["inputs"] = json!([0]));
    assert!(corrupt_msg(&input_with_inputs, "param reading a value").contains("param nodes read no values"));
    let unknown_kind = edit(&bytes, |_, g| g["nodes"][0]["kind"] = json!("fused"));
    assert!(corrupt_msg(&unknown_kind, "kind").contains("unknown node kind `fused`"));
    let bad_attr = edit(&bytes, |_, g| {
        let i = node_of(g, "leaky_relu");
        g["nodes"][i]["attrs"][0]["value"] = json!(0.1);
    });
    assert!(corrupt_msg(&bad_attr, "float attr as number").contains("attribute `negative_slope`"));
    let unused = edit(&bytes, |h, _| {
        let mut w = h["param:w1"].clone();
        let end = w["data_offsets"][1].clone();
        w["data_offsets"] = json!([end, end]);
        w["shape"] = json!([0]);
        h["zzz"] = w;
    });
    let msg = corrupt_msg(&unused, "unused tensor");
    assert!(msg.contains("`zzz`") && msg.contains("no node uses it"), "{msg}");
}
