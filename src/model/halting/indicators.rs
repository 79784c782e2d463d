//! The Adaptive Reasoning Halting indicators of method.md §3, at reasoning
//! step t ≥ 1, with p_t = softmax(h_t · E[1..N]ᵀ / τ):
//!
//! ```text
//! confidence   Ĥ_t = H(p_t) / ln N            ∈ [0, 1]      (H in nats)
//! consistency  D_t = JS(p_t, p_{t−1})         ∈ [0, ln 2]   (nats, NOT normalised)
//! convergence  Δ_t = ‖h_t − h_{t−1}‖ / (‖h_{t−1}‖ + 1e-6)   ≥ 0
//! ```
//!
//! Low values mean "ready to stop". JS(p, q) = ½·KL(p‖m) + ½·KL(q‖m) with
//! m = (p + q)/2 and natural logarithms, so it is bounded by ln 2 ≈ 0.693
//! (divide by ln 2 for a [0, 1] scale); thresholds θ_D are in nats.
//!
//! The functions take any probability row, so Ĥ and D can also be computed
//! over the finest prototype level instead of all N items (N is then the
//! number of prototypes). Sums over the N entries are accumulated in f64
//! whatever `T` is (N is in the thousands, and f32 partial sums would lose
//! ~N·2⁻²⁴ relative), then rounded to `T`.
//!
//! Indicator space ([`IndicatorSpace`], [`IndicatorBasis`]). By default
//! p_t is over all N items, so at every step the indicators cost a full
//! scoring pass (2·N·d) on top of the step. With
//! [`IndicatorSpace::Prototypes`], p_t = softmax(h_t · Cᵀ / τ) over the k
//! centroids C of the finest prototype level (level T_max − 1 of the HPS
//! hierarchy, k ≪ N), Ĥ_t = H(p_t)/ln k and D_t = JS over those k; Δ_t is
//! unchanged. Item scores are then computed only once per row, at the step
//! it halts.
//!
//! The functions above are the f64 reference. Inference uses the fast f32
//! path of the same quantities ([`softmax_entropy`], [`mixture_entropy`],
//! [`fast_indicators`]): no logarithm per item for Ĥ (the entropy comes
//! from the identity H(p) = logsumexp(z) − Σ p_i z_i on the logits the
//! softmax already exponentiates), one vectorised `ln` per item for the
//! mixture entropy of D = H((p+q)/2) − ½(H(p) + H(q)), partial sums in
//! `f32x8` lanes over blocks of [`BLOCK`] items finished in f64.
//!
//! ```
//! use dtrec::model::halting::indicators::{jensen_shannon, normalized_entropy};
//! let uniform = [0.25f32; 4];
//! assert!((normalized_entropy(&uniform) - 1.0).abs() < 1e-6);
//! assert_eq!(jensen_shannon(&uniform, &uniform), 0.0);
//! ```

use std::fmt;

use dtrec_kernels::{Kernels, Trans};
use serde::{Deserialize, Serialize};
use wide::f32x8;

use crate::model::prototypes::Prototypes;

/// ε in the denominator of the relative change Δ_t.
pub const DELTA_EPS: f64 = 1e-6;

/// The three indicators of one row at one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Indicators<T> {
    /// Normalised entropy Ĥ_t ∈ [0, 1].
    pub entropy: T,
    /// Jensen–Shannon divergence D_t(p_t, p_{t−1}) in nats, ∈ [0, ln 2].
    pub js: T,
    /// Relative hidden-state change Δ_t ≥ 0.
    pub delta: T,
}

/// Where the distributions p_t of the confidence and consistency
/// indicators live (module docs). Config spelling `items` / `prototypes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndicatorSpace {
    /// p_t over all N items (method.md's definition).
    #[default]
    Items,
    /// p_t over the k centroids of the finest prototype level (T_max − 1).
    Prototypes,
}

impl IndicatorSpace {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            IndicatorSpace::Items => "items",
            IndicatorSpace::Prototypes => "prototypes",
        }
    }
}

/// Why a set of indicator centroids was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BasisError {
    /// Fewer than 2 centroids: a distribution over one outcome has no
    /// entropy to normalise (ln 1 = 0).
    TooFewCentroids {
        /// The number given.
        k: usize,
    },
    /// The centroid matrix is not k × d (or d = 0).
    ShapeMismatch {
        /// Values given.
        len: usize,
        /// Centroids k.
        k: usize,
        /// Width d.
        d: usize,
    },
    /// A centroid holds NaN or ±∞.
    NotFinite {
        /// The first bad centroid (row).
        row: usize,
    },
    /// The prototype space was asked for without a prototype hierarchy.
    NoPrototypes,
    /// The hierarchy has no level below the item level (T_max = 0).
    NoPrototypeLevel,
}

impl fmt::Display for BasisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BasisError::TooFewCentroids { k } => write!(
                f,
                "indicator centroids: {k} given, at least 2 are needed (entropy is normalised by ln k)"
            ),
            BasisError::ShapeMismatch { len, k, d } => write!(
                f,
                "indicator centroids: {len} values are not {k} × {d} (d ≥ 1)"
            ),
            BasisError::NotFinite { row } => {
                write!(f, "indicator centroids: centroid {row} is not finite")
            }
            BasisError::NoPrototypes => write!(
                f,
                "indicator space `prototypes` needs a prototype hierarchy, and there is none"
            ),
            BasisError::NoPrototypeLevel => write!(
                f,
                "indicator space `prototypes` needs a prototype level below the item level (T_max ≥ 1)"
            ),
        }
    }
}

impl std::error::Error for BasisError {}

/// The k centroids (k × d, row-major) the prototype-space indicators are
/// computed over: k ≥ 2, every value finite (checked on construction).
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorCentroids {
    k: usize,
    d: usize,
    data: Vec<f32>,
}

impl IndicatorCentroids {
    /// Validates `data` as k × d centroids.
    ///
    /// ```
    /// use dtrec::model::halting::indicators::{BasisError, IndicatorCentroids};
    /// let c = IndicatorCentroids::new(vec![1.0, 0.0, 0.0, 1.0], 2, 2).unwrap();
    /// assert_eq!((c.k(), c.d()), (2, 2));
    /// assert_eq!(IndicatorCentroids::new(vec![1.0, 0.0], 1, 2), Err(BasisError::TooFewCentroids { k: 1 }));
    /// ```
    pub fn new(data: Vec<f32>, k: usize, d: usize) -> Result<Self, BasisError> {
        if k < 2 {
            return Err(BasisError::TooFewCentroids { k });
        }
        if d == 0 || k.checked_mul(d) != Some(data.len()) {
            return Err(BasisError::ShapeMismatch {
                len: data.len(),
                k,
                d,
            });
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(BasisError::NotFinite { row: i / d });
        }
        Ok(Self { k, d, data })
    }

    /// The centroids of the finest prototype level of `prototypes` (level
    /// T_max − 1; the last level is the item level itself).
    pub fn finest_level(prototypes: &Prototypes<f32>) -> Result<Self, BasisError> {
        let levels = prototypes.levels();
        if levels.len() < 2 {
            return Err(BasisError::NoPrototypeLevel);
        }
        let level = &levels[levels.len() - 2];
        Self::new(level.centroids.clone(), level.k, prototypes.d())
    }

    /// Number of centroids k.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Width d.
    pub fn d(&self) -> usize {
        self.d
    }

    /// The centroids, (k × d) row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
}

/// An [`IndicatorSpace`] with what it needs: nothing for the items (the
/// model's own table), the centroids for the prototypes.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum IndicatorBasis {
    /// p_t over the N items.
    #[default]
    Items,
    /// p_t over these centroids.
    Prototypes(IndicatorCentroids),
}

impl IndicatorBasis {
    /// The basis of `space`: for [`IndicatorSpace::Prototypes`], the finest
    /// level of `prototypes` (an error if there is none).
    pub fn of(
        space: IndicatorSpace,
        prototypes: Option<&Prototypes<f32>>,
    ) -> Result<Self, BasisError> {
        match space {
            IndicatorSpace::Items => Ok(IndicatorBasis::Items),
            IndicatorSpace::Prototypes => {
                let p = prototypes.ok_or(BasisError::NoPrototypes)?;
                IndicatorCentroids::finest_level(p).map(IndicatorBasis::Prototypes)
            }
        }
    }

    /// The space.
    pub fn space(&self) -> IndicatorSpace {
        match self {
            IndicatorBasis::Items => IndicatorSpace::Items,
            IndicatorBasis::Prototypes(_) => IndicatorSpace::Prototypes,
        }
    }

    /// Number of outcomes of p_t for a model of `n_items` items: N or k.
    pub fn outcomes(&self, n_items: usize) -> usize {
        match self {
            IndicatorBasis::Items => n_items,
            IndicatorBasis::Prototypes(c) => c.k(),
        }
    }
}

/// probs (rows × n_items) = softmax(hidden · itemsᵀ / τ) row by row, where
/// hidden is (rows × d) and items = E[1..=N] is (n_items × d). The softmax
/// subtracts the row maximum (the kernel's), so large logits do not
/// overflow. Panics on inconsistent slice lengths (a caller bug).
pub fn item_probabilities<T: Kernels>(
    probs: &mut [T],
    hidden: &[T],
    items: &[T],
    rows: usize,
    n_items: usize,
    d: usize,
    tau: T,
) {
    assert_eq!(probs.len(), rows * n_items, "probs must be rows × n_items");
    assert_eq!(hidden.len(), rows * d, "hidden must be rows × d");
    assert_eq!(items.len(), n_items * d, "items must be n_items × d");
    if rows == 0 || n_items == 0 {
        return;
    }
    let mut logits = vec![T::ZERO; rows * n_items]; // (rows, N)
    T::gemm(
        rows,
        n_items,
        d,
        T::ONE / tau,
        hidden,
        Trans::N,
        items,
        Trans::T,
        T::ZERO,
        &mut logits,
    );
    for (p, z) in probs
        .chunks_exact_mut(n_items)
        .zip(logits.chunks_exact(n_items))
    {
        T::softmax_forward(p, z, 0..n_items);
    }
}

/// Ĥ = −Σ p_i ln p_i / ln N over one probability row of length N (0·ln 0 =
/// 0). N ≤ 1 gives 0 (a single outcome carries no uncertainty). The result
/// is clamped to [0, 1]: rounding can put a uniform row a few ulps above 1.
pub fn normalized_entropy<T: Kernels>(probs: &[T]) -> T {
    let n = probs.len();
    if n <= 1 {
        return T::ZERO;
    }
    let h: f64 = probs
        .iter()
        .map(|&p| p.to_f64())
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    T::from_f64((h / (n as f64).ln()).clamp(0.0, 1.0))
}

/// Jensen–Shannon divergence in nats between two probability rows of equal
/// length: ½·Σ p ln(p/m) + ½·Σ q ln(q/m), m = (p + q)/2, terms with a zero
/// probability contributing 0. Symmetric bit for bit (each entry's two terms
/// are added before the row sum); clamped to [0, ln 2] against rounding.
/// Panics if the lengths differ.
pub fn jensen_shannon<T: Kernels>(p: &[T], q: &[T]) -> T {
    assert_eq!(p.len(), q.len(), "jensen_shannon: rows differ in length");
    let term = |a: f64, m: f64| if a > 0.0 { a * (a / m).ln() } else { 0.0 };
    let js: f64 = p
        .iter()
        .zip(q)
        .map(|(&a, &b)| {
            let (a, b) = (a.to_f64(), b.to_f64());
            let m = 0.5 * (a + b);
            term(a, m) + term(b, m)
        })
        .sum::<f64>()
        * 0.5;
    T::from_f64(js.clamp(0.0, core::f64::consts::LN_2))
}

/// Δ = ‖h − h_prev‖ / (‖h_prev‖ + 1e-6) for two hidden states of width d.
/// Panics if the lengths differ.
pub fn relative_change<T: Kernels>(h: &[T], h_prev: &[T]) -> T {
    assert_eq!(h.len(), h_prev.len(), "relative_change: widths differ");
    let diff: Vec<T> = h.iter().zip(h_prev).map(|(&a, &b)| a - b).collect();
    let num = T::dot(&diff, &diff).sqrt();
    let den = T::dot(h_prev, h_prev).sqrt() + T::from_f64(DELTA_EPS);
    num / den
}

/// The indicators of `rows` rows at one step t ≥ 1: `out` (rows) from
/// probs / probs_prev (rows × n_items, p_t and p_{t−1}) and hidden /
/// hidden_prev (rows × d, h_t and h_{t−1}). Panics on inconsistent lengths.
pub fn step_indicators<T: Kernels>(
    out: &mut [Indicators<T>],
    probs: &[T],
    probs_prev: &[T],
    hidden: &[T],
    hidden_prev: &[T],
    n_items: usize,
    d: usize,
) {
    let rows = out.len();
    assert_eq!(probs.len(), rows * n_items, "probs must be rows × n_items");
    assert_eq!(
        probs_prev.len(),
        rows * n_items,
        "probs_prev must be rows × n_items"
    );
    assert_eq!(hidden.len(), rows * d, "hidden must be rows × d");
    assert_eq!(hidden_prev.len(), rows * d, "hidden_prev must be rows × d");
    for (r, ind) in out.iter_mut().enumerate() {
        let p = &probs[r * n_items..(r + 1) * n_items];
        let q = &probs_prev[r * n_items..(r + 1) * n_items];
        let h = &hidden[r * d..(r + 1) * d];
        let hp = &hidden_prev[r * d..(r + 1) * d];
        *ind = Indicators {
            entropy: normalized_entropy(p),
            js: jensen_shannon(p, q),
            delta: relative_change(h, hp),
        };
    }
}

/// Items per block of the fast path's lane sums: each block is summed in
/// 4 × 8 f32 lanes (8 terms per lane, so a partial sum carries at most ~8
/// roundings of a few ulp) and the block totals are added in f64, which
/// keeps the error of a 40k-item row at the 1e-7 level, far below the
/// 1e-5 the tests allow, without an f64 operation per item.
pub const BLOCK: usize = 256;

const LANES: usize = 8;

#[inline(always)]
fn load8(x: &[f32]) -> f32x8 {
    let a: [f32; LANES] = x.try_into().expect("8 lanes");
    f32x8::from(a)
}

/// Fast f32 softmax with its entropy: `probs` (N) = softmax(`logits`) and
/// the return value is H(p) in nats, in f64, from
/// H = ln S − (1/S)·Σ e_i (z_i − max) with e_i = exp(z_i − max), S = Σ e_i
/// (the same identity as logsumexp(z) − Σ p_i z_i, with every term shifted
/// by the row maximum so that the two terms are bounded by ln N and no
/// cancellation of large logits occurs). An empty row gives 0. A NaN or
/// infinite logit makes the result NaN (halting rules then never stop: the
/// safe side). Panics if the lengths differ.
pub fn softmax_entropy(probs: &mut [f32], logits: &[f32]) -> f64 {
    assert_eq!(probs.len(), logits.len(), "softmax_entropy: lengths differ");
    let n = logits.len();
    if n == 0 {
        return 0.0;
    }
    let row_max = <f32 as Kernels>::max(logits);
    let shift = f32x8::splat(row_max);
    let (mut sum_e, mut sum_ez) = (0.0f64, 0.0f64);
    let full = n - n % LANES;
    for (pb, zb) in probs[..full]
        .chunks_mut(BLOCK)
        .zip(logits[..full].chunks(BLOCK))
    {
        let mut acc_e = [f32x8::ZERO; 4];
        let mut acc_ez = [f32x8::ZERO; 4];
        for (i, (p8, z8)) in pb
            .chunks_exact_mut(LANES)
            .zip(zb.chunks_exact(LANES))
            .enumerate()
        {
            let x = load8(z8) - shift;
            let e = x.exp();
            p8.copy_from_slice(&e.to_array());
            acc_e[i % 4] += e;
            acc_ez[i % 4] = e.mul_add(x, acc_ez[i % 4]);
        }
        sum_e += f64::from(((acc_e[0] + acc_e[1]) + (acc_e[2] + acc_e[3])).reduce_add());
        sum_ez += f64::from(((acc_ez[0] + acc_ez[1]) + (acc_ez[2] + acc_ez[3])).reduce_add());
    }
    for (p, &z) in probs[full..].iter_mut().zip(&logits[full..]) {
        let x = z - row_max;
        let e = x.exp();
        *p = e;
        sum_e += f64::from(e);
        sum_ez += f64::from(e) * f64::from(x);
    }
    <f32 as Kernels>::scale(probs, (1.0 / sum_e) as f32);
    sum_e.ln() - sum_ez / sum_e
}

/// Entropy in nats, in f64, of the mixture m = (p + q)/2 of two probability
/// rows: −Σ m_i ln m_i with a vectorised f32 `ln` (0·ln 0 = 0: m is floored
/// at the smallest normal f32 inside the logarithm, which changes a term by
/// less than 1e-36). Panics if the lengths differ.
pub fn mixture_entropy(p: &[f32], q: &[f32]) -> f64 {
    assert_eq!(p.len(), q.len(), "mixture_entropy: lengths differ");
    let n = p.len();
    let full = n - n % LANES;
    let half = f32x8::splat(0.5);
    let tiny = f32x8::splat(f32::MIN_POSITIVE);
    let mut total = 0.0f64;
    for (pb, qb) in p[..full].chunks(BLOCK).zip(q[..full].chunks(BLOCK)) {
        let mut acc = [f32x8::ZERO; 4];
        for (i, (p8, q8)) in pb
            .chunks_exact(LANES)
            .zip(qb.chunks_exact(LANES))
            .enumerate()
        {
            let m = (load8(p8) + load8(q8)) * half;
            acc[i % 4] = m.mul_add(m.max(tiny).ln(), acc[i % 4]);
        }
        total += f64::from(((acc[0] + acc[1]) + (acc[2] + acc[3])).reduce_add());
    }
    for (&a, &b) in p[full..].iter().zip(&q[full..]) {
        let m = 0.5 * (f64::from(a) + f64::from(b));
        if m > 0.0 {
            total += m * m.ln();
        }
    }
    -total
}

/// The indicators of one row at step t ≥ 1 from the fast path's entropies:
/// `entropy`, `entropy_prev` = H(p_t), H(p_{t−1}) ([`softmax_entropy`]),
/// `mixture` = H((p_t + p_{t−1})/2) ([`mixture_entropy`]), all in nats over
/// `n_items` outcomes, and the states h_t, h_{t−1} (d). Ĥ and D are clamped
/// like the reference ([`normalized_entropy`], [`jensen_shannon`]); NaN
/// stays NaN.
pub fn fast_indicators(
    entropy: f64,
    entropy_prev: f64,
    mixture: f64,
    n_items: usize,
    hidden: &[f32],
    hidden_prev: &[f32],
) -> Indicators<f32> {
    let norm = if n_items <= 1 {
        0.0
    } else {
        (entropy / (n_items as f64).ln()).clamp(0.0, 1.0)
    };
    let js = (mixture - 0.5 * (entropy + entropy_prev)).clamp(0.0, core::f64::consts::LN_2);
    Indicators {
        entropy: norm as f32,
        js: js as f32,
        delta: relative_change(hidden, hidden_prev),
    }
}
