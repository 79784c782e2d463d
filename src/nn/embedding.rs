//! Item + learned-position embedding lookup with a scatter-add backward.
//!
//! Row r of the output is `item_emb[items[r]] + pos_emb[positions[r]]`.
//! Item id 0 is padding: its row is never read for real tokens (padded
//! columns are skipped by the model) and never receives gradient.

use crate::kernels::Kernels;

/// out (rows, d) = `item_emb[items] + pos_emb[positions]`.
///
/// `item_emb` is (N+1, d), `pos_emb` is (P, d). Panics on an id or position
/// out of range (callers validate batches first).
pub fn embedding_forward<T: Kernels>(
    out: &mut [T],
    items: &[u32],
    positions: &[u32],
    item_emb: &[T],
    pos_emb: &[T],
    d: usize,
) {
    assert_eq!(
        items.len(),
        positions.len(),
        "embedding: items/positions length"
    );
    assert_eq!(out.len(), items.len() * d, "embedding: output shape");
    for ((row, &item), &pos) in out.chunks_exact_mut(d).zip(items).zip(positions) {
        let (i, p) = (item as usize * d, pos as usize * d);
        <T as Kernels>::add(row, &item_emb[i..i + d], &pos_emb[p..p + d]);
    }
}

/// Scatter-add backward: `ditem_emb[items[r]] += dout[r]` (skipping item 0,
/// the padding row, which must stay untrained) and `dpos_emb[positions[r]] += dout[r]`.
pub fn embedding_backward<T: Kernels>(
    ditem_emb: &mut [T],
    dpos_emb: &mut [T],
    dout: &[T],
    items: &[u32],
    positions: &[u32],
    d: usize,
) {
    assert_eq!(
        dout.len(),
        items.len() * d,
        "embedding backward: dout shape"
    );
    for ((row, &item), &pos) in dout.chunks_exact(d).zip(items).zip(positions) {
        if item != 0 {
            let i = item as usize * d;
            T::axpy(&mut ditem_emb[i..i + d], T::ONE, row);
        }
        let p = pos as usize * d;
        T::axpy(&mut dpos_emb[p..p + d], T::ONE, row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_lookup_and_scatter_add() {
        // N = 2 items (+ padding row 0), d = 2, 3 positions.
        let item_emb = [0.0, 0.0, 1.0, 2.0, 3.0, 4.0];
        let pos_emb = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
        let items = [2, 1, 2, 0];
        let positions = [0, 1, 2, 2];
        let mut out = [f64::NAN; 8];
        embedding_forward(&mut out, &items, &positions, &item_emb, &pos_emb, 2);
        assert_eq!(out, [13.0, 24.0, 31.0, 42.0, 53.0, 64.0, 50.0, 60.0]);

        let dout = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let mut di = [0.0; 6];
        let mut dp = [0.0; 6];
        embedding_backward(&mut di, &mut dp, &dout, &items, &positions, 2);
        // item 2 appears twice (rows 0 and 2) → sum; padding row untouched.
        assert_eq!(di, [0.0, 0.0, 3.0, 4.0, 6.0, 8.0]);
        assert_eq!(dp, [1.0, 2.0, 3.0, 4.0, 12.0, 14.0]);
    }
}
