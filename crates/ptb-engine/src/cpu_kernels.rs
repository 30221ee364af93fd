//! `x · wᵀ` for linear layers on the host, reading the weight where burn keeps it.
//!
//! burn-ndarray 0.21's matmul reshapes both operands first, and its reshape always copies
//! (`to_shape(..).into_shared()` turns the borrowed view into an owned array): every call
//! copied the whole weight matrix, then matrixmultiply packed it again. For a decode step,
//! with one row per live sequence, that was nearly all the time (the 49k×576 output projection
//! of SmolLM2 took ~100 ms per step). Here:
//!
//! - up to [`MAX_ROWS`] rows: each weight row is streamed once from memory and dotted with
//!   every `x` row (memory-bound, as a matrix-vector product should be), split across cores;
//! - more rows: the `gemm` crate's kernels (AVX-512 where the CPU has it; matrixmultiply,
//!   which burn uses, stops at AVX2: swapping it for gemm alone took batch-32 prefill of
//!   SmolLM2 from ~225 to 340–400 tok/s on an AVX-512 machine), on the same buffers, split
//!   across cores by gemm.
//!
//! [`HostBuf`] is how the forward pass reaches an ndarray tensor's buffer without copying.

use std::any::Any;

use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use rayon::prelude::*;

use super::simd::{dot, widest};

/// Up to this many rows streaming the weight beats GEMM's packing on SmolLM2's shapes
/// (perf/README.md).
pub const MAX_ROWS: usize = 8;

/// Up to this many rows gemm reads the weight in place rather than packing it ([`gemm`]).
const SKINNY_ROWS: usize = 256;

/// Weight rows per single-core gemm call in the skinny orientation.
const SKINNY_BLOCK: usize = 256;

/// Weight rows per task: small enough for both cores to share out the work when one is
/// busy with something else, large enough that scheduling costs nothing.
const ROWS_PER_TASK: usize = 64;

/// A shared handle on an f32 ndarray tensor's buffer (the same allocation, reference-counted),
/// readable as a row-major slice.
#[derive(Clone)]
pub struct HostBuf(NdArrayTensor);

impl HostBuf {
    /// `None` for any other backend, element type or a non-standard layout.
    pub fn of<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Option<Self> {
        let prim = t.clone().into_primitive().tensor();
        let nd = (&prim as &dyn Any).downcast_ref::<NdArrayTensor>()?;
        match nd {
            NdArrayTensor::F32(s) if s.view().is_standard_layout() => Some(HostBuf(nd.clone())),
            _ => None,
        }
    }

    pub fn slice(&self) -> &[f32] {
        match &self.0 {
            NdArrayTensor::F32(s) => s.view().to_slice().expect("standard layout, checked in `of`"),
            _ => unreachable!("`of` keeps f32 tensors only"),
        }
    }
}

/// `y [m, n] = x [m, k] · wᵀ` for a weight `w [n, k]` as checkpoints store it, into `y`'s
/// existing allocation where it is large enough (see [`reuse`]).
pub fn matmul_wt(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut Vec<f32>) {
    // Checked in release builds too: the kernels below read through raw pointers, so a
    // shape bug must stop here as a panic, not read past a buffer. One comparison a product.
    assert_eq!((x.len(), w.len()), (m * k, n * k), "matmul_wt: x [{m}, {k}] and w [{n}, {k}] do not match their buffers");
    reuse(y, m * n);
    if m <= MAX_ROWS { streamed(x, m, k, w, n, y) } else { gemm(x, m, k, w, n, m <= SKINNY_ROWS, y) }
}

/// `buf` with `len` elements for a kernel that overwrites all of them: it keeps its
/// allocation and is not cleared. A fresh prefill-sized buffer comes from `mmap` and the
/// kernel zero-fills it page by page on first touch (~5% of a batch-32 SmolLM2 prefill).
pub fn reuse(buf: &mut Vec<f32>, len: usize) {
    buf.resize(len, 0.0);
}

/// Row-major `y [m, n]` with `y[r][j] = x[r] · w[j]`, weight rows shared out in tasks.
fn streamed(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    let task_w = ROWS_PER_TASK * k;
    if m == 1 {
        y.par_chunks_mut(ROWS_PER_TASK).zip(w.par_chunks(task_w)).for_each(|(out, w)| dot_rows(out, w, x, k));
        return;
    }
    // Column-major `[n][m]` while computing, so each task owns one contiguous slice.
    let mut yt = vec![0.0f32; n * m];
    yt.par_chunks_mut(ROWS_PER_TASK * m).zip(w.par_chunks(task_w)).for_each(|(out, w)| dot_rows(out, w, x, k));
    transpose(&yt, n, m, y);
}

widest!(
    /// `out[j][r] = w[j] · x[r]` for the weight rows `w` and all rows of `x`.
    fn dot_rows(out: &mut [f32], w: &[f32], x: &[f32], k: usize) => dot_rows_body
);

#[inline(always)]
fn dot_rows_body(out: &mut [f32], w: &[f32], x: &[f32], k: usize) {
    let m = x.len() / k;
    for (w_row, ys) in w.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
        for (y, x_row) in ys.iter_mut().zip(x.chunks_exact(k)) {
            *y = dot(w_row, x_row);
        }
    }
}

/// `y [m, n] = x [m, k] · wᵀ` by gemm's kernels (AVX-512 where the CPU has it), split
/// across cores by gemm, writing `y` in place.
///
/// The orientation matters because gemm packs an operand it cannot read in its preferred
/// layout. With `x` as the left operand (`skinny`), the weight is read where it lies and only
/// `x` is packed: right for a decode step's few rows, where packing the weight every call
/// costs about as much as the product (batch-32 decode of SmolLM2: 168 tok/s with the
/// weight packed, 262 without). With the weight on the left, gemm packs it in blocks it then
/// reuses across many rows: right for prefill (1.6× the other orientation at 2,048 rows;
/// at 64 rows the skinny one is 1.3× faster).
fn gemm(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, skinny: bool, y: &mut [f32]) {
    assert!(y.len() == m * n && x.len() == m * k && w.len() == n * k, "gemm: buffers do not match [{m}, {k}] · [{n}, {k}]ᵀ");
    if skinny {
        // Blocks of weight rows on one core each: gemm's own split of so small a product
        // across two cores ran slower than one core (perf/README.md).
        let dst = SendPtr(y.as_mut_ptr());
        (0..n.div_ceil(SKINNY_BLOCK)).into_par_iter().for_each(|b| {
            let j0 = b * SKINNY_BLOCK;
            let cols = SKINNY_BLOCK.min(n - j0);
            let dst = &dst;
            // SAFETY: y [m, n] = x [m, k] · (w as [k, n]) restricted to columns j0..j0+cols:
            // reads x (m×k) and weight rows j0..j0+cols (inside w), writes only those
            // columns of y, which no other block writes; x, w and y outlive the call.
            unsafe { gemm_one_core(m, cols, k, dst.0.add(j0), n, x.as_ptr(), k, w.as_ptr().add(j0 * k), 1, k) };
        });
        return;
    }
    // yᵀ [n, m] = w [n, k] · xᵀ [k, m]; yᵀ column-major is y row-major.
    let (k_, n_) = (k as isize, n as isize);
    let threads = gemm_common::Parallelism::Rayon(rayon::current_num_threads());
    // SAFETY: every pointer, stride and extent addresses inside `x` (m×k), `w` (n×k) and
    // `y` (m×n), which outlive the call; `y` is not aliased.
    unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(n, m, k, y.as_mut_ptr(), n_, 1, false, w.as_ptr(), 1, k_, x.as_ptr(), k_, 1, 0.0, 1.0, false, false, false, threads);
    }
}

/// `dst [m, n] = a [m, k] · b [k, n]` on this core (callers are already one of many tasks),
/// `dst` row-major with rows `dst_rs` apart, `a`'s rows `a_rs` apart, `b`'s element (i, j)
/// at `b[i * b_rs + j * b_cs]`.
///
/// # Safety
/// Every element addressed through `dst`, `a` and `b` lies inside its allocation, and no
/// other thread reads or writes the part of `dst` addressed.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_one_core(m: usize, n: usize, k: usize, dst: *mut f32, dst_rs: usize, a: *const f32, a_rs: usize, b: *const f32, b_rs: usize, b_cs: usize) {
    let i = |v: usize| v as isize;
    // SAFETY: as the caller promises.
    unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(
            m,
            n,
            k,
            dst,
            1,
            i(dst_rs),
            false,
            a,
            1,
            i(a_rs),
            b,
            i(b_cs),
            i(b_rs),
            0.0,
            1.0,
            false,
            false,
            false,
            gemm_common::Parallelism::None,
        );
    }
}

/// The output buffer, shared by the blocks of [`gemm`] that write disjoint columns of it.
struct SendPtr(*mut f32);
// SAFETY: only used to hand disjoint column blocks of one buffer to rayon tasks.
unsafe impl Sync for SendPtr {}

/// `[n][m]` → `[m][n]`.
fn transpose(yt: &[f32], n: usize, m: usize, y: &mut [f32]) {
    for (j, ys) in yt.chunks_exact(m).enumerate() {
        for (r, &v) in ys.iter().enumerate() {
            y[r * n + j] = v;
        }
    }
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
        // the dot's lanes, task counts that do not divide the rows, one and many rows, skinny
        // blocks that do not divide the weight rows.
        for (m, k, n) in [(1, 3, 1), (1, 21, 17), (3, 7, 130), (8, 16, 200), (9, 5, 70), (40, 33, 3), (9, 5, 600)] {
            let x: Vec<f32> = (0..m * k).map(|v| ((v * 7 % 11) as f32) - 5.0).collect();
            let w: Vec<f32> = (0..k * n).map(|v| ((v * 5 % 13) as f32) * 0.25 - 1.5).collect();
            let want = naive(&x, m, k, &w, n);
            // Reused buffers start out holding garbage of another size.
            let run = |f: &dyn Fn(&mut [f32])| {
                let mut y = vec![f32::NAN; 7];
                reuse(&mut y, m * n);
                f(&mut y);
                y
            };
            assert_eq!(run(&|y| streamed(&x, m, k, &w, n, y)), want, "streamed m={m} k={k} n={n}");
            assert_eq!(run(&|y| gemm(&x, m, k, &w, n, false, y)), want, "gemm m={m} k={k} n={n}");
            assert_eq!(run(&|y| gemm(&x, m, k, &w, n, true, y)), want, "skinny gemm m={m} k={k} n={n}");
        }
    }
}
