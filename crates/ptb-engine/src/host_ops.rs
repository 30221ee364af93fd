//! The CPU forward pass's operations other than linear layers, on row-major `f32` slices.
//!
//! burn-ndarray 0.21 runs these single-threaded, copies on every reshape and builds
//! attention from a masked matmul over the whole cache; at batch 32 that was over a third of
//! a decode step on SmolLM2. Each function here computes what the burn path in
//! [`super::model`] computes, in the same order of operations where rounding could differ
//! (tests compare the two on every fixture architecture).

use rayon::prelude::*;

use super::config::Activation;
use super::cpu_kernels::{gemm_one_core, reuse};
use super::host_kv::HostKv;
use super::mask::visible;
pub use super::rope::RopeTable;
use super::simd::{axpy, dot, exp, tanh, widest};

/// Elements per parallel task for the cheap row-wise operations (norms, rope): about 20 µs
/// of work. Smaller tasks cost more in waking the other core than they save; a decode
/// step's norm (32 rows of 576) runs on one core.
const ELEMS_PER_TASK: usize = 1 << 15;

/// Whole rows of `d` elements per task.
fn rows_per_task(d: usize) -> usize {
    (ELEMS_PER_TASK / d.max(1)).max(1)
}

/// `x / sqrt(mean(x²) + eps) · w` over each `w.len()`-long row, in place.
pub fn rms_norm(x: &mut [f32], w: &[f32], eps: f64) {
    let d = w.len();
    x.par_chunks_mut(d * rows_per_task(d)).for_each(|rows| {
        for row in rows.chunks_exact_mut(d) {
            norm_row(row, w, eps);
        }
    });
}

fn norm_row(row: &mut [f32], w: &[f32], eps: f64) {
    let mean = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
    let inv = (mean + eps as f32).sqrt().recip();
    for (v, g) in row.iter_mut().zip(w) {
        *v = *v * inv * g;
    }
}

/// Per-head RMSNorm (Qwen3, Gemma 3) and then the rotary embedding, in place on
/// `[token][head][head_dim]`; token `i` uses row `i` of the rope table.
pub fn norm_and_rope(x: &mut [f32], head_dim: usize, heads: usize, norm: Option<(&[f32], f64)>, rope: Option<&RopeTable>) {
    let per_token = heads * head_dim;
    let per_task = rows_per_task(per_token);
    x.par_chunks_mut(per_token * per_task).enumerate().for_each(|(task, tokens)| {
        for (i, token) in tokens.chunks_exact_mut(per_token).enumerate() {
            let tok = task * per_task + i;
            for head in token.chunks_exact_mut(head_dim) {
                if let Some((w, eps)) = norm {
                    norm_row(head, w, eps);
                }
                if let Some(r) = rope {
                    let at = tok * head_dim;
                    rotate(head, &r.cos[at..at + head_dim], &r.sin[at..at + head_dim]);
                }
            }
        }
    });
}

/// `x·cos + rotate_half(x)·sin`, rotate_half(x) = [-x₂, x₁].
fn rotate(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    for i in 0..half {
        let (a, b) = (x[i], x[i + half]);
        x[i] = a * cos[i] + (-b) * sin[i];
        x[i + half] = b * cos[i + half] + a * sin[i + half];
    }
}

/// What attention needs besides the tensors.
pub struct AttnParams<'a> {
    pub heads: usize,
    pub head_dim: usize,
    /// Padding positions in front of each row (never attended to).
    pub pad: &'a [usize],
    pub scale: f32,
    pub softcap: Option<f32>,
    pub window: Option<usize>,
}

/// Causal grouped-query attention of `t` new tokens per row over the whole cache (which
/// already holds them). `q`: `[row][t][head][head_dim]`; `y` gets the same layout (`tmp`
/// is working space, reused between calls like `y`).
///
/// The mask is [`super::mask::visible`], the burn path's too.
pub fn attention(q: &[f32], kv: &HostKv, t: usize, p: &AttnParams, y: &mut Vec<f32>, tmp: &mut Vec<f32>) {
    let (rows, nh, hd) = (kv.rows(), p.heads, p.head_dim);
    // `[row][head][t][head_dim]` while computing, so each (row, head) task owns a slice; with
    // one token that is already the output's layout.
    let out = if t == 1 { &mut *y } else { &mut *tmp };
    reuse(out, rows * nh * t * hd);
    out.par_chunks_mut(t * hd).enumerate().for_each(|(rh, out)| attend(out, rh, q, kv, p));
    if t == 1 {
        return;
    }
    reuse(y, tmp.len());
    for (rh, block) in tmp.chunks_exact(t * hd).enumerate() {
        let (r, h) = (rh / nh, rh % nh);
        for (qi, v) in block.chunks_exact(hd).enumerate() {
            y[((r * t + qi) * nh + h) * hd..][..hd].copy_from_slice(v);
        }
    }
}

widest!(
    /// One (row, head) of [`attention`]: `out` is its `[t][head_dim]` block.
    fn attend(out: &mut [f32], rh: usize, q: &[f32], kv: &HostKv, p: &AttnParams<'_>) => attend_body
);

/// From this many queries per (row, head) on (prefill), scores and outputs are two small
/// matrix products by gemm rather than a dot product and an axpy per key (together with the
/// vectorised exp, batch-32 prefill of SmolLM2 went 502 → 584 tok/s). One query (decode)
/// stays on dot products: gemm there measured no faster.
const GEMM_QUERIES: usize = 8;

#[inline(always)]
fn attend_body(out: &mut [f32], rh: usize, q: &[f32], kv: &HostKv, p: &AttnParams<'_>) {
    let (nh, hd) = (p.heads, p.head_dim);
    let group = nh / kv.heads();
    let s = kv.len();
    let t = out.len() / hd;
    let past = s - t;
    let (r, h) = (rh / nh, rh % nh);
    let view = kv.head(r, h / group);
    // This head's first query; the next token's is `nh * hd` further on.
    let q0 = (r * t * nh + h) * hd;
    if t >= GEMM_QUERIES {
        // Checked in release builds too: the two products read `q` and the cache through
        // raw pointers, so a shape bug must panic here rather than read past them.
        assert!(q0 + (t - 1) * nh * hd + hd <= q.len() && view.k.len() >= s * hd && view.v.len() >= s * hd, "attention: query or cache shorter than its shape");
        let mut scores = vec![0.0f32; t * s];
        // SAFETY: scores [t, s] (whole, owned here) = q [t, hd] (rows `nh * hd` apart from
        // `q0`, inside `q` as asserted) · kᵀ (k is [s, hd], read as [hd, s]).
        unsafe { gemm_one_core(t, s, hd, scores.as_mut_ptr(), s, q[q0..].as_ptr(), nh * hd, view.k.as_ptr(), 1, hd) };
        for (qi, row) in scores.chunks_exact_mut(s).enumerate() {
            softmax(row, past + qi, p.pad[r], p);
        }
        // SAFETY: out [t, hd] (this task's own block) = scores [t, s] · v [s, hd]; all three
        // are whole slices.
        unsafe { gemm_one_core(t, hd, s, out.as_mut_ptr(), hd, scores.as_ptr(), s, view.v.as_ptr(), hd, 1) };
        return;
    }
    let mut scores = vec![0.0f32; s];
    for (qi, o) in out.chunks_exact_mut(hd).enumerate() {
        let i = past + qi;
        let qv = &q[q0 + qi * nh * hd..][..hd];
        let row = &mut scores[..=i];
        for (j, sc) in row.iter_mut().enumerate() {
            *sc = dot(qv, &view.k[j * hd..(j + 1) * hd]);
        }
        softmax(row, i, p.pad[r], p);
        o.fill(0.0);
        for (j, &w) in row.iter().enumerate() {
            if w != 0.0 {
                axpy(o, w, &view.v[j * hd..(j + 1) * hd]);
            }
        }
    }
}

/// Raw `q · k` scores of the query at position `i` over keys `0..` → attention weights:
/// scaled, soft-capped, masked ([`visible`]; masked weights are exactly 0), normalised.
#[inline(always)]
fn softmax(row: &mut [f32], i: usize, pad: usize, p: &AttnParams<'_>) {
    let mut max = f32::NEG_INFINITY;
    for (j, sc) in row.iter_mut().enumerate() {
        if !visible(i, j, pad, p.window) {
            *sc = f32::NEG_INFINITY;
            continue;
        }
        let mut v = *sc * p.scale;
        if let Some(cap) = p.softcap {
            v = (v / cap).tanh() * cap;
        }
        *sc = v;
        max = max.max(v);
    }
    row.iter_mut().for_each(|sc| *sc = exp(*sc - max));
    let sum: f32 = row.iter().sum();
    row.iter_mut().for_each(|w| *w /= sum);
}

/// `gate ← act(gate) · up`, the gated MLP's middle.
pub fn gated(gate: &mut [f32], up: &[f32], act: Activation) {
    const CHUNK: usize = 4096;
    gate.par_chunks_mut(CHUNK).zip(up.par_chunks(CHUNK)).for_each(|(g, u)| match act {
        Activation::Silu => silu_gate(g, u),
        Activation::GeluTanh => gelu_gate(g, u),
    });
}

widest!(fn silu_gate(g: &mut [f32], u: &[f32]) => silu_gate_body);
widest!(fn gelu_gate(g: &mut [f32], u: &[f32]) => gelu_gate_body);

#[inline(always)]
fn silu_gate_body(g: &mut [f32], u: &[f32]) {
    for (x, u) in g.iter_mut().zip(u) {
        *x = *x / (1.0 + exp(-*x)) * u;
    }
}

/// transformers' gelu_pytorch_tanh.
#[inline(always)]
fn gelu_gate_body(g: &mut [f32], u: &[f32]) {
    const C: f32 = 0.797_884_6; // sqrt(2/π)
    for (x, u) in g.iter_mut().zip(u) {
        *x = 0.5 * *x * (1.0 + tanh(C * (*x + 0.044715 * *x * *x * *x))) * u;
    }
}

/// `x ← x + y`.
pub fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// `x ← tanh(x / cap) · cap`.
pub fn softcap(x: &mut [f32], cap: f32) {
    x.par_chunks_mut(4096).for_each(|c| c.iter_mut().for_each(|v| *v = (*v / cap).tanh() * cap));
}
