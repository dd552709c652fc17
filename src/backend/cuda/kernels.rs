//! The CUDA C sources in `kernels/`, embedded in the library and compiled at run time by NVRTC.

use crate::error::{Error, Result};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// One `kernels/*.cu` file.
pub struct KernelSource {
    /// File name without extension; also the NVRTC program name.
    pub name: &'static str,
    /// The CUDA C source.
    pub source: &'static str,
}

/// Strided copy with dtype conversion (`copy_cast_<src>_<dst>`).
pub const COPY_CAST: KernelSource =
    KernelSource { name: "copy_cast", source: include_str!("../../../kernels/copy_cast.cu") };

/// Every kernel source, so tests can compile each one.
pub const ALL: &[KernelSource] = &[COPY_CAST];

/// True when libnvrtc can be loaded in this process.
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library.
    catch_unwind(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }).unwrap_or(false)
}

/// Compiles `src` to PTX for `arch` (e.g. `"sm_90"`). cudarc's NVRTC loader panics when the
/// library is missing, so availability is checked first and any panic becomes an error.
pub fn compile(src: &KernelSource, arch: &'static str) -> Result<cudarc::nvrtc::Ptx> {
    if !nvrtc_available() {
        return Err(Error::DeviceUnavailable(
            "libnvrtc.so could not be loaded; NVRTC is needed to compile CUDA kernels".into(),
        ));
    }
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch),
        name: Some(format!("{}.cu", src.name)),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    match catch_unwind(AssertUnwindSafe(|| cudarc::nvrtc::compile_ptx_with_opts(src.source, opts))) {
        Ok(Ok(ptx)) => Ok(ptx),
        Ok(Err(e)) => Err(Error::Internal(format!("NVRTC failed on kernels/{}.cu for {arch}: {e:?}", src.name))),
        Err(_) => Err(Error::Internal(format!("NVRTC panicked on kernels/{}.cu", src.name))),
    }
}

/// The `sm_XY` string for a compute capability, as a `'static` NVRTC option.
pub fn arch_name(major: i32, minor: i32) -> &'static str {
    match (major, minor) {
        (7, 0) => "sm_70",
        (7, 5) => "sm_75",
        (8, 0) => "sm_80",
        (8, 6) => "sm_86",
        (8, 7) => "sm_87",
        (8, 9) => "sm_89",
        (9, 0) => "sm_90",
        (10, 0) => "sm_100",
        (12, 0) => "sm_120",
        // Unlisted: compile for the newest architecture we know below it.
        (m, _) if m >= 12 => "sm_120",
        (m, _) if m >= 10 => "sm_100",
        (9, _) => "sm_90",
        (8, _) => "sm_80",
        _ => "sm_70",
    }
}
