//! Recording finished stages: metrics from `$PTB_OUT/metrics.json`, and
//! lockfile updates that are safe against concurrent `ptb apply` runs.

use ptb_core::lock::{CellRecord, Journal, LockError, Lockfile, StageRecord};
use ptb_core::resolve::Pins;
use ptb_core::session::{LockfileGuard, refresh_header};
use ptb_core::spec::{Cell, Experiment, StageKind};
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

/// Writes the lockfile for one apply, safely against concurrent `ptb
/// apply` runs (every write holds the lockfile's guard). Finished stages
/// are appended to the journal, O(1) each ([`LockWriter::record`]); the
/// canonical lockfile is rewritten only at the start and end of an apply
/// ([`LockWriter::update`], which folds the journal in).
pub struct LockWriter {
    path: PathBuf,
    store: Store,
    pins: Pins,
    journal: std::sync::Mutex<Journal>,
}

impl LockWriter {
    pub fn new(store: &Store, path: &Path, _exp: &Experiment, pins: &Pins) -> Self {
        LockWriter { path: path.to_path_buf(), store: store.clone(), pins: pins.clone(), journal: std::sync::Mutex::new(Journal::new(path)) }
    }

    /// Rewrite the lockfile: its journal folded in, the header refreshed
    /// from the spec, then `f`. Returns whether the file changed.
    pub fn update(&self, exp: &Experiment, f: impl FnOnce(&mut Lockfile)) -> Result<bool, LockError> {
        let _journal = self.journal.lock().unwrap();
        let _guard = LockfileGuard::acquire(&self.store, &self.path)?;
        let (written, _) = ptb_core::lock::compact(&self.path, |l| {
            refresh_header(l, exp, &self.pins);
            f(l);
        })?;
        Ok(written)
    }

    /// Record one finished stage: a journal append and fsync, whose cost
    /// does not depend on the size of the experiment.
    pub fn record(&self, exp: &Experiment, cell: &Cell, stage: StageKind, rec: &StageRecord) -> Result<(), LockError> {
        let header = CellRecord {
            model: exp.model(cell).name.clone(),
            benchmark: exp.benchmark(cell).name.clone(),
            agent: exp.agent(cell).name.clone(),
            seed: cell.seed,
            stages: BTreeMap::new(),
        };
        let frame = ptb_core::lock::frame(&cell.id, &header, stage.name(), rec);
        let mut journal = self.journal.lock().unwrap();
        let _guard = LockfileGuard::acquire(&self.store, &self.path)?;
        journal.append(&frame)
    }
}
