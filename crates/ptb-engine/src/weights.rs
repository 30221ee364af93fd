//! Reading checkpoint tensors as f32, whatever they were stored as.
//!
//! Sources: one `model.safetensors`, a sharded set with `model.safetensors.index.json`, or a
//! GGUF file (see `gguf.rs`). Files are memory-mapped so that a multi-GB checkpoint is not
//! copied before the tensors we need are converted.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use super::error::{EvalError, Result};
use super::gguf::GgufFile;
pub use super::tensor::HostTensor;

pub enum WeightSource {
    Safetensors {
        dir: PathBuf,
        /// Shard file → mapping; tensor name → shard file.
        shards: HashMap<PathBuf, Mmap>,
        index: HashMap<String, PathBuf>,
    },
    Gguf(Box<GgufFile>),
}

fn mmap(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    // SAFETY: the checkpoint is read-only input; a concurrent writer would be a misuse that
    // at worst yields wrong numbers, which the evaluation cannot guard against anyway.
    unsafe { Mmap::map(&file) }.map_err(|e| EvalError::io(path, e))
}

impl WeightSource {
    /// Opens the safetensors files of a Hugging Face checkpoint directory.
    pub fn open_safetensors(dir: &Path) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut files: Vec<PathBuf> = vec![];
        let mut declared: HashMap<String, PathBuf> = HashMap::new();
        if index_path.exists() {
            let idx = super::config::read_json(&index_path)?;
            let map = idx.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| EvalError::weights(&index_path, "has no `weight_map` object"))?;
            for (name, file) in map {
                let file = file.as_str().ok_or_else(|| EvalError::weights(&index_path, format!("weight_map[{name}] is not a file name")))?;
                let p = dir.join(file);
                if !files.contains(&p) {
                    files.push(p.clone());
                }
                declared.insert(name.clone(), p);
            }
        } else if single.exists() {
            files.push(single);
        } else {
            return Err(EvalError::Missing { path: single, what: "model.safetensors or model.safetensors.index.json with its shards" });
        }
        let mut shards = HashMap::new();
        let mut index = HashMap::new();
        for f in &files {
            let m = mmap(f)?;
            let st = SafeTensors::deserialize(&m)
                .map_err(|e| EvalError::weights(f, format!("not a valid safetensors file ({e}); re-save it with save_pretrained")))?;
            for name in st.names() {
                index.insert(name.to_string(), f.clone());
            }
            shards.insert(f.clone(), m);
        }
        // An index that names a tensor its shard lacks is a truncated or mixed-up checkpoint.
        for (name, file) in &declared {
            if index.get(name) != Some(file) {
                return Err(EvalError::weights(file, format!("index lists tensor `{name}` here but the shard does not contain it")));
            }
        }
        Ok(WeightSource::Safetensors { dir: dir.to_path_buf(), shards, index })
    }

    pub fn has(&self, name: &str) -> bool {
        match self {
            WeightSource::Safetensors { index, .. } => index.contains_key(name),
            WeightSource::Gguf(g) => g.has_hf(name),
        }
    }

    pub fn dir(&self) -> PathBuf {
        match self {
            WeightSource::Safetensors { dir, .. } => dir.clone(),
            WeightSource::Gguf(g) => g.path.clone(),
        }
    }

    /// How tensor `name` is stored on disk, when it is a plain float type (`None` for a
    /// quantised or unknown one): what `--dtype auto` keeps.
    pub fn stored_dtype(&self, name: &str) -> Option<burn::tensor::DType> {
        use burn::tensor::DType;
        match self {
            WeightSource::Safetensors { shards, index, .. } => {
                let st = SafeTensors::deserialize(&shards[index.get(name)?]).ok()?;
                match st.tensor(name).ok()?.dtype() {
                    Dtype::F32 => Some(DType::F32),
                    Dtype::F16 => Some(DType::F16),
                    Dtype::BF16 => Some(DType::BF16),
                    _ => None,
                }
            }
            WeightSource::Gguf(g) => g.stored_dtype_hf(name),
        }
    }

    /// Tensor `name` (Hugging Face naming) as f32.
    pub fn get(&self, name: &str) -> Result<HostTensor> {
        match self {
            WeightSource::Safetensors { dir, shards, index } => {
                let file = index.get(name).ok_or_else(|| EvalError::MissingTensor { name: name.into(), dir: dir.clone() })?;
                let st = SafeTensors::deserialize(&shards[file]).map_err(|e| EvalError::weights(file, e.to_string()))?;
                let view = st.tensor(name).map_err(|e| EvalError::weights(file, e.to_string()))?;
                let data = to_f32(view.dtype(), view.data())
                    .ok_or_else(|| EvalError::weights(file, format!("tensor `{name}` has dtype {:?}; ptb reads F32, F16 and BF16", view.dtype())))?;
                Ok(HostTensor { shape: view.shape().to_vec(), data })
            }
            WeightSource::Gguf(g) => g.get_hf(name),
        }
    }
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    // Little-endian on disk; chunks avoid alignment assumptions about the mapping.
    Some(match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        _ => return None,
    })
}
