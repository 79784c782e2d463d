//! Adam / AdamW over a [`Params`] set, with optional global-norm gradient
//! clipping.

use crate::kernels::{AdamStep, Kernels};
use crate::model::Params;

/// Optimizer hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (before warm-up and schedule factors).
    pub lr: f64,
    /// Decay of the first-moment estimate.
    pub beta1: f64,
    /// Decay of the second-moment estimate.
    pub beta2: f64,
    /// Added to the root of the second moment in the denominator.
    pub eps: f64,
    /// L2 penalty (Adam) or decoupled decay (AdamW); never applied to biases,
    /// LayerNorm parameters (see [`decays`]).
    pub weight_decay: f64,
    /// `true`: AdamW (decoupled decay), `false`: Adam with L2 penalty.
    pub decoupled: bool,
    /// Rescale gradients so their global L2 norm is at most this.
    pub clip_norm: Option<f64>,
    /// Linear learning-rate warm-up: step t (1, 2, …) uses
    /// lr·min(1, t / warmup_steps); 0 = none.
    pub warmup_steps: u64,
    /// Cosine learning-rate decay: step t (1, 2, …) is further scaled by
    /// ½(1 + cos(π·(t − 1)/decay_steps)), from 1 at the first step toward 0
    /// at step decay_steps + 1, and by 0 after it; 0 = none.
    pub decay_steps: u64,
}

impl Default for AdamConfig {
    /// Adam, lr 1e-3, β = (0.9, 0.999), ε = 1e-8, no decay, no clipping,
    /// no warm-up.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            clip_norm: None,
            warmup_steps: 0,
            decay_steps: 0,
        }
    }
}

impl AdamConfig {
    /// The factor step `t` (1, 2, …) multiplies the learning rate by: the
    /// warm-up's times the cosine decay's.
    ///
    /// ```
    /// use dtrec::train::AdamConfig;
    /// let c = AdamConfig { warmup_steps: 4, decay_steps: 10, ..AdamConfig::default() };
    /// assert_eq!(c.lr_factor(1), 0.25); // warm-up 1/4, cosine 1
    /// assert!((c.lr_factor(6) - 0.5).abs() < 1e-12); // half-way down the cosine
    /// assert_eq!(c.lr_factor(12), 0.0); // past the decay
    /// assert_eq!(AdamConfig::default().lr_factor(1_000_000), 1.0);
    /// ```
    pub fn lr_factor(&self, t: u64) -> f64 {
        let warmup = if t < self.warmup_steps {
            t as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        let decay = match self.decay_steps {
            0 => 1.0,
            steps if t > steps => 0.0,
            steps => {
                let progress = t.saturating_sub(1) as f64 / steps as f64;
                0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        };
        warmup * decay
    }
}

/// Whether weight decay applies to the tensor `name`: linear weights (`*.w`)
/// and embedding tables (`*_emb`) decay; biases and LayerNorm γ/β do not.
pub fn decays(name: &str) -> bool {
    name.ends_with(".w") || name.ends_with("_emb")
}

/// Adam state: moments of the same type and shapes as the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<T> {
    /// The hyper-parameters every step uses.
    pub config: AdamConfig,
    /// First-moment estimates.
    pub m: Params<T>,
    /// Second-moment estimates.
    pub v: Params<T>,
    /// Number of steps taken so far.
    pub t: u64,
}

impl<T: Kernels> Adam<T> {
    /// Zero moments for `params`.
    pub fn new(params: &Params<T>, config: AdamConfig) -> Self {
        Adam {
            config,
            m: params.zeros_like(),
            v: params.zeros_like(),
            t: 0,
        }
    }

    /// One update of `params` from `grads`; returns the gradient's global
    /// norm before clipping. `grads` is rescaled in place when clipping
    /// triggers; it is not zeroed (call [`Params::zero_grad`]).
    pub fn step(&mut self, params: &mut Params<T>, grads: &mut Params<T>) -> f64 {
        let norm = grads.global_norm();
        if let Some(max) = self.config.clip_norm {
            if norm > max && norm.is_finite() {
                grads.scale(T::from_f64(max / norm));
            }
        }
        self.t += 1;
        let c = &self.config;
        let t = self.t.min(i32::MAX as u64) as i32;
        let base = AdamStep {
            lr: T::from_f64(c.lr * c.lr_factor(self.t)),
            beta1: T::from_f64(c.beta1),
            beta2: T::from_f64(c.beta2),
            eps: T::from_f64(c.eps),
            weight_decay: T::ZERO,
            bias_correction1: T::from_f64(1.0 - c.beta1.powi(t)),
            bias_correction2: T::from_f64(1.0 - c.beta2.powi(t)),
            decoupled: c.decoupled,
        };
        let decayed = AdamStep {
            weight_decay: T::from_f64(c.weight_decay),
            ..base
        };
        Params::visit_zip4(
            params,
            grads,
            &mut self.m,
            &mut self.v,
            |name, p, g, m, v| {
                let step = if decays(name) { &decayed } else { &base };
                T::adam_update(&mut p.data, &g.data, &mut m.data, &mut v.data, step);
            },
        );
        norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    #[test]
    fn decay_classification() {
        for n in ["item_emb", "pos_emb", "blocks.0.q.w", "blocks.1.ffn.ff2.w"] {
            assert!(decays(n), "{n}");
        }
        for n in [
            "ln_in.gamma",
            "ln_in.beta",
            "blocks.0.q.b",
            "blocks.0.ln2.gamma",
            "blocks.0.ffn.ff1.b",
        ] {
            assert!(!decays(n), "{n}");
        }
    }

    /// One layer, one head, d = 2, three items.
    fn tiny_config() -> ModelConfig {
        ModelConfig {
            n_items: 3,
            max_len: 2,
            d: 2,
            n_layers: 1,
            n_heads: 1,
            inner: 2,
            ..ModelConfig::sasrec(3)
        }
    }

    #[test]
    fn first_step_moves_each_value_by_lr_against_its_gradient_sign() {
        // Adam's first bias-corrected step is lr · g/(|g| + ε) ≈ lr · sign(g).
        let cfg = tiny_config();
        let mut p = Params::<f64>::init(&cfg, 1);
        let before = p.clone();
        let mut g = p.zeros_like();
        g.blocks[0].q.w.data = vec![0.5, -2.0, 0.0, 1e-3];
        let mut adam = Adam::new(
            &p,
            AdamConfig {
                lr: 0.1,
                ..AdamConfig::default()
            },
        );
        adam.step(&mut p, &mut g);
        let moved: Vec<f64> = p.blocks[0]
            .q
            .w
            .data
            .iter()
            .zip(&before.blocks[0].q.w.data)
            .map(|(a, b)| a - b)
            .collect();
        for (mv, want) in moved.iter().zip([-0.1, 0.1, 0.0, -0.1]) {
            assert!((mv - want).abs() < 1e-5, "{moved:?}");
        }
        assert_eq!(
            p.item_emb, before.item_emb,
            "no gradient, no decay: unchanged"
        );
    }

    /// How far one value moves at each of the first steps of an Adam with
    /// `config`, under a constant gradient of −1. Adam's bias-corrected
    /// step is then lr_t · g/(|g| + ε) ≈ lr_t · sign(g), so the moves are
    /// the step-by-step learning rates lr_t.
    fn moves_under_a_constant_gradient(config: AdamConfig, steps: usize) -> Vec<f64> {
        let mut p = Params::<f64>::init(&tiny_config(), 1);
        let mut adam = Adam::new(&p, config);
        (0..steps)
            .map(|_| {
                let before = p.pos_emb.data[0];
                let mut g = p.zeros_like();
                g.pos_emb.data[0] = -1.0;
                adam.step(&mut p, &mut g);
                p.pos_emb.data[0] - before
            })
            .collect()
    }

    fn assert_moves(moves: &[f64], want: &[f64]) {
        assert_eq!(moves.len(), want.len());
        for (t, (moved, want)) in moves.iter().zip(want).enumerate() {
            assert!((moved - want).abs() < 1e-6, "step {}: {moves:?}", t + 1);
        }
    }

    #[test]
    fn warmup_scales_the_learning_rate_linearly() {
        // lr_t = lr · min(1, t/4)
        let config = AdamConfig {
            lr: 0.1,
            warmup_steps: 4,
            ..AdamConfig::default()
        };
        let moves = moves_under_a_constant_gradient(config, 5);
        assert_moves(&moves, &[0.025, 0.05, 0.075, 0.1, 0.1]);
    }

    #[test]
    fn cosine_decay_follows_the_half_cosine_then_stops() {
        // lr_t = lr · ½(1 + cos(π(t − 1)/4)) for t ≤ 4, and 0 after
        let config = AdamConfig {
            lr: 0.1,
            decay_steps: 4,
            ..AdamConfig::default()
        };
        let half = 0.5 * std::f64::consts::FRAC_1_SQRT_2;
        let moves = moves_under_a_constant_gradient(config, 6);
        assert_moves(
            &moves,
            &[0.1, 0.1 * (0.5 + half), 0.05, 0.1 * (0.5 - half), 0.0, 0.0],
        );
    }

    #[test]
    fn clipping_rescales_to_the_max_norm() {
        let cfg = tiny_config();
        let mut p = Params::<f64>::init(&cfg, 1);
        let mut g = p.zeros_like();
        g.pos_emb.data = vec![3.0, 4.0, 0.0, 0.0];
        let mut adam = Adam::new(
            &p,
            AdamConfig {
                clip_norm: Some(1.0),
                ..AdamConfig::default()
            },
        );
        assert_eq!(adam.step(&mut p, &mut g), 5.0);
        assert!((g.global_norm() - 1.0).abs() < 1e-12);
    }
}
