//! Hands out disjoint GPU sets to concurrent stages.
//!
//! A stage asking for N GPUs waits until N are free and then holds exactly
//! those ids until its [`GpuLease`] is dropped; no two leases share an id.
//! Waiters are served in arrival order (tokio's semaphore is fair), so a
//! stage wanting all GPUs is not starved by a stream of one-GPU stages.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GpuError {
    #[error("a stage asks for {wanted} GPU(s) but this host has {available}; lower `gpus` in the spec or pass more devices with --gpus")]
    TooMany { wanted: u32, available: usize },
    #[error("bad --gpus value `{0}`: expected device ids like `0,1,3`")]
    BadList(String),
    #[error("duplicate GPU id {0} in --gpus")]
    Duplicate(u32),
}

#[derive(Debug, Clone)]
pub struct GpuPool {
    all: Arc<Vec<u32>>,
    free: Arc<Mutex<BTreeSet<u32>>>,
    permits: Arc<Semaphore>,
}

/// The GPUs one stage holds; returned to the pool on drop.
#[derive(Debug)]
pub struct GpuLease {
    ids: Vec<u32>,
    free: Arc<Mutex<BTreeSet<u32>>>,
    // Dropped after the ids are back in `free` (see Drop), so a waiter
    // woken by the permit always finds enough ids.
    _permit: Option<OwnedSemaphorePermit>,
}

impl GpuLease {
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

impl Drop for GpuLease {
    fn drop(&mut self) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.extend(self.ids.drain(..));
        drop(free);
        self._permit.take();
    }
}

impl GpuPool {
    pub fn new(ids: impl IntoIterator<Item = u32>) -> Result<Self, GpuError> {
        let mut seen = BTreeSet::new();
        let mut all = Vec::new();
        for id in ids {
            if !seen.insert(id) {
                return Err(GpuError::Duplicate(id));
            }
            all.push(id);
        }
        let permits = Arc::new(Semaphore::new(all.len()));
        Ok(GpuPool { free: Arc::new(Mutex::new(seen)), all: Arc::new(all), permits })
    }

    /// The host's devices: `--gpus` when given, else what `nvidia-smi -L`
    /// lists, else none (a CPU-only host).
    pub fn discover(flag: Option<&str>) -> Result<Self, GpuError> {
        match flag {
            Some(list) => Self::new(parse_gpu_list(list)?),
            None => Self::new(nvidia_smi_ids()),
        }
    }

    pub fn devices(&self) -> &[u32] {
        &self.all
    }

    /// Waits for `n` free GPUs and takes them. `n == 0` returns an empty
    /// lease at once; more than the host has is an error, not a deadlock.
    pub async fn acquire(&self, n: u32) -> Result<GpuLease, GpuError> {
        if n == 0 {
            return Ok(GpuLease { ids: Vec::new(), free: self.free.clone(), _permit: None });
        }
        if n as usize > self.all.len() {
            return Err(GpuError::TooMany { wanted: n, available: self.all.len() });
        }
        let permit = self.permits.clone().acquire_many_owned(n).await.map_err(|_| GpuError::TooMany { wanted: n, available: 0 })?;
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        // Lowest ids first: deterministic, and what a person expects.
        let ids: Vec<u32> = free.iter().copied().take(n as usize).collect();
        for id in &ids {
            free.remove(id);
        }
        drop(free);
        Ok(GpuLease { ids, free: self.free.clone(), _permit: Some(permit) })
    }
}

/// `0,1,3` (spaces allowed); an empty string means no GPUs.
pub fn parse_gpu_list(s: &str) -> Result<Vec<u32>, GpuError> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.parse().map_err(|_| GpuError::BadList(s.to_string()))).collect()
}

/// Parses `nvidia-smi -L`: `GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-…)`.
pub fn parse_nvidia_smi(out: &str) -> Vec<u32> {
    out.lines().filter_map(|l| l.strip_prefix("GPU ")?.split(':').next()?.trim().parse().ok()).collect()
}

fn nvidia_smi_ids() -> Vec<u32> {
    std::process::Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| parse_nvidia_smi(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_nvidia_smi_and_flags() {
        let out = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb)\n";
        assert_eq!(parse_nvidia_smi(out), vec![0, 1]);
        assert_eq!(parse_nvidia_smi("No devices were found"), Vec::<u32>::new());
        assert_eq!(parse_gpu_list("0, 2,3").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_gpu_list("").unwrap(), Vec::<u32>::new());
        assert!(matches!(parse_gpu_list("0,x"), Err(GpuError::BadList(_))));
        assert_eq!(GpuPool::new([1, 1]).unwrap_err(), GpuError::Duplicate(1));
    }

    #[tokio::test]
    async fn concurrent_leases_are_disjoint_and_released() {
        let pool = GpuPool::new([0, 1, 2, 3]).unwrap();
        let a = pool.acquire(2).await.unwrap();
        let b = pool.acquire(2).await.unwrap();
        assert_eq!(a.ids(), &[0, 1]);
        assert_eq!(b.ids(), &[2, 3]);
        // Full: a third request waits until a lease is dropped.
        let p = pool.clone();
        let waiter = tokio::spawn(async move { p.acquire(1).await.unwrap().ids().to_vec() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "no GPU is free, so the request must wait");
        drop(b);
        let got = tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap();
        assert_eq!(got, vec![2]);
    }

    #[tokio::test]
    async fn too_many_is_an_error_and_zero_is_free() {
        let pool = GpuPool::new([0]).unwrap();
        assert_eq!(pool.acquire(2).await.unwrap_err(), GpuError::TooMany { wanted: 2, available: 1 });
        assert!(pool.acquire(0).await.unwrap().ids().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_stages_never_share_a_gpu() {
        let pool = GpuPool::new([0, 1, 2]).unwrap();
        let in_use = Arc::new(Mutex::new(BTreeSet::new()));
        let mut tasks = Vec::new();
        for i in 0..24u32 {
            let (pool, in_use) = (pool.clone(), in_use.clone());
            tasks.push(tokio::spawn(async move {
                let lease = pool.acquire(1 + i % 2).await.unwrap();
                for id in lease.ids() {
                    assert!(in_use.lock().unwrap().insert(*id), "GPU {id} handed out twice");
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
                for id in lease.ids() {
                    in_use.lock().unwrap().remove(id);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(pool.acquire(3).await.unwrap().ids(), &[0, 1, 2]);
    }
}
