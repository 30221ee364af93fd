//! The sbatch submission of one stage, as a pure function of the job and
//! the spec's `slurm` settings: unit-tested here, run by [`super::client`].

use crate::StageJob;
use ptb_core::spec::SlurmOptions;
use std::path::Path;
use std::time::Duration;

/// Time Slurm's limit leaves after ptb's own deadline (budget + grace):
/// ptb stops the stage, writes its outcome and exits well before Slurm
/// would kill the job, so a stage over budget ends `budget_exhausted` with
/// its output kept, never TIMEOUT.
pub const MARGIN: Duration = Duration::from_secs(120);

/// Job names are `ptb-<key32>`: squeue shows which stage a job is, and a
/// restarted controller finds its jobs by name.
pub const NAME_PREFIX: &str = "ptb-";

pub fn job_name(key: &str) -> String {
    format!("{NAME_PREFIX}{}", &key[..key.len().min(32)])
}

/// What `sbatch` is given: its arguments (the script's path comes last)
/// and the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub args: Vec<String>,
    pub script: String,
}

/// Slurm's `--time`: budget + grace + [`MARGIN`], rounded up to whole
/// minutes (Slurm's granularity), as `D-HH:MM:00`.
pub fn time_limit(budget: Duration, grace: Duration) -> String {
    let minutes = (budget + grace + MARGIN).as_secs().div_ceil(60);
    format!("{}-{:02}:{:02}:00", minutes / 1440, minutes / 60 % 24, minutes % 60)
}

/// `'…'` for sh, so paths with spaces or quotes stay one word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The submission of `job`, whose job directory (shared filesystem) is
/// `dir`; `ptb` is the binary the node runs (`ptb stage-run DIR`).
pub fn render(job: &StageJob, opts: &SlurmOptions, dir: &Path, ptb: &Path) -> Submission {
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name={}", job_name(&job.key)),
        format!("--chdir={}", dir.display()),
        format!("--output={}", dir.join("job.out").display()),
        format!("--time={}", time_limit(job.budget, job.grace)),
        // ptb requeues NODE_FAIL and PREEMPTED itself, up to a bound and
        // with a fresh attempt; Slurm's own requeue would rerun the same
        // job id with no bound ptb could see.
        "--no-requeue".to_string(),
        "--nodes=1".to_string(),
        "--ntasks=1".to_string(),
    ];
    if let Some(c) = job.resources.cpus {
        args.push(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = job.resources.memory_bytes {
        args.push(format!("--mem={}M", m.div_ceil(1 << 20)));
    }
    if job.resources.gpus > 0 {
        args.push(format!("--gres=gpu:{}", job.resources.gpus));
    }
    for (flag, v) in [("partition", &opts.partition), ("account", &opts.account), ("qos", &opts.qos), ("constraint", &opts.constraint)] {
        if let Some(v) = v {
            args.push(format!("--{flag}={v}"));
        }
    }
    args.extend(opts.extra.iter().cloned());
    args.push(dir.join("job.sh").display().to_string());
    let script = format!(
        "#!/bin/sh\n# ptb: {} {}, key {}\nexec {} stage-run {}\n",
        job.cell.replace('\n', " "),
        job.stage.name(),
        job.key,
        sh_quote(&ptb.to_string_lossy()),
        sh_quote(&dir.to_string_lossy())
    );
    Submission { args, script }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobInput, StageJob};
    use ptb_core::spec::{ExecutorKind, Network, PullPolicy, Resources, StageKind};
    use std::path::PathBuf;

    fn job(gpus: u32, cpus: Option<u32>, memory_bytes: Option<u64>) -> StageJob {
        StageJob {
            sandbox: Default::default(),
            interrupt: Default::default(),
            key: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            cell: "m/b/a/seed=1".into(),
            stage: StageKind::Agent,
            executor: ExecutorKind::Slurm,
            command: vec!["agent.sh".into()],
            image: None,
            network: Network::None,
            env: Default::default(),
            secrets: Default::default(),
            inputs: vec![JobInput { name: "model".into(), path: "/m".into() }],
            out_dir: "/store/v1/.tmp/e/out".into(),
            work_dir: "/store/v1/.tmp/e/work".into(),
            log_path: "/store/v1/.tmp/e/log".into(),
            budget: Duration::from_secs(10 * 3600),
            grace: Duration::from_secs(30),
            resources: Resources { gpus, cpus, memory_bytes, disk_bytes: None },
            gpu_ids: vec![],
            pull: PullPolicy::Never,
            caches: vec![],
        }
    }

    fn render_default(j: &StageJob, opts: &SlurmOptions) -> Submission {
        render(j, opts, &PathBuf::from("/store/v1/.tmp/e/slurm"), Path::new("/shared/bin/ptb"))
    }

    #[test]
    fn resources_become_sbatch_options_and_gpus_only_when_asked_for() {
        let s = render_default(&job(2, Some(8), Some(64 << 30)), &SlurmOptions::default());
        assert!(s.args.contains(&"--gres=gpu:2".to_string()), "{:?}", s.args);
        assert!(s.args.contains(&"--cpus-per-task=8".to_string()));
        assert!(s.args.contains(&"--mem=65536M".to_string()));
        let cpu_only = render_default(&job(0, None, None), &SlurmOptions::default());
        assert!(!cpu_only.args.iter().any(|a| a.starts_with("--gres") || a.starts_with("--cpus") || a.starts_with("--mem")), "{:?}", cpu_only.args);
    }

    #[test]
    fn the_job_is_named_by_its_key_and_runs_stage_run_on_its_directory() {
        let s = render_default(&job(0, None, None), &SlurmOptions::default());
        assert!(s.args.contains(&"--job-name=ptb-0123456789abcdef0123456789abcdef".to_string()));
        assert!(s.args.contains(&"--no-requeue".to_string()));
        assert_eq!(s.args.last().unwrap(), "/store/v1/.tmp/e/slurm/job.sh");
        assert!(s.script.starts_with("#!/bin/sh\n"));
        assert!(s.script.ends_with("exec '/shared/bin/ptb' stage-run '/store/v1/.tmp/e/slurm'\n"), "{}", s.script);
    }

    #[test]
    fn spec_settings_and_extra_options_pass_through_after_ptbs_own() {
        let opts = SlurmOptions {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            qos: Some("high".into()),
            constraint: Some("a100".into()),
            extra: vec!["--exclusive".into()],
        };
        let s = render_default(&job(1, None, None), &opts);
        let tail: Vec<&str> = s.args.iter().rev().skip(1).take(5).rev().map(String::as_str).collect();
        assert_eq!(tail, ["--partition=gpu", "--account=lab", "--qos=high", "--constraint=a100", "--exclusive"]);
    }

    #[test]
    fn slurms_limit_is_ptbs_deadline_plus_a_margin_in_whole_minutes() {
        // 10 h + 30 s + 2 min → 10:02:30 → 10:03.
        assert_eq!(time_limit(Duration::from_secs(36000), Duration::from_secs(30)), "0-10:03:00");
        assert_eq!(time_limit(Duration::from_secs(2), Duration::from_secs(1)), "0-00:03:00");
        assert_eq!(time_limit(Duration::from_secs(48 * 3600), Duration::ZERO), "2-00:02:00");
    }

    #[test]
    fn paths_with_quotes_stay_one_word() {
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
