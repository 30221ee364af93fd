//! The decoder-only transformer shared by Llama, Qwen3, SmolLM3 and Gemma 3, on any burn
//! backend. Architectures differ only in what [`ModelConfig`] switches on: q/k norms,
//! Gemma's (1 + w) norms and sandwich norms, NoPE layers, sliding windows, embedding scale.
//!
//! Batches are left-padded: every row shares one cache length, and per-row masks and
//! positions make a padded row compute exactly what it would alone.

use burn::prelude::*;
use burn::tensor::{DType, activation};

use super::config::{Activation, ModelConfig, NormStyle};
use super::cpu_kernels::HostBuf;
use super::error::{EvalError, Result};
use super::host_kv::HostKv;
use super::mask::visible;
use super::precision::Precision;
use super::rope::RopeTable;
use super::weights::{HostTensor, WeightSource};

mod host;

/// `y = x Wᵀ + b`, W `[out, in]` as checkpoints store it.
struct Linear<B: Backend> {
    w: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    /// The same buffers, when they are ndarray's (see [`Model::cpu_kernels`]).
    host: Option<(HostBuf, Option<HostBuf>)>,
}

impl<B: Backend> Linear<B> {
    fn new(w: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Self {
        let host = HostBuf::of(&w).and_then(|hw| match &bias {
            None => Some((hw, None)),
            Some(b) => HostBuf::of(b).map(|hb| (hw, Some(hb))),
        });
        Linear { w, bias, host }
    }

    /// In the weight's dtype (see `precision`), out in f32.
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = self.matmul(x).cast(DType::F32);
        match &self.bias {
            Some(bias) => y + bias.clone().unsqueeze::<3>(),
            None => y,
        }
    }

    /// `x · wᵀ` in and out in the weight's dtype, without the bias (the LM head has none).
    fn matmul(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, i] = x.dims();
        let out = self.w.dims()[0];
        let x = x.reshape([b * t, i]).cast(self.w.dtype());
        x.matmul(self.w.clone().transpose()).reshape([b, t, out])
    }
}

struct RmsNorm<B: Backend> {
    /// Already includes Gemma's `1 +`.
    weight: Tensor<B, 1>,
    eps: f64,
    host: Option<HostBuf>,
}

impl<B: Backend> RmsNorm<B> {
    fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let var = x.clone().powi_scalar(2).mean_dim(D - 1);
        let w = self.weight.clone().unsqueeze::<D>();
        x * (var + self.eps).sqrt().recip() * w
    }
}

struct Layer<B: Backend> {
    input_norm: RmsNorm<B>,
    q: Linear<B>,
    k: Linear<B>,
    v: Linear<B>,
    o: Linear<B>,
    q_norm: Option<RmsNorm<B>>,
    k_norm: Option<RmsNorm<B>>,
    post_attn_norm: RmsNorm<B>,
    /// Gemma: norms before and after the MLP (the pre-MLP norm of Llama is `post_attn_norm`).
    pre_ff_norm: Option<RmsNorm<B>>,
    post_ff_norm: Option<RmsNorm<B>>,
    gate: Linear<B>,
    up: Linear<B>,
    down: Linear<B>,
}

pub struct Model<B: Backend> {
    pub cfg: ModelConfig,
    embed: Tensor<B, 2>,
    embed_host: Option<HostBuf>,
    layers: Vec<Layer<B>>,
    norm: RmsNorm<B>,
    /// Shares the embedding's buffer when the two are tied.
    lm_head: Linear<B>,
    device: B::Device,
    /// On the ndarray backend, run the forward pass on the weights' host buffers with
    /// ptb's own kernels (`host` module) rather than burn's ops (which copy the weight on
    /// every matmul and run single-threaded); tests turn this off to compare the two.
    pub cpu_kernels: bool,
}

/// Keys and values of every layer.
pub struct KvCache<B: Backend> {
    layers: Vec<Option<LayerKv<B>>>,
}

enum LayerKv<B: Backend> {
    /// Keys and values on the device.
    Tensors(DeviceKv<B>),
    /// The host forward pass's preallocated cache.
    Host(HostKv),
}

impl<B: Backend> LayerKv<B> {
    fn len(&self) -> usize {
        match self {
            LayerKv::Tensors(kv) => kv.len,
            LayerKv::Host(kv) => kv.len(),
        }
    }
}

/// `[batch, kv_heads, capacity, head_dim]` each, the first `len` positions filled. New
/// positions are written in place and the capacity doubles when full: growing by
/// concatenation copied the whole cache at every layer of every decode step, which on a GPU
/// at long contexts costs more bandwidth than the weights themselves.
struct DeviceKv<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    len: usize,
}

impl<B: Backend> DeviceKv<B> {
    /// A cache holding exactly `k` and `v` (`[batch, kv_heads, len, head_dim]`).
    fn full(k: Tensor<B, 4>, v: Tensor<B, 4>) -> Self {
        let len = k.dims()[2];
        DeviceKv { k, v, len }
    }

    /// The filled positions (views where the backend can).
    fn filled(&self) -> (Tensor<B, 4>, Tensor<B, 4>) {
        (self.k.clone().narrow(2, 0, self.len), self.v.clone().narrow(2, 0, self.len))
    }

    /// Writes `k`, `v` (`t` new positions) after the filled ones. By value: a tensor written
    /// while another handle to its buffer lives (a clone, the last step's views) is copied
    /// first, so the cache must be the buffer's only owner here.
    fn push(self, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Self {
        let [b, h, t, d] = k.dims();
        let DeviceKv { k: mut ck, v: mut cv, len } = self;
        let capacity = ck.dims()[2];
        if len + t > capacity {
            let grown = (2 * capacity).max(len + t);
            let device = ck.device();
            let filled = [0..b, 0..h, 0..len, 0..d];
            let dtype = ck.dtype();
            let empty = || Tensor::<B, 4>::zeros([b, h, grown, d], (&device, dtype));
            ck = empty().slice_assign(filled.clone(), ck.narrow(2, 0, len));
            cv = empty().slice_assign(filled, cv.narrow(2, 0, len));
        }
        let at = [0..b, 0..h, len..len + t, 0..d];
        DeviceKv { k: ck.slice_assign(at.clone(), k), v: cv.slice_assign(at, v), len: len + t }
    }
}

impl<B: Backend> KvCache<B> {
    pub fn new(layers: usize) -> Self {
        KvCache { layers: (0..layers).map(|_| None).collect() }
    }
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map_or(0, LayerKv::len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Keeps only the batch rows `rows` (in that order): finished sequences stop costing.
    pub fn retain_rows(&mut self, rows: &[usize], device: &B::Device) {
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()]), device);
        for l in self.layers.iter_mut().flatten() {
            match l {
                LayerKv::Tensors(kv) => {
                    kv.k = kv.k.clone().select(0, idx.clone());
                    kv.v = kv.v.clone().select(0, idx.clone());
                }
                LayerKv::Host(kv) => kv.retain_rows(rows),
            }
        }
    }

    /// Drops the first `n` positions: columns that are padding for every row cost attention
    /// time without changing any result. Rows' `pad` must shrink by `n` too.
    pub fn trim_front(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        for l in self.layers.iter_mut().flatten() {
            match l {
                LayerKv::Tensors(kv) => {
                    let len = kv.len - n;
                    *kv = DeviceKv::full(kv.k.clone().narrow(2, n, len), kv.v.clone().narrow(2, n, len));
                }
                LayerKv::Host(kv) => kv.trim_front(n),
            }
        }
    }

    /// Appends `other`'s rows after this cache's, left-padding the shorter of the two to the
    /// longer's length. Returns the padding added in front of (this cache's rows, `other`'s).
    pub fn append_rows(&mut self, other: KvCache<B>) -> (usize, usize) {
        if self.is_empty() {
            *self = other;
            return (0, 0);
        }
        let (a, b) = (self.len(), other.len());
        let len = a.max(b);
        for (mine, theirs) in self.layers.iter_mut().zip(other.layers) {
            match (mine, theirs) {
                (Some(LayerKv::Tensors(m)), Some(LayerKv::Tensors(t))) => {
                    let ((mk, mv), (tk, tv)) = (m.filled(), t.filled());
                    let k = Tensor::cat(vec![pad_front(mk, len - a), pad_front(tk, len - b)], 0);
                    let v = Tensor::cat(vec![pad_front(mv, len - a), pad_front(tv, len - b)], 0);
                    *m = DeviceKv::full(k, v);
                }
                (Some(LayerKv::Host(m)), Some(LayerKv::Host(t))) => {
                    m.append_rows(&t);
                }
                _ => unreachable!("caches of one model hold the same kind of layers"),
            }
        }
        (len - a, len - b)
    }
}

/// `n` zero positions (hidden by the mask) in front of `[batch, heads, len, dim]`.
fn pad_front<B: Backend>(x: Tensor<B, 4>, n: usize) -> Tensor<B, 4> {
    if n == 0 {
        return x;
    }
    let [b, h, _, d] = x.dims();
    let zeros = Tensor::<B, 4>::zeros([b, h, n, d], (&x.device(), x.dtype()));
    Tensor::cat(vec![zeros, x], 2)
}

/// Where each row's real tokens start in the shared (left-padded) sequence.
#[derive(Debug, Clone)]
pub struct Batch {
    pub pad: Vec<usize>,
}

impl Batch {
    /// `[row][token]` positions of `t` new tokens after `past`: they count real tokens only,
    /// so a left-padded row sees the positions it would alone.
    pub fn positions(&self, past: usize, t: usize) -> Vec<Vec<usize>> {
        self.pad.iter().map(|&pad| (past..past + t).map(|i| i.saturating_sub(pad)).collect()).collect()
    }
}

fn to_tensor<B: Backend, const D: usize>(t: HostTensor, device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// A matrix in `dtype` (the linear layers' and the embedding's; see `precision`).
fn to_matrix<B: Backend>(t: HostTensor, device: &B::Device, dtype: DType) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(t.data, t.shape), (device, dtype))
}

struct Loader<'a, B: Backend> {
    src: &'a WeightSource,
    prefix: String,
    device: &'a B::Device,
    dtype: DType,
}

impl<B: Backend> Loader<'_, B> {
    fn raw(&self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        let full = format!("{}{}", self.prefix, name);
        let t = self.src.get(&full)?;
        if t.shape != expected {
            return Err(EvalError::Shape { name: full, found: t.shape, expected: expected.to_vec() });
        }
        Ok(t)
    }
    fn linear(&self, name: &str, out: usize, inp: usize, bias: bool) -> Result<Linear<B>> {
        let w = self.raw(&format!("{name}.weight"), &[out, inp])?;
        let bias = if bias { Some(to_tensor(self.raw(&format!("{name}.bias"), &[out])?, self.device)) } else { None };
        Ok(Linear::new(to_matrix(w, self.device, self.dtype), bias))
    }
    fn norm(&self, name: &str, dim: usize, cfg: &ModelConfig) -> Result<RmsNorm<B>> {
        let mut w = self.raw(&format!("{name}.weight"), &[dim])?;
        if cfg.norm == NormStyle::PlusOne {
            w.data.iter_mut().for_each(|x| *x += 1.0);
        }
        let weight = to_tensor(w, self.device);
        Ok(RmsNorm { host: HostBuf::of(&weight), weight, eps: cfg.rms_norm_eps })
    }
}

/// Tensor-name prefix of the decoder: plain `model.`, or inside a Gemma 3 multimodal wrapper
/// (`language_model.model.` in Google's files, `model.language_model.` since transformers 4.52).
fn decoder_prefix(src: &WeightSource) -> Option<(&'static str, &'static str)> {
    [("model.", ""), ("language_model.model.", "language_model."), ("model.language_model.", "")]
        .into_iter()
        .find(|(p, _)| src.has(&format!("{p}embed_tokens.weight")))
}

impl<B: Backend> Model<B> {
    /// `precision` decides the dtype of the linear layers and the embedding (the bulk of the
    /// bytes), and so of the KV cache and every product's inputs; norms and the residual
    /// stream stay f32.
    pub fn load(cfg: ModelConfig, src: &WeightSource, device: &B::Device, precision: Precision) -> Result<Self> {
        let (prefix, head_prefix) = decoder_prefix(src).ok_or_else(|| EvalError::MissingTensor { name: "model.embed_tokens.weight".into(), dir: src.dir() })?;
        let dtype = precision.resolve::<B>(src.stored_dtype(&format!("{prefix}layers.0.mlp.up_proj.weight")), device)?;
        let l = Loader::<B> { src, prefix: prefix.into(), device, dtype };
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        let embed = to_matrix::<B>(l.raw("embed_tokens.weight", &[cfg.vocab_size, h])?, device, dtype);
        let head_name = format!("{head_prefix}lm_head.weight");
        let lm_head = if !cfg.tie_word_embeddings && src.has(&head_name) {
            let w = src.get(&head_name)?;
            if w.shape != [cfg.vocab_size, h] {
                return Err(EvalError::Shape { name: head_name, found: w.shape, expected: vec![cfg.vocab_size, h] });
            }
            to_matrix(w, device, dtype)
        } else if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            return Err(EvalError::MissingTensor { name: head_name, dir: src.dir() });
        };
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let p = format!("layers.{i}.");
            let gemma = cfg.sandwich_norms;
            let bias = cfg.attention_bias;
            layers.push(Layer {
                input_norm: l.norm(&format!("{p}input_layernorm"), h, &cfg)?,
                q: l.linear(&format!("{p}self_attn.q_proj"), cfg.num_heads * hd, h, bias)?,
                k: l.linear(&format!("{p}self_attn.k_proj"), cfg.num_kv_heads * hd, h, bias)?,
                v: l.linear(&format!("{p}self_attn.v_proj"), cfg.num_kv_heads * hd, h, bias)?,
                o: l.linear(&format!("{p}self_attn.o_proj"), h, cfg.num_heads * hd, bias)?,
                q_norm: cfg.qk_norm.then(|| l.norm(&format!("{p}self_attn.q_norm"), hd, &cfg)).transpose()?,
                k_norm: cfg.qk_norm.then(|| l.norm(&format!("{p}self_attn.k_norm"), hd, &cfg)).transpose()?,
                post_attn_norm: l.norm(&format!("{p}post_attention_layernorm"), h, &cfg)?,
                pre_ff_norm: gemma.then(|| l.norm(&format!("{p}pre_feedforward_layernorm"), h, &cfg)).transpose()?,
                post_ff_norm: gemma.then(|| l.norm(&format!("{p}post_feedforward_layernorm"), h, &cfg)).transpose()?,
                gate: l.linear(&format!("{p}mlp.gate_proj"), cfg.intermediate_size, h, false)?,
                up: l.linear(&format!("{p}mlp.up_proj"), cfg.intermediate_size, h, false)?,
                down: l.linear(&format!("{p}mlp.down_proj"), h, cfg.intermediate_size, false)?,
            });
        }
        let norm = l.norm("norm", h, &cfg)?;
        let lm_head = Linear::new(lm_head, None);
        let embed_host = HostBuf::of(&embed);
        Ok(Model { embed, embed_host, layers, norm, lm_head, device: device.clone(), cfg, cpu_kernels: true })
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Bytes the weights take on the device (a tied head counted once).
    pub fn weight_bytes(&self) -> u64 {
        fn bytes<B: Backend, const D: usize>(t: &Tensor<B, D>) -> u64 {
            (t.shape().num_elements() * t.dtype().size()) as u64
        }
        let linear = |l: &Linear<B>| bytes(&l.w) + l.bias.as_ref().map_or(0, bytes);
        let norm = |n: &RmsNorm<B>| bytes(&n.weight);
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down].into_iter().map(linear).sum::<u64>()
                    + [Some(&l.input_norm), Some(&l.post_attn_norm), l.q_norm.as_ref(), l.k_norm.as_ref(), l.pre_ff_norm.as_ref(), l.post_ff_norm.as_ref()]
                        .into_iter()
                        .flatten()
                        .map(norm)
                        .sum::<u64>()
            })
            .sum();
        let head = if self.cfg.tie_word_embeddings { 0 } else { linear(&self.lm_head) };
        bytes(&self.embed) + layers + norm(&self.norm) + head
    }

    /// Bytes of KV cache one position of one row takes: keys and values of every layer, in
    /// the weights' dtype.
    pub fn kv_bytes_per_position(&self) -> u64 {
        (self.cfg.num_layers * 2 * self.cfg.num_kv_heads * self.cfg.head_dim * self.weight_dtype().size()) as u64
    }

    /// Working memory a prefill of `rows` prompts padded to `len` tokens takes, roughly: the
    /// attention scores (`rows × heads × len²`, three such tensors live at once: scores,
    /// masked, probabilities), the MLP's three `[rows × len, intermediate]` tensors and a few
    /// hidden-size ones, all f32, and the last position's logits.
    pub fn prefill_bytes(&self, rows: usize, len: usize) -> u64 {
        let c = &self.cfg;
        let per_token = 3 * c.num_heads * len + 3 * c.intermediate_size + 8 * c.hidden_size;
        (4 * (rows * len * per_token + rows * c.vocab_size)) as u64
    }

    /// The dtype `--dtype` resolved to: the linear layers' and the embedding's.
    pub fn weight_dtype(&self) -> DType {
        self.embed.dtype()
    }

    /// Runs `tokens` (`[batch][len]`, all rows the same length) after what `cache` holds.
    /// Returns logits `[batch, len, vocab]`, or only the last position's when `last_only`, in
    /// f32 or, with 16-bit weights on burn's ops, in their dtype.
    pub fn forward(&self, tokens: &[Vec<u32>], batch: &Batch, cache: &mut KvCache<B>, last_only: bool) -> Tensor<B, 3> {
        if self.cpu_kernels && self.host_ready() {
            return self.forward_host(tokens, batch, cache, last_only);
        }
        let b = tokens.len();
        let t = tokens[0].len();
        let past = cache.len();
        let cfg = &self.cfg;
        let ids: Vec<i64> = tokens.iter().flatten().map(|&x| x as i64).collect();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [b * t]), &self.device);
        let mut x = self.embed.clone().select(0, ids).cast(DType::F32).reshape([b, t, cfg.hidden_size]);
        if let Some(scale) = cfg.embed_scale {
            x = x * scale;
        }
        let pos = batch.positions(past, t);
        let ropes: Vec<(Tensor<B, 4>, Tensor<B, 4>)> = (0..cfg.ropes.len()).map(|i| self.rope_tables(i, &pos)).collect();
        let mut masks: Vec<(Option<usize>, Tensor<B, 5>)> = vec![];
        for plan in &cfg.layers {
            if !masks.iter().any(|(w, _)| *w == plan.sliding_window) {
                masks.push((plan.sliding_window, self.mask(batch, past, t, plan.sliding_window)));
            }
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let plan = &cfg.layers[i];
            let rope = plan.rope.map(|r| &ropes[r]);
            let mask = &masks.iter().find(|(w, _)| *w == plan.sliding_window).expect("mask built above").1;
            x = self.layer(layer, x, rope, mask, &mut cache.layers[i]);
        }
        if last_only {
            x = x.narrow(1, t - 1, 1);
        }
        let x = self.norm.forward(x);
        match cfg.final_logit_softcapping {
            Some(cap) => (self.lm_head.forward(x) / cap).tanh() * cap,
            // Left in a 16-bit weight's dtype: the matmul's output already is, so widening it
            // on the host gives the f32 values a cast here would, for half the bytes copied
            // off the device (at batch 64 and a 152k vocabulary, 19 MB a step instead of 39).
            None => self.lm_head.matmul(x),
        }
    }

    /// cos/sin `[batch, 1, len, head_dim]` in HF's rotate-half layout (halves duplicated).
    fn rope_tables(&self, which: usize, pos: &[Vec<usize>]) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let table = RopeTable::new(&super::rope::inv_freq(&self.cfg.ropes[which], self.cfg.head_dim), pos);
        let shape = [pos.len(), 1, pos[0].len(), self.cfg.head_dim];
        (Tensor::from_data(TensorData::new(table.cos, shape), &self.device), Tensor::from_data(TensorData::new(table.sin, shape), &self.device))
    }

    /// Additive mask `[batch, 1, 1, len, past+len]` of [`visible`].
    fn mask(&self, batch: &Batch, past: usize, t: usize, window: Option<usize>) -> Tensor<B, 5> {
        let b = batch.pad.len();
        let s = past + t;
        let mut m = Vec::with_capacity(b * t * s);
        for r in 0..b {
            for qi in past..s {
                for kj in 0..s {
                    m.push(if visible(qi, kj, batch.pad[r], window) { 0.0f32 } else { f32::NEG_INFINITY });
                }
            }
        }
        Tensor::from_data(TensorData::new(m, [b, 1, 1, t, s]), &self.device)
    }

    fn layer(
        &self,
        l: &Layer<B>,
        x: Tensor<B, 3>,
        rope: Option<&(Tensor<B, 4>, Tensor<B, 4>)>,
        mask: &Tensor<B, 5>,
        cache: &mut Option<LayerKv<B>>,
    ) -> Tensor<B, 3> {
        let cfg = &self.cfg;
        let [b, t, _] = x.dims();
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let g = nh / nkv;
        let h = l.input_norm.forward(x.clone());
        let mut q = l.q.forward(h.clone()).reshape([b, t, nh, hd]);
        let mut k = l.k.forward(h.clone()).reshape([b, t, nkv, hd]);
        let v = l.v.forward(h).reshape([b, t, nkv, hd]).swap_dims(1, 2);
        if let (Some(qn), Some(kn)) = (&l.q_norm, &l.k_norm) {
            q = qn.forward(q);
            k = kn.forward(k);
        }
        let mut q = q.swap_dims(1, 2);
        let mut k = k.swap_dims(1, 2);
        if let Some((cos, sin)) = rope {
            q = apply_rope(q, cos, sin);
            k = apply_rope(k, cos, sin);
        }
        // Keys, values and the two attention products in the weights' dtype, as vLLM and
        // transformers keep them in bf16: half the cache bytes, twice the rows that fit.
        // Scores and softmax stay f32.
        let dtype = self.weight_dtype();
        let (q, k, v) = (q.cast(dtype), k.cast(dtype), v.cast(dtype));
        let (k, v) = match cache.take() {
            Some(LayerKv::Tensors(kv)) => {
                let kv = kv.push(k, v);
                let filled = kv.filled();
                *cache = Some(LayerKv::Tensors(kv));
                filled
            }
            Some(LayerKv::Host(_)) => unreachable!("the burn path never sees a host cache"),
            None => {
                *cache = Some(LayerKv::Tensors(DeviceKv::full(k.clone(), v.clone())));
                (k, v)
            }
        };
        let s = k.dims()[2];
        // Grouped-query attention without copying K/V per head: fold the query heads that
        // share a KV head into the row dimension.
        let qg = q.reshape([b, nkv, g * t, hd]);
        let mut scores = qg.matmul(k.swap_dims(2, 3)).cast(DType::F32) * cfg.attn_scale;
        if let Some(cap) = cfg.attn_logit_softcapping {
            scores = (scores / cap).tanh() * cap;
        }
        let scores = scores.reshape([b, nkv, g, t, s]) + mask.clone();
        let probs = activation::softmax(scores, 4).reshape([b, nkv, g * t, s]).cast(dtype);
        let out = probs.matmul(v).cast(DType::F32).reshape([b, nh, t, hd]).swap_dims(1, 2).reshape([b, t, nh * hd]);
        let mut attn = l.o.forward(out);
        if cfg.sandwich_norms {
            attn = l.post_attn_norm.forward(attn);
        }
        let x = x + attn;
        let h = match (&l.pre_ff_norm, cfg.sandwich_norms) {
            (Some(n), true) => n.forward(x.clone()),
            _ => l.post_attn_norm.forward(x.clone()),
        };
        let gate = l.gate.forward(h.clone());
        let act = match cfg.activation {
            Activation::Silu => activation::silu(gate),
            Activation::GeluTanh => activation::gelu_approximate(gate),
        };
        let mut ff = l.down.forward(act * l.up.forward(h));
        if let Some(n) = &l.post_ff_norm {
            ff = n.forward(ff);
        }
        x + ff
    }
}

/// `x cos + rotate_half(x) sin`, rotate_half(x) = [-x₂, x₁].
fn apply_rope<B: Backend>(x: Tensor<B, 4>, cos: &Tensor<B, 4>, sin: &Tensor<B, 4>) -> Tensor<B, 4> {
    let hd = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, hd / 2);
    let x2 = x.clone().narrow(3, hd / 2, hd / 2);
    let rot = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rot * sin.clone()
}
