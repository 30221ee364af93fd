//! Recording finished stages: metrics from `$PTB_OUT/metrics.json`, and
//! lockfile updates that are safe against concurrent `ptb apply` runs.

use ptb_core::lock::{CellRecord, Journal, LockError, StageRecord};
use ptb_core::resolve::Pins;
use ptb_core::session::{LockfileGuard, refresh_header};
use ptb_core::spec::{Cell, Experiment, StageKind};
use ptb_core::store::{Meta, MetricValue, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What checking a finished stage's output found.
#[derive(Debug, Default)]
pub struct Checked {
    pub metrics: BTreeMap<String, MetricValue>,
    /// Changes made to make the output safe to keep, for the log.
    pub notes: Vec<String>,
    /// Why the output cannot be kept (the stage then fails).
    pub error: Option<String>,
}

/// Make a stage's output safe to commit and read its metrics (see
/// `ptb_core::store::output`); secrets in text metrics are redacted, as in
/// logs, before they reach `meta.json` or the lockfile.
pub fn check_output(out: &Path, redactor: &crate::Redactor) -> Checked {
    use ptb_core::store::output::{read_metrics, sanitize};
    let mut c = Checked::default();
    match sanitize(out).and_then(|s| {
        c.notes = s.notes();
        read_metrics(out)
    }) {
        Ok(m) => {
            c.metrics = m
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        MetricValue::Text(t) => MetricValue::Text(redactor.apply(&t)),
                        v => v,
                    };
                    (k, v)
                })
                .collect();
        }
        Err(e) => c.error = Some(e.to_string()),
    }
    c
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

/// Writes the lockfile for one apply, safely against concurrent `ptb
/// apply` runs (every write holds the lockfile's guard). Finished stages
/// are appended to the journal, O(1) each ([`LockWriter::record`]); the
/// canonical lockfile is rewritten only at the start and end of an apply
/// ([`LockWriter::update`], which folds the journal in a cell at a time).
pub struct LockWriter {
    path: PathBuf,
    store: Store,
    pins: Pins,
    journal: std::sync::Mutex<Journal>,
}

/// One record as a journal frame, with its cell's header from the spec.
fn cell_frame(exp: &Experiment, cell: &Cell, stage: StageKind, rec: &StageRecord) -> Vec<u8> {
    let header = CellRecord {
        model: exp.model(cell).name.clone(),
        benchmark: exp.benchmark(cell).name.clone(),
        agent: exp.agent(cell).name.clone(),
        seed: cell.seed,
        stages: BTreeMap::new(),
    };
    ptb_core::lock::frame(&cell.id, &header, stage.name(), rec)
}

impl LockWriter {
    pub fn new(store: &Store, path: &Path, pins: &Pins) -> Self {
        LockWriter { path: path.to_path_buf(), store: store.clone(), pins: pins.clone(), journal: std::sync::Mutex::new(Journal::new(path)) }
    }

    /// Append `records` (by cell index) to the journal, with one fsync for
    /// all of them; the next [`LockWriter::update`] folds them in.
    pub fn append(&self, exp: &Experiment, records: &[(usize, StageKind, StageRecord)]) -> Result<(), LockError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut journal = self.journal.lock().unwrap();
        let _guard = LockfileGuard::acquire(&self.store, &self.path)?;
        let frames: Vec<u8> = records.iter().flat_map(|(ci, stage, rec)| cell_frame(exp, &exp.cells[*ci], *stage, rec)).collect();
        journal.append(&frames)
    }

    /// Rewrite the lockfile with `records` (by cell index) added, the
    /// journal folded in, the header refreshed from the spec and the cells
    /// it no longer has dropped. Returns whether the file changed.
    pub fn update(&self, exp: &Experiment, records: &[(usize, StageKind, StageRecord)]) -> Result<bool, LockError> {
        // Through the journal, so that the lockfile is rewritten by the
        // same cell-at-a-time fold.
        self.append(exp, records)?;
        let _journal = self.journal.lock().unwrap();
        let _guard = LockfileGuard::acquire(&self.store, &self.path)?;
        let ids: std::collections::HashSet<&str> = exp.cells.iter().map(|c| c.id.as_str()).collect();
        let (written, _) = ptb_core::lock::fold(&self.path, |l| refresh_header(l, exp, &self.pins), |id| ids.contains(id))?;
        Ok(written)
    }

    /// Record one finished stage: a journal append and fsync, whose cost
    /// does not depend on the size of the experiment.
    pub fn record(&self, exp: &Experiment, cell: &Cell, stage: StageKind, rec: &StageRecord) -> Result<(), LockError> {
        let frame = cell_frame(exp, cell, stage, rec);
        let mut journal = self.journal.lock().unwrap();
        let _guard = LockfileGuard::acquire(&self.store, &self.path)?;
        journal.append(&frame)
    }
}
