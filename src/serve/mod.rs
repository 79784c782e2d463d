//! Serving: a trained model with its item vocabulary, loaded from one model
//! file, answering `recommend(history, k)` in external item ids.
//!
//! ```
//! use dtrec::model::{ModelConfig, Model};
//! use dtrec::serve::{RecommendOptions, Recommender};
//! let model = Model::new(ModelConfig { d: 8, inner: 16, max_len: 5, ..ModelConfig::sasrec(4) }, 1).unwrap();
//! let vocab = vec!["apple".into(), "pear".into(), "fig".into(), "kiwi".into()];
//! let rec = Recommender::new(model, vocab).unwrap();
//! let path = std::env::temp_dir().join(format!("dtrec-doc-{}.safetensors", std::process::id()));
//! rec.save(&path).unwrap();
//! let rec = Recommender::load(&path).unwrap();
//! let top = rec.recommend(&["apple", "fig"], 2, &RecommendOptions::default()).unwrap();
//! assert_eq!(top.len(), 2);
//! assert!(top.iter().all(|r| r.item != "apple" && r.item != "fig")); // seen items excluded by default
//! # std::fs::remove_file(&path).unwrap();
//! ```

use std::fmt;
use std::path::Path;

use crate::batch::SeqBatch;
use crate::eval::BatchScorer;
use crate::io::{
    config_from_file, params_from_file, params_to_tensors, prototypes_from_file,
    prototypes_to_tensors, ModelExtra, ModelFile, ModelFileError, ModelFileErrorKind,
    StoredHalting, KIND_MODEL,
};
use crate::model::halting::{IndicatorBasis, IndicatorSpace};
use crate::model::prototypes::Prototypes;
use crate::model::{HaltingPolicy, Model};

mod trajectory;
mod vocab;

pub use trajectory::{Trajectory, TrajectoryStep};
pub use vocab::{recommend_batch, top_k_items, ItemVocab, Recommendation, RequestError};

/// Why serving failed.
#[derive(Debug)]
pub enum ServeError {
    /// The model file could not be read or does not hold a valid model.
    File(ModelFileError),
    /// The request or the vocabulary was rejected (unknown item, NaN scores, …).
    Request(RequestError),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::File(e) => write!(f, "{e}"),
            ServeError::Request(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<ModelFileError> for ServeError {
    fn from(e: ModelFileError) -> Self {
        ServeError::File(e)
    }
}

impl From<RequestError> for ServeError {
    fn from(e: RequestError) -> Self {
        ServeError::Request(e)
    }
}

/// Options of a recommendation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecommendOptions {
    /// Leave the history's items out of the results (default: yes).
    pub exclude_seen: bool,
    /// Ignore history items the model does not know instead of failing.
    pub skip_unknown: bool,
}

impl Default for RecommendOptions {
    fn default() -> Self {
        RecommendOptions {
            exclude_seen: true,
            skip_unknown: false,
        }
    }
}

/// Users per scoring batch in [`Recommender::recommend_batch`].
const SERVE_BATCH: usize = 64;

/// A model ready to serve: parameters plus the external item ids, the
/// halting policy of a reasoning model with the space of its indicators,
/// and (optionally) its prototype hierarchy (for printing reasoning
/// trajectories, and the centroids of the prototype indicator space).
#[derive(Clone, Debug)]
pub struct Recommender {
    model: Model,
    vocab: ItemVocab,
    halting: HaltingPolicy,
    prototypes: Option<Prototypes<f32>>,
    /// The halting indicators' basis (the finest level of `prototypes` in
    /// the prototype space).
    indicators: IndicatorBasis,
}

impl Recommender {
    /// Pairs a model with its vocabulary (`vocab[i]` ↔ dense item `i + 1`).
    pub fn new(model: Model, vocab: Vec<String>) -> Result<Self, ServeError> {
        let vocab = ItemVocab::new(vocab)?;
        let n = model.config().n_items;
        if vocab.len() != n {
            return Err(RequestError::ScoreLength {
                vocab: vocab.len(),
                scores: n,
            }
            .into());
        }
        Ok(Recommender {
            model,
            vocab,
            halting: HaltingPolicy::Fixed,
            prototypes: None,
            indicators: IndicatorBasis::Items,
        })
    }

    /// Serves with `policy` (reasoning models; SASRec ignores it).
    pub fn with_halting(mut self, policy: HaltingPolicy) -> Self {
        self.halting = policy;
        self
    }

    /// Computes the halting indicators in `space`: over the items (the
    /// default), or over the finest level of the attached prototype
    /// hierarchy (the space the policy was calibrated in must be this one).
    /// Fails, with a typed error naming the field `indicators`, for the
    /// prototype space without a hierarchy whose finest level has k ≥ 2
    /// centroids.
    ///
    /// ```
    /// use dtrec::model::halting::IndicatorSpace;
    /// use dtrec::model::prototypes::cluster_items;
    /// use dtrec::model::{Family, HpsConfig, Model, ModelConfig};
    /// use dtrec::serve::Recommender;
    /// let cfg = ModelConfig { d: 8, inner: 16, max_len: 5, ..ModelConfig::reasoning(40, Family::Dtrec, 2) };
    /// let model = Model::new(cfg, 1).unwrap();
    /// let protos = cluster_items(None, &model, &HpsConfig { k_min: 4, ..HpsConfig::default() }.prototype_config(2, 3)).unwrap();
    /// let vocab = (0..40).map(|i| format!("i{i}")).collect();
    /// let rec = Recommender::new(model, vocab).unwrap();
    /// assert!(rec.clone().with_indicators(IndicatorSpace::Prototypes).is_err()); // no hierarchy yet
    /// let rec = rec.with_prototypes(protos).unwrap().with_indicators(IndicatorSpace::Prototypes).unwrap();
    /// assert_eq!(rec.indicators().outcomes(40), 12); // level 1 of 4, 12, 40
    /// ```
    pub fn with_indicators(mut self, space: IndicatorSpace) -> Result<Self, ServeError> {
        self.indicators = IndicatorBasis::of(space, self.prototypes.as_ref()).map_err(|e| {
            ModelFileError::new(ModelFileErrorKind::InvalidField {
                field: "indicators",
                reason: e.to_string(),
            })
        })?;
        Ok(self)
    }

    /// The halting indicators' basis.
    pub fn indicators(&self) -> &IndicatorBasis {
        &self.indicators
    }

    /// Attaches the prototype hierarchy of the model's item table (in the
    /// prototype indicator space, its finest level becomes the indicators'
    /// basis). Fails if it was built for another N or d.
    pub fn with_prototypes(mut self, prototypes: Prototypes<f32>) -> Result<Self, ServeError> {
        let cfg = self.model.config();
        if prototypes.n_items() != cfg.n_items || prototypes.d() != cfg.d {
            return Err(ModelFileError::new(ModelFileErrorKind::InvalidField {
                field: "prototypes",
                reason: format!(
                    "built for {} items of width {}, the model has {} of width {}",
                    prototypes.n_items(),
                    prototypes.d(),
                    cfg.n_items,
                    cfg.d
                ),
            })
            .into());
        }
        self.prototypes = Some(prototypes);
        let space = self.indicators.space();
        self.with_indicators(space)
    }

    /// The halting policy.
    pub fn halting(&self) -> &HaltingPolicy {
        &self.halting
    }

    /// The prototype hierarchy, if stored.
    pub fn prototypes(&self) -> Option<&Prototypes<f32>> {
        self.prototypes.as_ref()
    }

    /// Loads and validates a model file (see [`crate::io`]): every tensor's
    /// shape is checked against the stored configuration before use.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ServeError> {
        let path = path.as_ref();
        let file = ModelFile::read(path)?;
        Self::from_file(&file).map_err(|e| match e {
            ServeError::File(e) => ServeError::File(e.in_file(path)),
            other => other,
        })
    }

    /// A recommender from an already-read model file.
    pub fn from_file(file: &ModelFile) -> Result<Self, ServeError> {
        file.expect_kind(KIND_MODEL)?;
        let config = config_from_file(file)?;
        let invalid = |field: &'static str, reason: String| {
            ModelFileError::new(ModelFileErrorKind::InvalidField { field, reason })
        };
        let extra: ModelExtra =
            serde_json::from_str(&file.extra_json).map_err(|e| invalid("extra", e.to_string()))?;
        let params = params_from_file(file, &config, "")?;
        let prototypes = match &extra.prototypes {
            Some(pc) => Some(prototypes_from_file(file, pc, config.n_items, config.d)?),
            None => None,
        };
        let expected =
            params.tensors().len() + prototypes.as_ref().map_or(0, |p| 2 * p.levels().len());
        if file.tensors.len() != expected {
            let reason = format!(
                "{} tensors where the model has {expected}",
                file.tensors.len()
            );
            return Err(ModelFileError::new(ModelFileErrorKind::Container { reason }).into());
        }
        let model =
            Model::from_params(config, params).map_err(|e| invalid("config", e.to_string()))?;
        let halting = match &extra.halting {
            Some(h) => h.to_policy().map_err(|r| invalid("extra", r))?,
            None => HaltingPolicy::Fixed,
        };
        let mut rec = Self::new(model, file.item_vocab.clone())?.with_halting(halting);
        if let Some(p) = prototypes {
            rec = rec.with_prototypes(p)?;
        }
        rec.with_indicators(extra.indicators)
    }

    /// The model file of this recommender.
    pub fn to_file(&self) -> ModelFile {
        let config = serde_json::to_string(self.model.config()).expect("a config serializes");
        let vocab = self.vocab.external_ids().to_vec();
        let extra = ModelExtra {
            halting: Some(StoredHalting::from_policy(&self.halting)),
            prototypes: self.prototypes.as_ref().map(|p| p.config().clone()),
            indicators: self.indicators.space(),
        };
        let mut tensors = params_to_tensors(&self.model.params, "");
        if let Some(p) = &self.prototypes {
            tensors.extend(prototypes_to_tensors(p));
        }
        ModelFile::new(
            KIND_MODEL,
            config,
            vocab,
            serde_json::to_string(&extra).expect("the extra part serializes"),
            tensors,
        )
    }

    /// Writes the model file atomically (temp file + rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelFileError> {
        self.to_file().write(path)
    }

    /// The trained network the recommender scores with.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// External item ids; entry i is dense item i + 1.
    pub fn vocab(&self) -> &[String] {
        self.vocab.external_ids()
    }

    /// Dense ids of a history, oldest first.
    fn dense_history(&self, history: &[&str], skip_unknown: bool) -> Result<Vec<u32>, ServeError> {
        if skip_unknown {
            Ok(history
                .iter()
                .filter_map(|item| self.vocab.dense_id(item))
                .collect())
        } else {
            Ok(self.vocab.to_dense(history)?)
        }
    }

    /// The `k` best next items after `history` (external ids, oldest first;
    /// only the last `max_len` are used), best first, ties by the smaller
    /// dense id.
    pub fn recommend(
        &self,
        history: &[&str],
        k: usize,
        options: &RecommendOptions,
    ) -> Result<Vec<Recommendation>, ServeError> {
        Ok(self
            .recommend_batch(&[history.to_vec()], k, options)?
            .pop()
            .expect("one row per history"))
    }

    /// [`recommend`](Self::recommend) for many users at once, scored in
    /// parallel batches; results in input order, independent of the thread
    /// count.
    pub fn recommend_batch(
        &self,
        histories: &[Vec<&str>],
        k: usize,
        options: &RecommendOptions,
    ) -> Result<Vec<Vec<Recommendation>>, ServeError> {
        let dense: Vec<Vec<u32>> = histories
            .iter()
            .map(|h| self.dense_history(h, options.skip_unknown))
            .collect::<Result<_, _>>()?;
        let scorer = HistoryScorer {
            model: &self.model,
            histories: &dense,
            halting: &self.halting,
            indicators: &self.indicators,
        };
        let exclude = |u: usize| {
            if options.exclude_seen {
                dense[u].as_slice()
            } else {
                &[]
            }
        };
        Ok(recommend_batch(
            &scorer,
            &self.vocab,
            dense.len(),
            k,
            SERVE_BATCH,
            exclude,
        )?)
    }
}

/// Scores dense histories (row b ↔ `histories[users[b]]`) with a model.
struct HistoryScorer<'a> {
    model: &'a Model,
    histories: &'a [Vec<u32>],
    halting: &'a HaltingPolicy,
    indicators: &'a IndicatorBasis,
}

impl BatchScorer for HistoryScorer<'_> {
    fn num_items(&self) -> usize {
        self.model.config().n_items
    }

    fn score_batch(&self, users: &[usize], out: &mut [f32]) {
        let cfg = self.model.config();
        let l = cfg.max_len;
        let mut items = vec![0u32; users.len() * l];
        let mut lengths = Vec::with_capacity(users.len());
        for (row, &u) in items.chunks_mut(l).zip(users) {
            let h = &self.histories[u];
            let kept = &h[h.len().saturating_sub(l)..];
            row[l - kept.len()..].copy_from_slice(kept);
            lengths.push(kept.len() as u32);
        }
        let seqs = SeqBatch::new(items, lengths, l, cfg.n_items)
            .expect("dense ids come from the vocabulary");
        if *self.halting == HaltingPolicy::Fixed || cfg.t_max == 0 {
            let hidden = self.model.encode_batch(&seqs);
            self.model.score_items(out, &hidden);
        } else {
            let scored = self
                .model
                .score_adaptive_in(&seqs, self.halting, self.indicators);
            out.copy_from_slice(&scored.scores);
        }
    }
}
