//! The Slurm commands ptb runs (sbatch, squeue, sacct, scancel, sinfo):
//! the only effects of the Slurm executor besides files. Their output is
//! parsed by [`super::queue`].

use super::queue::{self, JobInfo, JobState};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use tokio::process::Command;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SlurmError {
    #[error("`{program}` is not installed or not on PATH: run ptb on a Slurm login node (or `scripts/slurm/setup.sh` for a local test cluster)")]
    Missing { program: &'static str },
    #[error("sbatch refused the job: {message}")]
    Refused { message: String },
    #[error("cannot reach slurmctld (`{program}` failed: {message}); check `scontrol ping`")]
    Unreachable { program: &'static str, message: String },
    #[error("partition `{partition}` does not exist on this cluster (sinfo lists: {known})")]
    NoPartition { partition: String, known: String },
}

/// Runs Slurm's commands as the current user.
#[derive(Debug, Clone, Default)]
pub struct Client;

async fn run(program: &'static str, args: &[&str]) -> Result<Output, SlurmError> {
    Command::new(program).args(args).kill_on_drop(true).output().await.map_err(|_| SlurmError::Missing { program })
}

fn stderr_of(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).trim().to_string();
    if e.is_empty() { format!("exit status {}", o.status) } else { e.replace('\n', "; ") }
}

/// Errors that mean slurmctld did not answer, as opposed to a refusal.
fn is_unreachable(message: &str) -> bool {
    [
        "Unable to contact slurm controller",
        "Socket timed out",
        "Connection refused",
        "Zero Bytes were transmitted",
        "slurm_load_jobs error",
        "Unable to establish",
    ]
    .iter()
    .any(|m| message.contains(m))
}

impl Client {
    /// Submit `script` with `args`; the job id. The environment is ptb's
    /// own (sbatch's default `--export=ALL`), which is how secrets reach
    /// the node without being written anywhere.
    pub async fn sbatch(&self, args: &[String], env: &BTreeMap<String, String>) -> Result<u64, SlurmError> {
        let o = Command::new("sbatch").args(args).envs(env).kill_on_drop(true).output().await.map_err(|_| SlurmError::Missing { program: "sbatch" })?;
        let out = String::from_utf8_lossy(&o.stdout);
        // --parsable: `ID` or `ID;cluster`.
        let id = out.trim().split(';').next().and_then(|s| s.parse::<u64>().ok());
        match (o.status.success(), id) {
            (true, Some(id)) => Ok(id),
            _ => {
                let message = stderr_of(&o);
                if is_unreachable(&message) { Err(SlurmError::Unreachable { program: "sbatch", message }) } else { Err(SlurmError::Refused { message }) }
            }
        }
    }

    /// Every job of this user that slurmctld still knows (queued, running,
    /// and finished ones for MinJobAge), ptb's or not.
    pub async fn squeue(&self) -> Result<Vec<JobInfo>, SlurmError> {
        let o = run("squeue", &["-h", "--me", "-t", "all", "-o", queue::SQUEUE_FORMAT]).await?;
        if !o.status.success() {
            return Err(SlurmError::Unreachable { program: "squeue", message: stderr_of(&o) });
        }
        Ok(queue::parse_squeue(&String::from_utf8_lossy(&o.stdout)))
    }

    /// Jobs slurmctld has forgotten: their final states from accounting,
    /// in one `sacct` call for all of them. `None` where the cluster has no
    /// accounting (no slurmdbd: sacct fails); a job accounting has not
    /// recorded yet is absent from the map.
    pub async fn sacct_states(&self, ids: &[u64]) -> Option<std::collections::HashMap<u64, JobState>> {
        if ids.is_empty() {
            return Some(Default::default());
        }
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        let o = run("sacct", &["-n", "-P", "-X", "-j", &list.join(","), "-o", "JobID,State"]).await.ok()?;
        if !o.status.success() {
            return None;
        }
        Some(queue::parse_sacct_states(&String::from_utf8_lossy(&o.stdout)))
    }

    pub async fn scancel(&self, ids: &[u64]) -> Result<(), SlurmError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        let args: Vec<&str> = ids.iter().map(String::as_str).collect();
        let o = run("scancel", &args).await?;
        if o.status.success() { Ok(()) } else { Err(SlurmError::Unreachable { program: "scancel", message: stderr_of(&o) }) }
    }

    /// The cluster's partitions; also tells whether slurmctld answers.
    pub async fn partitions(&self) -> Result<Vec<String>, SlurmError> {
        let o = run("sinfo", &["-h", "-o", "%R"]).await?;
        if !o.status.success() {
            return Err(SlurmError::Unreachable { program: "sinfo", message: stderr_of(&o) });
        }
        let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
        v.dedup();
        Ok(v)
    }

    /// slurmctld answers, and every partition in `wanted` exists.
    pub async fn preflight<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> Result<(), SlurmError> {
        let known = self.partitions().await?;
        for p in wanted {
            if !known.iter().any(|k| k == p) {
                return Err(SlurmError::NoPartition { partition: p.to_string(), known: known.join(", ") });
            }
        }
        Ok(())
    }
}

/// Whether `path` can be run (the binary the node will execute).
pub fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}
