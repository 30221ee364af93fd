//! CUDA device discovery for `--device cuda:N` and batch sizing (feature `cuda`).
//! cudarc loads the driver library at run time, so a CUDA build still starts (and reports
//! "no CUDA driver") on a machine without one.
//!
//! Unverified on hardware: no GPU was available when this was written.

use cudarc::driver::CudaContext;

use super::error::{EvalError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaDeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub total_bytes: usize,
    pub free_bytes: usize,
}

fn err(e: impl std::fmt::Debug) -> EvalError {
    EvalError::Backend(format!("CUDA: {e:?}"))
}

/// Every visible CUDA device with its memory; an error when no driver can be loaded.
pub fn cuda_devices() -> Result<Vec<CudaDeviceInfo>> {
    let count = std::panic::catch_unwind(CudaContext::device_count)
        .map_err(|_| EvalError::Backend("no CUDA driver library found (libcuda.so)".into()))?
        .map_err(err)?;
    (0..count.max(0) as usize)
        .map(|ordinal| {
            let ctx = CudaContext::new(ordinal).map_err(err)?;
            let (free_bytes, total_bytes) = ctx.mem_get_info().map_err(err)?;
            Ok(CudaDeviceInfo { ordinal, name: ctx.name().map_err(err)?, total_bytes, free_bytes })
        })
        .collect()
}
