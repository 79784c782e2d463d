//! `f32` scoring kernel: out = α·Q·Itemsᵀ for a few query rows.

use crate::ops::Trans;
use crate::reference::score::check_score_shapes;

/// out (q×n) = α · queries (q×d) · itemsᵀ (items is n×d), with
/// q = queries.len()/d and n = items.len()/d. `out` is only written; α = 0
/// gives zeros. Panics if d = 0 or a slice length does not match.
pub fn score(out: &mut [f32], queries: &[f32], items: &[f32], d: usize, alpha: f32) {
    let (q, n) = check_score_shapes(out.len(), queries.len(), items.len(), d);
    super::matmul::gemm(q, n, d, alpha, queries, Trans::N, items, Trans::T, 0.0, out);
}
