//! ptb being asked to stop (Ctrl-C, SIGTERM) while stages run.
//!
//! The binary owns the signal handling and fires an [`InterruptHandle`];
//! apply starts nothing new, and executors stop running stages as at their
//! deadline (SIGTERM, then SIGKILL after a grace of at most
//! [`INTERRUPT_GRACE`]). Such a stage is recorded `interrupted`: never a
//! result, never cached, run again by the next apply.

use std::time::Duration;
use tokio::sync::watch;

/// The longest a stage gets between SIGTERM and SIGKILL when ptb is
/// interrupted: a person pressed Ctrl-C and is waiting.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// Fires the [`Interrupt`] it was made with.
#[derive(Debug)]
pub struct InterruptHandle(watch::Sender<bool>);

impl InterruptHandle {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

/// Whether (and when) ptb was interrupted; cheap to clone. The default
/// never fires.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Option<watch::Receiver<bool>>);

impl Interrupt {
    pub fn new() -> (InterruptHandle, Interrupt) {
        let (tx, rx) = watch::channel(false);
        (InterruptHandle(tx), Interrupt(Some(rx)))
    }

    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves once interrupted; never, if the handle is dropped unfired.
    pub async fn wait(&self) {
        let Some(rx) = &self.0 else { return std::future::pending().await };
        let mut rx = rx.clone();
        if rx.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Why a running stage is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Its budget ran out.
    Deadline,
    /// ptb was interrupted.
    Interrupted,
}

impl Stop {
    /// Resolves when `job` must stop: its budget ran out, or ptb was interrupted.
    pub async fn when(job: &crate::StageJob) -> Stop {
        tokio::select! {
            _ = tokio::time::sleep(job.budget) => Stop::Deadline,
            _ = job.interrupt.wait() => Stop::Interrupted,
        }
    }

    /// The time between SIGTERM and SIGKILL.
    pub fn grace(self, job: &crate::StageJob) -> Duration {
        match self {
            Stop::Deadline => job.grace,
            Stop::Interrupted => job.grace.min(INTERRUPT_GRACE),
        }
    }

    /// How a stage stopped so ended.
    pub fn status(self) -> crate::StageStatus {
        match self {
            Stop::Deadline => crate::StageStatus::BudgetExhausted,
            Stop::Interrupted => crate::StageStatus::Interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_once_triggered_and_never_by_default() {
        let (h, i) = Interrupt::new();
        assert!(!i.is_set());
        let never = tokio::time::timeout(Duration::from_millis(20), Interrupt::default().wait()).await;
        assert!(never.is_err());
        h.trigger();
        assert!(i.is_set());
        tokio::time::timeout(Duration::from_secs(1), i.wait()).await.expect("fires");
        drop(h);
        assert!(i.is_set(), "stays set");
    }
}
