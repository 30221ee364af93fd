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

/// `eˣ` to within 2 ulp, in operations a vector unit has (libm's `expf` is a call per
/// element, ~3% of a SmolLM2 prefill in SiLU alone): `eˣ = 2ⁿ·eʳ` with `n = round(x·log₂e)`,
/// `|r| ≤ ln2/2` and Cephes' degree-6 polynomial for `eʳ`. Below −87.3 (−∞ included, the
/// masked scores of attention) it is exactly 0; above 88.3 it saturates at `e^88.3`
/// rather than ∞, which no caller here reaches with finite activations.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const HI: f32 = 88.3;
    const LO: f32 = -87.336_55;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer with SSE2 alone (no
    // `roundps`), so every variant takes the same path.
    const ROUND: f32 = 12_582_912.0;
    let c = x.clamp(LO, HI);
    let shifted = c * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // ln 2 in two parts, so `n·ln2_hi` is exact.
    let r = (c - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let y = p * (r * r) + r + 1.0;
    // 2ⁿ from the integer `n` in `shifted`'s low mantissa bits: `n as i32`, a saturating
    // conversion, compiled to a scalar convert and two conditional moves per element and
    // kept every caller's loop scalar.
    let two_n = (shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127)) << 23;
    let scaled = y * f32::from_bits(two_n);
    if x < LO { 0.0 } else { scaled }
}

/// `tanh x = 1 − 2 / (e²ˣ + 1)` through [`exp`]: within ~1e-7 of libm's (absolute; near 0
/// the relative error is larger, but callers add it to 1).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
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

    widest!(fn wide_exp(x: &mut [f32]) => exp_all);

    #[inline(always)]
    fn exp_all(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = exp(*v));
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_and_zero_below_range() {
        let xs: Vec<f32> = (-1980..=2000).map(|i| i as f32 * 0.0441).chain([0.0, -0.0, 1e-8, -1e-8, 88.0, -87.0]).collect();
        let mut wide = xs.clone();
        wide_exp(&mut wide);
        for (&x, &w) in xs.iter().zip(&wide) {
            let (got, want) = (exp(x), x.exp());
            assert_eq!(got.to_bits(), w.to_bits(), "vector variant differs at {x}");
            let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {got}, libm {want} ({ulp} ulp)");
        }
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        // libm gives subnormals down to −103; softmax weights and SiLU never need them.
        assert_eq!(exp(-100.0), 0.0);
        assert!(exp(100.0).is_finite());
        for &x in &xs {
            assert!((tanh(x) - x.tanh()).abs() <= 2e-7, "tanh({x}) = {}, libm {}", tanh(x), x.tanh());
        }
    }
}
