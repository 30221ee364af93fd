//! `--dtype`: the float type the linear layers' weights and the KV cache are held in, and
//! every matrix product's inputs are rounded to.
//!
//! A 1.7B model's decode step reads every weight once, so weight bytes set its speed on a
//! GPU: bf16 halves them against f32 and runs the products on tensor cores; a bf16 KV cache
//! (as vLLM's) fits twice the rows. The residual stream, norms, RoPE, attention scores,
//! softmax and logits stay f32, as transformers keeps its norms and softmax in f32: only
//! the products round their inputs. `auto` picks the checkpoint's own storage type when the device computes in it,
//! so a bf16 checkpoint runs in bf16 on an H100 and in f32 on the CPU, and an f32
//! checkpoint is never rounded down.

use std::fmt;
use std::str::FromStr;

use burn::prelude::Backend;
use burn::tensor::DType;

use super::error::{EvalError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Auto,
    F32,
    F16,
    Bf16,
}

impl Precision {
    /// The dtype to load weights in, given what the checkpoint stores (`None` when it is
    /// quantised or mixed: then f32). An explicit choice the device cannot compute in is an
    /// error rather than a silent f32 run.
    pub fn resolve<B: Backend>(self, stored: Option<DType>, device: &B::Device) -> Result<DType> {
        let wanted = match self {
            Precision::Auto => {
                return Ok(stored.filter(|&d| d != DType::F32 && B::supports_dtype(device, d)).unwrap_or(DType::F32));
            }
            Precision::F32 => return Ok(DType::F32),
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        };
        if B::supports_dtype(device, wanted) {
            Ok(wanted)
        } else {
            Err(EvalError::Backend(format!("device {device:?} cannot compute in {self}; use `--dtype f32` or `--dtype auto`")))
        }
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Precision::Auto),
            "f32" | "float32" => Ok(Precision::F32),
            "f16" | "float16" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(format!("unknown dtype `{s}` (auto, f32, f16 or bf16)")),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cpu;

    #[test]
    fn auto_on_the_cpu_computes_in_f32_whatever_the_checkpoint_stores() {
        let d = Default::default();
        for stored in [None, Some(DType::F32), Some(DType::F16), Some(DType::BF16)] {
            assert_eq!(Precision::Auto.resolve::<Cpu>(stored, &d).unwrap(), DType::F32);
        }
    }

    #[test]
    fn an_explicit_dtype_the_device_lacks_is_an_error_naming_the_fix() {
        let e = Precision::Bf16.resolve::<Cpu>(Some(DType::BF16), &Default::default()).unwrap_err().to_string();
        assert!(e.contains("cannot compute in bf16") && e.contains("--dtype f32"), "{e}");
    }

    #[test]
    fn parses_what_it_prints() {
        for p in [Precision::Auto, Precision::F32, Precision::F16, Precision::Bf16] {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        assert!("fp8".parse::<Precision>().unwrap_err().contains("auto, f32, f16 or bf16"));
    }
}
