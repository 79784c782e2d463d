//! [`Params`]: every parameter tensor of the model, by name. Gradients and
//! the optimizer's moment estimates are `Params` too (same type, same
//! shapes), so one visitor walks parameters, gradients and moments together.

use super::config::ModelConfig;
use crate::kernels::rng::CounterRng;
use crate::kernels::{Kernels, Real};
use crate::nn::block::Block;
use crate::nn::feedforward::FeedForward;
use crate::nn::layernorm::LayerNorm;
use crate::nn::linear::Linear;
use crate::nn::Tensor;

/// The parameters of the SASRec encoder (method.md §1).
///
/// Tensor names (as visited, in this order): `item_emb` (N+1, d; row 0 is
/// padding and stays zero), `pos_emb` (L, d), `ln_in.gamma`, `ln_in.beta`
/// (d), then for each block l: `blocks.l.{q,k,v,o}.{w,b}` ((d, d), (d)),
/// `blocks.l.ln1.{gamma,beta}`, `blocks.l.ffn.ff1.{w,b}` ((d, inner),
/// (inner)), `blocks.l.ffn.ff2.{w,b}` ((inner, d), (d)),
/// `blocks.l.ln2.{gamma,beta}`, and last, only for a reasoning model
/// (t_max > 0), `reason_pos` (T_max, d). Linear weights are stored
/// (d_in, d_out). A SASRec parameter set (t_max = 0) therefore has exactly
/// the tensors, names, order and init streams it had before reasoning.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<T> {
    /// (N+1, d) item embeddings, tied with the output scoring.
    pub item_emb: Tensor<T>,
    /// (L, d) learned positions.
    pub pos_emb: Tensor<T>,
    /// Input LayerNorm.
    pub ln_in: LayerNorm<T>,
    /// The Transformer blocks, first to last.
    pub blocks: Vec<Block<T>>,
    /// (T_max, d) reasoning-position embeddings R (method.md §2); (0, d) and
    /// not visited for SASRec.
    pub reason_pos: Tensor<T>,
}

fn linear_names<'a, T>(prefix: &str, l: &'a Linear<T>, out: &mut Vec<(String, &'a Tensor<T>)>) {
    out.push((format!("{prefix}.w"), &l.w));
    out.push((format!("{prefix}.b"), &l.b));
}

fn linear_names_mut<'a, T>(
    prefix: &str,
    l: &'a mut Linear<T>,
    out: &mut Vec<(String, &'a mut Tensor<T>)>,
) {
    out.push((format!("{prefix}.w"), &mut l.w));
    out.push((format!("{prefix}.b"), &mut l.b));
}

fn map_linear<T, U>(l: &Linear<T>, f: &mut impl FnMut(&Tensor<T>) -> Tensor<U>) -> Linear<U> {
    Linear {
        w: f(&l.w),
        b: f(&l.b),
    }
}

fn map_ln<T, U>(l: &LayerNorm<T>, f: &mut impl FnMut(&Tensor<T>) -> Tensor<U>) -> LayerNorm<U> {
    LayerNorm {
        gamma: f(&l.gamma),
        beta: f(&l.beta),
    }
}

impl<T: Kernels> Params<T> {
    /// All-zero parameters with the shapes `cfg` implies (a gradient buffer,
    /// or a target to load tensors into). `cfg` must be valid.
    pub fn zeros(cfg: &ModelConfig) -> Self {
        let (d, inner) = (cfg.d, cfg.inner);
        Params {
            item_emb: Tensor::zeros(&[cfg.n_items + 1, d]),
            pos_emb: Tensor::zeros(&[cfg.max_len, d]),
            ln_in: LayerNorm::zeros(d),
            blocks: (0..cfg.n_layers).map(|_| Block::zeros(d, inner)).collect(),
            reason_pos: Tensor::zeros(&[cfg.t_max, d]),
        }
    }

    /// RecBole initialisation, deterministic per `seed`: linear and embedding
    /// weights and `reason_pos` N(0, init_std) (tensor i in visiting order
    /// uses RNG stream i),
    /// padding row 0 of `item_emb` zero, biases 0, LayerNorm γ = 1, β = 0.
    pub fn init(cfg: &ModelConfig, seed: u64) -> Self {
        let mut p = Self::zeros(cfg);
        let rng = CounterRng::new(seed);
        for (stream, (name, t)) in p.tensors_mut().into_iter().enumerate() {
            if name.ends_with(".gamma") {
                t.data.fill(T::ONE);
            } else if name.ends_with("_emb") || name.ends_with(".w") || name == "reason_pos" {
                rng.fill_normal(&mut t.data, stream as u64, 0.0, cfg.init_std);
            }
        }
        let d = cfg.d;
        p.item_emb.data[..d].fill(T::ZERO);
        p
    }

    /// True when the set holds reasoning-position embeddings (t_max > 0).
    pub fn has_reasoning(&self) -> bool {
        !self.reason_pos.data.is_empty()
    }

    /// Every tensor with its name, in the fixed visiting order.
    pub fn tensors(&self) -> Vec<(String, &Tensor<T>)> {
        let mut out = vec![
            ("item_emb".to_string(), &self.item_emb),
            ("pos_emb".to_string(), &self.pos_emb),
            ("ln_in.gamma".to_string(), &self.ln_in.gamma),
            ("ln_in.beta".to_string(), &self.ln_in.beta),
        ];
        for (l, b) in self.blocks.iter().enumerate() {
            for (n, lin) in [("q", &b.q), ("k", &b.k), ("v", &b.v), ("o", &b.o)] {
                linear_names(&format!("blocks.{l}.{n}"), lin, &mut out);
            }
            out.push((format!("blocks.{l}.ln1.gamma"), &b.ln1.gamma));
            out.push((format!("blocks.{l}.ln1.beta"), &b.ln1.beta));
            linear_names(&format!("blocks.{l}.ffn.ff1"), &b.ffn.ff1, &mut out);
            linear_names(&format!("blocks.{l}.ffn.ff2"), &b.ffn.ff2, &mut out);
            out.push((format!("blocks.{l}.ln2.gamma"), &b.ln2.gamma));
            out.push((format!("blocks.{l}.ln2.beta"), &b.ln2.beta));
        }
        if self.has_reasoning() {
            out.push(("reason_pos".to_string(), &self.reason_pos));
        }
        out
    }

    /// Every tensor with its name, mutably, in the same order as [`tensors`](Self::tensors).
    pub fn tensors_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        let mut out = vec![
            ("item_emb".to_string(), &mut self.item_emb),
            ("pos_emb".to_string(), &mut self.pos_emb),
            ("ln_in.gamma".to_string(), &mut self.ln_in.gamma),
            ("ln_in.beta".to_string(), &mut self.ln_in.beta),
        ];
        for (l, b) in self.blocks.iter_mut().enumerate() {
            for (n, lin) in [
                ("q", &mut b.q),
                ("k", &mut b.k),
                ("v", &mut b.v),
                ("o", &mut b.o),
            ] {
                linear_names_mut(&format!("blocks.{l}.{n}"), lin, &mut out);
            }
            out.push((format!("blocks.{l}.ln1.gamma"), &mut b.ln1.gamma));
            out.push((format!("blocks.{l}.ln1.beta"), &mut b.ln1.beta));
            linear_names_mut(&format!("blocks.{l}.ffn.ff1"), &mut b.ffn.ff1, &mut out);
            linear_names_mut(&format!("blocks.{l}.ffn.ff2"), &mut b.ffn.ff2, &mut out);
            out.push((format!("blocks.{l}.ln2.gamma"), &mut b.ln2.gamma));
            out.push((format!("blocks.{l}.ln2.beta"), &mut b.ln2.beta));
        }
        if !self.reason_pos.data.is_empty() {
            out.push(("reason_pos".to_string(), &mut self.reason_pos));
        }
        out
    }

    /// Calls `f(name, tensor)` for every tensor, in visiting order.
    pub fn visit(&self, mut f: impl FnMut(&str, &Tensor<T>)) {
        for (name, t) in self.tensors() {
            f(&name, t);
        }
    }

    /// Calls `f(name, tensor)` for every tensor, mutably.
    pub fn visit_mut(&mut self, mut f: impl FnMut(&str, &mut Tensor<T>)) {
        for (name, t) in self.tensors_mut() {
            f(&name, t);
        }
    }

    /// Walks (parameter, gradient, first moment, second moment) tensors of
    /// the same name together: the optimizer's visitor. All four sets must
    /// come from the same config.
    pub fn visit_zip4(
        params: &mut Params<T>,
        grads: &Params<T>,
        m: &mut Params<T>,
        v: &mut Params<T>,
        mut f: impl FnMut(&str, &mut Tensor<T>, &Tensor<T>, &mut Tensor<T>, &mut Tensor<T>),
    ) {
        let (p, g, m, v) = (
            params.tensors_mut(),
            grads.tensors(),
            m.tensors_mut(),
            v.tensors_mut(),
        );
        assert!(
            p.len() == g.len() && g.len() == m.len() && m.len() == v.len(),
            "parameter sets differ"
        );
        for (((p, g), m), v) in p.into_iter().zip(g).zip(m).zip(v) {
            assert!(
                p.1.shape == g.1.shape && g.1.shape == m.1.shape && m.1.shape == v.1.shape,
                "shape of {} differs",
                p.0
            );
            f(&p.0, p.1, g.1, m.1, v.1);
        }
    }

    /// Sets every tensor to zero (the one place gradients are cleared).
    pub fn zero_grad(&mut self) {
        self.visit_mut(|_, t| t.zero());
    }

    /// All-zero tensors of the same shapes.
    pub fn zeros_like(&self) -> Self {
        self.map(|t| Tensor::zeros(&t.shape))
    }

    /// A structure-preserving map over the tensors (`f` also sees an empty
    /// `reason_pos` of a SASRec set).
    pub fn map<U>(&self, mut f: impl FnMut(&Tensor<T>) -> Tensor<U>) -> Params<U> {
        let f = &mut f;
        Params {
            item_emb: f(&self.item_emb),
            pos_emb: f(&self.pos_emb),
            ln_in: map_ln(&self.ln_in, f),
            blocks: self
                .blocks
                .iter()
                .map(|b| Block {
                    q: map_linear(&b.q, f),
                    k: map_linear(&b.k, f),
                    v: map_linear(&b.v, f),
                    o: map_linear(&b.o, f),
                    ln1: map_ln(&b.ln1, f),
                    ffn: FeedForward {
                        ff1: map_linear(&b.ffn.ff1, f),
                        ff2: map_linear(&b.ffn.ff2, f),
                    },
                    ln2: map_ln(&b.ln2, f),
                })
                .collect(),
            // f sees it even when empty (t_max = 0): shape (0, d) is kept
            reason_pos: f(&self.reason_pos),
        }
    }

    /// The same values in another scalar type (f32 ↔ f64 for gradient checks).
    pub fn cast<U: Real>(&self) -> Params<U> {
        self.map(|t| t.cast())
    }

    /// self += other, tensor by tensor (same shapes).
    pub fn add_assign(&mut self, other: &Params<T>) {
        for ((_, a), (_, b)) in self.tensors_mut().into_iter().zip(other.tensors()) {
            assert_eq!(a.shape, b.shape, "add_assign: shapes differ");
            T::axpy(&mut a.data, T::ONE, &b.data);
        }
    }

    /// Moves every value toward `current`'s: `self ← self + (1 − decay)·(current − self)`,
    /// one step of an exponential moving average with decay β = `decay`
    /// (same shapes).
    ///
    /// ```
    /// use dtrec::model::{ModelConfig, Params};
    /// let cfg = ModelConfig { d: 8, inner: 16, max_len: 4, ..ModelConfig::sasrec(5) };
    /// let mut average = Params::<f64>::zeros(&cfg);
    /// let mut current = Params::<f64>::zeros(&cfg);
    /// current.visit_mut(|_, t| t.data.fill(2.0));
    /// average.ema_toward(&current, 0.75);
    /// average.visit(|_, t| assert!(t.data.iter().all(|&x| x == 0.5)));
    /// ```
    pub fn ema_toward(&mut self, current: &Params<T>, decay: T) {
        let rate = T::ONE - decay;
        for ((_, a), (_, b)) in self.tensors_mut().into_iter().zip(current.tensors()) {
            assert_eq!(a.shape, b.shape, "ema_toward: shapes differ");
            for (x, &y) in a.data.iter_mut().zip(&b.data) {
                *x += rate * (y - *x);
            }
        }
    }

    /// Multiplies every value by `alpha`.
    pub fn scale(&mut self, alpha: T) {
        self.visit_mut(|_, t| T::scale(&mut t.data, alpha));
    }

    /// √(Σ x²) over every value, accumulated in f64.
    pub fn global_norm(&self) -> f64 {
        let mut sq = 0.0f64;
        self.visit(|_, t| sq += t.data.iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>());
        sq.sqrt()
    }

    /// Total number of scalars.
    pub fn n_scalars(&self) -> usize {
        self.tensors().iter().map(|(_, t)| t.len()).sum()
    }

    /// Checks that every tensor has the shape `cfg` implies; returns the name
    /// of the first mismatching tensor with (expected, found) shapes.
    pub fn check_shapes(&self, cfg: &ModelConfig) -> Result<(), (String, Vec<usize>, Vec<usize>)> {
        let want = Params::<T>::zeros(cfg);
        let (a, b) = (want.tensors(), self.tensors());
        if a.len() != b.len() {
            return Err(("<number of tensors>".into(), vec![a.len()], vec![b.len()]));
        }
        for ((name, w), (_, t)) in a.into_iter().zip(b) {
            if w.shape != t.shape || t.data.len() != t.shape.iter().product::<usize>() {
                return Err((name, w.shape.clone(), t.shape.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ModelConfig {
        ModelConfig {
            n_items: 7,
            max_len: 5,
            d: 4,
            n_layers: 2,
            n_heads: 2,
            inner: 6,
            ..ModelConfig::sasrec(7)
        }
    }

    #[test]
    fn names_shapes_and_count() {
        let p = Params::<f32>::zeros(&cfg());
        let names: Vec<String> = p.tensors().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 4 + 2 * 16);
        assert_eq!(
            &names[..5],
            [
                "item_emb",
                "pos_emb",
                "ln_in.gamma",
                "ln_in.beta",
                "blocks.0.q.w"
            ]
        );
        assert!(names.contains(&"blocks.1.ffn.ff2.b".to_string()));
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(p.n_scalars(), cfg().n_params());
        assert!(p.check_shapes(&cfg()).is_ok());
    }

    #[test]
    fn init_is_deterministic_and_follows_recbole() {
        let a = Params::<f32>::init(&cfg(), 3);
        assert_eq!(a, Params::<f32>::init(&cfg(), 3));
        assert_ne!(a, Params::<f32>::init(&cfg(), 4));
        assert!(
            a.item_emb.data[..4].iter().all(|&x| x == 0.0),
            "padding row is zero"
        );
        assert!(a.item_emb.data[4..].iter().all(|&x| x != 0.0));
        assert!(a.blocks[1].ln2.gamma.data.iter().all(|&x| x == 1.0));
        assert!(a.blocks[0].q.b.data.iter().all(|&x| x == 0.0));
        let w = &a.blocks[0].ffn.ff1.w.data;
        let std = (w.iter().map(|x| (x * x) as f64).sum::<f64>() / w.len() as f64).sqrt();
        assert!((0.01..0.03).contains(&std), "std {std}");
        let back: Params<f32> = a.cast::<f64>().cast();
        assert_eq!(back, a);
    }

    #[test]
    fn reasoning_positions_only_for_reasoning_models() {
        let sas = Params::<f32>::init(&cfg(), 3);
        assert!(!sas.has_reasoning());
        assert!(sas.tensors().iter().all(|(n, _)| n != "reason_pos"));
        let rcfg = ModelConfig {
            family: crate::model::Family::Dtrec,
            t_max: 3,
            ..cfg()
        };
        let r = Params::<f32>::init(&rcfg, 3);
        let names: Vec<String> = r.tensors().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.last().unwrap(), "reason_pos");
        assert_eq!(r.reason_pos.shape, [3, 4]);
        assert_eq!(r.n_scalars(), rcfg.n_params());
        // every SASRec tensor keeps its init stream and values
        for ((na, a), (nb, b)) in sas.tensors().into_iter().zip(r.tensors()) {
            assert_eq!((na, a), (nb, b));
        }
        let std = (r
            .reason_pos
            .data
            .iter()
            .map(|x| (x * x) as f64)
            .sum::<f64>()
            / 12.0)
            .sqrt();
        assert!(
            r.reason_pos.data.iter().all(|&x| x != 0.0) && std < 0.06,
            "{std}"
        );
        assert!(r.check_shapes(&rcfg).is_ok() && r.check_shapes(&cfg()).is_err());
        assert_eq!(r.map(|t| t.clone()), r);
    }
}
