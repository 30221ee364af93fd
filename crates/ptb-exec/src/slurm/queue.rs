//! What Slurm says about jobs, parsed: `squeue` lines and `sacct` states
//! into [`JobInfo`]. Pure; the commands run in [`super::client`].

/// A job's state as Slurm names it (`squeue %T`, `sacct State`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    /// Finished, Slurm still cleaning up on the node.
    Completing,
    Suspended,
    Completed,
    Failed,
    Timeout,
    OutOfMemory,
    Cancelled,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    /// Anything else Slurm reports (`REQUEUED`, `RESIZING`, …): not yet final.
    Other(String),
}

impl JobState {
    pub fn parse(s: &str) -> JobState {
        // sacct writes `CANCELLED by 0`.
        match s.split_whitespace().next().unwrap_or("") {
            "PENDING" | "PD" => JobState::Pending,
            "RUNNING" | "R" => JobState::Running,
            "COMPLETING" | "CG" => JobState::Completing,
            "SUSPENDED" | "S" => JobState::Suspended,
            "COMPLETED" | "CD" => JobState::Completed,
            "FAILED" | "F" => JobState::Failed,
            "TIMEOUT" | "TO" => JobState::Timeout,
            "OUT_OF_MEMORY" | "OOM" => JobState::OutOfMemory,
            "CANCELLED" | "CA" => JobState::Cancelled,
            "NODE_FAIL" | "NF" => JobState::NodeFail,
            "PREEMPTED" | "PR" => JobState::Preempted,
            "BOOT_FAIL" | "BF" => JobState::BootFail,
            "DEADLINE" | "DL" => JobState::Deadline,
            other => JobState::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Running => "RUNNING",
            JobState::Completing => "COMPLETING",
            JobState::Suspended => "SUSPENDED",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Timeout => "TIMEOUT",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::Cancelled => "CANCELLED",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Preempted => "PREEMPTED",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::Other(s) => s,
        }
    }

    /// The job will not run (again) under this id. COMPLETING is not
    /// final: the node may still be writing the outcome.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Failed
                | JobState::Timeout
                | JobState::OutOfMemory
                | JobState::Cancelled
                | JobState::NodeFail
                | JobState::Preempted
                | JobState::BootFail
                | JobState::Deadline
        )
    }

    /// Ended through no fault of the stage: ptb submits it again (up to a bound).
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobState::NodeFail | JobState::Preempted | JobState::BootFail)
    }

    pub fn is_queued(&self) -> bool {
        matches!(self, JobState::Pending | JobState::Other(_))
    }
}

/// One job as `squeue` lists it with [`SQUEUE_FORMAT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: u64,
    pub name: String,
    pub state: JobState,
    /// Seconds it has run (`%M`).
    pub elapsed_s: u64,
    /// Its time limit in seconds (`%l`); `None` for UNLIMITED.
    pub limit_s: Option<u64>,
    /// GPUs per node it asked for (from `%b`, e.g. `gres:gpu:2`).
    pub gpus: u32,
    /// The node it runs on, or why it waits (`%R`).
    pub where_: String,
    pub partition: String,
}

/// `squeue -o`: id, name, state, elapsed, limit, gres, partition, node or reason.
/// `|` never appears in ptb's job names (`ptb-<hex key>`).
pub const SQUEUE_FORMAT: &str = "%i|%j|%T|%M|%l|%b|%P|%R";

/// Slurm durations: `[D-][HH:]MM:SS`; `None` for `UNLIMITED`, `INVALID`, `N/A`.
pub fn parse_duration(s: &str) -> Option<u64> {
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, s),
    };
    let mut secs = 0;
    for part in rest.split(':') {
        secs = secs * 60 + part.parse::<u64>().ok()?;
    }
    Some(days * 86400 + secs)
}

/// GPUs in a TRES/gres string: `gres:gpu:2`, `gres/gpu:a100=2`, `gpu:1`; 0 for `N/A`.
pub fn parse_gpus(s: &str) -> u32 {
    s.split(',').filter(|p| p.contains("gpu")).filter_map(|p| p.rsplit([':', '=']).next()?.parse::<u32>().ok()).sum()
}

/// The lines of `squeue -h -o SQUEUE_FORMAT`; lines that do not parse
/// (a job array's `123_[1-4]`) are skipped, never guessed at.
pub fn parse_squeue(text: &str) -> Vec<JobInfo> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.trim().splitn(8, '|').collect();
            if f.len() < 8 {
                return None;
            }
            Some(JobInfo {
                id: f[0].parse().ok()?,
                name: f[1].to_string(),
                state: JobState::parse(f[2]),
                elapsed_s: parse_duration(f[3]).unwrap_or(0),
                limit_s: parse_duration(f[4]),
                gpus: parse_gpus(f[5]),
                partition: f[6].to_string(),
                where_: f[7].to_string(),
            })
        })
        .collect()
}

/// `sacct -n -P -X -j ID,… -o JobID,State`: each job's state. A requeued
/// job has one line per run under the same id: the last one counts. Lines
/// that do not parse (`123_[1-4]`, `123+0`) are skipped.
pub fn parse_sacct_states(text: &str) -> std::collections::HashMap<u64, JobState> {
    text.lines()
        .filter_map(|line| {
            let (id, state) = line.trim().split_once('|')?;
            Some((id.parse::<u64>().ok()?, JobState::parse(state)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse_and_odd_ones_are_skipped() {
        let text = "12|ptb-abc|RUNNING|1:02:03|10:03:00|gres:gpu:2|gpu|node7\n\
                    13|ptb-def|PENDING|0:00|UNLIMITED|N/A|debug|(Resources)\n\
                    14_[1-3]|array|PENDING|0:00|1:00|N/A|debug|(None)\n\
                    garbage\n";
        let jobs = parse_squeue(text);
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].id, 12);
        assert_eq!(jobs[0].state, JobState::Running);
        assert_eq!(jobs[0].elapsed_s, 3723);
        assert_eq!(jobs[0].limit_s, Some(36180));
        assert_eq!(jobs[0].gpus, 2);
        assert_eq!(jobs[0].where_, "node7");
        assert_eq!(jobs[1].limit_s, None);
        assert_eq!(jobs[1].gpus, 0);
        assert!(jobs[1].state.is_queued());
    }

    #[test]
    fn durations_in_slurms_forms() {
        assert_eq!(parse_duration("0:05"), Some(5));
        assert_eq!(parse_duration("12:00"), Some(720));
        assert_eq!(parse_duration("1-02:03:04"), Some(86400 + 7384));
        assert_eq!(parse_duration("UNLIMITED"), None);
    }

    #[test]
    fn which_states_are_final_and_which_are_retried() {
        for s in ["COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"] {
            assert!(JobState::parse(s).is_final(), "{s}");
            assert_eq!(JobState::parse(s).name(), s);
        }
        for s in ["PENDING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "CONFIGURING"] {
            assert!(!JobState::parse(s).is_final(), "{s}");
        }
        let retried: Vec<&str> =
            ["NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "TIMEOUT", "OUT_OF_MEMORY", "FAILED"].into_iter().filter(|s| JobState::parse(s).is_retryable()).collect();
        assert_eq!(retried, ["NODE_FAIL", "PREEMPTED", "BOOT_FAIL"]);
        let states = parse_sacct_states("7|CANCELLED by 0\n8|NODE_FAIL\n8|COMPLETED\n9_[1-2]|PENDING\ngarbage\n");
        assert_eq!(states.len(), 2);
        assert_eq!(states[&7], JobState::Cancelled);
        assert_eq!(states[&8], JobState::Completed, "the last run of a requeued id counts");
    }

    #[test]
    fn gpus_from_tres_strings() {
        assert_eq!(parse_gpus("gres:gpu:4"), 4);
        assert_eq!(parse_gpus("gres/gpu:a100=2"), 2);
        assert_eq!(parse_gpus("cpu=4,gres/gpu=1"), 1);
        assert_eq!(parse_gpus("N/A"), 0);
    }
}
