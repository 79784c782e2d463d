//! Serving: a trained model with its item vocabulary, loaded from one model
//! file, answering `recommend(history, k)` in external item ids.
//!
//! ```
//! use dtrec::model::{ModelConfig, Sasrec};
//! use dtrec::serve::{RecommendOptions, Recommender};
//! let model = Sasrec::new(ModelConfig { d: 8, inner: 16, max_len: 5, ..ModelConfig::sasrec(4) }, 1).unwrap();
//! let vocab = vec!["apple".into(), "pear".into(), "fig".into(), "kiwi".into()];
//! let rec = Recommender::new(model, vocab).unwrap();
//! let path = std::env::temp_dir().join(format!("dtrec-doc-{}.safetensors", std::process::id()));
//! rec.save(&path).unwrap();
//! let rec = Recommender::load(&path).unwrap();
//! let top = rec.recommend(&["apple", "fig"], 2, &RecommendOptions::default()).unwrap();
//! assert_eq!(top.len(), 2);
//! assert!(top.iter().all(|(id, _)| id != "apple" && id != "fig")); // seen items excluded by default
//! # std::fs::remove_file(&path).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use rayon::prelude::*;

use crate::io::{ModelFile, ModelFileError, ModelFileErrorKind, NamedTensor, KIND_MODEL};
use crate::kernels::topk::{top_k, top_k_excluding};
use crate::model::{ModelConfig, Params, Sasrec, SeqBatch};

/// The model's tensors as named file tensors (prefixed by `prefix`).
pub fn params_to_tensors(params: &Params<f32>, prefix: &str) -> Vec<NamedTensor> {
    params
        .tensors()
        .into_iter()
        .map(|(name, t)| NamedTensor::new(format!("{prefix}{name}"), t.shape.clone(), t.data.clone()))
        .collect()
}

/// Parameters for `config` read from the tensors `prefix + name` of `file`,
/// each checked to have the shape the config implies.
pub fn params_from_file(file: &ModelFile, config: &ModelConfig, prefix: &str) -> Result<Params<f32>, ModelFileError> {
    let mut params = Params::zeros(config);
    for (name, tensor) in params.tensors_mut() {
        let stored = file.expect_tensor(&format!("{prefix}{name}"), &tensor.shape)?;
        tensor.data.copy_from_slice(&stored.data);
    }
    Ok(params)
}

/// The model configuration stored in `file`, parsed and validated.
pub fn config_from_file(file: &ModelFile) -> Result<ModelConfig, ModelFileError> {
    let invalid = |reason: String| ModelFileError::new(ModelFileErrorKind::InvalidField { field: "config", reason });
    let config: ModelConfig = serde_json::from_str(&file.config_json).map_err(|e| invalid(e.to_string()))?;
    config.validate().map_err(|e| invalid(e.to_string()))?;
    if file.item_vocab.len() != config.n_items {
        return Err(invalid(format!(
            "n_items is {} but the vocabulary has {} ids",
            config.n_items,
            file.item_vocab.len()
        )));
    }
    Ok(config)
}

/// Why a recommendation request failed.
#[derive(Debug)]
pub enum ServeError {
    /// The model file could not be read or does not hold a valid model.
    File(ModelFileError),
    /// A history item is not in the model's vocabulary (and
    /// [`RecommendOptions::skip_unknown`] is off).
    UnknownItem { position: usize, item: String },
    /// The vocabulary does not fit the model.
    Vocab(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::File(e) => write!(f, "{e}"),
            ServeError::UnknownItem { position, item } => {
                write!(f, "history item {position} (`{item}`) is not in the model's vocabulary")
            }
            ServeError::Vocab(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<ModelFileError> for ServeError {
    fn from(e: ModelFileError) -> Self {
        ServeError::File(e)
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
        RecommendOptions { exclude_seen: true, skip_unknown: false }
    }
}

/// A model ready to serve: parameters plus the external item ids.
#[derive(Clone, Debug)]
pub struct Recommender {
    model: Sasrec,
    /// Entry i is the external id of dense item i + 1.
    vocab: Vec<String>,
    lookup: HashMap<String, u32>,
}

impl Recommender {
    /// Pairs a model with its vocabulary (`vocab[i]` ↔ dense item `i + 1`).
    pub fn new(model: Sasrec, vocab: Vec<String>) -> Result<Self, ServeError> {
        let n = model.config().n_items;
        if vocab.len() != n {
            return Err(ServeError::Vocab(format!("the model has {n} items, the vocabulary {}", vocab.len())));
        }
        let lookup: HashMap<String, u32> = vocab.iter().enumerate().map(|(i, id)| (id.clone(), i as u32 + 1)).collect();
        if lookup.len() != n {
            return Err(ServeError::Vocab("the vocabulary has duplicate ids".into()));
        }
        Ok(Recommender { model, vocab, lookup })
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
        let params = params_from_file(file, &config, "")?;
        let expected = params.tensors().len();
        if file.tensors.len() != expected {
            let reason = format!("{} tensors where the model has {expected}", file.tensors.len());
            return Err(ModelFileError::new(ModelFileErrorKind::Container { reason }).into());
        }
        let model = Sasrec::from_params(config, params).map_err(|e| {
            ModelFileError::new(ModelFileErrorKind::InvalidField { field: "config", reason: e.to_string() })
        })?;
        Self::new(model, file.item_vocab.clone())
    }

    /// The model file of this recommender.
    pub fn to_file(&self) -> ModelFile {
        let config = serde_json::to_string(self.model.config()).expect("a config serializes");
        ModelFile::new(KIND_MODEL, config, self.vocab.clone(), "{}", params_to_tensors(&self.model.params, ""))
    }

    /// Writes the model file atomically (temp file + rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelFileError> {
        self.to_file().write(path)
    }

    pub fn model(&self) -> &Sasrec {
        &self.model
    }

    /// External item ids; entry i is dense item i + 1.
    pub fn vocab(&self) -> &[String] {
        &self.vocab
    }

    /// Dense ids of a history, oldest first.
    fn dense_history(&self, history: &[&str], skip_unknown: bool) -> Result<Vec<u32>, ServeError> {
        let mut dense = Vec::with_capacity(history.len());
        for (position, item) in history.iter().enumerate() {
            match self.lookup.get(*item) {
                Some(&id) => dense.push(id),
                None if skip_unknown => {}
                None => return Err(ServeError::UnknownItem { position, item: item.to_string() }),
            }
        }
        Ok(dense)
    }

    /// The `k` best next items (external id, score) after `history` (oldest
    /// first; only its last `max_len` items are used), best first, ties by
    /// the smaller dense id.
    pub fn recommend(&self, history: &[&str], k: usize, options: &RecommendOptions) -> Result<Vec<(String, f32)>, ServeError> {
        Ok(self.recommend_batch(&[history.to_vec()], k, options)?.pop().expect("one row per history"))
    }

    /// [`recommend`](Self::recommend) for many users at once, scored in
    /// parallel batches; results in input order.
    pub fn recommend_batch(
        &self,
        histories: &[Vec<&str>],
        k: usize,
        options: &RecommendOptions,
    ) -> Result<Vec<Vec<(String, f32)>>, ServeError> {
        let dense: Vec<Vec<u32>> =
            histories.iter().map(|h| self.dense_history(h, options.skip_unknown)).collect::<Result<_, _>>()?;
        const BATCH: usize = 64;
        let rows: Vec<Vec<(String, f32)>> = dense
            .par_chunks(BATCH)
            .flat_map_iter(|chunk| self.recommend_dense(chunk, k, options.exclude_seen))
            .collect();
        Ok(rows)
    }

    fn recommend_dense(&self, histories: &[Vec<u32>], k: usize, exclude_seen: bool) -> Vec<Vec<(String, f32)>> {
        let cfg = self.model.config();
        let (l, n) = (cfg.max_len, cfg.n_items);
        let mut items = vec![0u32; histories.len() * l];
        let mut lengths = Vec::with_capacity(histories.len());
        for (row, h) in items.chunks_mut(l).zip(histories) {
            let kept = &h[h.len().saturating_sub(l)..];
            row[l - kept.len()..].copy_from_slice(kept);
            lengths.push(kept.len() as u32);
        }
        let seqs = SeqBatch::new(items, lengths, l, n).expect("dense ids come from the vocabulary");
        let hidden = self.model.encode_batch(&seqs);
        let mut scores = vec![0f32; histories.len() * n];
        self.model.score_items(&mut scores, &hidden);
        let mut top = Vec::with_capacity(k);
        let mut exclude = Vec::new();
        scores
            .chunks(n)
            .zip(histories)
            .map(|(row, h)| {
                if exclude_seen {
                    exclude.clear();
                    exclude.extend(h.iter().map(|&id| id - 1));
                    top_k_excluding(row, k, &exclude, &mut top);
                } else {
                    top_k(row, k, &mut top);
                }
                top.iter().map(|&(col, s)| (self.vocab[col as usize].clone(), s)).collect()
            })
            .collect()
    }
}
