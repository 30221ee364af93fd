//! How long the stages to run would take on N GPUs, at full budgets: an
//! estimate for sizing a cluster allocation, printed by `ptb plan --gpus N`.

use super::{Action, Plan};
use std::collections::BTreeMap;

/// One stage's share: its budget and the GPUs it holds for that long.
#[derive(Debug, Clone, Copy)]
pub struct StageLoad {
    pub budget_s: u64,
    pub gpus: u32,
}

/// Makespan in seconds of cells (each a chain of stages, run in order) on
/// `gpus` GPUs, every stage running its full budget. Greedy, longest cell
/// first: a cell holds the most GPUs any of its stages needs for its GPU
/// stages' time, on the GPUs free earliest; stages without GPUs only add
/// to their own cell's chain. A cell needing more GPUs than there are
/// gets all of them.
pub fn makespan_s(cells: &[Vec<StageLoad>], gpus: u32) -> u64 {
    let lanes = gpus.max(1) as usize;
    let mut free = vec![0u64; lanes];
    let mut jobs: Vec<(u64, u64, usize)> = cells
        .iter()
        .map(|c| {
            let gpu_time: u64 = c.iter().filter(|s| s.gpus > 0).map(|s| s.budget_s).sum();
            let chain: u64 = c.iter().map(|s| s.budget_s).sum();
            let width = c.iter().map(|s| s.gpus as usize).max().unwrap_or(0).min(lanes);
            (gpu_time, chain, width)
        })
        .collect();
    jobs.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut end = 0;
    for (gpu_time, chain, width) in jobs {
        if width == 0 || gpu_time == 0 {
            end = end.max(chain);
            continue;
        }
        free.sort_unstable();
        let start = free[width - 1];
        for f in free.iter_mut().take(width) {
            *f = start + gpu_time;
        }
        end = end.max(start + chain);
    }
    end
}

/// [`makespan_s`] of the plan's stages to run, grouped by cell; `gpus_of`
/// says how many GPUs a stage of each kind holds.
pub fn plan_makespan_s(plan: &Plan, gpus: u32, load: impl Fn(&super::StagePlan) -> StageLoad) -> u64 {
    let mut cells: BTreeMap<usize, Vec<StageLoad>> = BTreeMap::new();
    for s in plan.stages.iter().filter(|s| s.action == Action::Run) {
        cells.entry(s.cell_index).or_default().push(load(s));
    }
    makespan_s(&cells.into_values().collect::<Vec<_>>(), gpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(stages: &[(u64, u32)]) -> Vec<StageLoad> {
        stages.iter().map(|&(budget_s, gpus)| StageLoad { budget_s, gpus }).collect()
    }

    #[test]
    fn cells_share_gpus_and_cpu_stages_only_lengthen_their_chain() {
        // Four 10 h one-GPU agents with a 1 h CPU judge each.
        let cells: Vec<_> = (0..4).map(|_| cell(&[(36000, 1), (3600, 0)])).collect();
        assert_eq!(makespan_s(&cells, 4), 39600);
        assert_eq!(makespan_s(&cells, 2), 72000 + 3600);
        assert_eq!(makespan_s(&cells, 1), 4 * 36000 + 3600);
    }

    #[test]
    fn a_cell_wider_than_the_cluster_gets_all_of_it() {
        assert_eq!(makespan_s(&[cell(&[(100, 8)])], 2), 100);
        assert_eq!(makespan_s(&[cell(&[(100, 2)]), cell(&[(100, 1)])], 2), 200);
    }

    #[test]
    fn nothing_to_run_takes_no_time() {
        assert_eq!(makespan_s(&[], 8), 0);
    }
}
