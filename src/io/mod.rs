//! Persistence: model files and training checkpoints in the safetensors
//! format, validated on read and written atomically.
//!
//! A [`ModelFile`] is one safetensors file: F32 little-endian tensors, and in
//! the header's `__metadata__` string map the fields
//!
//! | field | content |
//! |---|---|
//! | `format_version` | decimal, currently [`FORMAT_VERSION`] |
//! | `kind` | [`KIND_MODEL`] or [`KIND_CHECKPOINT`] (any `[a-z0-9-]` tag) |
//! | `config` | model configuration, JSON |
//! | `item_count` | decimal N |
//! | `item_vocab` | JSON array of the N external item ids (entry i ↔ dense id i + 1) |
//! | `extra` | JSON: epoch, optimizer step, RNG state, … |
//! | `checksum` | `fnv1a64:` + 16 hex digits over all other fields and every tensor's name, shape and bytes |
//!
//! Reading never trusts a length before checking it against the buffer and the
//! [`ReadLimits`], and returns a [`ModelFileError`] naming the file and the
//! field or tensor; any single-bit corruption of a file is detected.

mod atomic;
mod checksum;
mod container;
mod error;
mod model_file;
mod stored;
mod tensors;

pub use atomic::write_atomic;
pub use checksum::Fnv1a64;
pub use error::{ModelFileError, ModelFileErrorKind};
pub use model_file::{
    ModelFile, NamedTensor, ReadLimits, FORMAT_VERSION, KIND_CHECKPOINT, KIND_MODEL,
    OPTIMIZER_PREFIX,
};
pub use stored::{
    prototypes_from_file, prototypes_to_tensors, ModelExtra, StoredHalting, PROTOTYPES_PREFIX,
};
pub use tensors::{config_from_file, params_from_file, params_to_tensors};
