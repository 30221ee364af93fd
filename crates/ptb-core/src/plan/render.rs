//! Plan and why output for people (text) and programs (JSON lines).

use super::{Action, Plan, StagePlan};
use crate::spec::StageKind;
use std::fmt::Write as _;

/// Lines of "to run" shown without `--verbose`.
const SHOWN: usize = 40;
/// Blocked stages shown as examples without `--verbose`.
const EXAMPLES: usize = 3;

fn stage_line(s: &StagePlan, width: usize) -> String {
    let first = s.reasons.first().map(|r| r.to_string()).unwrap_or_else(|| "up to date".into());
    let more = if s.reasons.len() > 1 { format!(" (+{} more)", s.reasons.len() - 1) } else { String::new() };
    format!("  {} {:<width$}  {:<5}  {first}{more}", sigil(s), s.cell, s.stage.name())
}

/// Each missing input (its message says what it is and how to provide it)
/// with the number of stages it blocks, most first.
fn blocking_inputs(blocked: &[&StagePlan]) -> Vec<(String, usize)> {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in blocked {
        for r in &s.reasons {
            if let super::Reason::MissingInput { what } = r {
                *by.entry(what.as_str()).or_default() += 1;
            }
        }
    }
    let mut v: Vec<(String, usize)> = by.into_iter().map(|(w, n)| (w.to_string(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn sigil(s: &StagePlan) -> char {
    match s.action {
        Action::Blocked => '!',
        Action::Cached => '=',
        Action::Run if s.reasons.iter().any(|r| matches!(r, super::Reason::New)) => '+',
        Action::Run => '~',
    }
}

pub fn render_text(plan: &Plan, spec_path: &str, verbose: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Plan for `{}` ({spec_path}): {} of {} cells, {} stages\n", plan.experiment, plan.selected_cells, plan.total_cells, plan.stages.len());
    let _ = writeln!(o, "  {:<6} {:>6} {:>7} {:>8}", "stage", "run", "cached", "blocked");
    for kind in StageKind::ALL {
        let of = |a: Action| plan.stages.iter().filter(|s| s.stage == kind && s.action == a).count();
        if plan.stages.iter().any(|s| s.stage == kind) {
            let _ = writeln!(o, "  {:<6} {:>6} {:>7} {:>8}", kind.name(), of(Action::Run), of(Action::Cached), of(Action::Blocked));
        }
    }
    // Without --verbose, stages to run are listed; blocked ones are grouped
    // by what blocks them below (a paper-sized spec on a fresh machine has
    // thousands, all for a handful of missing inputs).
    let listed: Vec<&StagePlan> = plan.stages.iter().filter(|s| verbose || s.action == Action::Run).collect();
    if !listed.is_empty() {
        let width = listed.iter().map(|s| s.cell.len()).max().unwrap_or(0);
        let _ = writeln!(o, "\n{}:", if verbose { "Stages" } else { "To run" });
        for s in listed.iter().take(if verbose { usize::MAX } else { SHOWN }) {
            let _ = writeln!(o, "{}", stage_line(s, width));
        }
        if !verbose && listed.len() > SHOWN {
            let _ = writeln!(o, "  … and {} more (`ptb plan --verbose` lists all, `ptb why SPEC CELL` explains one)", listed.len() - SHOWN);
        }
    }
    let mut cats: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in plan.stages.iter().filter(|s| s.action != Action::Cached) {
        if let Some(r) = s.reasons.first() {
            *cats.entry(r.category()).or_default() += 1;
        }
    }
    let by: Vec<String> = cats.iter().map(|(c, n)| format!("{c} {n}")).collect();
    if !by.is_empty() {
        let _ = writeln!(o, "\nBy reason: {}", by.join(", "));
    }
    let blocked: Vec<&StagePlan> = plan.stages.iter().filter(|s| s.action == Action::Blocked).collect();
    if !blocked.is_empty() {
        let _ = writeln!(o, "\nBlocked: {} stage(s), by what is missing on this machine:", blocked.len());
        for (what, n) in blocking_inputs(&blocked) {
            let _ = writeln!(o, "  - {n:>5} stage(s): {what}");
        }
        let upstream = blocked.iter().filter(|s| !s.reasons.iter().any(|r| matches!(r, super::Reason::MissingInput { .. }))).count();
        if upstream > 0 {
            let _ = writeln!(o, "  - {upstream:>5} stage(s): only because an upstream stage of their cell is blocked");
        }
        if !verbose {
            let width = blocked.iter().take(EXAMPLES).map(|s| s.cell.len()).max().unwrap_or(0);
            let _ = writeln!(o, "  For example:");
            for s in blocked.iter().take(EXAMPLES) {
                let _ = writeln!(o, "  {}", stage_line(s, width));
            }
        }
    }
    let blocked_hours = match plan.count(Action::Blocked) {
        0 => String::new(),
        _ => format!(", and {:.1} for the blocked ones", plan.gpu_hours(Action::Blocked)),
    };
    let _ = writeln!(
        o,
        "\nPlan: {} to run, {} cached, {} blocked. GPU budget (budget × GPUs, an upper bound): {:.1} GPU-hours for the stages to run{blocked_hours}.",
        plan.count(Action::Run),
        plan.count(Action::Cached),
        plan.count(Action::Blocked),
        plan.gpu_hours(Action::Run),
    );
    o
}

#[derive(serde::Serialize)]
struct JsonReason<'a> {
    #[serde(flatten)]
    reason: &'a super::Reason,
    message: String,
}

#[derive(serde::Serialize)]
struct JsonStage<'a> {
    cell: &'a str,
    stage: &'a str,
    action: &'a str,
    key: &'a str,
    store_path: Option<&'a str>,
    reasons: Vec<JsonReason<'a>>,
}

/// One JSON object per line, per cell stage.
pub fn render_json(plan: &Plan) -> String {
    let mut o = String::new();
    for s in &plan.stages {
        let j = JsonStage {
            cell: &s.cell,
            stage: s.stage.name(),
            action: s.action.name(),
            key: &s.key.0,
            store_path: s.store_path.as_deref(),
            reasons: s.reasons.iter().map(|r| JsonReason { reason: r, message: r.to_string() }).collect(),
        };
        o.push_str(&serde_json::to_string(&j).expect("plan serialises"));
        o.push('\n');
    }
    o
}

/// `ptb why`: every stage of the matching cells with all its reasons.
pub fn render_why(plan: &Plan) -> String {
    let mut o = String::new();
    let mut last_cell = "";
    for s in &plan.stages {
        if s.cell != last_cell {
            if !last_cell.is_empty() {
                o.push('\n');
            }
            let _ = writeln!(o, "{}", s.cell);
            last_cell = &s.cell;
        }
        let head = format!("  {:<5}  {:<7}", s.stage.name(), s.action.name());
        if s.reasons.is_empty() {
            let path = s.store_path.as_deref().unwrap_or("?");
            let _ = writeln!(o, "{head}  up to date: {path} (key {})", s.key.short());
        }
        for (i, r) in s.reasons.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(o, "{head}  {r}");
            } else {
                let _ = writeln!(o, "{:width$}  {r}", "", width = head.len());
            }
        }
    }
    o
}
