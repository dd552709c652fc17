//! Regenerates include/deepseek.h from src/ffi when DEEPSEEK_GEN_HEADER=1 (the checked-in
//! header is otherwise left alone; tests/header.rs checks that it is current).

fn main() {
    println!("cargo:rerun-if-env-changed=DEEPSEEK_GEN_HEADER");
    if std::env::var("DEEPSEEK_GEN_HEADER").as_deref() != Ok("1") {
        return;
    }
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=include/cbindgen.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/include/cbindgen.toml")).expect("include/cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(format!("{dir}/include/deepseek.h"));
}
