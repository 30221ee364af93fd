//! Planning: a pure function of the experiment, its resolved pins, the
//! lockfile and the store index. No I/O happens here.

mod inputs;
mod makespan;
mod reason;
mod render;

pub use inputs::{
    BuiltinVersions, HARNESS_VERSION, JUDGE_VERSION, KeyMaker, REVIEWER_VERSION, StageFields, StageInputs, cell_stages, cell_stages_with, effective_runner,
};
pub use makespan::{StageLoad, makespan_s, plan_makespan_s};
pub use reason::Reason;
pub use render::{render_json, render_text, render_why};

use crate::hash::StageKey;
use crate::lock::Lockfile;
use crate::resolve::Pins;
use crate::spec::{Experiment, StageKind, cell_matches};
use crate::store::StoreIndex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run,
    Cached,
    /// Would run, but cannot on this machine (missing input).
    Blocked,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Cached => "cached",
            Action::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StagePlan {
    pub cell: String,
    /// Index into `Experiment::cells`.
    pub cell_index: usize,
    pub stage: StageKind,
    pub key: StageKey,
    // The hashed inputs are not kept: a plan of 30,000 stages held ~20
    // strings each for its whole life (most of an apply's memory, and every
    // fork of a stage copied their page tables). Whoever needs them (apply,
    // to record what a stage read) recomputes its cell's with
    // [`cell_stages`].
    pub action: Action,
    pub reasons: Vec<Reason>,
    pub upstream: Option<StageKind>,
    /// The store entry this stage's result is (or will be) in, if known.
    pub store_path: Option<String>,
    /// Upper bound on GPU-seconds if it runs (budget × GPUs).
    pub gpu_seconds: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub experiment: String,
    pub total_cells: usize,
    pub selected_cells: usize,
    pub stages: Vec<StagePlan>,
}

impl Plan {
    pub fn count(&self, a: Action) -> usize {
        self.stages.iter().filter(|s| s.action == a).count()
    }
    /// Nothing to run and nothing to say: every stage cached, as the
    /// lockfile records it.
    pub fn is_noop(&self) -> bool {
        self.stages.iter().all(|s| s.action == Action::Cached && s.reasons.is_empty())
    }
    /// Upper bound on the GPU-hours (budget × GPUs) of the stages with this action.
    pub fn gpu_hours(&self, a: Action) -> f64 {
        self.stages.iter().filter(|s| s.action == a).map(|s| s.gpu_seconds).sum::<u64>() as f64 / 3600.0
    }
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only cells matching one of these patterns (all if empty).
    pub cells: Vec<String>,
    /// Force these cells to rerun.
    pub replace: Vec<String>,
}

/// Decide, for every stage of every selected cell, whether it runs and why.
pub fn plan(exp: &Experiment, pins: &Pins, lock: &Lockfile, index: &StoreIndex, opts: &PlanOptions) -> Plan {
    let planner = Planner::new(exp, pins, lock, index, opts);
    let selected: Vec<usize> = planner.selected().collect();
    // Cells are independent, so a large matrix is planned on all cores
    // (the 1,008-cell paper plan is on the path of every `ptb plan`).
    let threads = crate::hash::cores().min(selected.len().div_ceil(256)).max(1);
    let chunks: Vec<&[usize]> = selected.chunks(selected.len().div_ceil(threads).max(1)).collect();
    let parts: Vec<Vec<StagePlan>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|c| {
                let planner = &planner;
                s.spawn(move || {
                    let mut out = Vec::with_capacity(c.len() * 3);
                    for &ci in *c {
                        out.extend(planner.cell(ci));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("planning does not panic")).collect()
    });
    let mut out = Plan { experiment: exp.name.clone(), total_cells: exp.cells.len(), selected_cells: selected.len(), ..Default::default() };
    for stages in parts {
        out.stages.extend(stages);
    }
    out
}

/// Plans one cell at a time: what [`plan`] does for all of them, for a
/// caller that must not hold every stage's plan at once (`apply` of a large
/// matrix plans each cell again when its turn comes). Pure, like [`plan`]:
/// the same cell gives the same stages.
pub struct Planner<'a> {
    exp: &'a Experiment,
    pins: &'a Pins,
    lock: &'a Lockfile,
    index: &'a StoreIndex,
    opts: &'a PlanOptions,
    keys: KeyMaker<'a>,
}

impl<'a> Planner<'a> {
    pub fn new(exp: &'a Experiment, pins: &'a Pins, lock: &'a Lockfile, index: &'a StoreIndex, opts: &'a PlanOptions) -> Planner<'a> {
        Planner { exp, pins, lock, index, opts, keys: KeyMaker::new(exp, pins, BuiltinVersions::CURRENT) }
    }

    /// The indices (into `Experiment::cells`) of the cells the options select.
    pub fn selected(&self) -> impl Iterator<Item = usize> + '_ {
        let (exp, opts) = (self.exp, self.opts);
        (0..exp.cells.len()).filter(move |&i| opts.cells.is_empty() || opts.cells.iter().any(|p| cell_matches(p, &exp.cells[i].id)))
    }

    /// Every stage of cell `ci`, in chain order.
    pub fn cell(&self, ci: usize) -> Vec<StagePlan> {
        let Planner { exp, pins, lock, index, opts, keys } = self;
        let cell = &exp.cells[ci];
        let forced = opts.replace.iter().any(|p| cell_matches(p, &cell.id));
        let mut planned: Vec<StagePlan> = Vec::with_capacity(3);
        // Keys alone first: a stage's fields (for its reasons) and needs
        // (for what blocks it) are built, for the whole cell, only when a
        // stage turns out to need them.
        let mut scratch = Vec::with_capacity(48);
        let mut full: Option<Vec<StageFields>> = None;
        for (kind, key, upstream) in keys.cell_keys(cell, &mut scratch) {
            let spec = exp.stages.get(kind).expect("declared");
            let prev = lock.stage(&cell.id, kind.name());
            let in_store = index.entry_name(&key).map(|n| format!("v1/{n}"));
            let upstream_plan = upstream.and_then(|u| planned.iter().find(|p| p.stage == u));
            let upstream_runs = upstream_plan.is_some_and(|p| p.action != Action::Cached);
            let mut reasons = Vec::new();
            let mut action = Action::Run;
            if forced {
                reasons.push(Reason::Forced);
            } else if upstream_runs {
                // The upstream output will be rebuilt, so whatever this stage
                // made from the old one is stale, even under the same key.
                reasons.extend(diff(prev, fields_of(&mut full, keys, cell, kind)));
                if prev.is_some() && !reasons.iter().any(|r| matches!(r, Reason::UpstreamChanged { .. })) {
                    reasons.push(Reason::UpstreamReruns { stage: upstream.map(|u| u.name()).unwrap_or("agent").into() });
                }
            } else if let Some(path) = &in_store {
                action = Action::Cached;
                if prev.is_none_or(|p| p.key != key.0 || !p.is_done()) {
                    reasons.push(Reason::StoreHit { path: path.clone() });
                }
            } else {
                match prev {
                    None => reasons.push(Reason::New),
                    Some(p) if p.key == key.0 && !p.is_done() => reasons.push(Reason::PreviousFailed { status: p.status, log: format!("{}/log", p.path) }),
                    Some(p) if p.key == key.0 => reasons.push(Reason::OutputMissing { path: p.path.clone() }),
                    Some(p) => {
                        reasons.extend(diff(prev, fields_of(&mut full, keys, cell, kind)));
                        if reasons.is_empty() {
                            // Same recorded inputs, other key: the lockfile was
                            // edited or written under another key schema.
                            reasons.push(Reason::InputChanged { field: "key".into(), old: Some(p.key.clone()), new: Some(key.0.clone()) });
                        }
                    }
                }
            }
            if action == Action::Run {
                for need in fields_of(&mut full, keys, cell, kind).needs() {
                    if let Some(why) = pins.missing(need) {
                        reasons.push(Reason::MissingInput { what: why });
                        action = Action::Blocked;
                    }
                }
                if let Some(up) = upstream_plan.filter(|p| p.action == Action::Blocked) {
                    reasons.push(Reason::UpstreamBlocked { stage: up.stage.name().into() });
                    action = Action::Blocked;
                }
            }
            if action == Action::Blocked {
                // What stops it matters more than why it would run.
                reasons.sort_by_key(|r| !matches!(r, Reason::MissingInput { .. } | Reason::UpstreamBlocked { .. }));
            }
            planned.push(StagePlan {
                cell: cell.id.clone(),
                cell_index: ci,
                stage: kind,
                key,
                action,
                reasons,
                upstream,
                store_path: in_store.or_else(|| prev.filter(|p| p.is_done()).map(|p| p.path.clone())),
                gpu_seconds: spec.budget.as_secs() * spec.resources.gpus as u64,
            });
        }
        planned
    }
}

/// Stage `kind`'s fields, the cell's built on first use.
fn fields_of<'f, 'k>(full: &'f mut Option<Vec<StageFields<'k>>>, keys: &'k KeyMaker, cell: &crate::spec::Cell, kind: StageKind) -> &'f StageFields<'k> {
    full.get_or_insert_with(|| keys.cell(cell)).iter().find(|f| f.kind == kind).expect("the same stages")
}

/// Field-by-field differences against the lockfile's record. Upstream key
/// changes are reported as such rather than as a raw hash change.
fn diff(prev: Option<&crate::lock::StageRecord>, si: &StageFields) -> Vec<Reason> {
    let Some(prev) = prev else { return vec![Reason::New] };
    let old = &prev.inputs;
    let fields: std::collections::BTreeSet<&str> = si.fields().map(|(k, _)| k).chain(old.keys().map(String::as_str)).collect();
    fields
        .into_iter()
        .filter(|f| old.get(*f).map(String::as_str) != si.get(f))
        .map(|f| match f.strip_prefix("upstream.") {
            Some(stage) => Reason::UpstreamChanged { stage: stage.to_string() },
            None => Reason::InputChanged { field: f.to_string(), old: old.get(f).cloned(), new: si.get(f).map(str::to_string) },
        })
        .collect()
}
