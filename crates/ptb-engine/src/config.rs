//! `config.json` → one architecture-neutral [`ModelConfig`].
//!
//! The architecture is the *declared* base model's, not the checkpoint's: agents have edited
//! `config.json`'s `architectures` to change how the evaluator treats their model. A
//! disagreement is recorded as a [`Mismatch`] for the judge instead of being obeyed.
//! Defaults mirror transformers 4.57's config classes, because real configs (gemma-3-4b-pt's
//! `text_config` above all) leave many fields out and rely on them.

use std::path::Path;

use serde_json::Value;

use super::error::{EvalError, Result};

/// The architectures ptb can evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen3,
    SmolLM3,
    /// Gemma 3 text; also the language model of a `Gemma3ForConditionalGeneration` checkpoint.
    Gemma3,
}

impl Architecture {
    /// Parses a Hugging Face `architectures[0]` name.
    pub fn from_hf(name: &str) -> Result<Self> {
        Ok(match name {
            "LlamaForCausalLM" => Architecture::Llama,
            "Qwen3ForCausalLM" => Architecture::Qwen3,
            "SmolLM3ForCausalLM" => Architecture::SmolLM3,
            "Gemma3ForCausalLM" | "Gemma3ForConditionalGeneration" => Architecture::Gemma3,
            other => return Err(EvalError::UnknownArchitecture(other.to_string())),
        })
    }
}

/// What the experiment spec declares about the base model a checkpoint must derive from.
#[derive(Debug, Clone, Default)]
pub struct BaseModelSpec {
    /// `architectures[0]` of the base model, e.g. `Qwen3ForCausalLM`.
    pub architecture: String,
    /// The chat template to apply (Jinja source). `None` uses the checkpoint's own template,
    /// which is only right for ad-hoc use (`ptb generate`), never for scoring.
    pub chat_template: Option<String>,
    /// The base model's own `config.json`; when given, shape fields that differ in the
    /// checkpoint are reported as mismatches (fine-tuning does not change them).
    pub config: Option<Value>,
}

/// Fields fine-tuning leaves alone; a change means a different model.
const SHAPE_FIELDS: [&str; 8] =
    ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "model_type"];

impl BaseModelSpec {
    /// A spec that trusts the checkpoint: its architecture and template. For ad-hoc use.
    pub fn from_checkpoint(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let raw = read_json(&path)?;
        let arch = architectures0(&raw).ok_or_else(|| EvalError::Config {
            path: path.clone(),
            field: "architectures".into(),
            problem: "is missing; pass the base model's architecture explicitly".into(),
        })?;
        Ok(BaseModelSpec { architecture: arch, ..Default::default() })
    }
}

/// A way in which the checkpoint's config disagrees with the declared base model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub field: String,
    pub declared: String,
    pub checkpoint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormStyle {
    /// `x / rms(x) * w` (Llama, Qwen3, SmolLM3).
    Plain,
    /// `x / rms(x) * (1 + w)` (Gemma).
    PlusOne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    GeluTanh,
}

/// One RoPE frequency table; layers refer to one by index.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeSpec {
    pub theta: f64,
    pub scaling: RopeScaling,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    Linear(f64),
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: f64 },
}

/// Per-layer attention plan: which RoPE table (none for SmolLM3's NoPE layers) and window.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    pub rope: Option<usize>,
    pub sliding_window: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub arch: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub norm: NormStyle,
    pub activation: Activation,
    pub qk_norm: bool,
    /// Gemma's extra norms after attention and around the MLP.
    pub sandwich_norms: bool,
    pub attention_bias: bool,
    pub embed_scale: Option<f32>,
    pub attn_scale: f32,
    pub tie_word_embeddings: bool,
    pub ropes: Vec<RopeSpec>,
    pub layers: Vec<LayerPlan>,
    pub final_logit_softcapping: Option<f32>,
    pub attn_logit_softcapping: Option<f32>,
    /// End-of-sequence ids from config.json; generation_config.json may add more.
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
}

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EvalError::Missing { path: path.to_path_buf(), what: "config.json (Hugging Face layout)" }
        } else {
            EvalError::io(path, e)
        }
    })?;
    serde_json::from_str(&text).map_err(|source| EvalError::Json { path: path.to_path_buf(), source })
}

fn architectures0(raw: &Value) -> Option<String> {
    raw.get("architectures")?.as_array()?.first()?.as_str().map(str::to_string)
}

/// Token ids from a field that may be an integer or a list of integers.
pub(crate) fn id_list(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        _ => vec![],
    }
}

struct Fields<'a> {
    path: &'a Path,
    v: &'a Value,
}

impl Fields<'_> {
    fn err(&self, field: &str, problem: &str) -> EvalError {
        EvalError::Config { path: self.path.to_path_buf(), field: field.into(), problem: problem.into() }
    }
    fn get(&self, field: &str) -> Option<&Value> {
        self.v.get(field).filter(|x| !x.is_null())
    }
    fn usize(&self, field: &str) -> Result<usize> {
        self.usize_or(field, None)
    }
    fn usize_or(&self, field: &str, default: Option<usize>) -> Result<usize> {
        match self.get(field) {
            Some(x) => x.as_u64().map(|n| n as usize).ok_or_else(|| self.err(field, "must be a non-negative integer")),
            None => default.ok_or_else(|| self.err(field, "is missing")),
        }
    }
    fn f64_or(&self, field: &str, default: f64) -> Result<f64> {
        match self.get(field) {
            Some(x) => x.as_f64().ok_or_else(|| self.err(field, "must be a number")),
            None => Ok(default),
        }
    }
    fn opt_f64(&self, field: &str) -> Result<Option<f64>> {
        self.get(field).map(|x| x.as_f64().ok_or_else(|| self.err(field, "must be a number"))).transpose()
    }
    fn bool_or(&self, field: &str, default: bool) -> Result<bool> {
        match self.get(field) {
            Some(x) => x.as_bool().ok_or_else(|| self.err(field, "must be true or false")),
            None => Ok(default),
        }
    }
    fn rope_scaling(&self) -> Result<RopeScaling> {
        let Some(s) = self.get("rope_scaling") else {
            return Ok(RopeScaling::None);
        };
        let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str).unwrap_or("default");
        let num = |k: &str| -> Result<f64> { s.get(k).and_then(Value::as_f64).ok_or_else(|| self.err(&format!("rope_scaling.{k}"), "is missing")) };
        match kind {
            "default" => Ok(RopeScaling::None),
            "linear" => Ok(RopeScaling::Linear(num("factor")?)),
            "llama3" => Ok(RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            }),
            other => Err(self.err("rope_scaling.rope_type", &format!("`{other}` is not supported (default, linear, llama3 are)"))),
        }
    }
}

/// Reads `dir/config.json` as the declared architecture; returns the config and any
/// disagreement between the checkpoint's own claims and the declaration.
pub fn load_config(dir: &Path, base: &BaseModelSpec) -> Result<(ModelConfig, Vec<Mismatch>)> {
    let path = dir.join("config.json");
    let raw = read_json(&path)?;
    let arch = Architecture::from_hf(&base.architecture)?;
    let mut mismatches = vec![];
    let claimed = architectures0(&raw).unwrap_or_default();
    if claimed != base.architecture {
        mismatches.push(Mismatch { field: "architectures[0]".into(), declared: base.architecture.clone(), checkpoint: claimed });
    }
    // Multimodal Gemma 3 keeps the language model's fields under `text_config`.
    let text_of = |v: &'_ Value| -> Value {
        match v.get("text_config") {
            Some(t) if arch == Architecture::Gemma3 && t.is_object() => t.clone(),
            _ => v.clone(),
        }
    };
    let text = &text_of(&raw);
    if let Some(base_cfg) = &base.config {
        let base_text = text_of(base_cfg);
        for field in SHAPE_FIELDS {
            let (want, got) = (base_text.get(field), text.get(field));
            if want.is_some() && want != got {
                mismatches.push(Mismatch {
                    field: field.into(),
                    declared: want.map(Value::to_string).unwrap_or_default(),
                    checkpoint: got.map(Value::to_string).unwrap_or_else(|| "(absent)".into()),
                });
            }
        }
    }
    let f = Fields { path: &path, v: text };
    let top = Fields { path: &path, v: &raw };
    let cfg = match arch {
        Architecture::Gemma3 => gemma3(&f)?,
        _ => llama_like(&f, arch)?,
    };
    let mut cfg = cfg;
    cfg.eos_token_ids = id_list(f.get("eos_token_id").or_else(|| top.get("eos_token_id")));
    cfg.bos_token_id = id_list(f.get("bos_token_id").or_else(|| top.get("bos_token_id"))).first().copied();
    if cfg.num_heads == 0 || cfg.num_kv_heads == 0 || cfg.num_heads % cfg.num_kv_heads != 0 {
        return Err(f.err("num_key_value_heads", "must divide num_attention_heads (grouped-query attention)"));
    }
    if cfg.head_dim % 2 != 0 {
        return Err(f.err("head_dim", "must be even for rotary embeddings"));
    }
    Ok((cfg, mismatches))
}

fn llama_like(f: &Fields, arch: Architecture) -> Result<ModelConfig> {
    let hidden = f.usize("hidden_size")?;
    let heads = f.usize("num_attention_heads")?;
    let layers = f.usize("num_hidden_layers")?;
    let head_dim_default = match arch {
        Architecture::Qwen3 => 128,
        _ => hidden / heads.max(1),
    };
    let head_dim = f.usize_or("head_dim", Some(head_dim_default))?;
    let theta_default = match arch {
        Architecture::SmolLM3 => 2_000_000.0,
        _ => 10_000.0,
    };
    let rope = RopeSpec { theta: f.f64_or("rope_theta", theta_default)?, scaling: f.rope_scaling()? };
    // SmolLM3: `no_rope_layers[i] == 1` means layer i *uses* RoPE (the name is HF's).
    let uses_rope: Vec<bool> = match (arch, f.get("no_rope_layers")) {
        (Architecture::SmolLM3, Some(Value::Array(a))) => {
            if a.len() != layers {
                return Err(f.err("no_rope_layers", "must have one entry per layer"));
            }
            a.iter().map(|x| x.as_u64().unwrap_or(1) != 0).collect()
        }
        (Architecture::SmolLM3, _) => {
            let interval = f.usize_or("no_rope_layer_interval", Some(4))?.max(1);
            (0..layers).map(|i| (i + 1) % interval != 0).collect()
        }
        _ => vec![true; layers],
    };
    if matches!(arch, Architecture::Qwen3 | Architecture::SmolLM3 | Architecture::Llama) && f.bool_or("use_sliding_window", false)? {
        return Err(f.err("use_sliding_window", "true is not supported for this architecture"));
    }
    let act = f.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
    if act != "silu" {
        return Err(f.err("hidden_act", &format!("`{act}` is not supported (silu is)")));
    }
    Ok(ModelConfig {
        arch,
        vocab_size: f.usize("vocab_size")?,
        hidden_size: hidden,
        intermediate_size: f.usize("intermediate_size")?,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: f.usize_or("num_key_value_heads", Some(heads))?,
        head_dim,
        rms_norm_eps: f.f64_or("rms_norm_eps", 1e-6)?,
        norm: NormStyle::Plain,
        activation: Activation::Silu,
        qk_norm: arch == Architecture::Qwen3,
        sandwich_norms: false,
        attention_bias: f.bool_or("attention_bias", false)?,
        embed_scale: None,
        attn_scale: (head_dim as f32).powf(-0.5),
        tie_word_embeddings: f.bool_or("tie_word_embeddings", arch == Architecture::SmolLM3)?,
        ropes: vec![rope],
        layers: uses_rope.into_iter().map(|r| LayerPlan { rope: r.then_some(0), sliding_window: None }).collect(),
        final_logit_softcapping: None,
        attn_logit_softcapping: None,
        eos_token_ids: vec![],
        bos_token_id: None,
    })
}

fn gemma3(f: &Fields) -> Result<ModelConfig> {
    let hidden = f.usize_or("hidden_size", Some(2304))?;
    let layers = f.usize_or("num_hidden_layers", Some(26))?;
    let heads = f.usize_or("num_attention_heads", Some(8))?;
    let window = f.usize_or("sliding_window", Some(4096))?;
    // Newer configs list `layer_types`; older ones give a period (every 6th layer global).
    let sliding: Vec<bool> = match f.get("layer_types") {
        Some(Value::Array(a)) => {
            if a.len() != layers {
                return Err(f.err("layer_types", "must have one entry per layer"));
            }
            a.iter()
                .map(|x| match x.as_str() {
                    Some("sliding_attention") => Ok(true),
                    Some("full_attention") => Ok(false),
                    _ => Err(f.err("layer_types", "entries must be sliding_attention or full_attention")),
                })
                .collect::<Result<_>>()?
        }
        _ => {
            let pattern = f.usize_or("sliding_window_pattern", Some(6))?.max(1);
            (0..layers).map(|i| (i + 1) % pattern != 0).collect()
        }
    };
    let act = f.get("hidden_activation").and_then(Value::as_str).unwrap_or("gelu_pytorch_tanh");
    if act != "gelu_pytorch_tanh" {
        return Err(f.err("hidden_activation", &format!("`{act}` is not supported")));
    }
    let global = RopeSpec { theta: f.f64_or("rope_theta", 1_000_000.0)?, scaling: f.rope_scaling()? };
    let local = RopeSpec { theta: f.f64_or("rope_local_base_freq", 10_000.0)?, scaling: RopeScaling::None };
    let head_dim = f.usize_or("head_dim", Some(256))?;
    let qpas = f.f64_or("query_pre_attn_scalar", 256.0)?;
    Ok(ModelConfig {
        arch: Architecture::Gemma3,
        vocab_size: f.usize_or("vocab_size", Some(262_208))?,
        hidden_size: hidden,
        intermediate_size: f.usize_or("intermediate_size", Some(9216))?,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: f.usize_or("num_key_value_heads", Some(4))?,
        head_dim,
        rms_norm_eps: f.f64_or("rms_norm_eps", 1e-6)?,
        norm: NormStyle::PlusOne,
        activation: Activation::GeluTanh,
        qk_norm: true,
        sandwich_norms: true,
        attention_bias: f.bool_or("attention_bias", false)?,
        embed_scale: Some((hidden as f32).sqrt()),
        attn_scale: qpas.powf(-0.5) as f32,
        tie_word_embeddings: f.bool_or("tie_word_embeddings", true)?,
        ropes: vec![global, local],
        layers: sliding.into_iter().map(|s| LayerPlan { rope: Some(if s { 1 } else { 0 }), sliding_window: s.then_some(window) }).collect(),
        final_logit_softcapping: f.opt_f64("final_logit_softcapping")?.map(|x| x as f32),
        attn_logit_softcapping: f.opt_f64("attn_logit_softcapping")?.map(|x| x as f32),
        eos_token_ids: vec![],
        bos_token_id: None,
    })
}
