//! Tensors onto the host as f32, for the sampler: a decode step's logits, every step.
//!
//! Two costs dominate at batch 64 and a 152k vocabulary (39 MB of f32 a step): the copy off
//! the device, halved by leaving 16-bit logits in their dtype ([`crate::model::Model::forward`])
//! and widening them here, exactly; and the host allocation the copy lands in, whose pages
//! a fresh buffer faults in every step. `cargo bench --bench sampling` times both.

use burn::prelude::*;
use burn::tensor::DType;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use super::cpu_kernels::HostBuf;
use super::error::EvalError;

/// Elements per task when widening: a few per core even at batch 1.
const CHUNK: usize = 1 << 16;

/// The elements in row-major order as f32 (16-bit ones widened, exactly) in `out`, keeping
/// its allocation: an ndarray tensor is copied from its own buffer, any other read off its
/// device first.
pub fn to_vec_into<B: Backend, const D: usize>(t: Tensor<B, D>, out: &mut Vec<f32>) -> Result<(), EvalError> {
    match HostBuf::of(&t) {
        Some(h) => {
            out.clear();
            out.extend_from_slice(h.slice());
            Ok(())
        }
        None => data_into(t.into_data(), out),
    }
}

/// `data` as f32 in `out`: 16-bit floats widened in parallel into `out`'s allocation; f32
/// data becomes `out` without a copy (its allocation is the device read's).
pub fn data_into(data: TensorData, out: &mut Vec<f32>) -> Result<(), EvalError> {
    let err = |e| EvalError::Backend(format!("reading logits off the device: {e:?}"));
    match data.dtype {
        DType::BF16 => widen(data.as_slice::<half::bf16>().map_err(err)?, out),
        DType::F16 => widen(data.as_slice::<half::f16>().map_err(err)?, out),
        _ => *out = data.into_vec::<f32>().map_err(err)?,
    }
    Ok(())
}

fn widen<T: Sync>(src: &[T], out: &mut Vec<f32>)
where
    [T]: HalfFloatSliceExt,
{
    out.resize(src.len(), 0.0);
    out.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(o, s)| s.convert_to_f32_slice(o));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_data_widens_exactly_into_a_reused_buffer() {
        let xs = [1.0f32, -2.5, 3.0e-3, 65504.0, -0.0, 1.0e-6];
        for dtype in [DType::BF16, DType::F16] {
            let data = TensorData::new(xs.to_vec(), [2, 3]).convert_dtype(dtype);
            let want = data.clone().convert::<f32>().into_vec::<f32>().unwrap();
            // A longer buffer from an earlier, larger step.
            let mut out = vec![f32::NAN; 100];
            data_into(data, &mut out).unwrap();
            assert_eq!(out, want, "{dtype:?}");
        }
        let mut out = vec![7.0; 2];
        data_into(TensorData::new(xs.to_vec(), [6]), &mut out).unwrap();
        assert_eq!(out, xs);
    }
}
