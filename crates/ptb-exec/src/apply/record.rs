//! Recording finished stages: metrics from `$PTB_OUT/metrics.json`, and
//! lockfile updates that are safe against concurrent `ptb apply` runs.

use ptb_core::lock::{LockError, Lockfile, StageRecord};
use ptb_core::resolve::Pins;
use ptb_core::session::refresh_header;
use ptb_core::spec::{Experiment, StageKind};
use ptb_core::store::{Meta, MetricValue, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Metrics a stage reported; an unreadable file is an error for the stage
/// (a result nobody can read is not a result).
pub fn read_metrics(out: &Path) -> (BTreeMap<String, MetricValue>, Option<String>) {
    let path = out.join("metrics.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return (BTreeMap::new(), None) };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => {
            let mut m = BTreeMap::new();
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::Bool(b) => MetricValue::Bool(b),
                    serde_json::Value::Number(n) => MetricValue::Number(n.as_f64().unwrap_or(f64::NAN)),
                    serde_json::Value::String(s) => MetricValue::Text(s),
                    other => MetricValue::Text(other.to_string()),
                };
                m.insert(k, v);
            }
            (m, None)
        }
        Ok(_) => (BTreeMap::new(), Some("metrics.json must hold a JSON object".into())),
        Err(e) => (BTreeMap::new(), Some(format!("metrics.json is not valid JSON: {e}"))),
    }
}

pub fn from_meta(meta: &Meta, path: String) -> StageRecord {
    StageRecord {
        key: meta.key.clone(),
        status: meta.status,
        path,
        started: meta.started.clone(),
        finished: meta.finished.clone(),
        duration_s: (meta.duration_s * 1000.0).round() / 1000.0,
        exit_code: meta.exit_code,
        metrics: meta.metrics.clone(),
        inputs: meta.inputs.clone(),
    }
}

pub fn put(l: &mut Lockfile, exp: &Experiment, cell: &str, stage: StageKind, rec: StageRecord) {
    super::ensure_cell(l, exp, cell).stages.insert(stage.name().into(), rec);
}

/// Read-modify-write of the lockfile under a lock in the store, so two
/// `ptb apply` runs never lose each other's records. Each write is atomic.
pub struct LockWriter {
    path: PathBuf,
    guard: PathBuf,
    pins: Pins,
    /// The lockfile as last written by us, with the file's stamp right
    /// after that write: if the file still has it, no other process wrote
    /// it and re-reading it can be skipped.
    last: std::sync::Mutex<Option<(Lockfile, Stamp)>>,
}

/// Every write is a rename of a new file, so another writer changes the
/// inode even where mtimes are too coarse to tell two writes apart.
type Stamp = (u64, u64, std::time::SystemTime);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path).ok()?;
    Some((md.ino(), md.len(), md.modified().ok()?))
}

impl LockWriter {
    pub fn new(store: &Store, path: &Path, _exp: &Experiment, pins: &Pins) -> Self {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let guard = store.root().join(".locks").join(format!("lockfile-{}.lock", &ptb_core::hash::sha256_hex(abs.to_string_lossy().as_bytes())[..16]));
        LockWriter { path: path.to_path_buf(), guard, pins: pins.clone(), last: std::sync::Mutex::new(None) }
    }

    pub fn update(&self, exp: &Experiment, f: impl FnOnce(&mut Lockfile)) -> Result<bool, LockError> {
        let mut last = self.last.lock().unwrap();
        let werr = |source| LockError::Write { path: self.path.clone(), source };
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&self.guard).map_err(werr)?;
        file.lock().map_err(werr)?;
        let mut l = match last.take() {
            Some((l, s)) if stamp(&self.path) == Some(s) => l,
            _ => Lockfile::load(&self.path)?,
        };
        refresh_header(&mut l, exp, &self.pins);
        f(&mut l);
        let written = l.save(&self.path)?;
        if let Some(s) = stamp(&self.path) {
            *last = Some((l, s));
        }
        Ok(written)
    }
}
