//! One layer's keys and values in host memory, for the CPU forward pass: preallocated, so a
//! decode step writes its new position in place. The burn-tensor cache concatenates, which
//! copies the whole cache every step (~10% of a batch-32 step on SmolLM2, more as the
//! cache grows).
//!
//! Layout `[row][kv_head][cap][head_dim]` for keys and values alike, positions
//! `start..start + len` of `cap` in use: attention reads one head's keys contiguously, and
//! dropping positions from the front (every row's padding) is moving `start`.

/// Free positions a new buffer gets beyond what it must hold, so the next decode steps
/// write in place.
const SLACK: usize = 32;

pub struct HostKv {
    k: Vec<f32>,
    v: Vec<f32>,
    rows: usize,
    heads: usize,
    dim: usize,
    cap: usize,
    start: usize,
    len: usize,
}

/// Keys (or values) of one (row, head): `len` vectors of `dim`, position 0 first.
pub struct HeadView<'a> {
    pub k: &'a [f32],
    pub v: &'a [f32],
}

impl HostKv {
    pub fn new(rows: usize, heads: usize, dim: usize) -> Self {
        HostKv { k: vec![], v: vec![], rows, heads, dim, cap: 0, start: 0, len: 0 }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn heads(&self) -> usize {
        self.heads
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// A cache of `rows` rows with room for `cap` zero positions, none of them in use.
    fn zeroed(rows: usize, heads: usize, dim: usize, cap: usize) -> Self {
        let n = rows * heads * cap * dim;
        HostKv { k: vec![0.0; n], v: vec![0.0; n], rows, heads, dim, cap, start: 0, len: 0 }
    }

    fn block(&self) -> usize {
        self.cap * self.dim
    }

    /// Appends `t` positions to every row: `k`, `v` are `[row][t][head][dim]`, as the
    /// projections produce them.
    pub fn append(&mut self, k: &[f32], v: &[f32], t: usize) {
        let (rows, heads, dim) = (self.rows, self.heads, self.dim);
        assert_eq!(k.len(), rows * t * heads * dim, "keys: [row][t][head][dim]");
        if self.start + self.len + t > self.cap {
            // Amortised doubling; a prefill's cache gets room for a few dozen more tokens.
            self.reserve((2 * self.len).max(self.len + t + SLACK));
        }
        let at = self.start + self.len;
        let block = self.block();
        for r in 0..rows {
            for h in 0..heads {
                let dst = (r * heads + h) * block + at * dim;
                for ti in 0..t {
                    let src = ((r * t + ti) * heads + h) * dim;
                    self.k[dst + ti * dim..dst + (ti + 1) * dim].copy_from_slice(&k[src..src + dim]);
                    self.v[dst + ti * dim..dst + (ti + 1) * dim].copy_from_slice(&v[src..src + dim]);
                }
            }
        }
        self.len += t;
    }

    /// Moves the used positions to a fresh buffer of `cap` positions, starting at 0.
    fn reserve(&mut self, cap: usize) {
        let mut fresh = HostKv::zeroed(self.rows, self.heads, self.dim, cap);
        self.copy_into(&mut fresh, 0, 0);
        fresh.len = self.len;
        *self = fresh;
    }

    /// Copies the used positions of every (row, head) into `out`'s buffer, from its (row,
    /// head) number `first` on, `pad` positions in (`out.start` is 0).
    fn copy_into(&self, out: &mut HostKv, first: usize, pad: usize) {
        for rh in 0..self.rows * self.heads {
            let view = self.head_at(rh);
            let dst = (first + rh) * out.block() + pad * out.dim;
            out.k[dst..dst + view.k.len()].copy_from_slice(view.k);
            out.v[dst..dst + view.v.len()].copy_from_slice(view.v);
        }
    }

    /// The used keys and values of row `r`, head `h`.
    pub fn head(&self, r: usize, h: usize) -> HeadView<'_> {
        self.head_at(r * self.heads + h)
    }

    fn head_at(&self, rh: usize) -> HeadView<'_> {
        let from = rh * self.block() + self.start * self.dim;
        let to = from + self.len * self.dim;
        HeadView { k: &self.k[from..to], v: &self.v[from..to] }
    }

    /// Keeps only the rows `keep` (ascending, as the engine gives them).
    pub fn retain_rows(&mut self, keep: &[usize]) {
        debug_assert!(keep.windows(2).all(|w| w[0] < w[1]));
        let rb = self.heads * self.block();
        for (to, &from) in keep.iter().enumerate() {
            if to != from {
                self.k.copy_within(from * rb..(from + 1) * rb, to * rb);
                self.v.copy_within(from * rb..(from + 1) * rb, to * rb);
            }
        }
        self.rows = keep.len();
        self.k.truncate(self.rows * rb);
        self.v.truncate(self.rows * rb);
    }

    /// Drops the first `n` positions of every row.
    pub fn trim_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.start += n;
        self.len -= n;
    }

    /// Appends `other`'s rows after these, left-padding the shorter cache with zero positions
    /// (hidden by the mask) to the longer's length. Returns the padding added in front of
    /// (these rows, `other`'s).
    pub fn append_rows(&mut self, other: &HostKv) -> (usize, usize) {
        let len = self.len.max(other.len);
        let (pa, pb) = (len - self.len, len - other.len);
        let mut out = HostKv::zeroed(self.rows + other.rows, self.heads, self.dim, len + SLACK);
        self.copy_into(&mut out, 0, pa);
        other.copy_into(&mut out, self.rows * self.heads, pb);
        out.len = len;
        *self = out;
        (pa, pb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys and values of `t` positions for `rows` rows; value = key + 0.5.
    fn step(rows: usize, heads: usize, dim: usize, t: usize, first: f32) -> (Vec<f32>, Vec<f32>) {
        let k: Vec<f32> = (0..rows * t * heads * dim).map(|i| first + i as f32).collect();
        let v = k.iter().map(|x| x + 0.5).collect();
        (k, v)
    }

    /// Row r, head h of `[row][t][head][dim]` input, as `[position][dim]`.
    fn expect(k: &[f32], heads: usize, dim: usize, t: usize, r: usize, h: usize) -> Vec<f32> {
        (0..t).flat_map(|ti| k[((r * t + ti) * heads + h) * dim..][..dim].to_vec()).collect()
    }

    #[test]
    fn appended_positions_read_back_per_head_across_growth() {
        let (rows, heads, dim) = (2, 3, 4);
        let mut kv = HostKv::new(rows, heads, dim);
        let (k0, v0) = step(rows, heads, dim, 5, 0.0);
        kv.append(&k0, &v0, 5);
        let mut want_k: Vec<Vec<f32>> = (0..rows * heads).map(|rh| expect(&k0, heads, dim, 5, rh / heads, rh % heads)).collect();
        // Enough single steps to outgrow the first allocation twice.
        for s in 0..100 {
            let (k, v) = step(rows, heads, dim, 1, 1000.0 * (s + 1) as f32);
            kv.append(&k, &v, 1);
            for (rh, w) in want_k.iter_mut().enumerate() {
                w.extend(expect(&k, heads, dim, 1, rh / heads, rh % heads));
            }
        }
        assert_eq!(kv.len(), 105);
        for (rh, w) in want_k.iter().enumerate() {
            let view = kv.head(rh / heads, rh % heads);
            assert_eq!(view.k, &w[..]);
            assert_eq!(view.v, &w.iter().map(|x| x + 0.5).collect::<Vec<_>>()[..]);
        }
    }

    #[test]
    fn retain_trim_and_append_rows_keep_the_right_positions() {
        let (heads, dim) = (2, 2);
        let mut a = HostKv::new(3, heads, dim);
        let (k, v) = step(3, heads, dim, 4, 0.0);
        a.append(&k, &v, 4);
        a.retain_rows(&[0, 2]);
        assert_eq!(a.rows(), 2);
        assert_eq!(a.head(1, 1).k, &expect(&k, heads, dim, 4, 2, 1)[..]);
        a.trim_front(1);
        assert_eq!(a.len(), 3);
        assert_eq!(a.head(1, 0).k, &expect(&k, heads, dim, 4, 2, 0)[dim..]);

        let mut b = HostKv::new(1, heads, dim);
        let (kb, vb) = step(1, heads, dim, 5, 500.0);
        b.append(&kb, &vb, 5);
        assert_eq!(a.append_rows(&b), (2, 0));
        assert_eq!((a.rows(), a.len()), (3, 5));
        let padded: Vec<f32> = [vec![0.0; 2 * dim], expect(&k, heads, dim, 4, 0, 1)[dim..].to_vec()].concat();
        assert_eq!(a.head(0, 1).k, &padded[..]);
        assert_eq!(a.head(2, 1).v, &expect(&vb, heads, dim, 5, 0, 1)[..]);
        // Still appendable after the splice.
        let (k1, v1) = step(3, heads, dim, 1, 9000.0);
        a.append(&k1, &v1, 1);
        assert_eq!(&a.head(2, 0).k[5 * dim..], &expect(&k1, heads, dim, 1, 2, 0)[..]);
    }
}
