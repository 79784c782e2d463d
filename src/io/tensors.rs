//! The model's parameters and configuration as model-file tensors and
//! header fields: each parameter tensor under its name (optionally
//! prefixed, for the optimizer moments and the best and averaged
//! parameters of a checkpoint), read back with every shape checked against
//! the stored configuration.

use super::{ModelFile, ModelFileError, ModelFileErrorKind, NamedTensor};
use crate::model::{ModelConfig, Params};

/// The model's tensors as named file tensors (prefixed by `prefix`).
pub fn params_to_tensors(params: &Params<f32>, prefix: &str) -> Vec<NamedTensor> {
    params
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            NamedTensor::new(format!("{prefix}{name}"), t.shape.clone(), t.data.clone())
        })
        .collect()
}

/// Parameters for `config` read from the tensors `prefix + name` of `file`,
/// each checked to have the shape the config implies.
pub fn params_from_file(
    file: &ModelFile,
    config: &ModelConfig,
    prefix: &str,
) -> Result<Params<f32>, ModelFileError> {
    let mut params = Params::zeros(config);
    for (name, tensor) in params.tensors_mut() {
        let stored = file.expect_tensor(&format!("{prefix}{name}"), &tensor.shape)?;
        tensor.data.copy_from_slice(&stored.data);
    }
    Ok(params)
}

/// The model configuration stored in `file`, parsed and validated.
pub fn config_from_file(file: &ModelFile) -> Result<ModelConfig, ModelFileError> {
    let invalid = |reason: String| {
        ModelFileError::new(ModelFileErrorKind::InvalidField {
            field: "config",
            reason,
        })
    };
    let config: ModelConfig =
        serde_json::from_str(&file.config_json).map_err(|e| invalid(e.to_string()))?;
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
