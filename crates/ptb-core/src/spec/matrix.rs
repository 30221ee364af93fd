//! The matrix: models × benchmarks × agents × seeds, minus excludes.
//! Several `matrix` nodes are a union (e.g. agent runs with 3 seeds plus
//! reference rows with 1).

use super::diag::did_you_mean;
use super::parse::{Ctx, Loc};
use super::*;
use std::collections::HashSet;

#[derive(Default)]
pub(super) struct RawMatrix {
    /// `None` or `"*"` means all declared.
    pub(super) models: Option<Vec<(String, Loc)>>,
    pub(super) benchmarks: Option<Vec<(String, Loc)>>,
    pub(super) agents: Option<Vec<(String, Loc)>>,
    pub(super) seeds: Option<(Vec<u64>, Loc)>,
    pub(super) excludes: Vec<Selector>,
}

pub(super) struct Selector {
    pub(super) model: Option<(String, Loc)>,
    pub(super) benchmark: Option<(String, Loc)>,
    pub(super) agent: Option<(String, Loc)>,
    pub(super) seed: Option<u64>,
}

/// Resolve a list of names against the declared ones; `*` selects all.
fn resolve(ctx: &mut Ctx, given: &Option<Vec<(String, Loc)>>, declared: &[&str], what: &str) -> Vec<usize> {
    let Some(given) = given else { return (0..declared.len()).collect() };
    let mut out = Vec::new();
    for (name, loc) in given {
        if name == "*" {
            out.extend(0..declared.len());
            continue;
        }
        match declared.iter().position(|d| d == name) {
            Some(i) => out.push(i),
            None => unknown(ctx, loc, name, declared, what),
        }
    }
    let mut seen = HashSet::new();
    out.retain(|i| seen.insert(*i));
    out
}

fn unknown(ctx: &mut Ctx, loc: &Loc, name: &str, declared: &[&str], what: &str) {
    let help = did_you_mean(name, declared.iter().copied()).unwrap_or_else(|| format!("declare it with `{what} {name} …`"));
    ctx.error(loc, format!("unknown {what} `{name}`"), format!("no such {what}"), Some(help));
}

pub(super) fn expand(
    ctx: &mut Ctx,
    matrices: &[RawMatrix],
    models: &[Model],
    benchmarks: &[Benchmark],
    agents: &[Agent],
    agent_locs: &[Loc],
    exp_loc: &Loc,
) -> Vec<Cell> {
    let mnames: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let bnames: Vec<&str> = benchmarks.iter().map(|b| b.name.as_str()).collect();
    let anames: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    if matrices.is_empty() {
        ctx.error(
            exp_loc,
            "the experiment has no `matrix`",
            "nothing to run",
            Some("add `matrix { seeds 1 }` to run every model × benchmark × agent once".into()),
        );
        return vec![];
    }
    let mut seen = HashSet::new();
    let mut cells = Vec::new();
    let mut missing_instruct = HashSet::new();
    for m in matrices {
        let ms = resolve(ctx, &m.models, &mnames, "model");
        let bs = resolve(ctx, &m.benchmarks, &bnames, "benchmark");
        let ag = resolve(ctx, &m.agents, &anames, "agent");
        for x in &m.excludes {
            for (sel, names, what) in [(&x.model, &mnames, "model"), (&x.benchmark, &bnames, "benchmark"), (&x.agent, &anames, "agent")] {
                if let Some((n, loc)) = sel
                    && !names.contains(&n.as_str())
                {
                    unknown(ctx, loc, n, names, what);
                }
            }
        }
        let seeds = match &m.seeds {
            Some((s, loc)) if s.is_empty() => {
                ctx.error(loc, "`seeds` needs at least one seed", "empty", None);
                continue;
            }
            Some((s, _)) => s.clone(),
            None => vec![1],
        };
        for &mi in &ms {
            for &bi in &bs {
                for &ai in &ag {
                    for &seed in &seeds {
                        let excluded = m.excludes.iter().any(|x| {
                            x.model.as_ref().is_none_or(|(n, _)| *n == mnames[mi])
                                && x.benchmark.as_ref().is_none_or(|(n, _)| *n == bnames[bi])
                                && x.agent.as_ref().is_none_or(|(n, _)| *n == anames[ai])
                                && x.seed.is_none_or(|s| s == seed)
                        });
                        if excluded || !seen.insert((mi, bi, ai, seed)) {
                            continue;
                        }
                        if agents[ai].kind == AgentKind::Checkpoint(CheckpointSource::Instruct) && models[mi].instruct.is_none() {
                            if missing_instruct.insert((mi, ai)) {
                                ctx.error(
                                    &agent_locs[ai],
                                    format!("agent `{}` evaluates instruct models, but model `{}` has none", anames[ai], mnames[mi]),
                                    "checkpoint=instruct",
                                    Some(format!("add `{{ instruct path=\"…\" }}` to model `{}` or exclude it from this agent's matrix", mnames[mi])),
                                );
                            }
                            continue;
                        }
                        cells.push(Cell { model: mi, benchmark: bi, agent: ai, seed, id: cell_id(mnames[mi], bnames[bi], anames[ai], seed) });
                    }
                }
            }
        }
    }
    if cells.is_empty() && ctx.errors.is_empty() {
        let what = [("model", mnames.len()), ("benchmark", bnames.len()), ("agent", anames.len())];
        let help = match what.iter().find(|(_, n)| *n == 0) {
            Some((w, _)) => format!("no {w} is declared: add `{w} NAME …`"),
            None => "every combination is excluded: check the `exclude` lines".into(),
        };
        ctx.error(exp_loc, "the matrix selects no cells", "nothing to run", Some(help));
    }
    cells.sort_by_key(|c| (c.model, c.benchmark, c.agent, c.seed));
    cells
}
