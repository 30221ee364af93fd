//! `x · wᵀ` for linear layers on the ndarray backend, reading the weight where burn keeps it.
//!
//! burn-ndarray 0.21's matmul reshapes both operands first, and its reshape always copies
//! (`to_shape(..).into_shared()` turns the borrowed view into an owned array): every call
//! copied the whole weight matrix, then matrixmultiply packed it again. For a decode step,
//! with one row per live sequence, that was nearly all the time (the 49k×576 output projection
//! of SmolLM2 took ~100 ms per step). Here:
//!
//! - up to [`MAX_ROWS`] rows: each weight row is streamed once from memory and dotted with
//!   every `x` row (memory-bound, as a matrix-vector product should be), split across cores;
//! - more rows: matrixmultiply's GEMM on views of the same buffers, without the copies,
//!   blocks of weight rows split across cores.
//!
//! Other backends keep burn's matmul. Activations are read in place too: burn-ndarray's
//! `into_data` walks elements one by one through dynamic-rank indices, which cost more than
//! the GEMM itself at 2k rows.

use std::any::Any;

use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Up to this many rows streaming the weight beats GEMM's packing on SmolLM2's shapes
/// (bench/README.md).
pub const MAX_ROWS: usize = 8;

/// Weight rows per task: small enough for both cores to share out the work when one is
/// busy with something else, large enough that scheduling costs nothing.
const ROWS_PER_TASK: usize = 64;

/// Weight rows per GEMM task: each packs its own block, so fewer, larger blocks than above.
const GEMM_ROWS_PER_TASK: usize = 256;

/// `x [.., k] · wᵀ` for `w [n, k]`, when both live contiguously on the ndarray backend;
/// `None` for any other backend or layout, where the caller uses burn's matmul.
pub fn linear<B: Backend, const D: usize>(x: &Tensor<B, D>, w: &Tensor<B, 2>) -> Option<Tensor<B, D>> {
    let [n, k] = w.dims();
    let mut shape = x.dims();
    let m = shape.iter().product::<usize>() / k.max(1);
    if m == 0 || k == 0 {
        return None;
    }
    let y = with_slice(x, |xs| {
        with_slice(w, |ws| if m <= MAX_ROWS { streamed(xs, m, k, ws, n) } else { gemm(xs, m, k, ws, n) })
    })??;
    shape[D - 1] = n;
    Some(Tensor::from_data(TensorData::new(y, shape), &x.device()))
}

/// The elements in row-major order, copied straight from the ndarray buffer when possible.
pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, String> {
    match with_slice(&t, <[f32]>::to_vec) {
        Some(v) => Ok(v),
        None => t.into_data().to_vec::<f32>().map_err(|e| format!("{e:?}")),
    }
}

/// Calls `f` on the tensor's elements in row-major order, without copying them, when it is an
/// f32 tensor of the ndarray backend in standard layout.
pub fn with_slice<B: Backend, const D: usize, R>(t: &Tensor<B, D>, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let prim = t.clone().into_primitive().tensor();
    let Some(NdArrayTensor::F32(storage)) = (&prim as &dyn Any).downcast_ref::<NdArrayTensor>() else {
        return None;
    };
    storage.view().as_slice().map(f)
}

/// Row-major `y [m, n]` with `y[r][j] = x[r] · w[j]`, weight rows shared out in tasks.
fn streamed(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
    // Column-major `[n][m]` while computing, so each task owns one contiguous slice.
    let mut yt = vec![0.0f32; n * m];
    yt.par_chunks_mut(ROWS_PER_TASK * m).enumerate().for_each(|(task, out)| {
        let j0 = task * ROWS_PER_TASK;
        for (dj, ys) in out.chunks_exact_mut(m).enumerate() {
            let w_row = &w[(j0 + dj) * k..(j0 + dj + 1) * k];
            for (r, y) in ys.iter_mut().enumerate() {
                *y = dot(w_row, &x[r * k..(r + 1) * k]);
            }
        }
    });
    if m == 1 {
        return yt;
    }
    transpose(&yt, n, m)
}

/// Eight independent partial sums, so the loop vectorises without reassociating floats.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 8;
    let mut acc = [0.0f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(p, q)| p * q).sum();
    for (pa, pb) in ca.zip(cb) {
        for i in 0..L {
            acc[i] += pa[i] * pb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// matrixmultiply's GEMM per block of weight rows (`yᵀ[blk] = w[blk] · xᵀ`), blocks shared
/// out across cores: its own threading is a crate feature burn leaves off.
fn gemm(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
    let x = ArrayView2::from_shape((m, k), x).expect("x is m×k");
    let mut yt = vec![0.0f32; n * m];
    yt.par_chunks_mut(GEMM_ROWS_PER_TASK * m).enumerate().for_each(|(task, out)| {
        let rows = out.len() / m;
        let j0 = task * GEMM_ROWS_PER_TASK;
        let w_blk = ArrayView2::from_shape((rows, k), &w[j0 * k..(j0 + rows) * k]).expect("rows×k");
        let mut y_blk = ArrayViewMut2::from_shape((rows, m), out).expect("rows×m");
        ndarray::linalg::general_mat_mul(1.0, &w_blk, &x.t(), 0.0, &mut y_blk);
    });
    transpose(&yt, n, m)
}

/// `[n][m]` → `[m][n]`.
fn transpose(yt: &[f32], n: usize, m: usize) -> Vec<f32> {
    if m == 1 {
        return yt.to_vec();
    }
    let mut y = vec![0.0f32; m * n];
    for (j, ys) in yt.chunks_exact(m).enumerate() {
        for (r, &v) in ys.iter().enumerate() {
            y[r * n + j] = v;
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0.0; m * n];
        for r in 0..m {
            for j in 0..n {
                y[r * n + j] = (0..k).map(|i| x[r * k + i] * w[j * k + i]).sum();
            }
        }
        y
    }

    #[test]
    fn both_kernels_compute_the_product() {
        // Small integers keep every sum exact, whatever the order. Sizes: a tail shorter than
        // the dot's lanes, task counts that do not divide the rows, one and many rows.
        for (m, k, n) in [(1, 3, 1), (1, 21, 17), (3, 7, 130), (8, 16, 200), (9, 5, 70), (40, 33, 3)] {
            let x: Vec<f32> = (0..m * k).map(|v| ((v * 7 % 11) as f32) - 5.0).collect();
            let w: Vec<f32> = (0..k * n).map(|v| ((v * 5 % 13) as f32) * 0.25 - 1.5).collect();
            let want = naive(&x, m, k, &w, n);
            assert_eq!(streamed(&x, m, k, &w, n), want, "streamed m={m} k={k} n={n}");
            assert_eq!(gemm(&x, m, k, &w, n), want, "gemm m={m} k={k} n={n}");
        }
    }
}
