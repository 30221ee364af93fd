//! `--device cpu|cuda:N|wgpu` → a burn backend. Callers put their backend-generic
//! work in an [`OnDevice`]; this module is the only place that knows which
//! backends the build has (CUDA only with the `cuda` feature, wgpu with `wgpu`).

use burn::prelude::Backend;
use std::fmt;
use std::str::FromStr;

use super::error::EvalError;

/// Where the engine runs: `cpu`, `cuda:N` (`cuda` is `cuda:0`) or `wgpu`. Which
/// of them this build can use is decided when work starts ([`on_device`]), so a
/// spec or a command line naming CUDA parses in a CPU-only build too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
    Wgpu,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
            Device::Wgpu => f.write_str("wgpu"),
        }
    }
}

impl FromStr for Device {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Self, EvalError> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "wgpu" => Ok(Device::Wgpu),
            "cuda" => Ok(Device::Cuda(0)),
            d => d
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| EvalError::Backend(format!("unknown device `{d}` (cpu, cuda:N or wgpu)"))),
        }
    }
}

/// Work that runs on whichever backend the device string selects. `memory`: the bytes the
/// work may use on the device (for [`super::EngineOptions::memory`]), where the device says.
pub trait OnDevice {
    type Output;
    type Error: From<EvalError>;
    fn run<B: Backend>(self, device: &B::Device, memory: Option<u64>) -> Result<Self::Output, Self::Error>;
}

pub fn on_device<T: OnDevice>(device: Device, work: T) -> Result<T::Output, T::Error> {
    match device {
        Device::Cpu => work.run::<super::Cpu>(&Default::default(), None),
        Device::Cuda(index) => cuda(index, work),
        Device::Wgpu => wgpu(work),
    }
}

/// The first Vulkan adapter wgpu finds (a GPU, or lavapipe on a CPU): burn's ops through
/// cubecl, the path the CUDA backend runs, where no CUDA device is at hand.
#[cfg(feature = "wgpu")]
fn wgpu<T: OnDevice>(work: T) -> Result<T::Output, T::Error> {
    work.run::<burn::backend::Wgpu>(&Default::default(), None)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu<T: OnDevice>(_: T) -> Result<T::Output, T::Error> {
    Err(EvalError::Backend("device `wgpu` needs a ptb built with `--features wgpu`".into()).into())
}

#[cfg(feature = "cuda")]
fn cuda<T: OnDevice>(index: usize, work: T) -> Result<T::Output, T::Error> {
    let d = Device::Cuda(index);
    let devices = super::gpu::cuda_devices()?;
    let info = devices.get(index).ok_or_else(|| EvalError::Backend(format!("no CUDA device {index} ({} visible)", devices.len())))?;
    eprintln!("{d}: {} ({:.1} of {:.1} GiB free)", info.name, info.free_bytes as f64 / 1073741824.0, info.total_bytes as f64 / 1073741824.0);
    // The share of the free memory an engine takes, as vLLM's `gpu_memory_utilization`.
    let memory = (info.free_bytes as f64 * 0.9) as u64;
    work.run::<burn::backend::Cuda>(&burn::backend::cuda::CudaDevice::new(index), Some(memory))
}

#[cfg(not(feature = "cuda"))]
fn cuda<T: OnDevice>(index: usize, _: T) -> Result<T::Output, T::Error> {
    Err(EvalError::Backend(format!("device `{}` needs a ptb built with `--features cuda`", Device::Cuda(index))).into())
}
