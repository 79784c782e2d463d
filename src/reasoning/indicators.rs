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
//! ```
//! use dtrec::reasoning::indicators::{jensen_shannon, normalized_entropy};
//! let uniform = [0.25f32; 4];
//! assert!((normalized_entropy(&uniform) - 1.0).abs() < 1e-6);
//! assert_eq!(jensen_shannon(&uniform, &uniform), 0.0);
//! ```

use dtrec_kernels::{Kernels, Trans};

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
