//! Runs a kernel compiled for the widest vector unit the CPU has.
//!
//! ptb is built for baseline x86-64 (SSE2), so a plain loop uses 4-lane vectors even on a CPU
//! with AVX-512. [`wide`] runs its closure inside a function compiled with AVX-512 (or AVX2)
//! enabled, chosen at run time; `#[inline(always)]` kernels called from it are compiled
//! for that target too. Written by hand: the dispatch is a dozen lines, and the
//! `multiversion` crate would add a proc-macro build for them.
//!
//! Results do not depend on which variant runs: kernels fix their own order of additions
//! (e.g. [`dot`]'s 16 partial sums) and Rust never contracts `a * b + c` into an FMA, so
//! every variant rounds identically.

/// Calls `f` compiled for the best of AVX-512F, AVX2 or the baseline.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { avx512(f) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `a · b` with 16 independent partial sums: one AVX-512 vector, two AVX2 or four SSE
/// vectors, and the same rounding on all of them.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0.0f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(p, q)| p * q).sum();
    for (pa, pb) in ca.zip(cb) {
        for i in 0..L {
            acc[i] += pa[i] * pb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y ← y + a·x`.
#[inline(always)]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (p, q) in y.iter_mut().zip(x) {
        *p += a * q;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_rounds_like_the_baseline() {
        // Values whose sums round differently in different orders.
        let a: Vec<f32> = (0..203).map(|i| 1.0 + (i as f32) * 1e-3 + if i % 7 == 0 { 1e4 } else { 0.0 }).collect();
        let b: Vec<f32> = (0..203).map(|i| 0.3 - (i as f32) * 1e-4).collect();
        let baseline = dot(&a, &b);
        assert_eq!(wide(|| dot(&a, &b)).to_bits(), baseline.to_bits());
        let naive: f32 = a.iter().zip(&b).map(|(p, q)| p * q).sum();
        assert!((baseline - naive).abs() <= 1e-3 * naive.abs(), "{baseline} vs {naive}");
    }
}
