//! The inner loop of the weight comparison: decode a slice of the final
//! model once, then for each reference decode its slice and add up
//! ‖a − b‖² and ‖b‖². Written so that LLVM vectorises it: decoding is a
//! branch-free map from bytes to f32, and the sums keep 16 independent
//! f32 lanes (a single float accumulator is a serial dependency chain the
//! compiler may not reorder). The lanes go to f64 every `STEP` elements.
//!
//! The same code is compiled twice, for the baseline x86-64 target and for
//! AVX2, and picked at run time (the build stays portable; the `multiversion`
//! crate would do the same with a proc macro for one call site).

use super::{RefSlice, STEP};
use safetensors::Dtype;

/// (reference, pair, ‖a − b‖², ‖b‖²) for each reference of one job.
pub(super) type Sums = Vec<(usize, usize, f64, f64)>;

pub(super) fn job(a: &[u8], da: Dtype, refs: &[RefSlice<'_>], xa: &mut [f32], xb: &mut [f32]) -> Sums {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { job_avx2(a, da, refs, xa, xb) };
    }
    job_impl(a, da, refs, xa, xb)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn job_avx2(a: &[u8], da: Dtype, refs: &[RefSlice<'_>], xa: &mut [f32], xb: &mut [f32]) -> Sums {
    job_with(a, da, refs, xa, xb, |a, b| {
        // SAFETY: this function only runs where AVX2 was detected.
        unsafe { sums_avx2(a, b) }
    })
}

fn job_impl(a: &[u8], da: Dtype, refs: &[RefSlice<'_>], xa: &mut [f32], xb: &mut [f32]) -> Sums {
    job_with(a, da, refs, xa, xb, sums16)
}

#[inline(always)]
fn job_with(a: &[u8], da: Dtype, refs: &[RefSlice<'_>], xa: &mut [f32], xb: &mut [f32], sum: impl Fn(&[f32], &[f32]) -> (f64, f64)) -> Sums {
    let ea = size(da);
    let n = a.len() / ea;
    let mut sums: Sums = refs.iter().map(|r| (r.reference, r.pair, 0.0, 0.0)).collect();
    let mut k = 0;
    while k < n {
        let m = STEP.min(n - k);
        decode(da, &a[k * ea..(k + m) * ea], &mut xa[..m]);
        for (r, s) in refs.iter().zip(sums.iter_mut()) {
            let eb = size(r.dtype);
            let nb = r.bytes.len() / eb;
            if nb <= k {
                continue;
            }
            let mb = m.min(nb - k);
            decode(r.dtype, &r.bytes[k * eb..(k + mb) * eb], &mut xb[..mb]);
            let (d2, n2) = sum(&xa[..mb], &xb[..mb]);
            s.2 += d2;
            s.3 += n2;
        }
        k += m;
    }
    sums
}

#[inline(always)]
fn size(d: Dtype) -> usize {
    match d {
        Dtype::F64 => 8,
        Dtype::F32 => 4,
        _ => 2,
    }
}

/// Decode little-endian `bytes` of dtype `d` into `out` (as many as `out` holds).
#[inline(always)]
fn decode(d: Dtype, bytes: &[u8], out: &mut [f32]) {
    match d {
        Dtype::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        Dtype::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        Dtype::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Dtype::F64 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32;
            }
        }
        // Pairs are made of decodable dtypes only (`elem_size`).
        _ => out.fill(0.0),
    }
}

/// bf16 is the top half of an f32.
#[inline(always)]
pub(super) fn bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// IEEE half to f32 without branches (selects only, so it vectorises):
/// normals and inf/NaN by moving the exponent, subnormals as mantissa · 2⁻²⁴.
#[inline(always)]
pub(super) fn f16(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    let moved = (em << 13) + ((127 - 15) << 23);
    let moved = if em >= 0x7c00 { moved + ((128 - 16) << 23) } else { moved };
    let sub = (em as f32 * f32::from_bits(0x3380_0000)).to_bits();
    f32::from_bits(if em < 0x0400 { sub } else { moved } | sign)
}

/// (Σ (a − b)², Σ b²) over 16 lanes, then in f64.
#[inline(always)]
fn sums16(a: &[f32], b: &[f32]) -> (f64, f64) {
    const L: usize = 16;
    let (mut d, mut n) = ([0.0f32; L], [0.0f32; L]);
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        // Fixed-size arrays: without them LLVM keeps the lanes scalar.
        let (x, y): (&[f32; L], &[f32; L]) = (x.try_into().expect("chunk of L"), y.try_into().expect("chunk of L"));
        for i in 0..L {
            let e = x[i] - y[i];
            d[i] += e * e;
            n[i] += y[i] * y[i];
        }
    }
    for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
        let e = x - y;
        d[i] += e * e;
        n[i] += y * y;
    }
    (d.iter().map(|v| *v as f64).sum(), n.iter().map(|v| *v as f64).sum())
}

/// `sums16` in AVX2 intrinsics: LLVM's vectoriser left that loop's lanes in
/// scalar registers (seen in `perf annotate`), a third of the judge's time.
/// Same order of additions per lane as `sums16` (16 lanes: two registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sums_avx2(a: &[f32], b: &[f32]) -> (f64, f64) {
    use std::arch::x86_64::*;
    let len = a.len().min(b.len());
    let full = len / 16 * 16;
    let (mut d0, mut d1, mut n0, mut n1) = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    let mut p = 0;
    while p < full {
        // SAFETY: p + 16 <= len, so both 8-wide loads at p and p + 8 are in bounds.
        unsafe {
            let (x0, x1) = (_mm256_loadu_ps(a.as_ptr().add(p)), _mm256_loadu_ps(a.as_ptr().add(p + 8)));
            let (y0, y1) = (_mm256_loadu_ps(b.as_ptr().add(p)), _mm256_loadu_ps(b.as_ptr().add(p + 8)));
            let (e0, e1) = (_mm256_sub_ps(x0, y0), _mm256_sub_ps(x1, y1));
            d0 = _mm256_add_ps(d0, _mm256_mul_ps(e0, e0));
            d1 = _mm256_add_ps(d1, _mm256_mul_ps(e1, e1));
            n0 = _mm256_add_ps(n0, _mm256_mul_ps(y0, y0));
            n1 = _mm256_add_ps(n1, _mm256_mul_ps(y1, y1));
        }
        p += 16;
    }
    let (mut d, mut n) = ([0.0f32; 16], [0.0f32; 16]);
    // SAFETY: each array holds 16 f32, two registers' worth.
    unsafe {
        _mm256_storeu_ps(d.as_mut_ptr(), d0);
        _mm256_storeu_ps(d.as_mut_ptr().add(8), d1);
        _mm256_storeu_ps(n.as_mut_ptr(), n0);
        _mm256_storeu_ps(n.as_mut_ptr().add(8), n1);
    }
    for (i, (x, y)) in a[full..len].iter().zip(&b[full..len]).enumerate() {
        let e = x - y;
        d[i] += e * e;
        n[i] += y * y;
    }
    (d.iter().map(|v| *v as f64).sum(), n.iter().map(|v| *v as f64).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_matches_the_half_crate_for_every_value() {
        for h in 0..=u16::MAX {
            let (ours, theirs) = (f16(h), half::f16::from_bits(h).to_f32());
            assert!(ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()), "{h:#06x}: {ours} vs {theirs}");
        }
    }

    #[test]
    fn bf16_matches_the_half_crate_for_every_value() {
        for h in 0..=u16::MAX {
            let (ours, theirs) = (bf16(h), half::bf16::from_bits(h).to_f32());
            assert!(ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()), "{h:#06x}: {ours} vs {theirs}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_sums_equal_the_portable_ones() {
        if !std::is_x86_feature_detected!("avx2") {
            return; // nothing to compare on this CPU; the portable path is the one that runs
        }
        let a: Vec<f32> = (0..1037).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1037).map(|i| (i as f32 * 0.11).cos()).collect();
        // SAFETY: AVX2 detected above.
        assert_eq!(unsafe { sums_avx2(&a, &b) }, sums16(&a, &b));
    }

    #[test]
    fn sums_count_every_element_including_the_tail() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..37).map(|i| i as f32 + 1.0).collect();
        let (d2, n2) = sums16(&a, &b);
        assert_eq!(d2, 37.0);
        assert_eq!(n2, (1..=37).map(|i| (i * i) as f64).sum::<f64>());
    }
}
