//! Choosing the next token from logits: greedy, or seeded temperature / top-k / top-p.
//!
//! Sampling runs on the host with a per-request generator, so a request's tokens depend on
//! its seed and logits only, not on which other requests share its batch.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::simd::{self, widest};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sampling {
    /// 0 means greedy decoding.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: f32,
    /// 0 means no top-k cut.
    pub top_k: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 0.0, top_p: 1.0, top_k: 0, seed: 0 }
    }
}

/// The engine's seeded generator (ptb-core's SplitMix64).
pub type Rng = ptb_core::rng::SplitMix64;

/// A candidate's rank: the higher logit first, ties to the lower index.
fn rank(logits: &[f32]) -> impl Fn(&usize, &usize) -> Ordering + '_ {
    move |a, b| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b))
}

widest!(
    /// Index of the largest logit; the first one on ties, as torch's argmax (NaN never wins
    /// unless it comes first). Two vector passes: the maximum, then where it first is.
    pub fn argmax(logits: &[f32]) -> u32 => argmax_body
);

#[inline(always)]
fn argmax_body(logits: &[f32]) -> u32 {
    let Some(&first) = logits.first() else { return 0 };
    if first.is_nan() {
        return 0;
    }
    let more = |m: f32, x: f32| if x > m { x } else { m };
    let mut lanes = [first; 16];
    let blocks = logits.chunks_exact(16);
    let tail = blocks.remainder().iter().fold(first, |m, &x| more(m, x));
    for b in blocks {
        for j in 0..16 {
            lanes[j] = more(lanes[j], b[j]);
        }
    }
    let max = lanes.iter().fold(tail, |m, &x| more(m, x));
    logits.iter().position(|&x| x == max).unwrap_or(0) as u32
}

/// Greedy at temperature 0; otherwise one seeded draw, defined as follows. A token's weight
/// is `exp((logit − max) / T)` (in f32, with ptb's [`simd::exp`]). `z` is the candidates'
/// weights summed in f64: with a top-k, the `top_k` best tokens' (ranked by [`rank`]) in rank
/// order; without, every token's, as 16 running sums over the vocabulary (token i in sum
/// i mod 16, the last n mod 16 tokens in one of their own). `top_p < 1` keeps the shortest
/// run of candidates, in rank order, whose probabilities `weight / z` reach it. The draw
/// takes `u · S`, `u` uniform in [0, 1) and `S` the kept weights summed in rank order (`z` when
/// nothing is cut), and walks the kept candidates in rank order (in vocabulary order when
/// nothing is cut), subtracting each weight, to the first whose weight exceeds what is left.
///
/// Only what can matter gets ranked: the top k, found by one scan that skips every block
/// of logits below the worst kept so far; without a top-k, the nucleus, by ranking ever
/// larger top sets until one holds it (it is usually a handful of tokens); with neither,
/// nothing. Sorting a 152k vocabulary took ~10 ms per row per step.
/// [`sample_by_full_sort`] is the same definition with the whole vocabulary sorted; the
/// two agree to the bit.
pub fn sample(logits: &[f32], p: &Sampling, rng: &mut Rng) -> u32 {
    if p.temperature <= 0.0 {
        return argmax(logits);
    }
    let n = logits.len();
    let w = Weights::new(logits, p);
    if p.top_k > 0 && p.top_k < n {
        return w.top_k(&best(logits, p.top_k), p.top_p, rng);
    }
    let (all, z) = w.all();
    if p.top_p >= 1.0 {
        return pick(all.iter().map(|&x| x as f64).enumerate(), z, rng);
    }
    let mut m = n.min(64);
    loop {
        let top = best(logits, m);
        let ws: Vec<f64> = top.iter().map(|&i| all[i] as f64).collect();
        match nucleus(&ws, z, p.top_p) {
            Some(keep) => return pick_ranked(&top[..keep], &ws[..keep], rng),
            None if m == n => return pick_ranked(&top, &ws, rng),
            None => m = (4 * m).min(n),
        }
    }
}

/// [`sample`]'s definition done the plain way, sorting the whole vocabulary: the reference
/// the selections must equal (unit tests) and the baseline of `cargo bench --bench sampling`.
#[doc(hidden)]
pub fn sample_by_full_sort(logits: &[f32], p: &Sampling, rng: &mut Rng) -> u32 {
    if p.temperature <= 0.0 {
        // The plain loop: the reference for the vector argmax too.
        let mut best = 0;
        for (i, &x) in logits.iter().enumerate() {
            if x > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    let n = logits.len();
    let w = Weights::new(logits, p);
    let mut ranked: Vec<usize> = (0..n).collect();
    ranked.sort_unstable_by(rank(logits));
    if p.top_k > 0 && p.top_k < n {
        ranked.truncate(p.top_k);
        return w.top_k(&ranked, p.top_p, rng);
    }
    let (all, z) = w.all();
    if p.top_p >= 1.0 {
        return pick(all.iter().map(|&x| x as f64).enumerate(), z, rng);
    }
    let ws: Vec<f64> = ranked.iter().map(|&i| all[i] as f64).collect();
    let keep = nucleus(&ws, z, p.top_p).unwrap_or(n);
    pick_ranked(&ranked[..keep], &ws[..keep], rng)
}

/// `exp((logit − max) / T)`, the unnormalised probabilities.
struct Weights<'a> {
    logits: &'a [f32],
    max: f32,
    t: f32,
}

impl<'a> Weights<'a> {
    fn new(logits: &'a [f32], p: &Sampling) -> Self {
        Weights { logits, max: logits[argmax(logits) as usize], t: p.temperature }
    }

    fn of(&self, i: usize) -> f32 {
        weight(self.logits[i], self.max, self.t)
    }

    /// Every token's weight, and their sum `z` (16 running sums, see [`sample`]).
    fn all(&self) -> (Vec<f32>, f64) {
        let mut out = vec![0.0; self.logits.len()];
        let z = all_weights(self.logits, self.max, self.t, &mut out);
        (out, z)
    }

    /// The draw over a top-k set (`ranked`, in rank order): `z` is its own weights' sum.
    fn top_k(&self, ranked: &[usize], top_p: f32, rng: &mut Rng) -> u32 {
        let ws: Vec<f64> = ranked.iter().map(|&i| self.of(i) as f64).collect();
        let keep = nucleus(&ws, ws.iter().sum(), top_p).unwrap_or(ranked.len());
        pick_ranked(&ranked[..keep], &ws[..keep], rng)
    }
}

#[inline(always)]
fn weight(logit: f32, max: f32, t: f32) -> f32 {
    simd::exp((logit - max) / t)
}

widest!(fn all_weights(logits: &[f32], max: f32, t: f32, out: &mut [f32]) -> f64 => all_weights_body);

#[inline(always)]
fn all_weights_body(logits: &[f32], max: f32, t: f32, out: &mut [f32]) -> f64 {
    // Two loops, not one: with the f64 sums beside the exp the compiler ran out of
    // registers and kept to 4-lane vectors.
    for (o, &x) in out.iter_mut().zip(logits) {
        *o = weight(x, max, t);
    }
    const L: usize = 16;
    let mut acc = [0.0f64; L];
    let blocks = out.chunks_exact(L);
    let tail: f64 = blocks.remainder().iter().map(|&w| w as f64).sum();
    for b in blocks {
        for j in 0..L {
            acc[j] += b[j] as f64;
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// How many leading candidates of `ws` (weights in rank order) `top_p` keeps: the shortest
/// run whose probabilities (`w / z`) reach it; every one when `top_p ≥ 1`; `None` when `ws`
/// ends first.
fn nucleus(ws: &[f64], z: f64, top_p: f32) -> Option<usize> {
    if top_p >= 1.0 {
        return Some(ws.len());
    }
    let mut cum = 0.0;
    ws.iter()
        .position(|&w| {
            cum += w / z;
            cum >= top_p as f64
        })
        .map(|n| n + 1)
}

fn pick_ranked(ids: &[usize], ws: &[f64], rng: &mut Rng) -> u32 {
    pick(ids.iter().copied().zip(ws.iter().copied()), ws.iter().sum(), rng)
}

/// One uniform draw over `(token, weight)`s in walking order, `total` their weights' sum:
/// the first token whose weight exceeds what is left of `u · total`; the last with a weight
/// when rounding leaves some over at the end.
fn pick(candidates: impl Iterator<Item = (usize, f64)>, total: f64, rng: &mut Rng) -> u32 {
    let mut r = rng.next_f64() * total;
    let mut last = 0;
    for (i, w) in candidates {
        if r < w {
            return i as u32;
        }
        if w > 0.0 {
            last = i;
        }
        r -= w;
    }
    last as u32
}

/// Orders like `f32::total_cmp`, as an integer a vector unit compares.
#[inline(always)]
fn key(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

widest!(
    /// The `m` best tokens in rank order (all of them when `m ≥ n`), by one scan: candidates
    /// collect until there are 2m, the best m are kept, and from then on a block of logits
    /// is read only if one of them beats the worst kept (equal is not enough: a later token
    /// ranks below an earlier one of the same logit).
    fn best(logits: &[f32], m: usize) -> Vec<usize> => best_body
);

#[inline(always)]
fn best_body(logits: &[f32], m: usize) -> Vec<usize> {
    if m == 0 {
        return vec![];
    }
    const BLOCK: usize = 64;
    let (n, by_rank) = (logits.len(), rank(logits));
    let mut kept: Vec<usize> = Vec::with_capacity(n.min(2 * m + BLOCK));
    let mut floor: Option<i32> = None;
    for (b, block) in logits.chunks(BLOCK).enumerate() {
        let ids = b * BLOCK..b * BLOCK + block.len();
        match floor {
            None => kept.extend(ids),
            Some(f) if block.iter().fold(false, |any, &x| any | (key(x) > f)) => {
                kept.extend(ids.filter(|&i| key(logits[i]) > f));
            }
            Some(_) => {}
        }
        if m < n && kept.len() >= 2 * m {
            kept.select_nth_unstable_by(m - 1, &by_rank);
            kept.truncate(m);
            floor = Some(key(logits[kept[m - 1]]));
        }
    }
    if kept.len() > m {
        kept.select_nth_unstable_by(m - 1, &by_rank);
        kept.truncate(m);
    }
    kept.sort_unstable_by(&by_rank);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        let logits = [10.0, 9.0, -10.0, -10.0];
        let p = Sampling { temperature: 1.0, top_p: 0.5, top_k: 0, seed: 0 };
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            assert_eq!(sample(&logits, &p, &mut rng), 0);
        }
    }

    /// Each token comes up as often as its probability says: softmax(logits / T), over the
    /// top k renormalised, over the nucleus renormalised, within 5 standard errors.
    #[test]
    fn draws_follow_the_distribution() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 100) as f32 * -0.05).collect();
        let softmax = |t: f64, keep: &dyn Fn(usize) -> bool| {
            let w: Vec<f64> = (0..logits.len()).map(|i| if keep(i) { (logits[i] as f64 / t).exp() } else { 0.0 }).collect();
            let z: f64 = w.iter().sum();
            w.into_iter().map(|x| x / z).collect::<Vec<_>>()
        };
        let mut by_logit: Vec<usize> = (0..logits.len()).collect();
        by_logit.sort_by(rank(&logits));
        let top = |k: usize| by_logit[..k].to_vec();
        // The nucleus of 0.5 at T = 0.7: the shortest top run reaching half the mass.
        let full = softmax(0.7, &|_| true);
        let mut cum = 0.0;
        let nucleus_len = 1 + by_logit
            .iter()
            .position(|&i| {
                cum += full[i];
                cum >= 0.5
            })
            .unwrap();
        let cases = [
            (Sampling { temperature: 1.0, top_p: 1.0, top_k: 0, seed: 0 }, softmax(1.0, &|_| true)),
            (Sampling { temperature: 0.5, top_p: 1.0, top_k: 5, seed: 0 }, softmax(0.5, &|i| top(5).contains(&i))),
            (Sampling { temperature: 0.7, top_p: 0.5, top_k: 0, seed: 0 }, softmax(0.7, &|i| top(nucleus_len).contains(&i))),
        ];
        let draws = 40_000;
        for (p, want) in cases {
            let mut rng = Rng::new(11);
            let mut seen = vec![0usize; logits.len()];
            for _ in 0..draws {
                seen[sample(&logits, &p, &mut rng) as usize] += 1;
            }
            for (i, (&got, &q)) in seen.iter().zip(&want).enumerate() {
                let f = got as f64 / draws as f64;
                let se = (q * (1.0 - q) / draws as f64).sqrt().max(1e-9);
                assert!((f - q).abs() <= 5.0 * se, "{p:?}: token {i} drawn {f:.4} of the time, probability {q:.4}");
            }
        }
    }

    proptest::proptest! {
        /// Selecting the top k, or ever larger top sets until one holds the nucleus, and
        /// ranking only those draws exactly what ranking the whole vocabulary does, ties
        /// included (logits from a few values, so ties are common; up to 2,000 of them, so a
        /// nucleus can outgrow the first sets and the scan compacts many times).
        #[test]
        fn selection_draws_what_the_full_sort_drew(
            logits in proptest::collection::vec(-4i8..4, 1..2000),
            top_k in proptest::prop_oneof![proptest::strategy::Just(0usize), 1usize..40, proptest::strategy::Just(1000usize)],
            top_p in proptest::prop_oneof![proptest::strategy::Just(1.0f32), 0.05f32..1.0],
            temperature in proptest::prop_oneof![proptest::strategy::Just(0.0f32), 0.1f32..2.0],
            seed in 0u64..1000,
        ) {
            let logits: Vec<f32> = logits.iter().map(|&x| x as f32 * 0.5).collect();
            let p = Sampling { temperature, top_p, top_k, seed };
            let (mut a, mut b) = (Rng::new(seed), Rng::new(seed));
            for _ in 0..8 {
                proptest::prop_assert_eq!(sample(&logits, &p, &mut a), sample_by_full_sort(&logits, &p, &mut b));
            }
        }

        /// The vector argmax picks what the plain loop picks: the first of the largest,
        /// with ±0, ±∞ and NaN among the logits.
        #[test]
        fn argmax_is_the_first_largest(
            logits in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Strategy::prop_map(-3i8..3, |x| x as f32),
                proptest::strategy::Just(-0.0f32),
                proptest::strategy::Just(f32::INFINITY),
                proptest::strategy::Just(f32::NEG_INFINITY),
                proptest::strategy::Just(f32::NAN),
            ], 1..200),
        ) {
            let greedy = Sampling::default();
            proptest::prop_assert_eq!(argmax(&logits), sample_by_full_sort(&logits, &greedy, &mut Rng::new(0)));
        }
    }

    #[test]
    fn seeded_sampling_repeats_and_varies() {
        let logits = [1.0, 1.0, 1.0, 1.0];
        let p = Sampling { temperature: 1.0, top_p: 1.0, top_k: 0, seed: 0 };
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..64).map(|_| sample(&logits, &p, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!((0..4).all(|k| draw(3).contains(&k)));
    }
}
