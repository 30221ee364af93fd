//! Rotary-embedding inverse frequencies, as transformers computes them (`rope_init_fn`s).

use super::config::{RopeScaling, RopeSpec};

/// `head_dim / 2` inverse frequencies, scaled per the config's `rope_scaling`.
pub fn inv_freq(spec: &RopeSpec, head_dim: usize) -> Vec<f64> {
    let base: Vec<f64> = (0..head_dim / 2)
        .map(|i| {
            // transformers computes this in f32; rounding through f32 keeps angles identical.
            let e = (2 * i) as f32 / head_dim as f32;
            (1.0 / (spec.theta as f32).powf(e)) as f64
        })
        .collect();
    match &spec.scaling {
        RopeScaling::None => base,
        RopeScaling::Linear(f) => base.iter().map(|x| ((x / f) as f32) as f64).collect(),
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings: old } => {
            // Long wavelengths are slowed by `factor`, short ones kept, the band between
            // interpolated (transformers' `_compute_llama3_parameters`).
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen > low_wavelen {
                        f / factor
                    } else if wavelen < high_wavelen {
                        f
                    } else {
                        let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}

/// cos and sin per (row, position), `head_dim` each, in transformers' rotate-half layout
/// (the `head_dim / 2` frequencies twice).
pub struct RopeTable {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
}

impl RopeTable {
    /// `pos[row][t]`: the position of each token. `inv_freq`: `head_dim / 2` frequencies.
    pub fn new(inv_freq: &[f64], pos: &[Vec<usize>]) -> Self {
        let n = pos.iter().map(Vec::len).sum::<usize>() * 2 * inv_freq.len();
        let (mut cos, mut sin) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for &p in pos.iter().flatten() {
            for _ in 0..2 {
                for f in inv_freq {
                    // Angles in f32 like transformers' f32 inv_freq × position product.
                    let a = (p as f32) * (*f as f32);
                    cos.push(a.cos());
                    sin.push(a.sin());
                }
            }
        }
        RopeTable { cos, sin }
    }
}
