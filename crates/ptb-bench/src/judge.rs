//! A client for OpenAI-compatible chat-completions endpoints, used as the LLM
//! judge (Arena-Hard) and rubric grader (HealthBench).
//!
//! Re-scoring must never pay twice, so every reply is stored in a
//! content-addressed cache keyed by the sha256 of a canonical encoding of
//! (model, params, messages). Transient failures (transport errors, 408, 429,
//! 5xx) are retried with exponential backoff; a 429's `Retry-After` is honoured.
//! A counting semaphore caps concurrent requests.

use super::BenchError;
use super::chat::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Bump when the cache key's encoding changes: old entries are then ignored.
const CACHE_SCHEMA: &str = "ptb-judge-cache-v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JudgeConfig {
    /// Base URL, e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub url: String,
    pub model: String,
    /// Name of the environment variable holding the API key (never the key).
    pub api_key_env: String,
    /// Extra request fields, e.g. `max_completion_tokens`, `reasoning_effort`.
    #[serde(default)]
    pub params: Map<String, Value>,
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub request_timeout: Duration,
    pub concurrency: usize,
    pub cache_dir: Option<PathBuf>,
}

impl JudgeConfig {
    /// The reference's judge: gpt-5-mini, `max_completion_tokens` 49152 (and
    /// `reasoning_effort: medium` for Arena-Hard, added by the caller).
    pub fn openai_gpt5_mini() -> Self {
        let mut params = Map::new();
        params.insert("max_completion_tokens".into(), json!(49152));
        JudgeConfig {
            url: "https://api.openai.com/v1".into(),
            model: "gpt-5-mini".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            params,
            max_retries: 5,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(120),
            request_timeout: Duration::from_secs(600),
            concurrency: 16,
            cache_dir: None,
        }
    }

    /// An endpoint with the reference's request parameters, retries and
    /// timeouts: what the spec's `llm-judge` describes.
    pub fn endpoint(url: String, model: String, api_key_env: String, concurrency: Option<usize>, cache_dir: Option<PathBuf>) -> Self {
        let mut cfg = JudgeConfig::openai_gpt5_mini();
        cfg.url = url;
        cfg.model = model;
        cfg.api_key_env = api_key_env;
        cfg.concurrency = concurrency.unwrap_or(cfg.concurrency);
        cfg.cache_dir = cache_dir;
        cfg
    }

    /// The endpoint a stage was given (`PTB_JUDGE_URL`, `PTB_JUDGE_MODEL`,
    /// `PTB_JUDGE_API_KEY_ENV`, `PTB_JUDGE_CONCURRENCY`, and the reply
    /// cache `PTB_CACHE_JUDGE`; docs/agent-contract.md), if any.
    pub fn from_env() -> Option<Self> {
        let (url, model) = (std::env::var("PTB_JUDGE_URL").ok()?, std::env::var("PTB_JUDGE_MODEL").ok()?);
        Some(JudgeConfig::endpoint(
            url,
            model,
            std::env::var("PTB_JUDGE_API_KEY_ENV").unwrap_or_else(|_| "OPENAI_API_KEY".into()),
            std::env::var("PTB_JUDGE_CONCURRENCY").ok().and_then(|c| c.parse().ok()),
            std::env::var_os(ptb_core::contract::cache_env_name("judge")).filter(|v| !v.is_empty()).map(PathBuf::from),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeReply {
    pub content: String,
    /// Served from the cache, no request made.
    pub cached: bool,
    /// HTTP attempts made for this reply (0 when cached).
    pub attempts: u32,
}

struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Semaphore {
    fn acquire(&self) -> SemGuard<'_> {
        let mut n = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *n == 0 {
            n = self.cv.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n -= 1;
        SemGuard(self)
    }
}

struct SemGuard<'a>(&'a Semaphore);
impl Drop for SemGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

pub struct JudgeClient {
    cfg: JudgeConfig,
    agent: ureq::Agent,
    sem: Semaphore,
    served_from_cache: AtomicUsize,
    asked: AtomicUsize,
    /// Set by the first request that fails for good: an eval with a failed
    /// judge request fails whole, so the others stop asking at once rather
    /// than each waiting out its own retries against an endpoint that is down.
    gave_up: std::sync::atomic::AtomicBool,
}

/// Replies a client has given: from the cache, or asked of the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JudgeUsage {
    pub cached: usize,
    pub requested: usize,
}

/// The cache key: sha256 over a versioned JSON document whose maps are
/// key-sorted (serde_json's default map), so equal requests hash equally.
pub fn cache_key(model: &str, params: &Map<String, Value>, messages: &[Message]) -> String {
    let doc = json!({ "schema": CACHE_SCHEMA, "model": model, "params": params, "messages": messages });
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    ptb_core::hash::sha256_hex(&bytes)
}

enum Attempt {
    Done(String),
    Retry { after: Option<Duration>, why: String },
    Fail(String),
}

impl JudgeClient {
    pub fn new(cfg: JudgeConfig) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(cfg.request_timeout).build();
        let sem = Semaphore { free: Mutex::new(cfg.concurrency.max(1)), cv: Condvar::new() };
        JudgeClient { cfg, agent, sem, served_from_cache: AtomicUsize::new(0), asked: AtomicUsize::new(0), gave_up: Default::default() }
    }

    pub fn usage(&self) -> JudgeUsage {
        JudgeUsage { cached: self.served_from_cache.load(Ordering::Relaxed), requested: self.asked.load(Ordering::Relaxed) }
    }

    pub fn config(&self) -> &JudgeConfig {
        &self.cfg
    }

    fn cache_path(&self, key: &str) -> Option<PathBuf> {
        self.cfg.cache_dir.as_ref().map(|d| d.join(&key[..2]).join(format!("{key}.json")))
    }

    fn cache_get(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.cache_path(key)?).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        (v.get("key")?.as_str()? == key).then(|| v.get("content")?.as_str().map(str::to_string))?
    }

    /// Write-then-rename so a killed process never leaves a torn entry.
    fn cache_put(&self, key: &str, content: &str) -> Result<(), BenchError> {
        let Some(path) = self.cache_path(key) else {
            return Ok(());
        };
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        let io = |source: std::io::Error| BenchError::Io { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
        let body = json!({ "key": key, "model": self.cfg.model, "content": content });
        tmp.write_all(body.to_string().as_bytes()).map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }

    fn request_body(&self, messages: &[Message]) -> String {
        let mut body = self.cfg.params.clone();
        body.insert("model".into(), json!(self.cfg.model));
        body.insert("messages".into(), json!(messages));
        body.insert("stream".into(), json!(false));
        Value::Object(body).to_string()
    }

    fn attempt(&self, body: &str, key: &str) -> Attempt {
        let url = format!("{}/chat/completions", self.cfg.url.trim_end_matches('/'));
        let _slot = self.sem.acquire();
        let resp = self.agent.post(&url).set("Authorization", &format!("Bearer {key}")).set("Content-Type", "application/json").send_string(body);
        match resp {
            Ok(r) => {
                let text = match r.into_string() {
                    Ok(t) => t,
                    Err(e) => {
                        return Attempt::Retry { after: None, why: format!("reading body: {e}") };
                    }
                };
                let v: Value = match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(e) => {
                        return Attempt::Retry { after: None, why: format!("malformed JSON reply: {e}") };
                    }
                };
                match v.pointer("/choices/0/message/content").and_then(Value::as_str) {
                    Some(c) => Attempt::Done(c.to_string()),
                    None => Attempt::Retry { after: None, why: "reply has no choices[0].message.content".into() },
                }
            }
            Err(ureq::Error::Status(code, r)) => {
                // Any number the server sends, however large, is a wait
                // capped by max_backoff below, never a panic.
                let after = r
                    .header("Retry-After")
                    .and_then(|h| h.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX));
                let text = r.into_string().unwrap_or_default();
                let why = format!("HTTP {code}: {}", text.chars().take(300).collect::<String>());
                match code {
                    408 | 409 | 429 | 500..=599 => Attempt::Retry { after: if code == 429 { after } else { None }, why },
                    _ => Attempt::Fail(why),
                }
            }
            Err(e) => Attempt::Retry { after: None, why: e.to_string() },
        }
    }

    /// Fail early, before any work, when the API key is not configured.
    pub fn check_ready(&self) -> Result<(), BenchError> {
        std::env::var(&self.cfg.api_key_env)
            .map(|_| ())
            .map_err(|_| BenchError::Judge(format!("environment variable {} (the judge's API key) is not set", self.cfg.api_key_env)))
    }

    /// One chat completion, from the cache when possible.
    pub fn complete(&self, messages: &[Message]) -> Result<JudgeReply, BenchError> {
        self.complete_attempt(messages, 0)
    }

    /// Like `complete`, for the `attempt`-th independent try at the same
    /// prompt (HealthBench re-asks when a reply is unusable): the attempt
    /// number is part of the cache key, never of the request.
    pub fn complete_attempt(&self, messages: &[Message], attempt: u32) -> Result<JudgeReply, BenchError> {
        let mut key_params = self.cfg.params.clone();
        if attempt > 0 {
            key_params.insert("ptb_attempt".into(), json!(attempt));
        }
        let ck = cache_key(&self.cfg.model, &key_params, messages);
        if let Some(content) = self.cache_get(&ck) {
            self.served_from_cache.fetch_add(1, Ordering::Relaxed);
            return Ok(JudgeReply { content, cached: true, attempts: 0 });
        }
        let api_key = std::env::var(&self.cfg.api_key_env)
            .map_err(|_| BenchError::Judge(format!("environment variable {} (the judge's API key) is not set", self.cfg.api_key_env)))?;
        let body = self.request_body(messages);
        self.asked.fetch_add(1, Ordering::Relaxed);
        let give_up = |why: String| {
            self.gave_up.store(true, Ordering::Relaxed);
            Err(BenchError::Judge(why))
        };
        let mut attempts = 0;
        loop {
            if self.gave_up.load(Ordering::Relaxed) {
                return Err(BenchError::Judge("not asked: another judge request already failed".into()));
            }
            attempts += 1;
            match self.attempt(&body, &api_key) {
                Attempt::Done(content) => {
                    self.cache_put(&ck, &content)?;
                    return Ok(JudgeReply { content, cached: false, attempts });
                }
                Attempt::Fail(why) => return give_up(why),
                Attempt::Retry { after, why } => {
                    if attempts > self.cfg.max_retries {
                        return give_up(format!("giving up after {attempts} attempts: {why}"));
                    }
                    let backoff = self.cfg.initial_backoff.saturating_mul(1 << (attempts - 1).min(16));
                    std::thread::sleep(after.unwrap_or(backoff).min(self.cfg.max_backoff));
                }
            }
        }
    }

    /// Many completions; at most `concurrency` in flight. Order is kept.
    pub fn complete_many(&self, requests: &[Vec<Message>]) -> Vec<Result<JudgeReply, BenchError>> {
        self.complete_many_attempt(requests, 0)
    }

    pub fn complete_many_attempt(&self, requests: &[Vec<Message>], attempt: u32) -> Vec<Result<JudgeReply, BenchError>> {
        ptb_core::pool::map_ordered(requests, self.cfg.concurrency, |r| self.complete_attempt(r, attempt))
    }
}
