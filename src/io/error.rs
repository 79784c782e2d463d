//! The typed error of model-file reading and writing.

use std::fmt;
use std::path::{Path, PathBuf};

/// A model file could not be read, validated or written.
///
/// `file` names the file when known (reading or writing a path); errors from
/// in-memory bytes or from [`ModelFile::expect_tensor`](super::ModelFile::expect_tensor)
/// have none until [`in_file`](Self::in_file) attaches one.
#[derive(Debug)]
pub struct ModelFileError {
    /// The file concerned, if known.
    pub file: Option<PathBuf>,
    /// What went wrong.
    pub kind: ModelFileErrorKind,
}

/// What went wrong with a model file; variants name the field or tensor.
#[derive(Debug)]
#[non_exhaustive]
pub enum ModelFileErrorKind {
    /// Reading or writing the file failed.
    Io(std::io::Error),
    /// The file is larger than the read limit (checked before reading it).
    FileTooLarge {
        /// File size in bytes (or the size read so far).
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The 8-byte header length prefix claims more than the header limit.
    HeaderTooLarge {
        /// Claimed header length in bytes.
        claimed: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file ends before the part it declares.
    Truncated {
        /// What was being read (`"header length"`, `"header"`, `"tensor data"`).
        part: &'static str,
        /// Bytes needed up to the end of that part.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The JSON header is not valid UTF-8 / JSON or not the safetensors layout.
    Header {
        /// Parser message.
        reason: String,
    },
    /// The safetensors crate rejected the container.
    Container {
        /// The crate's message.
        reason: String,
    },
    /// Two tensors (or two metadata entries) share a name.
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A tensor has a name the format reserves or cannot hold.
    InvalidTensorName {
        /// The name.
        name: String,
    },
    /// A required `__metadata__` field is absent.
    MissingField {
        /// Field name.
        field: &'static str,
    },
    /// `__metadata__` holds a field this format version does not define.
    UnknownField {
        /// Field name.
        field: String,
    },
    /// A metadata field does not parse or violates its rule.
    InvalidField {
        /// Field name.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The file's format version is not one this build reads.
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The file is of another kind (e.g. a checkpoint where a model is expected).
    WrongKind {
        /// Kind wanted.
        expected: String,
        /// Kind in the file.
        found: String,
    },
    /// The external-id vocabulary does not have the declared length.
    VocabLength {
        /// `item_count` declared in the metadata.
        declared: usize,
        /// Entries in `item_vocab`.
        found: usize,
    },
    /// A tensor is not `F32`.
    DType {
        /// Tensor name.
        tensor: String,
        /// Its dtype as written in the header.
        dtype: String,
    },
    /// A tensor's byte range does not match its shape, or ranges overlap,
    /// leave gaps, or overflow.
    TensorLayout {
        /// Tensor name.
        tensor: String,
        /// What is inconsistent.
        reason: String,
    },
    /// A tensor holds NaN or ±∞.
    NonFinite {
        /// Tensor name.
        tensor: String,
        /// Flat index of the first non-finite value.
        index: usize,
    },
    /// The stored checksum does not match the content.
    Checksum {
        /// Checksum stored in the file.
        stored: u64,
        /// Checksum of the content read.
        computed: u64,
    },
    /// A tensor the model needs is absent.
    MissingTensor {
        /// Tensor name.
        tensor: String,
    },
    /// A tensor has another shape than the model needs.
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// Shape the model needs.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
}

impl ModelFileError {
    /// An error without a file name.
    pub fn new(kind: ModelFileErrorKind) -> Self {
        Self { file: None, kind }
    }

    /// Attaches (or replaces) the file name.
    pub fn in_file(mut self, file: impl AsRef<Path>) -> Self {
        self.file = Some(file.as_ref().to_path_buf());
        self
    }
}

impl From<ModelFileErrorKind> for ModelFileError {
    fn from(kind: ModelFileErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for ModelFileErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ModelFileErrorKind::*;
        match self {
            Io(e) => write!(f, "I/O error: {e}"),
            FileTooLarge { size, limit } => {
                write!(f, "file is {size} bytes, more than the limit of {limit}")
            }
            HeaderTooLarge { claimed, limit } => write!(
                f,
                "header length prefix claims {claimed} bytes, more than the limit of {limit}"
            ),
            Truncated {
                part,
                needed,
                available,
            } => write!(
                f,
                "truncated {part}: needs {needed} bytes, file has {available}"
            ),
            Header { reason } => write!(f, "invalid safetensors header: {reason}"),
            Container { reason } => write!(f, "invalid safetensors container: {reason}"),
            DuplicateName { name } => write!(f, "name `{name}` appears twice"),
            InvalidTensorName { name } => write!(f, "invalid tensor name `{name}`"),
            MissingField { field } => write!(f, "metadata field `{field}` is missing"),
            UnknownField { field } => write!(f, "unknown metadata field `{field}`"),
            InvalidField { field, reason } => {
                write!(f, "metadata field `{field}` is invalid: {reason}")
            }
            UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found} is not supported (this build reads 1..={supported})"
            ),
            WrongKind { expected, found } => {
                write!(f, "file is a `{found}`, expected a `{expected}`")
            }
            VocabLength { declared, found } => write!(
                f,
                "metadata field `item_vocab` has {found} entries but `item_count` declares {declared}"
            ),
            DType { tensor, dtype } => {
                write!(f, "tensor `{tensor}` has dtype {dtype}, only F32 is accepted")
            }
            TensorLayout { tensor, reason } => write!(f, "tensor `{tensor}`: {reason}"),
            NonFinite { tensor, index } => {
                write!(f, "tensor `{tensor}` holds a non-finite value at flat index {index}")
            }
            Checksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:016x}, content hashes to {computed:016x} (corrupted file)"
            ),
            MissingTensor { tensor } => write!(f, "tensor `{tensor}` is missing"),
            ShapeMismatch {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "tensor `{tensor}` has shape {found:?}, expected {expected:?}"
            ),
        }
    }
}

impl fmt::Display for ModelFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "model file {}: {}", file.display(), self.kind),
            None => write!(f, "model file: {}", self.kind),
        }
    }
}

impl std::error::Error for ModelFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ModelFileErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}
