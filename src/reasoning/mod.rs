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
