//! Every `kernels/*.cu` compiles with NVRTC — also on machines without a GPU, given libnvrtc.
//!
//! The README's test command installs the NVRTC wheel and sets DEEPSEEK_REQUIRE_NVRTC=1, so
//! there a missing NVRTC is a failure, not a skip.

#![cfg(feature = "cuda")]

use deepseek::DType;
use deepseek::backend::cuda::kernels::{ALL, compile, nvrtc_available};

#[test]
fn every_kernel_compiles_for_ampere_and_hopper() {
    if !nvrtc_available() {
        assert_ne!(
            std::env::var("DEEPSEEK_REQUIRE_NVRTC").as_deref(),
            Ok("1"),
            "DEEPSEEK_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded (LD_LIBRARY_PATH?)"
        );
        eprintln!("skipped: libnvrtc.so not found; `make test` installs it");
        return;
    }
    for src in ALL {
        for arch in ["sm_80", "sm_90"] {
            let ptx = compile(src, arch).unwrap_or_else(|e| panic!("{e}"));
            let text = ptx.to_src();
            assert!(text.contains(&format!(".target {arch}")), "{}: no .target {arch}", src.name);
        }
    }
    // The copy kernels cover every dtype pair the CPU backend does.
    let text = compile(&deepseek::backend::cuda::kernels::COPY_CAST, "sm_90").unwrap().to_src();
    for a in DType::ALL {
        for b in DType::ALL {
            let name = format!(".entry copy_cast_{}_{}(", a.name(), b.name());
            assert!(text.contains(&name), "missing kernel {name}");
        }
    }
}

#[test]
fn bad_source_is_an_error_not_a_panic() {
    if !nvrtc_available() {
        eprintln!("skipped: libnvrtc.so not found");
        return;
    }
    let bad = deepseek::backend::cuda::kernels::KernelSource {
        name: "broken",
        source: "extern \"C\" __global__ void f() { undefined_thing(); }",
    };
    let e = compile(&bad, "sm_90").unwrap_err().to_string();
    assert!(e.contains("broken.cu"), "{e}");
}
