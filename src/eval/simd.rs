//! Runs a kernel compiled for the widest vector unit the CPU has.
//!
//! ptb is built for baseline x86-64 (SSE2), so a plain loop uses 4-lane vectors even on a CPU
//! with AVX-512. [`widest!`] compiles a kernel for AVX-512 and AVX2 as well and picks one at
//! run time. Written by hand: the dispatch is a few lines, and the `multiversion` crate would
//! add a proc-macro build for them.
//!
//! Results do not depend on which variant runs: kernels fix their own order of additions
//! (e.g. [`dot`]'s 16 partial sums) and Rust never contracts `a * b + c` into an FMA, so
//! every variant rounds identically.

/// `widest!(fn name(args) -> R => body);` defines `name`, which calls the `#[inline(always)]`
/// function `body` compiled for the best of AVX-512F, AVX2 or the baseline. (A closure passed
/// to a target-feature function is not reliably inlined into it, so the variants are
/// written out as functions.)
macro_rules! widest {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use widest;

/// `a · b` with 16 independent partial sums (one AVX-512 vector, two AVX2 or four SSE
/// vectors), the same rounding on all of them. (A pairwise final sum, tried for short
/// attention heads, measured slower: the compiler then split the loop into 128-bit pieces.)
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

    widest!(fn wide_dot(a: &[f32], b: &[f32]) -> f32 => dot);

    #[test]
    fn every_variant_rounds_like_the_baseline() {
        // Values whose sums round differently in different orders.
        let a: Vec<f32> = (0..203).map(|i| 1.0 + (i as f32) * 1e-3 + if i % 7 == 0 { 1e4 } else { 0.0 }).collect();
        let b: Vec<f32> = (0..203).map(|i| 0.3 - (i as f32) * 1e-4).collect();
        let baseline = dot(&a, &b);
        assert_eq!(wide_dot(&a, &b).to_bits(), baseline.to_bits());
        let naive: f32 = a.iter().zip(&b).map(|(p, q)| p * q).sum();
        assert!((baseline - naive).abs() <= 1e-3 * naive.abs(), "{baseline} vs {naive}");
    }
}
