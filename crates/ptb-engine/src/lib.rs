//! In-process evaluation engine: loads a submitted checkpoint with burn and generates for
//! benchmark prompts, outside the agent's sandbox.
//!
//! - [`config`]: `config.json` read as the *declared* base model's architecture.
//! - [`weights`], [`gguf`]: tensors from safetensors (single or sharded) or GGUF, as f32.
//! - [`model`]: the shared decoder (Llama, Qwen3, SmolLM3, Gemma 3) on any burn backend.
//! - `cpu_kernels`, `host_ops`, `host_kv`: the forward pass on the ndarray backend's own
//!   buffers (linear layers without burn's per-call copies, attention over a preallocated
//!   KV cache), several times faster than burn's ops on CPU.
//! - [`chat`]: chat templates rendered as transformers renders them.
//! - [`precision`]: `--dtype`, the weights' dtype on the device (bf16 on a GPU by default).
//! - [`engine`]: continuously batched generation with a KV cache; the API the eval stage calls.
//! - [`readback`]: logits off the device as f32, 16-bit ones widened on the host.
//! - [`device`]: `--device cpu|cuda:N` to a burn backend; `device_failure`: a GPU backend's
//!   swallowed device-thread panics (a failed allocation) made errors.

pub mod chat;
pub mod config;
mod cpu_kernels;
pub mod device;
mod device_failure;
pub mod engine;
pub mod error;
pub mod gguf;
mod gguf_tokenizer;
#[cfg(feature = "cuda")]
pub mod gpu;
mod host_kv;
mod host_ops;
mod mask;
pub mod model;
pub mod precision;
pub mod pyjson;
pub mod readback;
mod rope;
pub mod sampling;
mod simd;
mod strftime;
mod tensor;
pub mod weights;

pub use chat::{ChatTemplate, Clock, Message, RenderOptions};
pub use config::{Architecture, BaseModelSpec, Mismatch};
pub use engine::{Completion, Engine, EngineOptions, FinishReason, Prompt, Reporter, Request, Silent};
pub use error::EvalError;
pub use precision::Precision;
pub use sampling::Sampling;

/// The CPU backend used by tests and CI.
pub type Cpu = burn::backend::NdArray<f32>;
