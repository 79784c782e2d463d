//! Building blocks of latent reasoning (method.md §2–§4) that do not depend on
//! the encoder internals:
//!
//! * [`kmeans`]: seeded, deterministic, warm-startable K-means++ on the rows
//!   of a matrix (the detached item embeddings E[1..N]);
//! * [`hierarchy`]: the geometric cluster-count schedule of Hierarchical
//!   Process Supervision and the per-level [`hierarchy::Prototypes`];
//! * [`hps`]: the two HPS losses (`prototype`, `cluster_soft`) with
//!   hand-derived gradients;
//! * [`indicators`]: the three Adaptive Reasoning Halting indicators
//!   (normalised entropy, Jensen–Shannon between consecutive steps, relative
//!   hidden-state change);
//! * [`halting`]: the two halting rules (thresholds and the learned gate with
//!   its loss and gradient) and the threshold calibration sweep;
//! * [`erl`]: the ReaRec-ERL objective (mean-state CE − λ·pairwise KL with
//!   stop-gradient) with hand-derived gradients;
//! * [`prl`]: the ReaRec-PRL objective (progressively tempered item CEs and
//!   the reasoning contrastive loss) with hand-derived gradients;
//! * [`compaction`]: per-row early exit with stable batch compaction;
//! * [`flops`]: per-user FLOP accounting of encoding, reasoning steps,
//!   indicators and item scoring.

pub mod compaction;
pub mod erl;
pub mod flops;
pub mod halting;
pub mod hierarchy;
pub mod hps;
pub mod indicators;
pub mod kmeans;
pub mod prl;

/// Most samples per block of the per-state item losses (ERL, PRL): the
/// model's chunk of rows.
const MAX_SAMPLE_BLOCK: usize = 64;
/// Most logits (block rows × N) one block of those losses holds: 8 MB in f32.
const LOGITS_BUDGET: usize = 1 << 21;

/// Samples per block for `rows` samples of `row_width` logits each: as many
/// as fit [`LOGITS_BUDGET`], at least one, at most [`MAX_SAMPLE_BLOCK`].
fn sample_block(rows: usize, row_width: usize) -> usize {
    (LOGITS_BUDGET / row_width.max(1))
        .clamp(1, MAX_SAMPLE_BLOCK)
        .min(rows.max(1))
}

/// Checks the shapes shared by the per-state item losses (ERL, PRL): `hidden`
/// and `dhidden` are (rows × states × d) for one row per target, `items` and
/// `ditems` are (N × d), and every target is an item id in 1 … N.
/// Returns N. Panics on a mismatch (a caller bug).
fn check_state_shapes<T>(
    dhidden: Option<&[T]>,
    ditems: Option<&[T]>,
    hidden: &[T],
    items: &[T],
    targets: &[u32],
    states: usize,
    d: usize,
) -> usize {
    let rows = targets.len();
    assert!(d > 0 && states > 0, "d and states must be positive");
    let n = items.len() / d;
    assert_eq!(items.len(), n * d, "items must be N × d");
    assert_eq!(
        hidden.len(),
        rows * states * d,
        "hidden must be rows × states × d"
    );
    if let Some(g) = dhidden {
        assert_eq!(g.len(), hidden.len(), "dhidden must be rows × states × d");
    }
    if let Some(g) = ditems {
        assert_eq!(g.len(), n * d, "ditems must be N × d");
    }
    if let Some(&y) = targets.iter().find(|&&y| y == 0 || y as usize > n) {
        panic!("target item {y} out of range 1..={n}");
    }
    n
}
