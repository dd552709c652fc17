//! The checked-in C header is current, uses only our prefixes, and compiles as strict C11 and C++17.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let config = cbindgen::Config::from_file(root().join("include/cbindgen.toml")).expect("include/cbindgen.toml");
    let bindings = cbindgen::generate_with_config(root(), config).expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

/// Compares a regenerated header with a file; the message says how to fix a stale one.
fn check_current(generated: &str, path: &Path) -> Result<(), String> {
    let on_disk = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if on_disk == generated {
        return Ok(());
    }
    let line = on_disk.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
    Err(format!(
        "{} is stale (first difference at line {line}); regenerate it with DEEPSEEK_GEN_HEADER=1 cargo build",
        path.display()
    ))
}

#[test]
fn checked_in_header_is_current() {
    let generated = generate();
    if let Err(e) = check_current(&generated, &root().join("include/deepseek.h")) {
        panic!("{e}");
    }
}

#[test]
fn stale_header_is_detected() {
    // The check must be able to fail: a header missing one line is reported as stale.
    let generated = generate();
    let stale: String =
        generated.lines().filter(|l| !l.contains("ds_tensor_free(")).map(|l| format!("{l}\n")).collect();
    let dir = std::env::temp_dir().join(format!("deepseek-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("deepseek.h");
    std::fs::write(&path, stale).unwrap();
    let err = check_current(&generated, &path).expect_err("a stale header must be detected");
    assert!(err.contains("stale"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn header_exports_only_prefixed_names() {
    let header = generate();
    for line in header.lines() {
        if let Some(rest) = line.strip_prefix("#define ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(name.starts_with("DS_") || name == "DEEPSEEK_H", "unprefixed macro in header: {line}");
        }
        // A struct with fields is named on its closing line: `typedef struct {` ... `} DsRunStats;`.
        if let Some(rest) = line.strip_prefix("} ").and_then(|r| r.strip_suffix(';')) {
            assert!(rest.starts_with("Ds"), "unprefixed type in header: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("typedef ").filter(|r| !r.ends_with('{')) {
            let name = rest
                .trim_end_matches(';')
                .rsplit([' ', '*', '('])
                .find(|s| !s.is_empty() && !s.contains(')'))
                .unwrap_or("");
            let name = rest.split("(*").nth(1).map(|s| s.split(')').next().unwrap()).unwrap_or(name);
            assert!(name.starts_with("Ds"), "unprefixed type in header: {line}");
        }
    }
    let functions = header.lines().filter(|l| l.contains(" ds_") && l.contains('(')).count();
    assert!(functions > 30, "expected the ds_ functions in the header, found {functions}");
}

fn compile(compiler: &str, args: &[&str], source: &str, ext: &str) {
    let dir = std::env::temp_dir().join(format!("deepseek-hdr-{}-{compiler}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("use_header.{ext}"));
    std::fs::write(&src, source).unwrap();
    let include = root().join("include");
    let out = Command::new(compiler)
        .args(args)
        .arg("-I")
        .arg(&include)
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(dir.join("use_header.o"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler} (the README's setup installs it): {e}"));
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "{compiler} {args:?} rejected the header:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn header_compiles_as_strict_c11_and_cpp17() {
    let source = "#include \"deepseek.h\"\nint probe(void) { return DS_ABI_VERSION + DS_DTYPE_F32 + DS_STATUS_OK; }\n";
    compile("gcc", &["-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror"], source, "c");
    compile("g++", &["-std=c++17", "-Wall", "-Wextra", "-pedantic", "-Werror"], source, "cpp");
}
