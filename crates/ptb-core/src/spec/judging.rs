//! The spec's judging nodes: `policy` (judge stage), `keep` (agent stage)
//! and `review` (top level). Kept apart from `parse` so that file stays
//! about the experiment's shape.

use super::diag::{ListFmt, did_you_mean};
use super::parse::{Ctx, Loc, N};
use super::units::parse_memory;
use super::{Cell, Keep};
use crate::judge::{FindingKind, JudgePolicy, LlmRule, Review, Verdict};
use std::collections::BTreeMap;

/// `policy flag="substitution tampering contamination" coverage=0.5 ngram=13 min-words=8 max-file-mib=256 llm=cited`.
pub(super) fn read_policy(ctx: &mut Ctx, c: &N) -> Option<JudgePolicy> {
    c.check_shape(ctx, &["flag", "coverage", "ngram", "min-words", "max-file-mib", "llm"], 0);
    let d = JudgePolicy::default();
    let mut ok = true;
    let flag = match c.str_prop(ctx, "flag") {
        Some(s) => {
            let mut kinds = Vec::new();
            for w in s.split([' ', ',']).filter(|w| !w.is_empty()) {
                match FindingKind::parse(w) {
                    Some(k) if !kinds.contains(&k) => kinds.push(k),
                    Some(_) => {}
                    None => {
                        ok = false;
                        let help = did_you_mean(w, FindingKind::NAMES).unwrap_or_else(|| format!("kinds are {}", ListFmt(&FindingKind::NAMES)));
                        ctx.error(&c.entry_loc("flag"), format!("unknown finding kind `{w}`"), "unknown kind", Some(help));
                    }
                }
            }
            kinds.sort();
            kinds
        }
        None => d.flag.clone(),
    };
    let coverage = c.num_prop(ctx, "coverage").unwrap_or(d.coverage);
    if !(coverage > 0.0 && coverage <= 1.0) {
        ok = false;
        ctx.error(&c.entry_loc("coverage"), "`coverage` must be in (0, 1]", "out of range", Some("the fraction of a test item's n-grams, e.g. 0.5".into()));
    }
    let positive = |ctx: &mut Ctx, key: &str, default: u32, ok: &mut bool| -> u32 {
        let v = c.uint_prop(ctx, key).unwrap_or(default);
        if v == 0 {
            *ok = false;
            ctx.error(&c.entry_loc(key), format!("`{key}` must be at least 1"), "zero", None);
        }
        v
    };
    let ngram = positive(ctx, "ngram", d.ngram, &mut ok);
    let min_words = positive(ctx, "min-words", d.min_words, &mut ok);
    let max_file_mib = positive(ctx, "max-file-mib", d.max_file_mib as u32, &mut ok) as u64;
    let llm = c.choice_prop(ctx, "llm", &LlmRule::NAMES).and_then(|v| LlmRule::parse(&v)).unwrap_or(d.llm);
    ok.then_some(JudgePolicy { flag, coverage, ngram, min_words, max_file_mib, llm })
}

/// `keep weights-over="64M"`.
pub(super) fn read_keep(ctx: &mut Ctx, c: &N) -> Keep {
    c.check_shape(ctx, &["weights-over"], 0);
    let d = Keep::default();
    let weights_over = c
        .str_prop(ctx, "weights-over")
        .and_then(|m| {
            parse_memory(&m)
                .map_err(|_| {
                    ctx.error(
                        &c.entry_loc("weights-over"),
                        format!("`weights-over` must be a size, not `{m}`"),
                        "bad size",
                        Some("e.g. \"64M\" or \"2G\"".into()),
                    )
                })
                .ok()
        })
        .unwrap_or(d.weights_over);
    Keep { weights_over }
}

/// `review cell="m/b/a/seed=1" verdict=pass reason="…"`, checked against the
/// cells once the matrix is known ([`check_reviews`]).
pub(super) fn read_review(ctx: &mut Ctx, n: &N) -> Option<(Review, Loc)> {
    n.check_shape(ctx, &["cell", "verdict", "reason"], 0);
    let cell = n.str_prop(ctx, "cell");
    let verdict = n.choice_prop(ctx, "verdict", &Verdict::NAMES).and_then(|v| Verdict::parse(&v));
    let reason = n.str_prop(ctx, "reason").filter(|r| !r.trim().is_empty());
    for (key, present, example) in [
        ("cell", cell.is_some(), "cell=\"qwen3-4b/gsm8k/codex/seed=2\""),
        ("verdict", verdict.is_some(), "verdict=pass"),
        ("reason", reason.is_some(), "reason=\"the flagged file is GSM8K's train split\""),
    ] {
        if !present && n.node_get(key).is_none() {
            ctx.error(&n.loc(), format!("`review` needs `{key}=`"), "missing", Some(format!("e.g. {example}: a review records who decided what, and why")));
        } else if !present && key == "reason" {
            ctx.error(&n.entry_loc("reason"), "a review's `reason` may not be empty", "empty", None);
        }
    }
    Some((Review { cell: cell?, verdict: verdict?, reason: reason? }, n.loc()))
}

/// Each review names one run of the matrix (an agent that runs, in an
/// experiment with a judge), at most once. Returns them in cell id order.
pub(super) fn check_reviews(ctx: &mut Ctx, reviews: Vec<(Review, Loc)>, cells: &[Cell], runs: impl Fn(&Cell) -> bool, has_judge: bool) -> Vec<Review> {
    let by_id: BTreeMap<&str, &Cell> = cells.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    let mut out = Vec::new();
    for (r, loc) in reviews {
        if !has_judge {
            ctx.error(&loc, "a review overrules the judge, but the experiment has no `stage judge`", "nothing to overrule", None);
            continue;
        }
        match by_id.get(r.cell.as_str()) {
            None => {
                let help = did_you_mean(&r.cell, by_id.keys().copied())
                    .unwrap_or_else(|| "name one cell of the matrix exactly: `model/benchmark/agent/seed=N`".into());
                ctx.error(&loc, format!("review of `{}`, which is not a cell of the matrix", r.cell), "unknown cell", Some(help));
                continue;
            }
            Some(c) if !runs(c) => {
                ctx.error(&loc, format!("`{}` is a reference row: it has no judge verdict to overrule", r.cell), "reference row", None);
                continue;
            }
            Some(_) => {}
        }
        if let Some(first) = seen.get(&r.cell) {
            let first = first.describe();
            ctx.error(&loc, format!("`{}` is reviewed twice", r.cell), "second review", Some(format!("the first is at {first}; keep one")));
            continue;
        }
        seen.insert(r.cell.clone(), loc);
        out.push(r);
    }
    out.sort_by(|a, b| a.cell.cmp(&b.cell));
    out
}
