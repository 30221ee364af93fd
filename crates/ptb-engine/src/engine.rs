//! The library API the eval stage uses: load a checkpoint once, then generate for batches of
//! requests (chat messages or raw prompts) with per-request sampling, stop strings and token
//! limits. Progress goes through [`Reporter`]; only the binary draws bars.

use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::prelude::Backend;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::chat::{ChatTemplate, Clock, Message, RenderOptions};
use super::config::{BaseModelSpec, Mismatch, ModelConfig, id_list, load_config, read_json};
use super::device_failure;
use super::error::{EvalError, Result};
use super::gguf::GgufFile;
use super::model::{Batch, KvCache, Model};
use super::precision::Precision;
use super::pyjson::Ordered;
use super::sampling::Sampling;
use super::weights::WeightSource;

mod batching;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Rendered with the chat template, generation prompt added.
    Messages(Vec<Message>),
    /// Like `Messages`, with tool schemas (BFCL) and extra template variables
    /// (e.g. `{"enable_thinking": false}`), an object whose key order is kept.
    Chat {
        messages: Vec<Message>,
        #[serde(default)]
        tools: Option<Vec<Ordered>>,
        #[serde(default)]
        template_kwargs: Ordered,
    },
    /// Tokenised as is (with the tokenizer's own special tokens, e.g. BOS).
    Raw(String),
    /// Already tokenised.
    Tokens(Vec<u32>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub prompt: Prompt,
    #[serde(default)]
    pub sampling: Sampling,
    pub max_new_tokens: usize,
    /// Generation ends before the first occurrence of any of these in the output text.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Keep generating through end-of-sequence tokens (benchmarks, as vLLM's `ignore_eos`).
    #[serde(default)]
    pub ignore_eos: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token.
    Eos,
    /// A stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub token_ids: Vec<u32>,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: FinishReason,
    /// Wall time of the prefill that admitted the request (shared with the requests admitted
    /// with it), and from then until the request finished.
    pub prefill_time: Duration,
    pub decode_time: Duration,
}

/// Generation reports through ptb's one progress trait (`batch_started`,
/// `tokens_generated`, `request_finished`; called once per decode step, so
/// implementations must be cheap).
pub use ptb_core::progress::{Reporter, Silent};

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Requests decoded together; more uses more memory and gains throughput.
    pub max_batch: usize,
    pub clock: Clock,
    /// The dtype of the weights on the device (`--dtype`).
    pub precision: Precision,
    /// Bytes the engine may use on the device: weights, KV cache and working memory (on
    /// CUDA, 90% of what the device has free; `None`: no limit but `max_batch`). Requests are
    /// admitted only while the cache could hold every live one at its longest, so a long
    /// generation never runs the device out of memory midway.
    pub memory: Option<u64>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { max_batch: 32, clock: Clock::System, precision: Precision::Auto, memory: None }
    }
}

pub struct Engine<B: Backend> {
    pub model: Model<B>,
    pub tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    eos: Vec<u32>,
    mismatches: Vec<Mismatch>,
    generation_defaults: Sampling,
    options: EngineOptions,
    pub dir: PathBuf,
}

fn special_token(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Object(o)) => o.get("content").and_then(|c| c.as_str()).unwrap_or("").to_string(),
        _ => String::new(),
    }
}

impl<B: Backend> Engine<B> {
    /// Loads a Hugging Face checkpoint directory, or a single `.gguf` file.
    pub fn load(path: &Path, base: &BaseModelSpec, device: &B::Device) -> Result<Self> {
        Self::load_with(path, base, device, EngineOptions::default())
    }

    pub fn load_with(path: &Path, base: &BaseModelSpec, device: &B::Device, options: EngineOptions) -> Result<Self> {
        device_failure::watch();
        if path.extension().is_some_and(|e| e == "gguf") {
            return Self::load_gguf(path, base, device, options);
        }
        let dir = path;
        let (cfg, mismatches) = load_config(dir, base)?;
        let src = WeightSource::open_safetensors(dir)?;
        let model = loaded(Model::load(cfg, &src, device, options.precision)?, &options)?;
        let tok_path = dir.join("tokenizer.json");
        if !tok_path.exists() {
            return Err(EvalError::Missing { path: tok_path, what: "tokenizer.json (save the tokenizer with save_pretrained)" });
        }
        let tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| EvalError::Tokenizer { path: tok_path.clone(), message: e.to_string() })?;
        let tc_path = dir.join("tokenizer_config.json");
        let tc = if tc_path.exists() { read_json(&tc_path)? } else { serde_json::json!({}) };
        let own_template =
            std::fs::read_to_string(dir.join("chat_template.jinja")).ok().or_else(|| tc.get("chat_template").and_then(|t| t.as_str()).map(str::to_string));
        let source = base.chat_template.clone().or(own_template);
        let template =
            source.map(|s| ChatTemplate::new(&s, &special_token(tc.get("bos_token")), &special_token(tc.get("eos_token")), options.clock)).transpose()?;
        let mut eos = model.cfg.eos_token_ids.clone();
        let gc_path = dir.join("generation_config.json");
        let mut generation_defaults = vllm_defaults(None);
        if gc_path.exists() {
            let gc = read_json(&gc_path)?;
            for id in id_list(gc.get("eos_token_id")) {
                if !eos.contains(&id) {
                    eos.push(id);
                }
            }
            generation_defaults = vllm_defaults(Some(&gc));
        }
        Ok(Engine { model, tokenizer, template, eos, mismatches, generation_defaults, options, dir: dir.to_path_buf() })
    }

    fn load_gguf(path: &Path, base: &BaseModelSpec, device: &B::Device, options: EngineOptions) -> Result<Self> {
        let g = GgufFile::open(path)?;
        let raw_cfg = g.hf_config()?;
        let tokenizer = super::gguf_tokenizer::from_gguf(&g)?;
        let tmp = tempfile::tempdir().map_err(|e| EvalError::io(path, e))?;
        let cfg_path = tmp.path().join("config.json");
        std::fs::write(&cfg_path, raw_cfg.to_string()).map_err(|e| EvalError::io(&cfg_path, e))?;
        let (cfg, mismatches): (ModelConfig, _) = load_config(tmp.path(), base)?;
        let tok_str = |key: &str| g.meta.get(key).and_then(|m| m.as_i64()).and_then(|id| tokenizer.id_to_token(id as u32)).unwrap_or_default();
        let (bos, eos_s) = (tok_str("tokenizer.ggml.bos_token_id"), tok_str("tokenizer.ggml.eos_token_id"));
        let own = g.meta.get("tokenizer.chat_template").and_then(|m| m.as_str()).map(str::to_string);
        let template = base.chat_template.clone().or(own).map(|s| ChatTemplate::new(&s, &bos, &eos_s, options.clock)).transpose()?;
        let eos = cfg.eos_token_ids.clone();
        let src = WeightSource::Gguf(Box::new(g));
        let model = loaded(Model::load(cfg, &src, device, options.precision)?, &options)?;
        Ok(Engine { model, tokenizer, template, eos, mismatches, generation_defaults: vllm_defaults(None), options, dir: path.to_path_buf() })
    }

    /// Bytes the KV cache may take (`None`: no memory limit was given).
    pub fn kv_budget(&self) -> Option<u64> {
        kv_budget(&self.model, &self.options)
    }

    /// Where the checkpoint's config disagrees with the declared base model.
    pub fn mismatches(&self) -> &[Mismatch] {
        &self.mismatches
    }

    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos
    }

    /// The prompt text a request turns into (after the chat template).
    pub fn render(&self, prompt: &Prompt) -> Result<String> {
        match prompt {
            Prompt::Raw(s) => Ok(s.clone()),
            Prompt::Tokens(ids) => self.decode(ids),
            Prompt::Messages(m) => self.render_chat(m, RenderOptions { add_generation_prompt: true, ..Default::default() }),
            Prompt::Chat { messages, tools, template_kwargs } => {
                if !matches!(template_kwargs, Ordered::Map(_) | Ordered::Null) {
                    return Err(EvalError::Template(format!("template_kwargs must be an object, not {template_kwargs:?}")));
                }
                self.render_chat(
                    messages,
                    RenderOptions {
                        add_generation_prompt: true,
                        tools: tools.clone(),
                        extra: template_kwargs.pairs().map(|(k, v)| (k.to_string(), v.clone())).collect(),
                    },
                )
            }
        }
    }

    fn render_chat(&self, messages: &[Message], opts: RenderOptions) -> Result<String> {
        let t = self.template.as_ref().ok_or_else(|| EvalError::Template("the base model declares no chat template and the checkpoint has none".into()))?;
        t.render(messages, &opts)
    }

    /// The sampling the reference harness's vLLM server applied to every request: its
    /// defaults from the checkpoint's `generation_config.json` (vLLM ignores `do_sample`).
    pub fn default_sampling(&self) -> Sampling {
        self.generation_defaults.clone()
    }

    /// Prompt token ids. Chat prompts already hold their special tokens (as in transformers'
    /// `apply_chat_template(tokenize=True)`); raw prompts get the tokenizer's own.
    pub fn encode(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        if let Prompt::Tokens(ids) = prompt {
            return Ok(ids.clone());
        }
        let text = self.render(prompt)?;
        let special = matches!(prompt, Prompt::Raw(_));
        let enc = self.tokenizer.encode(text, special).map_err(|e| EvalError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Generates for every request, up to `max_batch` at a time (a finished request's slot
    /// goes to the next one); results in request order.
    pub fn generate(&self, requests: &[Request], reporter: &dyn Reporter) -> Result<Vec<Completion>> {
        let mut prompts = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            let ids = self.encode(&r.prompt)?;
            if ids.is_empty() {
                return Err(EvalError::Request { index: i, problem: "the prompt has no tokens".into() });
            }
            prompts.push(ids);
        }
        // Similar lengths together waste less on padding; results go back in request order.
        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by_key(|&i| prompts[i].len());
        let out = self.generate_continuous(requests, &prompts, &order, reporter)?;
        Ok(out.into_iter().map(|c| c.expect("every request is admitted and finishes")).collect())
    }

    /// Logits `[len][vocab]` for every position of one token sequence (for tests and tools).
    pub fn logits(&self, ids: &[u32]) -> Result<Vec<Vec<f32>>> {
        let mut cache = KvCache::new(self.model.cfg.num_layers);
        let t = self.model.forward(&[ids.to_vec()], &Batch { pad: vec![0] }, &mut cache, false);
        let v = self.model.cfg.vocab_size;
        Ok(host(t)?.chunks(v).map(<[f32]>::to_vec).collect())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(|e| EvalError::Encode(e.to_string()))
    }
}

/// vLLM 0.11's request defaults with `generation_config="auto"`: temperature, top_p and
/// top_k from generation_config.json where present, else 1.0 / 1.0 / none.
fn vllm_defaults(gc: Option<&serde_json::Value>) -> Sampling {
    let num = |k: &str| gc.and_then(|g| g.get(k)).and_then(|v| v.as_f64());
    Sampling {
        temperature: num("temperature").unwrap_or(1.0) as f32,
        top_p: num("top_p").unwrap_or(1.0) as f32,
        top_k: num("top_k").filter(|k| *k > 0.0).unwrap_or(0.0) as usize,
        seed: 0,
    }
}

/// Logits on the host, row-major; reading them waits for the device, so its failures show here.
fn host<B: Backend>(t: burn::tensor::Tensor<B, 3>) -> Result<Vec<f32>> {
    let mut out = vec![];
    host_into(t, &mut out)?;
    Ok(out)
}

/// [`host`] into `out`, reusing its allocation.
fn host_into<B: Backend>(t: burn::tensor::Tensor<B, 3>, out: &mut Vec<f32>) -> Result<()> {
    super::readback::to_vec_into(t, out)?;
    device_failure::check("generating")
}

/// The model once its weights are on the device, or the device's failure to hold them.
fn loaded<B: Backend>(model: Model<B>, options: &EngineOptions) -> Result<Model<B>> {
    B::sync(model.device()).map_err(|e| EvalError::Backend(format!("{e:?}")))?;
    device_failure::check("loading the weights")?;
    if kv_budget(&model, options) == Some(0) {
        return Err(EvalError::Backend(format!(
            "the weights take {} of the {} the device offers, leaving nothing for the KV cache; \
             a 16-bit --dtype or a larger device may do",
            human_bytes(model.weight_bytes()),
            human_bytes(options.memory.unwrap_or(0))
        )));
    }
    Ok(model)
}

/// The share of [`EngineOptions::memory`] kept for working memory (a prefill's activations,
/// logits) rather than the KV cache.
pub const WORKING_SHARE: f64 = 0.2;

/// Bytes a prefill may take: the working share of the engine's memory.
fn working_budget(options: &EngineOptions) -> Option<u64> {
    options.memory.map(|m| (m as f64 * WORKING_SHARE) as u64)
}

/// Bytes the KV cache may take: the engine's memory less the weights and working memory.
fn kv_budget<B: Backend>(model: &Model<B>, options: &EngineOptions) -> Option<u64> {
    options.memory.map(|m| ((m as f64 * (1.0 - WORKING_SHARE)) as u64).saturating_sub(model.weight_bytes()))
}

pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}

/// Byte offset of the earliest stop string in `text`.
fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min()
}
