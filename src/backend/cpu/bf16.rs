//! bf16 ⇄ f32 conversions written without branches so loops of them vectorise; bit-identical to `half`'s.
//!
//! `half` converts bf16 one element at a time through a NaN branch, which keeps the compiler
//! from vectorising a row of conversions; these selects compile to blends. Rows have an
//! AVX-512 build picked at run time (the library is compiled for baseline x86-64).

use half::bf16;

/// bf16 → f32, exact (a signalling NaN comes back quiet, as from `half`).
#[inline(always)]
pub fn widen(h: bf16) -> f32 {
    let b = h.to_bits() as u32;
    let quiet = if b & 0x7fff > 0x7f80 { b | 0x40 } else { b };
    f32::from_bits(quiet << 16)
}

/// f32 → bf16 bits, round to nearest even, NaN kept quiet.
#[inline(always)]
pub fn rne_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    let nan = (b >> 16) | 0x40;
    (if b & 0x7fff_ffff > 0x7f80_0000 { nan } else { rounded }) as u16
}

/// f32 → bf16, round to nearest even, NaN kept quiet.
#[inline(always)]
pub fn narrow(x: f32) -> bf16 {
    bf16::from_bits(rne_bits(x))
}

#[inline(always)]
fn widen_loop(src: &[bf16], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = widen(s);
    }
}

#[inline(always)]
fn narrow_loop(src: &[f32], dst: &mut [bf16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = narrow(s);
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    // std caches the answer: this is a load and a test.
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn widen_avx512(src: &[bf16], dst: &mut [f32]) {
    widen_loop(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn narrow_avx512(src: &[f32], dst: &mut [bf16]) {
    narrow_loop(src, dst)
}

/// `dst[i] = widen(src[i])` over the shorter of the two.
pub fn widen_row(src: &[bf16], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has the features the function was compiled for.
        return unsafe { widen_avx512(src, dst) };
    }
    widen_loop(src, dst)
}

/// `dst[i] = narrow(src[i])` over the shorter of the two.
pub fn narrow_row(src: &[f32], dst: &mut [bf16]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has the features the function was compiled for.
        return unsafe { narrow_avx512(src, dst) };
    }
    narrow_loop(src, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_half_on_every_bf16_and_rounding_edges() {
        for bits in 0..=u16::MAX {
            let h = bf16::from_bits(bits);
            assert_eq!(widen(h).to_bits(), h.to_f32().to_bits(), "widen {bits:#06x}");
        }
        let specials = [0.0f32, -0.0, 1.0, f32::MAX, f32::MIN_POSITIVE, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        let mut xs: Vec<f32> = specials.to_vec();
        // Ties and near-ties around the rounding bit, both parities, and signalling NaNs.
        for hi in [0x3f80u32, 0x3f81, 0x7f7f, 0x0001, 0xbf80, 0x7f80, 0xff80] {
            for lo in [0x0000u32, 0x7fff, 0x8000, 0x8001, 0xffff, 0x0001] {
                xs.push(f32::from_bits((hi << 16) | lo));
            }
        }
        for x in xs {
            assert_eq!(rne_bits(x), bf16::from_f32(x).to_bits(), "narrow {:#010x}", x.to_bits());
        }
        let src: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.377).collect();
        let mut half_row = vec![bf16::ZERO; 1000];
        let mut row = vec![bf16::ZERO; 1000];
        for (d, &s) in half_row.iter_mut().zip(&src) {
            *d = bf16::from_f32(s);
        }
        narrow_row(&src, &mut row);
        assert_eq!(row, half_row);
        let mut back = vec![0f32; 1000];
        widen_row(&row, &mut back);
        assert!(back.iter().zip(&row).all(|(b, r)| b.to_bits() == r.to_f32().to_bits()));
    }
}
