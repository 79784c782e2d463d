//! [`ModelFile`]: a model or training checkpoint as one safetensors file.

use super::atomic::write_atomic;
use super::checksum::Fnv1a64;
use super::container::{self, EncodeTensor, RawHeader};
use super::error::{ModelFileError, ModelFileErrorKind};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;

/// The format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 1;
/// `kind` of a trained model (weights only).
pub const KIND_MODEL: &str = "dtrec-model";
/// `kind` of a training checkpoint: weights plus optimizer state (tensors named
/// with [`OPTIMIZER_PREFIX`]) and epoch/step/RNG state in `extra_json`.
pub const KIND_CHECKPOINT: &str = "dtrec-checkpoint";
/// Name prefix of optimizer-state tensors in a checkpoint, e.g.
/// `optimizer.m.<parameter>` and `optimizer.v.<parameter>` for Adam moments.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

/// `__metadata__` field names (format version 1).
mod field {
    pub const FORMAT_VERSION: &str = "format_version";
    pub const KIND: &str = "kind";
    pub const CONFIG: &str = "config";
    pub const ITEM_COUNT: &str = "item_count";
    pub const ITEM_VOCAB: &str = "item_vocab";
    pub const EXTRA: &str = "extra";
    pub const CHECKSUM: &str = "checksum";
    pub const ALL: [&str; 7] = [
        FORMAT_VERSION,
        KIND,
        CONFIG,
        ITEM_COUNT,
        ITEM_VOCAB,
        EXTRA,
        CHECKSUM,
    ];
}

/// Prefix of the stored checksum value: `fnv1a64:` + 16 lowercase hex digits.
const CHECKSUM_PREFIX: &str = "fnv1a64:";
/// Domain tag hashed first, so a checksum of some other stream never matches.
const CHECKSUM_DOMAIN: &[u8] = b"dtrec-model-file";
/// Longest accepted `kind`.
const MAX_KIND_LEN: usize = 64;

/// Size limits applied before any allocation that depends on file content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest accepted file, in bytes (checked from file metadata before
    /// reading, and again while reading).
    pub max_file_bytes: u64,
    /// Largest accepted JSON header (metadata, vocabulary, tensor table).
    pub max_header_bytes: u64,
}

impl Default for ReadLimits {
    /// 4 GiB files, 64 MiB headers (room for a vocabulary of millions of ids).
    fn default() -> Self {
        Self {
            max_file_bytes: 4 << 30,
            max_header_bytes: 64 << 20,
        }
    }
}

/// A named F32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Unique name, e.g. `"item_embedding"` or `"optimizer.m.item_embedding"`.
    pub name: String,
    /// Shape; `data.len()` must equal the product (1 for `[]`).
    pub shape: Vec<usize>,
    /// Values, row-major; all finite.
    pub data: Vec<f32>,
}

impl NamedTensor {
    /// A tensor (shape and length are checked when the file is written).
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape,
            data,
        }
    }
}

/// A model or checkpoint: metadata plus F32 tensors, stored as one
/// safetensors file whose `__metadata__` holds every field as a string.
///
/// Dense item id `i + 1` ↔ external id `item_vocab[i]` (id 0 is padding).
/// Tensors are stored, and read back, sorted by name.
///
/// ```
/// use dtrec::io::{ModelFile, NamedTensor, KIND_MODEL};
/// let model = ModelFile::new(
///     KIND_MODEL,
///     r#"{"d":2}"#,
///     vec!["i42".into(), "i7".into()],
///     "{}",
///     vec![NamedTensor::new("item_embedding", vec![3, 2], vec![0.0, 0.0, 0.5, -1.0, 2.0, 0.25])],
/// );
/// let bytes = model.to_bytes().unwrap();
/// let back = ModelFile::from_bytes(&bytes).unwrap();
/// assert_eq!(back, model);
/// let emb = back.expect_tensor("item_embedding", &[3, 2]).unwrap();
/// assert_eq!(emb.data[3], -1.0);
/// assert!(back.expect_tensor("item_embedding", &[2, 3]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    /// Format version (written as [`FORMAT_VERSION`]).
    pub format_version: u32,
    /// [`KIND_MODEL`], [`KIND_CHECKPOINT`] or another `[a-z0-9-]` tag (≤ 64 bytes).
    pub kind: String,
    /// The model configuration, JSON text (kept verbatim).
    pub config_json: String,
    /// External item ids; entry `i` is dense item `i + 1`. Non-empty, unique.
    pub item_vocab: Vec<String>,
    /// Anything else as JSON text (epoch, optimizer step, RNG state, …).
    pub extra_json: String,
    /// The tensors; names unique.
    pub tensors: Vec<NamedTensor>,
}

impl ModelFile {
    /// A file of the current [`FORMAT_VERSION`].
    pub fn new(
        kind: impl Into<String>,
        config_json: impl Into<String>,
        item_vocab: Vec<String>,
        extra_json: impl Into<String>,
        tensors: Vec<NamedTensor>,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            kind: kind.into(),
            config_json: config_json.into(),
            item_vocab,
            extra_json: extra_json.into(),
            tensors,
        }
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor called `name`, checked to have exactly `shape`.
    pub fn expect_tensor(
        &self,
        name: &str,
        shape: &[usize],
    ) -> Result<&NamedTensor, ModelFileError> {
        let t = self.tensor(name).ok_or_else(|| {
            ModelFileError::new(ModelFileErrorKind::MissingTensor {
                tensor: name.to_string(),
            })
        })?;
        if t.shape != shape {
            return Err(ModelFileError::new(ModelFileErrorKind::ShapeMismatch {
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: t.shape.clone(),
            }));
        }
        Ok(t)
    }

    /// Checks that the file is of `kind` (e.g. [`KIND_MODEL`]).
    pub fn expect_kind(&self, kind: &str) -> Result<(), ModelFileError> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(ModelFileError::new(ModelFileErrorKind::WrongKind {
                expected: kind.to_string(),
                found: self.kind.clone(),
            }))
        }
    }

    /// The tensors whose names start with `prefix`, in stored order.
    pub fn tensors_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a NamedTensor> + 'a {
        self.tensors
            .iter()
            .filter(move |t| t.name.starts_with(prefix))
    }

    /// Encodes the file (validating every field first; see [`from_bytes`](Self::from_bytes)).
    /// The bytes depend only on the content: same model, same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelFileError> {
        self.encode().map_err(ModelFileError::new)
    }

    /// Writes the file atomically: a temporary file in the same directory is
    /// written, synced and renamed over `path`, so `path` always holds either
    /// its previous content or the complete new file. Nothing is written if
    /// validation fails.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ModelFileError> {
        let path = path.as_ref();
        let bytes = self
            .encode()
            .map_err(|k| ModelFileError::new(k).in_file(path))?;
        write_atomic(path, &bytes)
            .map_err(|e| ModelFileError::new(ModelFileErrorKind::Io(e)).in_file(path))
    }

    /// Reads and validates a file with the default [`ReadLimits`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ModelFileError> {
        Self::read_with_limits(path, &ReadLimits::default())
    }

    /// Reads and validates a file; the size limits are checked from the file
    /// metadata before reading and enforced again while reading.
    pub fn read_with_limits(
        path: impl AsRef<Path>,
        limits: &ReadLimits,
    ) -> Result<Self, ModelFileError> {
        let path = path.as_ref();
        let in_file = |kind| ModelFileError::new(kind).in_file(path);
        let file = std::fs::File::open(path).map_err(|e| in_file(ModelFileErrorKind::Io(e)))?;
        let size = file
            .metadata()
            .map_err(|e| in_file(ModelFileErrorKind::Io(e)))?
            .len();
        if size > limits.max_file_bytes {
            return Err(in_file(ModelFileErrorKind::FileTooLarge {
                size,
                limit: limits.max_file_bytes,
            }));
        }
        // `size` ≤ the limit; the capacity is a hint, `take` enforces the cap
        // even if the file grows while we read it.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(limits.max_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| in_file(ModelFileErrorKind::Io(e)))?;
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(in_file(ModelFileErrorKind::FileTooLarge {
                size: bytes.len() as u64,
                limit: limits.max_file_bytes,
            }));
        }
        Self::decode(&bytes, limits).map_err(in_file)
    }

    /// Decodes and validates in-memory bytes with the default [`ReadLimits`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelFileError> {
        Self::from_bytes_with_limits(bytes, &ReadLimits::default())
    }

    /// Decodes and validates in-memory bytes.
    ///
    /// Checks, in order: size limits; the length prefix and header against the
    /// buffer; header JSON (duplicate names rejected); every tensor F32 with
    /// bytes = 4 × ∏shape and contiguous ranges covering the data exactly; the
    /// `safetensors` crate accepts the container; metadata fields known and
    /// present; format version supported; checksum over metadata and tensor
    /// bytes; kind, config/extra JSON, vocabulary (length = `item_count`,
    /// unique non-empty ids); every weight finite.
    pub fn from_bytes_with_limits(
        bytes: &[u8],
        limits: &ReadLimits,
    ) -> Result<Self, ModelFileError> {
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(ModelFileError::new(ModelFileErrorKind::FileTooLarge {
                size: bytes.len() as u64,
                limit: limits.max_file_bytes,
            }));
        }
        Self::decode(bytes, limits).map_err(ModelFileError::new)
    }

    fn encode(&self) -> Result<Vec<u8>, ModelFileErrorKind> {
        if self.format_version == 0 || self.format_version > FORMAT_VERSION {
            return Err(ModelFileErrorKind::UnsupportedVersion {
                found: self.format_version,
                supported: FORMAT_VERSION,
            });
        }
        check_kind(&self.kind)?;
        check_json(field::CONFIG, &self.config_json)?;
        check_json(field::EXTRA, &self.extra_json)?;
        check_vocab(&self.item_vocab)?;

        let mut sorted: Vec<&NamedTensor> = self.tensors.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in sorted.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(ModelFileErrorKind::DuplicateName {
                    name: pair[0].name.clone(),
                });
            }
        }
        let mut tensor_bytes = Vec::with_capacity(sorted.len());
        for t in &sorted {
            check_tensor_name(&t.name)?;
            let numel = t
                .shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .filter(|&n| n == t.data.len())
                .ok_or_else(|| ModelFileErrorKind::TensorLayout {
                    tensor: t.name.clone(),
                    reason: format!("{} values do not fill shape {:?}", t.data.len(), t.shape),
                })?;
            if let Some(index) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(ModelFileErrorKind::NonFinite {
                    tensor: t.name.clone(),
                    index,
                });
            }
            let mut bytes = Vec::with_capacity(numel * 4);
            for v in &t.data {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            tensor_bytes.push(bytes);
        }

        let mut metadata = BTreeMap::from([
            (
                field::FORMAT_VERSION.to_string(),
                self.format_version.to_string(),
            ),
            (field::KIND.to_string(), self.kind.clone()),
            (field::CONFIG.to_string(), self.config_json.clone()),
            (
                field::ITEM_COUNT.to_string(),
                self.item_vocab.len().to_string(),
            ),
            (
                field::ITEM_VOCAB.to_string(),
                vocab_to_json(&self.item_vocab),
            ),
            (field::EXTRA.to_string(), self.extra_json.clone()),
        ]);
        let encode_tensors: Vec<EncodeTensor<'_>> = sorted
            .iter()
            .zip(&tensor_bytes)
            .map(|(t, bytes)| EncodeTensor {
                name: &t.name,
                shape: &t.shape,
                bytes,
            })
            .collect();
        let checksum = content_checksum(
            metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            encode_tensors
                .iter()
                .map(|t| (t.name, t.shape.iter().map(|&d| d as u64), t.bytes)),
        );
        metadata.insert(
            field::CHECKSUM.to_string(),
            format!("{CHECKSUM_PREFIX}{checksum:016x}"),
        );
        Ok(container::encode(&metadata, &encode_tensors))
    }

    fn decode(bytes: &[u8], limits: &ReadLimits) -> Result<Self, ModelFileErrorKind> {
        // container structure, checked by us (typed errors, checked arithmetic) …
        let (header_text, data) = container::split(bytes, limits.max_header_bytes)?;
        let RawHeader {
            metadata,
            metadata_blocks,
            tensors: raw_tensors,
        } = container::parse_header(header_text)?;
        if metadata_blocks > 1 {
            return Err(ModelFileErrorKind::DuplicateName {
                name: container::METADATA_KEY.to_string(),
            });
        }
        check_unique(raw_tensors.iter().map(|t| t.name.as_str()))?;
        check_unique(metadata.iter().map(|(k, _)| k.as_str()))?;
        for t in &raw_tensors {
            check_tensor_name(&t.name)?;
        }
        container::check_layout(&raw_tensors, data.len() as u64)?;
        // … and by the safetensors crate (which must agree; it runs only after
        // our checks, whose overflow-checked offsets guard its unchecked sum).
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
            ModelFileErrorKind::Container {
                reason: e.to_string(),
            }
        })?;

        // metadata fields: all known, all present
        let meta: BTreeMap<&str, &str> = metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(unknown) = meta.keys().find(|k| !field::ALL.contains(k)) {
            return Err(ModelFileErrorKind::UnknownField {
                field: unknown.to_string(),
            });
        }
        let get = |name: &'static str| {
            meta.get(name)
                .copied()
                .ok_or(ModelFileErrorKind::MissingField { field: name })
        };

        let format_version = parse_decimal(field::FORMAT_VERSION, get(field::FORMAT_VERSION)?)?;
        let format_version = u32::try_from(format_version)
            .ok()
            .filter(|&v| (1..=FORMAT_VERSION).contains(&v))
            .ok_or(ModelFileErrorKind::UnsupportedVersion {
                found: u32::try_from(format_version).unwrap_or(u32::MAX),
                supported: FORMAT_VERSION,
            })?;

        // checksum before interpreting any content: a corrupted file says so
        let stored = parse_checksum(get(field::CHECKSUM)?)?;
        let mut tensor_views = Vec::with_capacity(raw_tensors.len());
        let mut names: Vec<&str> = raw_tensors.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        for name in &names {
            let view = st.tensor(name).map_err(|e| ModelFileErrorKind::Container {
                reason: e.to_string(),
            })?;
            tensor_views.push((*name, view));
        }
        let computed = content_checksum(
            meta.iter()
                .filter(|(k, _)| **k != field::CHECKSUM)
                .map(|(k, v)| (*k, *v)),
            tensor_views
                .iter()
                .map(|(name, view)| (*name, view.shape().iter().map(|&d| d as u64), view.data())),
        );
        if computed != stored {
            return Err(ModelFileErrorKind::Checksum { stored, computed });
        }

        let kind = get(field::KIND)?;
        check_kind(kind)?;
        let config_json = get(field::CONFIG)?;
        check_json(field::CONFIG, config_json)?;
        let extra_json = get(field::EXTRA)?;
        check_json(field::EXTRA, extra_json)?;
        let item_count = parse_decimal(field::ITEM_COUNT, get(field::ITEM_COUNT)?)?;
        let item_vocab: Vec<String> =
            serde_json::from_str(get(field::ITEM_VOCAB)?).map_err(|e| {
                ModelFileErrorKind::InvalidField {
                    field: field::ITEM_VOCAB,
                    reason: format!("not a JSON array of strings: {e}"),
                }
            })?;
        if item_vocab.len() as u64 != item_count {
            return Err(ModelFileErrorKind::VocabLength {
                declared: usize::try_from(item_count).unwrap_or(usize::MAX),
                found: item_vocab.len(),
            });
        }
        check_vocab(&item_vocab)?;

        let mut tensors = Vec::with_capacity(tensor_views.len());
        for (name, view) in tensor_views {
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(index) = data.iter().position(|v| !v.is_finite()) {
                return Err(ModelFileErrorKind::NonFinite {
                    tensor: name.to_string(),
                    index,
                });
            }
            tensors.push(NamedTensor {
                name: name.to_string(),
                shape: view.shape().to_vec(),
                data,
            });
        }

        Ok(Self {
            format_version,
            kind: kind.to_string(),
            config_json: config_json.to_string(),
            item_vocab,
            extra_json: extra_json.to_string(),
            tensors,
        })
    }
}

/// FNV-1a 64 over the domain tag, every metadata entry (sorted by key,
/// checksum excluded) and every tensor (sorted by name: name, shape, bytes),
/// each field length-prefixed.
fn content_checksum<'a, M, T, S>(metadata: M, tensors: T) -> u64
where
    M: Iterator<Item = (&'a str, &'a str)>,
    T: Iterator<Item = (&'a str, S, &'a [u8])>,
    S: ExactSizeIterator<Item = u64>,
{
    let mut h = Fnv1a64::new();
    h.update_prefixed(CHECKSUM_DOMAIN);
    let metadata: Vec<(&str, &str)> = metadata.collect();
    h.update_u64(metadata.len() as u64);
    for (k, v) in metadata {
        h.update_prefixed(k.as_bytes());
        h.update_prefixed(v.as_bytes());
    }
    let tensors: Vec<(&str, S, &[u8])> = tensors.collect();
    h.update_u64(tensors.len() as u64);
    for (name, shape, bytes) in tensors {
        h.update_prefixed(name.as_bytes());
        h.update_u64(shape.len() as u64);
        for d in shape {
            h.update_u64(d);
        }
        h.update_prefixed(bytes);
    }
    h.finish()
}

/// `fnv1a64:` followed by exactly 16 lowercase hex digits (strict, so that a
/// flipped case bit cannot yield the same value).
fn parse_checksum(text: &str) -> Result<u64, ModelFileErrorKind> {
    let invalid = || ModelFileErrorKind::InvalidField {
        field: field::CHECKSUM,
        reason: format!("expected `{CHECKSUM_PREFIX}` and 16 lowercase hex digits, found {text:?}"),
    };
    let hex = text.strip_prefix(CHECKSUM_PREFIX).ok_or_else(invalid)?;
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid());
    }
    u64::from_str_radix(hex, 16).map_err(|_| invalid())
}

/// A canonical decimal: ASCII digits, no sign, no leading zero (except "0").
fn parse_decimal(name: &'static str, text: &str) -> Result<u64, ModelFileErrorKind> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| ModelFileErrorKind::InvalidField {
            field: name,
            reason: format!("expected a decimal integer, found {text:?}"),
        })
}

fn check_kind(kind: &str) -> Result<(), ModelFileErrorKind> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND_LEN
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ModelFileErrorKind::InvalidField {
            field: field::KIND,
            reason: format!("expected 1..={MAX_KIND_LEN} characters of [a-z0-9-], found {kind:?}"),
        })
    }
}

fn check_json(name: &'static str, text: &str) -> Result<(), ModelFileErrorKind> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| ModelFileErrorKind::InvalidField {
            field: name,
            reason: format!("not valid JSON: {e}"),
        })
}

fn check_tensor_name(name: &str) -> Result<(), ModelFileErrorKind> {
    if name.is_empty() || name == container::METADATA_KEY {
        return Err(ModelFileErrorKind::InvalidTensorName {
            name: name.to_string(),
        });
    }
    Ok(())
}

fn check_unique<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), ModelFileErrorKind> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(ModelFileErrorKind::DuplicateName {
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

fn check_vocab(vocab: &[String]) -> Result<(), ModelFileErrorKind> {
    let mut seen = HashSet::with_capacity(vocab.len());
    for (i, id) in vocab.iter().enumerate() {
        if id.is_empty() {
            return Err(ModelFileErrorKind::InvalidField {
                field: field::ITEM_VOCAB,
                reason: format!("entry {i} (dense id {}) is empty", i + 1),
            });
        }
        if !seen.insert(id.as_str()) {
            return Err(ModelFileErrorKind::InvalidField {
                field: field::ITEM_VOCAB,
                reason: format!(
                    "external id {id:?} appears twice (second at dense id {})",
                    i + 1
                ),
            });
        }
    }
    Ok(())
}

fn vocab_to_json(vocab: &[String]) -> String {
    // a slice of strings always serializes
    serde_json::to_string(vocab).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The metadata of a valid two-item model, as strings.
    fn valid_metadata() -> BTreeMap<String, String> {
        [
            (field::FORMAT_VERSION, "1"),
            (field::KIND, KIND_MODEL),
            (field::CONFIG, r#"{"d":2}"#),
            (field::ITEM_COUNT, "2"),
            (field::ITEM_VOCAB, r#"["a","b"]"#),
            (field::EXTRA, "{}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Encodes hand-made metadata and one tensor `w` with a CORRECT checksum,
    /// so that the checks after the checksum can be reached.
    fn craft(mut metadata: BTreeMap<String, String>, values: &[f32]) -> Vec<u8> {
        let bytes = le(values);
        let shape = [values.len()];
        let checksum = content_checksum(
            metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            std::iter::once(("w", shape.iter().map(|&d| d as u64), &bytes[..])),
        );
        metadata.insert(
            field::CHECKSUM.into(),
            format!("{CHECKSUM_PREFIX}{checksum:016x}"),
        );
        let t = EncodeTensor {
            name: "w",
            shape: &shape,
            bytes: &bytes,
        };
        container::encode(&metadata, &[t])
    }

    fn decode_err(bytes: &[u8]) -> String {
        ModelFile::from_bytes(bytes).unwrap_err().to_string()
    }

    #[test]
    fn crafted_valid_file_reads() {
        let m = ModelFile::from_bytes(&craft(valid_metadata(), &[1.0, 2.0])).unwrap();
        assert_eq!(m.item_vocab, vec!["a", "b"]);
        assert_eq!(m.tensors[0].data, vec![1.0, 2.0]);
    }

    #[test]
    fn semantic_errors_after_a_valid_checksum() {
        let with = |key: &str, value: &str| {
            let mut m = valid_metadata();
            m.insert(key.to_string(), value.to_string());
            craft(m, &[1.0, 2.0])
        };
        let without = |key: &str| {
            let mut m = valid_metadata();
            m.remove(key);
            craft(m, &[1.0, 2.0])
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                with(field::ITEM_COUNT, "3"),
                "`item_vocab` has 2 entries but `item_count` declares 3",
            ),
            (
                with(field::ITEM_VOCAB, r#"["a","a"]"#),
                "\"a\" appears twice",
            ),
            (
                with(field::ITEM_VOCAB, r#"["a",""]"#),
                "entry 1 (dense id 2) is empty",
            ),
            (
                with(field::ITEM_VOCAB, r#"["a",2]"#),
                "`item_vocab` is invalid",
            ),
            (
                with(field::CONFIG, "{"),
                "`config` is invalid: not valid JSON",
            ),
            (with(field::EXTRA, ""), "`extra` is invalid: not valid JSON"),
            (with(field::KIND, "Model"), "`kind` is invalid"),
            (with(field::KIND, ""), "`kind` is invalid"),
            (
                with(field::FORMAT_VERSION, "2"),
                "format version 2 is not supported",
            ),
            (
                with(field::FORMAT_VERSION, "0"),
                "format version 0 is not supported",
            ),
            (
                with(field::FORMAT_VERSION, "01"),
                "`format_version` is invalid",
            ),
            (
                with(field::FORMAT_VERSION, "+1"),
                "`format_version` is invalid",
            ),
            (
                with(field::ITEM_COUNT, "99999999999999999999999"),
                "`item_count` is invalid",
            ),
            (with("color", "blue"), "unknown metadata field `color`"),
            (without(field::CONFIG), "metadata field `config` is missing"),
            (
                without(field::FORMAT_VERSION),
                "metadata field `format_version` is missing",
            ),
        ];
        for (bytes, expected) in cases {
            let msg = decode_err(&bytes);
            assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
        }
    }

    #[test]
    fn non_finite_weights_are_rejected_by_name_and_index() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let msg = decode_err(&craft(valid_metadata(), &[1.0, 2.0, bad]));
            assert!(
                msg.contains("tensor `w` holds a non-finite value at flat index 2"),
                "{msg}"
            );
        }
    }

    #[test]
    fn checksum_field_is_strict() {
        let bytes = craft(valid_metadata(), &[1.0]);
        let prefix = CHECKSUM_PREFIX.as_bytes();
        let start = bytes
            .windows(prefix.len())
            .position(|w| w == prefix)
            .unwrap()
            + prefix.len();
        let hex = std::str::from_utf8(&bytes[start..start + 16]).unwrap();
        // upper-casing a hex digit would parse to the same value with a lax parser
        let pos = hex
            .find(|c: char| c.is_ascii_lowercase())
            .expect("this file's checksum has a letter digit");
        let mut patched = bytes.clone();
        patched[start + pos] = patched[start + pos].to_ascii_uppercase();
        assert!(decode_err(&patched).contains("`checksum` is invalid"));
        assert!(parse_checksum("fnv1a64:0123456789abcdef").is_ok());
        assert!(parse_checksum("fnv1a64:0123456789abcde").is_err());
        assert!(parse_checksum("fnv1a64:+123456789abcdef").is_err());
        assert!(parse_checksum("crc32:0123456789abcdef").is_err());
    }

    #[test]
    fn writer_validates_before_encoding() {
        let good = || {
            ModelFile::new(
                KIND_MODEL,
                "{}",
                vec!["x".into()],
                "{}",
                vec![NamedTensor::new("w", vec![2], vec![1.0, 2.0])],
            )
        };
        assert!(good().to_bytes().is_ok());
        let mut m = good();
        m.tensors[0].shape = vec![3];
        assert!(m
            .to_bytes()
            .unwrap_err()
            .to_string()
            .contains("2 values do not fill shape [3]"));
        let mut m = good();
        m.tensors.push(NamedTensor::new("w", vec![], vec![0.0]));
        assert!(m
            .to_bytes()
            .unwrap_err()
            .to_string()
            .contains("`w` appears twice"));
        let mut m = good();
        m.tensors[0].name = "__metadata__".into();
        assert!(m.to_bytes().is_err());
        let mut m = good();
        m.tensors[0].data[1] = f32::NAN;
        assert!(m
            .to_bytes()
            .unwrap_err()
            .to_string()
            .contains("flat index 1"));
        let mut m = good();
        m.config_json = "not json".into();
        assert!(m.to_bytes().is_err());
        let mut m = good();
        m.item_vocab.push("x".into());
        assert!(m.to_bytes().is_err());
        let mut m = good();
        m.format_version = 2;
        assert!(m.to_bytes().is_err());
    }

    #[test]
    fn canonical_decimals() {
        assert_eq!(parse_decimal("f", "0").unwrap(), 0);
        assert_eq!(parse_decimal("f", "120").unwrap(), 120);
        for bad in ["", "00", "012", "-1", "+1", " 1", "1.0", "1e3"] {
            assert!(parse_decimal("f", bad).is_err(), "{bad:?}");
        }
    }
}
