//! Training checkpoints: the whole [`TrainState`] (parameters, Adam moments,
//! the parameters' moving average if any, epoch, early-stopping state,
//! history) in one model file of kind
//! [`KIND_CHECKPOINT`], written atomically, so an interrupted run resumes
//! bit-identically.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::optim::Adam;
use super::trainer::{EpochLog, TrainState};
use crate::io::{
    config_from_file, params_from_file, params_to_tensors, prototypes_from_file,
    prototypes_to_tensors, ModelFile, ModelFileError, ModelFileErrorKind, KIND_CHECKPOINT,
    OPTIMIZER_PREFIX,
};
use crate::model::prototypes::PrototypeConfig;
use crate::model::Model;

/// Tensor-name prefix of the best epoch's parameters.
const BEST_PREFIX: &str = "best.";
/// Tensor-name prefix of the parameters' moving average.
const EMA_PREFIX: &str = "ema.";

/// The non-tensor part of a checkpoint (`extra` JSON).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extra {
    train: TrainConfig,
    epoch: usize,
    adam_steps: u64,
    /// Best epoch and the bit pattern of its validation NDCG@10 (bits, so
    /// the comparison after resuming is exact).
    best: Option<(usize, u64)>,
    stale_epochs: usize,
    history: Vec<EpochLog>,
    /// Settings of the stored HPS prototypes, if any.
    #[serde(default)]
    prototypes: Option<PrototypeConfig>,
}

/// Writes `state` (trained with `train` on items `vocab`) to `path`
/// atomically.
pub fn save_checkpoint(
    path: &Path,
    state: &TrainState,
    train: &TrainConfig,
    vocab: &[String],
) -> Result<(), ModelFileError> {
    let params = &state.model.params;
    let mut tensors = params_to_tensors(params, "");
    tensors.extend(params_to_tensors(
        &state.adam.m,
        &format!("{OPTIMIZER_PREFIX}m."),
    ));
    tensors.extend(params_to_tensors(
        &state.adam.v,
        &format!("{OPTIMIZER_PREFIX}v."),
    ));
    if let Some(best) = &state.best_params {
        tensors.extend(params_to_tensors(best, BEST_PREFIX));
    }
    if let Some(ema) = &state.ema {
        tensors.extend(params_to_tensors(ema, EMA_PREFIX));
    }
    if let Some(p) = &state.prototypes {
        tensors.extend(prototypes_to_tensors(p));
    }
    let extra = Extra {
        train: train.clone(),
        epoch: state.epoch,
        adam_steps: state.adam.t,
        best: state.best.map(|(e, ndcg)| (e, ndcg.to_bits())),
        stale_epochs: state.stale_epochs,
        history: state.history.clone(),
        prototypes: state.prototypes.as_ref().map(|p| p.config().clone()),
    };
    let config = serde_json::to_string(state.model.config()).expect("a config serializes");
    let extra = serde_json::to_string(&extra).expect("checkpoint state serializes");
    ModelFile::new(KIND_CHECKPOINT, config, vocab.to_vec(), extra, tensors).write(path)
}

/// Reads a checkpoint: the state, its training configuration and the item
/// vocabulary. Every tensor is validated against the stored configuration.
pub fn load_checkpoint(
    path: &Path,
) -> Result<(TrainState, TrainConfig, Vec<String>), ModelFileError> {
    let file = ModelFile::read(path)?;
    let at = |e: ModelFileError| e.in_file(path);
    file.expect_kind(KIND_CHECKPOINT).map_err(at)?;
    let config = config_from_file(&file).map_err(at)?;
    let invalid = |reason: String| {
        at(ModelFileError::new(ModelFileErrorKind::InvalidField {
            field: "extra",
            reason,
        }))
    };
    let extra: Extra =
        serde_json::from_str(&file.extra_json).map_err(|e| invalid(e.to_string()))?;
    extra.train.validate().map_err(invalid)?;
    let params = params_from_file(&file, &config, "").map_err(at)?;
    let m = params_from_file(&file, &config, &format!("{OPTIMIZER_PREFIX}m.")).map_err(at)?;
    let v = params_from_file(&file, &config, &format!("{OPTIMIZER_PREFIX}v.")).map_err(at)?;
    let best_params = match extra.best {
        Some((epoch, _)) if epoch < extra.history.len() => {
            Some(params_from_file(&file, &config, BEST_PREFIX).map_err(at)?)
        }
        Some((epoch, _)) => {
            return Err(invalid(format!("best epoch {epoch} is not in the history")))
        }
        None => None,
    };
    if extra.epoch != extra.history.len() {
        return Err(invalid(format!(
            "epoch {} but {} logged epochs",
            extra.epoch,
            extra.history.len()
        )));
    }
    let ema = match extra.train.ema_decay {
        Some(_) => Some(params_from_file(&file, &config, EMA_PREFIX).map_err(at)?),
        None => None,
    };
    let prototypes = match &extra.prototypes {
        Some(pc) => Some(prototypes_from_file(&file, pc, config.n_items, config.d).map_err(at)?),
        None => None,
    };
    let model = Model::from_params(config, params).map_err(|e| invalid(e.to_string()))?;
    let adam = Adam {
        config: extra.train.adam(0),
        m,
        v,
        t: extra.adam_steps,
    };
    let state = TrainState {
        model,
        adam,
        epoch: extra.epoch,
        best: extra.best.map(|(e, bits)| (e, f64::from_bits(bits))),
        best_params,
        stale_epochs: extra.stale_epochs,
        ema,
        history: extra.history,
        prototypes,
    };
    Ok((state, extra.train, file.item_vocab))
}
