//! Errors of the evaluation engine. Each names the file or field at fault and, where one
//! exists, the fix, because the person reading it is usually looking at an agent's checkpoint.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: missing; a checkpoint directory needs {what}")]
    Missing { path: PathBuf, what: &'static str },
    #[error("{path}: field `{field}` {problem}")]
    Config { path: PathBuf, field: String, problem: String },
    #[error(
        "unsupported architecture `{0}`; ptb evaluates LlamaForCausalLM, Qwen3ForCausalLM, \
         SmolLM3ForCausalLM, Gemma3ForCausalLM and Gemma3ForConditionalGeneration"
    )]
    UnknownArchitecture(String),
    #[error("{path}: {problem}")]
    Weights { path: PathBuf, problem: String },
    #[error("tensor `{name}` not found in {dir}; is this checkpoint of the declared architecture?")]
    MissingTensor { name: String, dir: PathBuf },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?} from config.json")]
    Shape { name: String, found: Vec<usize>, expected: Vec<usize> },
    #[error("{path}: cannot load tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Encode(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("request {index}: {problem}")]
    Request { index: usize, problem: String },
    #[error("backend: {0}")]
    Backend(String),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

impl EvalError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io { path: path.into(), source }
    }
    pub(crate) fn weights(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        EvalError::Weights { path: path.into(), problem: problem.into() }
    }
}
