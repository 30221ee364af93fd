//! The attention mask rule, one definition for both forward passes (burn's
//! ops in `model`, the CPU kernels in `host_ops`).

/// Whether the query at position `query` attends to the key at `key`: causal, not a padding
/// key (`pad` of them lead the row), inside the sliding window. A query always sees itself,
/// so a padding query's softmax is never empty (which would give NaN). Both forward passes
/// use this rule.
#[inline(always)]
pub(crate) fn visible(query: usize, key: usize, pad: usize, window: Option<usize>) -> bool {
    key == query || (key < query && key >= pad && window.is_none_or(|w| query - key < w))
}
