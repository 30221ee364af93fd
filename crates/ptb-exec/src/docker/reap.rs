//! Containers left behind by a killed `ptb apply`.
//!
//! A container does not die with the process that started it, so every
//! container ptb starts carries the stage key (`ptb.key`) and its owner
//! (`ptb.owner` = pid and process start time). At apply start, containers
//! whose owner is gone are removed. Owners still alive, such as a
//! concurrent apply on another experiment, keep theirs.

use super::{DockerExecutor, errors};
use crate::ExecError;
use std::collections::HashMap;

pub(super) const LABEL_KEY: &str = "ptb.key";
pub(super) const LABEL_OWNER: &str = "ptb.owner";

/// Identifies a live process across pid reuse: pid plus its start time in
/// clock ticks since boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerToken(pub String);

impl OwnerToken {
    pub fn current() -> Self {
        let pid = std::process::id();
        OwnerToken(format!("{pid}:{}", start_time(pid).unwrap_or(0)))
    }

    /// Whether the process this token names is still running.
    pub fn is_alive(&self) -> bool {
        let Some((pid, start)) = self.0.split_once(':') else { return false };
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else { return false };
        start_time(pid) == Some(start)
    }
}

/// Field 22 of /proc/PID/stat. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl DockerExecutor {
    /// Removes every ptb container whose owning process is gone; returns
    /// their ids. Call it before starting stages.
    pub async fn reap_orphans(&self) -> Result<Vec<String>, ExecError> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([("label".to_string(), vec![LABEL_KEY.to_string()])]);
        let opts = bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list = self.docker.list_containers(Some(opts)).await.map_err(|e| errors::engine(e, &self.socket, "listing ptb containers"))?;
        let mut reaped = Vec::new();
        for c in list {
            let Some(id) = c.id else { continue };
            let owner = c.labels.as_ref().and_then(|l| l.get(LABEL_OWNER)).map(|o| OwnerToken(o.clone()));
            if owner.is_some_and(|o| o.is_alive()) {
                continue;
            }
            match self.remove_container(&id).await {
                Ok(()) => reaped.push(id),
                // Removed meanwhile, e.g. by another apply reaping too.
                Err(e) if errors::is_not_found(&e) => {}
                Err(e) => return Err(errors::engine(e, &self.socket, &format!("removing orphan container {id}"))),
            }
        }
        Ok(reaped)
    }

    pub(super) async fn remove_container(&self, id: &str) -> Result<(), bollard::errors::Error> {
        let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        self.docker.remove_container(id, Some(opts)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_made_up_one_is_not() {
        assert!(OwnerToken::current().is_alive());
        let me = OwnerToken::current();
        let (pid, start) = me.0.split_once(':').unwrap();
        let restarted = OwnerToken(format!("{pid}:{}", start.parse::<u64>().unwrap() + 1));
        assert!(!restarted.is_alive(), "same pid, other start time: a reused pid");
        assert!(!OwnerToken("garbage".into()).is_alive());
    }
}
