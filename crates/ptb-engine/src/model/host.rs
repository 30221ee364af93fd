//! The forward pass on the host, for the ndarray backend: the weights' own buffers, ptb's
//! kernels ([`crate::cpu_kernels`], [`crate::host_ops`]) and a preallocated KV
//! cache ([`HostKv`]). It computes what [`Model::forward`]'s burn path computes, operation
//! for operation (sums in other orders); tests hold the two within 3e-5 on every fixture
//! architecture.

use burn::prelude::*;

use super::{Batch, KvCache, Layer, LayerKv, Linear, Model, RmsNorm};
use crate::cpu_kernels::matmul_wt;
use crate::host_kv::HostKv;
use crate::host_ops::{self, AttnParams, RopeTable};

const CHECKED: &str = "host buffers are checked when the model is loaded";

impl<B: Backend> Linear<B> {
    fn host(&self) -> bool {
        self.host.is_some()
    }

    /// `y ← x [m, in] · Wᵀ + b`.
    fn apply(&self, x: &[f32], m: usize, y: &mut Vec<f32>) {
        let (w, bias) = self.host.as_ref().expect(CHECKED);
        let [n, k] = self.w.dims();
        matmul_wt(x, m, k, w.slice(), n, y);
        if let Some(b) = bias {
            for row in y.chunks_exact_mut(n) {
                host_ops::add(row, b.slice());
            }
        }
    }
}

impl<B: Backend> RmsNorm<B> {
    fn w(&self) -> &[f32] {
        self.host.as_ref().expect(CHECKED).slice()
    }

    fn apply(&self, x: &mut [f32]) {
        host_ops::rms_norm(x, self.w(), self.eps);
    }
}

impl<B: Backend> Layer<B> {
    fn host(&self) -> bool {
        let norms = [&self.q_norm, &self.k_norm, &self.pre_ff_norm, &self.post_ff_norm];
        [&self.q, &self.k, &self.v, &self.o, &self.gate, &self.up, &self.down].iter().all(|l| l.host())
            && [&self.input_norm, &self.post_attn_norm].iter().all(|n| n.host.is_some())
            && norms.iter().all(|n| n.as_ref().is_none_or(|n| n.host.is_some()))
    }
}

/// The forward pass's intermediate buffers, reused from layer to layer (the kernels
/// overwrite them whole: [`crate::cpu_kernels::reuse`]).
#[derive(Default)]
struct Scratch {
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    attn_tmp: Vec<f32>,
    out: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

impl<B: Backend> Model<B> {
    /// Whether every weight is an ndarray buffer the host pass can read.
    pub(super) fn host_ready(&self) -> bool {
        self.embed_host.is_some() && self.norm.host.is_some() && self.lm_head.host() && self.layers.iter().all(Layer::host)
    }

    /// [`Model::forward`] on the host.
    pub(super) fn forward_host(&self, tokens: &[Vec<u32>], batch: &Batch, cache: &mut KvCache<B>, last_only: bool) -> Tensor<B, 3> {
        let cfg = &self.cfg;
        let (b, t, h) = (tokens.len(), tokens[0].len(), cfg.hidden_size);
        let past = cache.len();
        let embed = self.embed_host.as_ref().expect(CHECKED).slice();
        let mut x = Vec::with_capacity(b * t * h);
        for &id in tokens.iter().flatten() {
            x.extend_from_slice(&embed[id as usize * h..][..h]);
        }
        if let Some(scale) = cfg.embed_scale {
            x.iter_mut().for_each(|v| *v *= scale);
        }
        let pos = batch.positions(past, t);
        let ropes: Vec<RopeTable> = cfg.ropes.iter().map(|spec| RopeTable::new(&crate::rope::inv_freq(spec, cfg.head_dim), &pos)).collect();
        let mut s = Scratch::default();
        for (i, layer) in self.layers.iter().enumerate() {
            let kv = cache.layers[i].get_or_insert_with(|| LayerKv::Host(HostKv::new(b, cfg.num_kv_heads, cfg.head_dim)));
            let LayerKv::Host(kv) = kv else { unreachable!("the host pass never sees a burn-tensor cache") };
            let plan = &cfg.layers[i];
            let attn = AttnParams {
                heads: cfg.num_heads,
                head_dim: cfg.head_dim,
                pad: &batch.pad,
                scale: cfg.attn_scale,
                softcap: cfg.attn_logit_softcapping,
                window: plan.sliding_window,
            };
            self.layer_host(layer, &mut x, b * t, plan.rope.map(|r| &ropes[r]), kv, &attn, &mut s);
        }
        let rows = if last_only {
            x = x.chunks_exact(t * h).flat_map(|row| row[(t - 1) * h..].iter().copied()).collect();
            1
        } else {
            t
        };
        self.norm.apply(&mut x);
        let mut logits = Vec::new();
        self.lm_head.apply(&x, b * rows, &mut logits);
        if let Some(cap) = cfg.final_logit_softcapping {
            host_ops::softcap(&mut logits, cap);
        }
        Tensor::from_data(TensorData::new(logits, [b, rows, cfg.vocab_size]), &self.device)
    }

    /// One decoder layer on `x [m tokens][hidden]`, in place.
    #[allow(clippy::too_many_arguments)]
    fn layer_host(&self, l: &Layer<B>, x: &mut [f32], m: usize, rope: Option<&RopeTable>, kv: &mut HostKv, attn: &AttnParams, s: &mut Scratch) {
        let cfg = &self.cfg;
        let t = m / kv.rows();
        s.h.clear();
        s.h.extend_from_slice(x);
        l.input_norm.apply(&mut s.h);
        l.q.apply(&s.h, m, &mut s.q);
        l.k.apply(&s.h, m, &mut s.k);
        l.v.apply(&s.h, m, &mut s.v);
        let (qn, kn) = (l.q_norm.as_ref().map(|n| (n.w(), n.eps)), l.k_norm.as_ref().map(|n| (n.w(), n.eps)));
        host_ops::norm_and_rope(&mut s.q, cfg.head_dim, cfg.num_heads, qn, rope);
        host_ops::norm_and_rope(&mut s.k, cfg.head_dim, cfg.num_kv_heads, kn, rope);
        kv.append(&s.k, &s.v, t);
        host_ops::attention(&s.q, kv, t, attn, &mut s.attn, &mut s.attn_tmp);
        l.o.apply(&s.attn, m, &mut s.out);
        if cfg.sandwich_norms {
            l.post_attn_norm.apply(&mut s.out);
        }
        host_ops::add(x, &s.out);
        s.h.clear();
        s.h.extend_from_slice(x);
        match (&l.pre_ff_norm, cfg.sandwich_norms) {
            (Some(n), true) => n.apply(&mut s.h),
            _ => l.post_attn_norm.apply(&mut s.h),
        }
        l.gate.apply(&s.h, m, &mut s.gate);
        l.up.apply(&s.h, m, &mut s.up);
        host_ops::gated(&mut s.gate, &s.up, cfg.activation);
        l.down.apply(&s.gate, m, &mut s.out);
        if let Some(n) = &l.post_ff_norm {
            n.apply(&mut s.out);
        }
        host_ops::add(x, &s.out);
    }
}
