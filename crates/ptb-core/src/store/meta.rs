//! `meta.json` of a store entry: what ran, how it ended, its metrics and
//! the hash of its outputs (for `ptb verify`).

use super::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub key: String,
    pub cell: String,
    pub stage: String,
    pub status: crate::status::StageStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    pub peak_memory_bytes: Option<u64>,
    pub started: String,
    pub finished: String,
    pub duration_s: f64,
    pub metrics: BTreeMap<String, MetricValue>,
    /// The hashed inputs, exactly as in the key.
    pub inputs: BTreeMap<String, String>,
    /// Canonical hash of `out/` at commit time.
    pub out_sha256: Option<String>,
    /// Canonical hash of `workspace/` (the agent's kept `/work`, which the
    /// judge reads) at commit time; only agent entries have one. Absent in
    /// entries written before it existed, which `ptb verify` then skips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_sha256: Option<String>,
    pub ptb_version: String,
}

impl Meta {
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(self).expect("meta serialises");
        std::fs::write(path, text + "\n").map_err(|source| StoreError::Io { context: "cannot write", path: path.to_path_buf(), source })
    }
    pub fn read(path: &Path) -> Result<Meta, StoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| StoreError::Io { context: "cannot read", path: path.to_path_buf(), source })?;
        serde_json::from_str(&text).map_err(|e| StoreError::BadMeta { path: path.to_path_buf(), message: e.to_string() })
    }
}
