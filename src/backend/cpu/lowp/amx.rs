//! The AMX driver for bf16: 32 × 32 output blocks accumulated in tile registers by `tdpbf16ps`.
//!
//! Where the CPU has AMX-BF16 (Intel Sapphire Rapids and later) one `tdpbf16ps` multiplies a
//! 16 × 32 by a 32 × 16 bf16 tile into 16 × 16 f32 sums: 16 times the work of an AVX-512
//! `vdpbf16ps`. The tile instructions are reached through inline assembly (their intrinsics
//! are not stable in Rust). Linux hands the tile registers to a process only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), made once, lazily, on the first bf16 product; if the
//! request fails the AVX-512 driver runs instead.

use super::LowpOut;
use super::native::{split_tasks, write_tile_row};
use super::pack::{NR, pack_b, transpose_u16_8x8};
use crate::backend::cpu::gemm::MatView;
use crate::runtime::{Dst, install};
use rayon::prelude::*;
use std::arch::asm;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows and columns of one tile-register block of the output (2 × 2 tiles of 16 × 16).
const BLOCK: usize = 32;
/// Depth of one tile product: 16 rows of bf16 pairs.
const KT: usize = 32;
/// Rows of A per task: the packed block (MC · k · 2 bytes) stays in L2 while B streams past.
const MC: usize = 4 * BLOCK;
/// Depth of one chunk of the sums (a multiple of KT): one panel's chunk is KC · 64 bytes.
const KC: usize = 256;
/// Below this many multiply-adds the product runs on the calling thread.
const SERIAL_WORK: usize = 64 * 64 * 64;

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns the AMX path off (process-wide) so tests can check the AVX-512 kernel on a CPU that
/// has both. For tests and benchmarks only.
#[doc(hidden)]
pub fn set_disabled(on: bool) {
    DISABLED.store(on, Ordering::SeqCst);
}

/// Whether bf16 products run on AMX: the CPU has AMX-TILE and AMX-BF16, the kernel granted
/// the tile state to this process, and the path is not disabled.
pub(super) fn available() -> bool {
    static GRANTED: OnceLock<bool> = OnceLock::new();
    !DISABLED.load(Ordering::SeqCst) && *GRANTED.get_or_init(request_tiles)
}

#[cfg(target_os = "linux")]
fn request_tiles() -> bool {
    // CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    if leaf.edx & (1 << 22) == 0 || leaf.edx & (1 << 24) == 0 {
        return false;
    }
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with integer arguments; it reads and writes no
    // memory of ours. `syscall` clobbers rcx and r11.
    unsafe {
        asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret, in("rdi") ARCH_REQ_XCOMP_PERM,
             in("rsi") XFEATURE_XTILEDATA, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tiles() -> bool {
    false
}

/// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = {
    let mut c = TileConfig { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
    let mut t = 0;
    while t < 8 {
        c.colsb[t] = 64;
        c.rows[t] = 16;
        t += 1;
    }
    c
};

/// Tile registers configured for the lifetime of this guard on this thread.
struct Tiles;

impl Tiles {
    /// # Safety
    /// [`available`] returned true in this process.
    unsafe fn configure() -> Tiles {
        // SAFETY: the config is a valid palette-1 layout; the caller checked the CPU and the
        // kernel's grant.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG as *const TileConfig, options(nostack, readonly)) };
        Tiles
    }

    /// One 32 × 32 block: `out[r·32 + c] (+)= Σ_k a[r][k] · b[k][c]` over `kt` tile depths,
    /// where `a` is rows of `a_stride` bf16 (row-major, k contiguous) and `b` a packed column
    /// panel (`[k / 2][NR][2]`, NR = 32). With `accumulate` the sums start from `out`
    /// (a previous depth chunk's), else from zero.
    ///
    /// # Safety
    /// `a` holds 32 rows of `kt · 32` bf16 at `a_stride`; `b` holds `kt · 16` pair rows.
    unsafe fn block(
        &self,
        kt: usize,
        a: *const u16,
        a_stride: usize,
        b: *const u16,
        out: &mut [f32; BLOCK * BLOCK],
        accumulate: bool,
    ) {
        let (astride, bstride) = (a_stride * 2, NR * 2 * 2);
        let o = out.as_mut_ptr();
        let (c0, c1, c2, c3) = (o, o.wrapping_add(16), o.wrapping_add(16 * BLOCK), o.wrapping_add(16 * BLOCK + 16));
        // SAFETY: in bounds by the caller's contract; tiles configured by `configure`.
        unsafe {
            if accumulate {
                asm!(
                    "tileloadd tmm0, [{c0} + {s}]",
                    "tileloadd tmm1, [{c1} + {s}]",
                    "tileloadd tmm2, [{c2} + {s}]",
                    "tileloadd tmm3, [{c3} + {s}]",
                    c0 = in(reg) c0, c1 = in(reg) c1, c2 = in(reg) c2, c3 = in(reg) c3, s = in(reg) BLOCK * 4,
                    options(nostack, readonly),
                );
            } else {
                asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
            }
            for t in 0..kt {
                let a0 = a.add(t * KT);
                let a1 = a0.add(16 * a_stride);
                let b0 = b.add(t * KT / 2 * NR * 2);
                let b1 = b0.add(16 * 2);
                // Loads interleaved with products: tile registers are not renamed, so each
                // load waits for the last product reading its register; this order frees
                // them earliest.
                asm!(
                    "tileloadd tmm4, [{a0} + {as_}]",
                    "tileloadd tmm6, [{b0} + {bs}]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tileloadd tmm7, [{b1} + {bs}]",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tileloadd tmm5, [{a1} + {as_}]",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0, a1 = in(reg) a1, b0 = in(reg) b0, b1 = in(reg) b1,
                    as_ = in(reg) astride, bs = in(reg) bstride,
                    options(nostack, readonly),
                );
            }
            asm!(
                "tilestored [{c0} + {s}], tmm0",
                "tilestored [{c1} + {s}], tmm1",
                "tilestored [{c2} + {s}], tmm2",
                "tilestored [{c3} + {s}], tmm3",
                c0 = in(reg) c0, c1 = in(reg) c1, c2 = in(reg) c2, c3 = in(reg) c3,
                s = in(reg) BLOCK * 4,
                options(nostack),
            );
        }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: releases this thread's tile state, configured in `configure`.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// Copies rows `i0..i0 + rows` of the `m × k` bf16 matrix `src` into `out`, row-major with
/// `kpad` columns, zero past `rows` (up to a multiple of 32) and past `k`.
fn pack_rows(src: &[u16], v: MatView, (i0, rows): (usize, usize), k: usize, kpad: usize, out: &mut [u16]) {
    if v.cs != 1 && v.rs == 1 {
        // A transposed operand (a weight gradient's gᵀ): its columns are contiguous; move it
        // in 8 × 8 blocks transposed in registers.
        out.fill(0);
        let (r8, k8) = (rows / 8 * 8, k / 8 * 8);
        for q0 in (0..k8).step_by(8) {
            for i in (0..r8).step_by(8) {
                // SAFETY: columns q0..q0+8 and rows i0+i..i0+i+8 lie inside the checked view;
                // packed rows i..i+8 hold kpad ≥ q0 + 8 elements.
                unsafe {
                    transpose_u16_8x8(
                        src.as_ptr().add(v.off + (i0 + i) + q0 * v.cs),
                        v.cs,
                        out.as_mut_ptr().add(i * kpad + q0),
                        kpad,
                    )
                };
            }
        }
        for i in 0..rows {
            let from = if i < r8 { k8 } else { 0 };
            for q in from..k {
                out[i * kpad + q] = src[v.off + i0 + i + q * v.cs];
            }
        }
        return;
    }
    if v.cs != 1 && v.rs < v.cs {
        // A transposed operand (a gradient's xᵀ): its columns are contiguous. Read them in
        // order, eight at a time, and scatter into the rows, which sit in cache.
        out.fill(0);
        const Q: usize = 8;
        for q0 in (0..k).step_by(Q) {
            let qs = Q.min(k - q0);
            for i in 0..rows {
                let base = v.off + (i0 + i) * v.rs + q0 * v.cs;
                let row = &mut out[i * kpad + q0..i * kpad + q0 + qs];
                for (q, d) in row.iter_mut().enumerate() {
                    *d = src[base + q * v.cs];
                }
            }
        }
        return;
    }
    for (i, row) in out.chunks_exact_mut(kpad).enumerate() {
        if i >= rows {
            row.fill(0);
            continue;
        }
        let base = v.off + (i0 + i) * v.rs;
        if v.cs == 1 {
            row[..k].copy_from_slice(&src[base..base + k]);
        } else {
            for (q, d) in row[..k].iter_mut().enumerate() {
                *d = src[base + q * v.cs];
            }
        }
        row[k..].fill(0);
    }
}

/// See [`super::lowp_gemm_into`] for bf16 (`a`, `b` as raw bits); inputs already checked.
/// Requires [`available`]. Every output element is one thread's k-ordered sum of tile
/// products, so results do not depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub(super) fn run<O: LowpOut>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [O],
    dst_rs: usize,
    a: &[u16],
    av: MatView,
    b: &[u16],
    bv: MatView,
    bias: Option<&[f32]>,
    threads: usize,
) {
    let kpad = k.div_ceil(KT) * KT;
    let kt = kpad / KT;
    let np = n.div_ceil(NR);
    let parallel = threads > 1 && m * n * k >= SERIAL_WORK;
    let mut bp = vec![0u16; np * kpad * NR];
    let pack = |(j, chunk): (usize, &mut [u16])| pack_b(b, bv, (j * NR, NR.min(n - j * NR)), k, 2, chunk);
    if parallel {
        install(|| bp.par_chunks_exact_mut(kpad * NR).enumerate().for_each(pack));
    } else {
        bp.chunks_exact_mut(kpad * NR).enumerate().for_each(pack);
    }
    let (mb, nchunks, per_chunk) = split_tasks(m, MC, np, parallel, threads);
    let out = Dst(dst.as_mut_ptr());
    let bp = &bp;
    let task = |t: usize| {
        let (bi, ci) = (t / nchunks, t % nchunks);
        let (i0, rows) = (bi * MC, MC.min(m - bi * MC));
        let blocks = rows.div_ceil(BLOCK);
        let mut ap = vec![0u16; blocks * BLOCK * kpad];
        pack_rows(a, av, (i0, rows), k, kpad, &mut ap);
        let panels = ci * per_chunk..((ci + 1) * per_chunk).min(np);
        // One f32 block of sums per (panel, row block), carried across depth chunks.
        let mut sums = vec![[0f32; BLOCK * BLOCK]; panels.len() * blocks];
        let mut row = [0f32; NR];
        // SAFETY: the caller checked `available()`.
        let tiles = unsafe { Tiles::configure() };
        // Depth chunks of KC: a chunk of one panel (KC · 64 bytes) stays in L1 while the row
        // blocks' chunks pass it, instead of whole-depth panels streaming from L2.
        for k0 in (0..kt).step_by(KC / KT) {
            let depth = (KC / KT).min(kt - k0);
            for (p, j) in panels.clone().enumerate() {
                let panel = bp.as_ptr().wrapping_add(j * kpad * NR + k0 * KT * NR);
                for u in 0..blocks {
                    // SAFETY: block u has 32 packed rows of kpad bf16 (this chunk starts at
                    // column k0·32); panel j has kpad / 2 pair rows (this chunk at k0·16).
                    unsafe {
                        tiles.block(
                            depth,
                            ap.as_ptr().add(u * BLOCK * kpad + k0 * KT),
                            kpad,
                            panel,
                            &mut sums[p * blocks + u],
                            k0 > 0,
                        )
                    };
                }
            }
        }
        for (p, j) in panels.enumerate() {
            let (j0, cols) = (j * NR, NR.min(n - j * NR));
            for u in 0..blocks {
                let tile = &sums[p * blocks + u];
                for r in 0..BLOCK.min(rows - u * BLOCK) {
                    let i = i0 + u * BLOCK + r;
                    // SAFETY: (i, j0..j0+cols) lies inside the checked dst view, and only this
                    // task writes this row segment.
                    unsafe {
                        write_tile_row(&tile[r * BLOCK..r * BLOCK + cols], bias, j0, out, i * dst_rs + j0, &mut row)
                    };
                }
            }
        }
        drop(tiles);
    };
    let tasks = mb * nchunks;
    if parallel {
        install(|| (0..tasks).into_par_iter().for_each(task));
    } else {
        (0..tasks).for_each(task);
    }
}
