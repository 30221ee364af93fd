//! `ptb report --html` and `--figures`: a self-contained page and standalone
//! SVG figures from the lockfile alone.
//!
//! Every number comes from [`aggregate`] (the same function behind the
//! Markdown/LaTeX tables), so the page, the figures and the tables agree.
//! Building the [`Report`] model is pure; reading the lockfile and writing
//! files happen in [`render_html`] and [`write_figures`] only.
//!
//! Figures are minijinja-rendered SVG templates (`templates/figure.svg.j2`),
//! not the `plotters` crate: minijinja is already a dependency, so this adds
//! no crate and no build time; the output is plain text we control byte for
//! byte (no timestamps, fixed number formatting); and users can restyle the
//! figures for a paper by editing a template (`--figures DIR --template T`)
//! instead of Rust code. The geometry (bar positions, error bars, ticks) is
//! computed here and handed to the template as numbers.
//!
//! GPU-hours: the lockfile records no measured GPU count, but every stage's
//! hashed inputs carry the GPUs it was given (`resources.gpus`, from the
//! spec's `resources gpus=N`). A stage's GPU-hours are its wall time × that
//! count; a stage without the input counts 0 GPUs.

use super::aggregate::{Row, Stat, Table, aggregate};
use super::{MARK, ReportError, fmt_num};
use crate::lock::{CellRecord, Lockfile, StageRecord};
use crate::store::MetricValue;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const HTML_TEMPLATE: &str = include_str!("../../../../templates/report.html.j2");
pub const FIGURE_TEMPLATE: &str = include_str!("../../../../templates/figure.svg.j2");

/// The `template=` value in an HTML report's provenance line.
pub const HTML_TEMPLATE_NAME: &str = "html";

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub experiment: String,
    /// The ptb version that wrote the lockfile, and the one rendering.
    pub lock_ptb_version: String,
    pub ptb_version: String,
    pub lockfile: String,
    pub lock_sha256: String,
    pub provenance: String,
    pub table: Table,
    /// Table 1 order: run agents, then official instruct, then base.
    pub rows: Vec<RowView>,
    pub charts: Vec<Chart>,
    pub per_model: Vec<ModelView>,
    pub causes: Vec<CauseGroup>,
    /// Per run agent with replaced runs: the anchors of those runs.
    pub replaced_by_agent: Vec<AgentReplaced>,
    pub cells: Vec<CellView>,
    pub budget: Budget,
    pub pins: Vec<(String, String)>,
    /// What the page cannot show, in words.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowView {
    pub label: String,
    pub slug: String,
    #[serde(flatten)]
    pub row: Row,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelView {
    pub model: String,
    pub rows: Vec<RowView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// File stem and element id: `avg`, a benchmark name, `gpu-hours`.
    pub id: String,
    pub title: String,
    pub unit: String,
    pub width: u32,
    pub height: u32,
    pub x0: f64,
    pub x1: f64,
    pub y_top: f64,
    pub y_base: f64,
    pub ticks: Vec<Tick>,
    pub bars: Vec<Bar>,
    /// Agents with nothing to plot.
    pub absent: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub y: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub agent: String,
    pub kind: String,
    pub x: String,
    pub cx: String,
    pub y: String,
    pub w: String,
    pub h: String,
    /// Error bar ends (mean ± std), when there is a std.
    pub err: Option<(String, String)>,
    pub cap_x0: String,
    pub cap_x1: String,
    pub label_y: String,
    /// The number as the tables print it.
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CauseGroup {
    pub cause: &'static str,
    pub label: &'static str,
    pub runs: Vec<ReplacedRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplacedRun {
    pub cell: String,
    pub anchor: String,
    pub agent: String,
    pub model: String,
    pub benchmark: String,
    pub seed: u64,
    /// The base score it was given, percent, or "none" (counted as missing).
    pub base: String,
    /// What the lockfile says: judge metrics, the failed stage, …
    pub evidence: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentReplaced {
    pub agent: String,
    pub slug: String,
    pub runs: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellView {
    pub id: String,
    pub anchor: String,
    pub agent: String,
    pub model: String,
    pub benchmark: String,
    pub seed: u64,
    pub score: String,
    /// Anchor of this run's entry in the replaced list.
    pub replaced: Option<String>,
    pub cause: Option<&'static str>,
    pub stages: Vec<StageView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    pub name: String,
    pub key: String,
    pub status: crate::status::StageStatus,
    pub wall: String,
    pub gpus: String,
    pub gpu_hours: String,
    pub log: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub benchmarks: Vec<String>,
    pub rows: Vec<BudgetRow>,
    pub bench_totals: Vec<String>,
    pub total: String,
    pub cost_total: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetRow {
    pub agent: String,
    pub gpu_hours: Vec<String>,
    pub total: String,
    /// Sum of agent stages' `cost_usd` metrics, where any recorded one.
    pub cost_usd: Option<String>,
}

/// Lower-case letters, digits and `-`: for ids and anchors.
pub fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn pm(s: &Stat) -> String {
    match s.std {
        Some(sd) => format!("{} ± {}", fmt_num(s.mean, None), fmt_num(sd, None)),
        None => fmt_num(s.mean, None),
    }
}

fn stage_gpus(s: &StageRecord) -> f64 {
    s.inputs.get("resources.gpus").and_then(|g| g.trim().parse::<f64>().ok()).filter(|g| g.is_finite() && *g >= 0.0).unwrap_or(0.0)
}

fn gpu_hours(s: &StageRecord) -> f64 {
    let d = if s.duration_s.is_finite() { s.duration_s.max(0.0) } else { 0.0 };
    d / 3600.0 * stage_gpus(s)
}

fn wall(d: f64) -> String {
    if !d.is_finite() {
        return "–".into();
    }
    let s = d.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let m = (s / 60.0).round() as u64;
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

fn metric_text(v: &MetricValue) -> String {
    match v {
        MetricValue::Bool(b) => b.to_string(),
        MetricValue::Number(x) if x.is_finite() => format!("{x}"),
        MetricValue::Number(_) => "NaN".into(),
        MetricValue::Text(t) => t.clone(),
    }
}

/// Why a run's score was replaced, most specific first.
fn cause(c: &CellRecord, has_judge: bool, review: Option<&crate::judge::Review>) -> Option<&'static str> {
    let score = super::aggregate::eval_score(c);
    let judged_ok = super::aggregate::judge_ok(c, has_judge, review);
    if score.is_some() && judged_ok {
        return None;
    }
    if review.is_some_and(|r| r.verdict == crate::judge::Verdict::Flagged) {
        return Some("overruled");
    }
    let verdict = c.stages.get("judge").filter(|j| j.is_done()).and_then(|j| j.metrics.get("verdict"));
    if matches!(verdict, Some(MetricValue::Text(v)) if v != "pass") || matches!(verdict, Some(v) if !matches!(v, MetricValue::Text(_))) {
        return Some("judge");
    }
    if c.stages.values().any(|s| matches!(s.status, crate::status::StageStatus::Failed | crate::status::StageStatus::Interrupted)) {
        return Some("failed");
    }
    if score.is_none() {
        return Some("no-checkpoint");
    }
    Some("no-verdict")
}

const CAUSES: [(&str, &str); 5] = [
    ("judge", "Judge finding"),
    ("overruled", "Flagged by a review"),
    ("no-checkpoint", "No checkpoint (or no eval score)"),
    ("failed", "Failed stage"),
    ("no-verdict", "No judge verdict"),
];

fn stage_order(c: &CellRecord) -> Vec<(&String, &StageRecord)> {
    let mut v: Vec<_> = c.stages.iter().collect();
    v.sort_by_key(|(n, _)| (["agent", "judge", "eval"].iter().position(|s| s == n).unwrap_or(3), n.to_string()));
    v
}

fn evidence(c: &CellRecord, cause: &str) -> Vec<(String, String)> {
    let mut ev = Vec::new();
    match cause {
        "judge" => {
            if let Some(j) = c.stages.get("judge") {
                for (k, v) in &j.metrics {
                    ev.push((format!("judge {k}"), metric_text(v)));
                }
                ev.push(("judge log".into(), format!("store/{}/log", j.path)));
            }
        }
        _ => {
            for (name, s) in stage_order(c) {
                let exit = s.exit_code.map(|e| format!(", exit {e}")).unwrap_or_default();
                ev.push((format!("{name} stage"), format!("{}{exit}, log store/{}/log", s.status, s.path)));
                for (k, v) in &s.metrics {
                    ev.push((format!("{name} {k}"), metric_text(v)));
                }
            }
            for st in ["agent", "judge", "eval"] {
                if !c.stages.contains_key(st) && (st != "judge" || cause == "no-verdict") {
                    ev.push((format!("{st} stage"), "not in the lockfile (not run, or blocked by a missing input)".into()));
                }
            }
        }
    }
    ev
}

fn ordered_rows(l: &Lockfile, t: &Table) -> Vec<RowView> {
    let labels = |r: &Row| match r.kind.as_str() {
        "instruct" => format!("Official instruct ({})", r.agent),
        "base" => format!("Base, zero-shot ({})", r.agent),
        _ => r.agent.clone(),
    };
    let rank = |k: &str| match k {
        "run" => 0,
        "instruct" => 1,
        "base" => 2,
        _ => 3,
    };
    let _ = l;
    let mut rows: Vec<(usize, RowView)> =
        t.rows.iter().enumerate().map(|(i, r)| (i, RowView { label: labels(r), slug: slug(&r.agent), row: r.clone() })).collect();
    rows.sort_by_key(|(i, r)| (rank(&r.row.kind), *i));
    rows.into_iter().map(|(_, r)| r).collect()
}

struct Series<'a> {
    agent: &'a str,
    kind: &'a str,
    mean: f64,
    std: Option<f64>,
    value: String,
}

fn f1(x: f64) -> String {
    format!("{x:.1}")
}

fn chart(id: &str, title: &str, unit: &str, agents: &[(String, String)], series: &[Series]) -> Chart {
    const SLOT: f64 = 44.0;
    let (left, right, top, plot_h, bottom) = (52.0, 16.0, 34.0, 200.0, 110.0);
    let n = series.len().max(1) as f64;
    let width = (left + right + n * SLOT).max(360.0);
    let height = top + plot_h + bottom;
    let y_base = top + plot_h;
    let peak = series.iter().map(|s| s.mean + s.std.unwrap_or(0.0)).fold(0.0_f64, f64::max);
    let step = nice_step(peak / 5.0);
    let ymax = (peak / step).ceil().max(1.0) * step;
    let ys = |v: f64| y_base - (v.max(0.0) / ymax) * plot_h;
    let prec = (-step.log10().floor()).max(0.0) as usize + 1;
    let ticks = (0..=((ymax / step).round() as usize))
        .map(|i| {
            let v = format!("{:.*}", prec, i as f64 * step);
            Tick { y: f1(ys(i as f64 * step)), label: v.trim_end_matches('0').trim_end_matches('.').to_string() }
        })
        .collect();
    let bars = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = left + i as f64 * SLOT + 8.0;
            let w = SLOT - 16.0;
            let cx = x + w / 2.0;
            Bar {
                agent: s.agent.to_string(),
                kind: s.kind.to_string(),
                x: f1(x),
                cx: f1(cx),
                y: f1(ys(s.mean)),
                w: f1(w),
                h: f1(y_base - ys(s.mean)),
                err: s.std.map(|sd| (f1(ys(s.mean - sd)), f1(ys(s.mean + sd)))),
                cap_x0: f1(cx - 5.0),
                cap_x1: f1(cx + 5.0),
                label_y: f1(y_base + 12.0),
                value: s.value.clone(),
            }
        })
        .collect();
    let absent = agents.iter().filter(|(a, _)| !series.iter().any(|s| s.agent == a)).map(|(a, _)| a.clone()).collect();
    Chart {
        id: id.into(),
        title: title.into(),
        unit: unit.into(),
        width: width.round() as u32,
        height: height as u32,
        x0: left,
        x1: width - right,
        y_top: top,
        y_base,
        ticks,
        bars,
        absent,
    }
}

fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn trim_num(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn sub_lockfile(l: &Lockfile, model: &str) -> Lockfile {
    Lockfile {
        experiment: l.experiment.clone(),
        ptb_version: l.ptb_version.clone(),
        models: vec![model.to_string()],
        benchmarks: l.benchmarks.clone(),
        agents: l.agents.clone(),
        pins: BTreeMap::new(),
        hub: BTreeMap::new(),
        reviews: l.reviews.clone(),
        cells: l.cells.iter().filter(|(_, c)| c.model == model).map(|(k, c)| (k.clone(), c.clone())).collect(),
    }
}

/// The page's model: pure, from the lockfile and its digest.
pub fn build(l: &Lockfile, lockfile_label: &str, lock_sha256: &str) -> Report {
    let table = aggregate(l);
    let rows = ordered_rows(l, &table);
    let agents: Vec<(String, String)> = rows.iter().map(|r| (r.row.agent.clone(), r.row.kind.clone())).collect();
    let has_judge = l.cells.values().any(|c| c.stages.contains_key("judge"));
    let agent_rank = |a: &str| l.agents.iter().position(|x| x.name == a).unwrap_or(usize::MAX);
    let model_rank = |m: &str| l.models.iter().position(|x| x == m).unwrap_or(usize::MAX);
    let bench_rank = |b: &str| l.benchmarks.iter().position(|x| x.name == b).unwrap_or(usize::MAX);
    let kind_of = |a: &str| l.agents.iter().find(|x| x.name == a).map(|x| x.kind.as_str()).unwrap_or("run");

    // Charts: the weighted average, each benchmark, GPU-hours.
    let mut charts = Vec::new();
    let avg: Vec<Series> = rows
        .iter()
        .filter_map(|r| r.row.avg.as_ref().map(|s| Series { agent: &r.row.agent, kind: &r.row.kind, mean: s.mean, std: s.std, value: pm(s) }))
        .collect();
    charts.push(chart("avg", "Weighted average (%)", "%", &agents, &avg));
    for b in &table.benchmarks {
        let s: Vec<Series> = rows
            .iter()
            .filter_map(|r| r.row.scores.get(&b.name).map(|s| Series { agent: &r.row.agent, kind: &r.row.kind, mean: s.mean, std: s.std, value: pm(s) }))
            .collect();
        charts.push(chart(&slug(&b.name), &format!("{} (%)", b.name), "%", &agents, &s));
    }

    // Cells, in declared order; replaced runs by cause.
    let mut cells: Vec<&CellRecord> = l.cells.values().collect();
    let ids: BTreeMap<*const CellRecord, &String> = l.cells.iter().map(|(k, c)| (c as *const _, k)).collect();
    cells.sort_by_key(|c| (agent_rank(&c.agent), model_rank(&c.model), bench_rank(&c.benchmark), c.seed, ids[&(*c as *const _)].clone()));
    let base: BTreeMap<(&str, &str), Vec<f64>> = {
        let mut m: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
        for c in l.cells.values().filter(|c| kind_of(&c.agent) == "base") {
            if let Some(s) = super::aggregate::eval_score(c) {
                m.entry((&c.model, &c.benchmark)).or_default().push(s);
            }
        }
        m
    };
    let mut groups: Vec<CauseGroup> = CAUSES.iter().map(|(cause, label)| CauseGroup { cause, label, runs: Vec::new() }).collect();
    let mut by_agent: BTreeMap<usize, AgentReplaced> = BTreeMap::new();
    let mut cell_views = Vec::with_capacity(cells.len());
    let (mut nan_scores, mut no_metric) = (Vec::new(), Vec::new());
    let mut gpu: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut cost: BTreeMap<String, f64> = BTreeMap::new();
    for c in &cells {
        let id = ids[&(*c as *const _)].as_str();
        let anchor = format!("cell-{}", slug(id));
        let score = super::aggregate::eval_score(c);
        if let Some(e) = c.stages.get("eval").filter(|e| e.is_done()) {
            match ["score", "accuracy"].iter().find_map(|k| e.metrics.get(*k)) {
                Some(MetricValue::Number(x)) if !x.is_finite() => nan_scores.push(id.to_string()),
                Some(MetricValue::Number(_)) => {}
                _ => no_metric.push(id.to_string()),
            }
        }
        let cause = if kind_of(&c.agent) == "run" { cause(c, has_judge, l.review(id)) } else { None };
        let replaced = cause.map(|k| {
            let run_anchor = format!("run-{}", slug(id));
            let b = base
                .get(&(c.model.as_str(), c.benchmark.as_str()))
                .map(|v| fmt_num(v.iter().sum::<f64>() / v.len() as f64 * 100.0, None))
                .unwrap_or_else(|| "none (counted as missing)".into());
            let g = groups.iter_mut().find(|g| g.cause == k).expect("known cause");
            g.runs.push(ReplacedRun {
                cell: id.to_string(),
                anchor: run_anchor.clone(),
                agent: c.agent.clone(),
                model: c.model.clone(),
                benchmark: c.benchmark.clone(),
                seed: c.seed,
                base: b,
                evidence: evidence(c, k),
            });
            by_agent
                .entry(agent_rank(&c.agent))
                .or_insert_with(|| AgentReplaced { agent: c.agent.clone(), slug: slug(&c.agent), runs: Vec::new() })
                .runs
                .push((run_anchor.clone(), id.to_string()));
            run_anchor
        });
        let mut stages = Vec::new();
        for (name, s) in stage_order(c) {
            let gh = gpu_hours(s);
            *gpu.entry((c.agent.clone(), c.benchmark.clone())).or_default() += gh;
            if name == "agent"
                && let Some(MetricValue::Number(x)) = s.metrics.get("cost_usd").filter(|v| matches!(v, MetricValue::Number(x) if x.is_finite()))
            {
                *cost.entry(c.agent.clone()).or_default() += x;
            }
            stages.push(StageView {
                name: name.clone(),
                key: s.key.chars().take(12).collect(),
                status: s.status,
                wall: wall(s.duration_s),
                gpus: trim_num(stage_gpus(s)),
                gpu_hours: format!("{gh:.2}"),
                log: format!("store/{}/log", s.path),
            });
        }
        cell_views.push(CellView {
            id: id.to_string(),
            anchor,
            agent: c.agent.clone(),
            model: c.model.clone(),
            benchmark: c.benchmark.clone(),
            seed: c.seed,
            score: score.map(|s| fmt_num(s * 100.0, None)).unwrap_or_else(|| "–".into()),
            replaced,
            cause: cause.and_then(|k| CAUSES.iter().find(|(c, _)| *c == k).map(|(_, l)| *l)),
            stages,
        });
    }

    // Per model: the same aggregation over that model's cells.
    let per_model = l.models.iter().map(|m| ModelView { model: m.clone(), rows: ordered_rows(l, &aggregate(&sub_lockfile(l, m))) }).collect();

    // Budget.
    let bench_names: Vec<String> = l.benchmarks.iter().map(|b| b.name.clone()).collect();
    let budget_rows: Vec<BudgetRow> = rows
        .iter()
        .map(|r| {
            let a = &r.row.agent;
            let by: Vec<f64> = bench_names.iter().map(|b| gpu.get(&(a.clone(), b.clone())).copied().unwrap_or(0.0)).collect();
            BudgetRow {
                agent: a.clone(),
                gpu_hours: by.iter().map(|x| format!("{x:.1}")).collect(),
                total: format!("{:.1}", by.iter().sum::<f64>()),
                cost_usd: cost.get(a).map(|x| format!("{x:.2}")),
            }
        })
        .collect();
    let bench_totals = bench_names.iter().map(|b| format!("{:.1}", gpu.iter().filter(|((_, bb), _)| bb == b).map(|(_, v)| v).sum::<f64>())).collect();
    let total_gpu: f64 = gpu.values().sum();
    let budget = Budget {
        benchmarks: bench_names,
        rows: budget_rows,
        bench_totals,
        total: format!("{total_gpu:.1}"),
        cost_total: (!cost.is_empty()).then(|| format!("{:.2}", cost.values().sum::<f64>())),
    };
    let gpu_series: Vec<Series> = rows
        .iter()
        .map(|r| {
            let h: f64 = gpu.iter().filter(|((a, _), _)| *a == r.row.agent).map(|(_, v)| v).sum();
            Series { agent: &r.row.agent, kind: &r.row.kind, mean: h, std: None, value: format!("{h:.1} GPU-h") }
        })
        .collect();
    charts.push(chart("gpu-hours", "GPU-hours by agent", "GPU-h", &agents, &gpu_series));

    // What is missing.
    let mut missing = Vec::new();
    if l.benchmarks.is_empty() {
        missing.push("The lockfile declares no benchmarks.".to_string());
    }
    if l.cells.is_empty() {
        missing.push("The lockfile has no cells: nothing has run yet.".to_string());
    } else if !l.cells.values().any(|c| super::aggregate::eval_score(c).is_some()) {
        missing.push("The lockfile has no eval results: no eval stage finished with a finite score, so the tables and charts are empty.".to_string());
    }
    if l.benchmarks.len() == 1 {
        missing.push(format!("Only one benchmark ({}): the weighted average is that benchmark's score.", l.benchmarks[0].name));
    }
    let list = |v: &[String]| if v.len() > 8 { format!("{}, … ({} in all)", v[..8].join(", "), v.len()) } else { v.join(", ") };
    if !nan_scores.is_empty() {
        missing.push(format!("{} eval stage(s) recorded a NaN or infinite score, treated as no score: {}.", nan_scores.len(), list(&nan_scores)));
    }
    if !no_metric.is_empty() {
        missing.push(format!("{} eval stage(s) finished without a `score` or `accuracy` metric: {}.", no_metric.len(), list(&no_metric)));
    }
    for r in &rows {
        let absent: Vec<String> = table.benchmarks.iter().filter(|b| !r.row.scores.contains_key(&b.name)).map(|b| b.name.clone()).collect();
        if !absent.is_empty() && !l.cells.is_empty() {
            missing.push(format!("{}: no score on {}.", r.row.agent, absent.join(", ")));
        }
        if r.row.avg.is_none() && absent.is_empty() && !table.benchmarks.is_empty() {
            missing.push(format!("{}: no seed scored every benchmark, so no weighted average.", r.row.agent));
        }
        if r.row.missing > 0 {
            missing.push(format!(
                "{}: {} run(s) without a usable score{}.",
                r.row.agent,
                r.row.missing,
                if r.row.kind == "run" { " and no base score to replace it" } else { "" }
            ));
        }
    }

    Report {
        experiment: l.experiment.clone(),
        lock_ptb_version: l.ptb_version.clone(),
        ptb_version: env!("CARGO_PKG_VERSION").to_string(),
        lockfile: lockfile_label.to_string(),
        lock_sha256: lock_sha256.to_string(),
        provenance: html_provenance(lockfile_label),
        table,
        rows,
        charts,
        per_model,
        causes: groups,
        replaced_by_agent: by_agent.into_values().collect(),
        cells: cell_views,
        budget,
        pins: l.pins.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        missing,
    }
}

pub fn html_provenance(lockfile_label: &str) -> String {
    // Inside an HTML comment: a `--` in the path would end it early.
    format!("{MARK} lockfile={} template={HTML_TEMPLATE_NAME}", lockfile_label.replace("--", "-\u{2010}"))
}

fn env<'a>() -> minijinja::Environment<'a> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    super::add_filters(&mut env);
    env
}

/// The page, from the model. Pure.
pub fn render_report(r: &Report) -> Result<String, minijinja::Error> {
    let mut env = env();
    env.add_template("figure.svg", FIGURE_TEMPLATE)?;
    env.add_template("report.html", HTML_TEMPLATE)?;
    env.get_template("report.html")?.render(minijinja::context! { r => r, provenance => &r.provenance })
}

/// Standalone SVG figures, `(file name, text)`, from the model. Pure.
pub fn render_figures(r: &Report, template: Option<&str>) -> Result<Vec<(String, String)>, minijinja::Error> {
    let mut env = env();
    env.add_template("figure.svg", template.unwrap_or(FIGURE_TEMPLATE))?;
    let t = env.get_template("figure.svg")?;
    r.charts.iter().map(|c| Ok((format!("{}.svg", c.id), t.render(minijinja::context! { c => c, standalone => true })?))).collect()
}

fn load(lockfile: &Path) -> Result<(Lockfile, String), ReportError> {
    let bytes = std::fs::read(lockfile).map_err(|source| ReportError::Read { path: lockfile.to_path_buf(), source })?;
    let lock = Lockfile::load(lockfile)?;
    Ok((lock, crate::hash::sha256_hex(&bytes)))
}

/// `ptb report LOCKFILE --html`.
pub fn render_html(lockfile: &Path) -> Result<String, ReportError> {
    let (lock, digest) = load(lockfile)?;
    let label = lockfile.display().to_string();
    render_report(&build(&lock, &label, &digest)).map_err(|source| ReportError::Render { path: HTML_TEMPLATE_NAME.into(), source })
}

/// `ptb report LOCKFILE --figures DIR [--template T]`: writes the SVGs and
/// returns their paths.
pub fn write_figures(lockfile: &Path, dir: &Path, template: Option<&Path>) -> Result<Vec<std::path::PathBuf>, ReportError> {
    let (lock, digest) = load(lockfile)?;
    let source = match template {
        Some(t) => Some(std::fs::read_to_string(t).map_err(|source| ReportError::Template { path: t.to_path_buf(), source })?),
        None => None,
    };
    let tpath = template.map(Path::to_path_buf).unwrap_or_else(|| "templates/figure.svg.j2".into());
    let figs = render_figures(&build(&lock, &lockfile.display().to_string(), &digest), source.as_deref())
        .map_err(|source| ReportError::Render { path: tpath, source })?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Read { path: dir.to_path_buf(), source })?;
    let mut out = Vec::new();
    for (name, text) in figs {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|source| ReportError::Read { path: p.clone(), source })?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn slugs_and_steps() {
        assert_eq!(slug("qwen3-4b/gsm8k/Agent 3/seed=1"), "qwen3-4b-gsm8k-agent-3-seed-1");
        assert_eq!(nice_step(7.3), 10.0);
        assert_eq!(nice_step(1.8), 2.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
