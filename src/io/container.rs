//! The safetensors container, byte level: a deterministic encoder and a
//! defensive header parser.
//!
//! Layout (<https://github.com/huggingface/safetensors>): an 8-byte
//! little-endian header length `n`, `n` bytes of JSON header (padded with
//! spaces to a multiple of 8), then the tensor data. The header maps
//! `"__metadata__"` to a string→string map and every tensor name to
//! `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the
//! data section, contiguous, covering it exactly).
//!
//! Why our own encoder: `safetensors::serialize` writes the `__metadata__`
//! map from a `std::collections::HashMap`, whose iteration order is random per
//! process, so the same model would give different bytes on every save (no
//! golden test, no reproducible artifacts). This encoder writes the same JSON
//! with sorted keys; a test checks it is byte-identical to
//! `safetensors::serialize` whenever that one is deterministic (≤ 1 metadata
//! entry), and every file is read back through the `safetensors` crate too.
//!
//! Why our own header parser before the crate's: it keeps duplicate keys
//! (JSON maps silently keep the last one), reports the offending tensor by
//! name, and checks offsets with overflow-checked arithmetic (the crate's
//! final `end + 8 + n == len` sum can overflow on a crafted header).

use super::error::ModelFileErrorKind;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Bytes of the header-length prefix.
pub(crate) const LEN_PREFIX: usize = 8;
/// The reserved header key holding the string→string metadata.
pub(crate) const METADATA_KEY: &str = "__metadata__";

/// One tensor to encode: name, shape and little-endian F32 bytes.
pub(crate) struct EncodeTensor<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub bytes: &'a [u8],
}

#[derive(Serialize)]
struct TensorEntry<'a> {
    dtype: &'static str,
    shape: &'a [usize],
    data_offsets: (usize, usize),
}

/// Encodes a safetensors file: `metadata` (sorted by key, as `BTreeMap`
/// iterates) and `tensors` laid out in the given order, all F32.
pub(crate) fn encode(metadata: &BTreeMap<String, String>, tensors: &[EncodeTensor<'_>]) -> Vec<u8> {
    // serde_json writes a JSON object's entries in call order; build it by hand
    // so that "__metadata__" comes first and tensors follow in layout order.
    let mut header = String::from("{");
    if !metadata.is_empty() {
        header.push_str(&json(METADATA_KEY));
        header.push(':');
        header.push_str(&json(metadata));
    }
    let mut offset = 0usize;
    for (i, t) in tensors.iter().enumerate() {
        if i > 0 || !metadata.is_empty() {
            header.push(',');
        }
        let entry = TensorEntry {
            dtype: "F32",
            shape: t.shape,
            data_offsets: (offset, offset + t.bytes.len()),
        };
        offset += t.bytes.len();
        header.push_str(&json(t.name));
        header.push(':');
        header.push_str(&json(&entry));
    }
    header.push('}');
    // pad to a multiple of 8 so the data section is 8-byte aligned (as the crate does)
    while header.len() % LEN_PREFIX != 0 {
        header.push(' ');
    }

    let mut out = Vec::with_capacity(LEN_PREFIX + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for t in tensors {
        out.extend_from_slice(t.bytes);
    }
    out
}

/// JSON text of a string, a string map or a tensor entry.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // serde_json fails only on maps with non-string keys or on custom
    // `Serialize` errors; none of the types written here can produce either.
    serde_json::to_string(value).unwrap_or_default()
}

/// A tensor entry of a parsed header, before any validation.
#[derive(Debug, Clone)]
pub(crate) struct RawTensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub data_offsets: (u64, u64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfo {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// A parsed header: metadata entries and tensor entries in file order,
/// duplicates kept (so the caller can reject them by name).
#[derive(Debug, Clone, Default)]
pub(crate) struct RawHeader {
    pub metadata: Vec<(String, String)>,
    pub metadata_blocks: usize,
    pub tensors: Vec<RawTensor>,
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Vec<(String, String)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map from strings to strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, String>()? {
            pairs.push((k, v));
        }
        Ok(pairs)
    }
}

struct Pairs(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PairsVisitor).map(Pairs)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a safetensors header object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut header = RawHeader::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == METADATA_KEY {
                let Pairs(pairs) = map.next_value()?;
                header.metadata.extend(pairs);
                header.metadata_blocks += 1;
            } else {
                let info: RawInfo = map
                    .next_value()
                    .map_err(|e| de::Error::custom(format!("tensor `{key}`: {e}")))?;
                header.tensors.push(RawTensor {
                    name: key,
                    dtype: info.dtype,
                    shape: info.shape,
                    data_offsets: info.data_offsets,
                });
            }
        }
        Ok(header)
    }
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(HeaderVisitor)
    }
}

/// Splits `bytes` into (header JSON text, data section), checking the length
/// prefix against `max_header_bytes` and the buffer before touching anything.
pub(crate) fn split(
    bytes: &[u8],
    max_header_bytes: u64,
) -> Result<(&str, &[u8]), ModelFileErrorKind> {
    let available = bytes.len() as u64;
    let prefix: [u8; LEN_PREFIX] = bytes
        .get(..LEN_PREFIX)
        .and_then(|p| p.try_into().ok())
        .ok_or(ModelFileErrorKind::Truncated {
            part: "header length",
            needed: LEN_PREFIX as u64,
            available,
        })?;
    let claimed = u64::from_le_bytes(prefix);
    if claimed > max_header_bytes {
        return Err(ModelFileErrorKind::HeaderTooLarge {
            claimed,
            limit: max_header_bytes,
        });
    }
    // claimed ≤ max_header_bytes, so this sum cannot overflow for any sane limit
    let header_end = claimed.saturating_add(LEN_PREFIX as u64);
    if header_end > available {
        return Err(ModelFileErrorKind::Truncated {
            part: "header",
            needed: header_end,
            available,
        });
    }
    // header_end ≤ bytes.len(), so it fits in usize
    let header_end = header_end as usize;
    let text = std::str::from_utf8(&bytes[LEN_PREFIX..header_end]).map_err(|e| {
        ModelFileErrorKind::Header {
            reason: format!("not UTF-8: {e}"),
        }
    })?;
    Ok((text, &bytes[header_end..]))
}

/// Parses header JSON text, keeping duplicate names.
pub(crate) fn parse_header(text: &str) -> Result<RawHeader, ModelFileErrorKind> {
    // serde_json's recursion limit (128) bounds the stack on nested input.
    serde_json::from_str::<RawHeader>(text).map_err(|e| ModelFileErrorKind::Header {
        reason: e.to_string(),
    })
}

/// Checks the data layout of `tensors` against a data section of `data_len`
/// bytes: F32 only, byte length = 4 × ∏shape, ranges contiguous from 0 and
/// covering the section exactly. All arithmetic is overflow-checked.
pub(crate) fn check_layout(tensors: &[RawTensor], data_len: u64) -> Result<(), ModelFileErrorKind> {
    let layout_err = |t: &RawTensor, reason: String| ModelFileErrorKind::TensorLayout {
        tensor: t.name.clone(),
        reason,
    };
    for t in tensors {
        if t.dtype != "F32" {
            return Err(ModelFileErrorKind::DType {
                tensor: t.name.clone(),
                dtype: t.dtype.clone(),
            });
        }
    }
    let mut order: Vec<&RawTensor> = tensors.iter().collect();
    order.sort_by_key(|t| t.data_offsets);
    let mut expected_begin = 0u64;
    for t in order {
        let (begin, end) = t.data_offsets;
        let needed_bytes = t
            .shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| layout_err(t, format!("shape {:?} overflows", t.shape)))?;
        if begin != expected_begin {
            return Err(layout_err(
                t,
                format!("data begins at {begin}, expected {expected_begin} (gap or overlap)"),
            ));
        }
        if end < begin {
            return Err(layout_err(
                t,
                format!("data offsets [{begin}, {end}] are reversed"),
            ));
        }
        if end - begin != needed_bytes {
            return Err(layout_err(
                t,
                format!(
                    "holds {} bytes but shape {:?} of F32 needs {needed_bytes}",
                    end - begin,
                    t.shape
                ),
            ));
        }
        if end > data_len {
            return Err(ModelFileErrorKind::Truncated {
                part: "tensor data",
                needed: end,
                available: data_len,
            });
        }
        expected_begin = end;
    }
    if expected_begin != data_len {
        return Err(ModelFileErrorKind::Container {
            reason: format!("{} bytes after the last tensor", data_len - expected_begin),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::{Dtype, TensorView};
    use std::collections::HashMap;

    fn le(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn encoder_is_byte_identical_to_the_crate_when_it_is_deterministic() {
        let a = le(&[1.0, -2.0, 3.5, 0.25, 8.0, 9.0]);
        let b = le(&[0.5]);
        let c = le(&[]);
        let tensors = [
            EncodeTensor {
                name: "a.weight",
                shape: &[2, 3],
                bytes: &a,
            },
            EncodeTensor {
                name: "b",
                shape: &[],
                bytes: &b,
            },
            EncodeTensor {
                name: "c.empty",
                shape: &[0, 4],
                bytes: &c,
            },
        ];
        for meta in [
            BTreeMap::new(),
            BTreeMap::from([("k".to_string(), "v \"quoted\" é".to_string())]),
        ] {
            let ours = encode(&meta, &tensors);
            let views: Vec<(&str, TensorView<'_>)> = tensors
                .iter()
                .map(|t| {
                    (
                        t.name,
                        TensorView::new(Dtype::F32, t.shape.to_vec(), t.bytes).unwrap(),
                    )
                })
                .collect();
            let info: Option<HashMap<String, String>> =
                (!meta.is_empty()).then(|| meta.clone().into_iter().collect());
            let theirs = safetensors::serialize(views, info).unwrap();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(&ours));
        }
    }

    #[test]
    fn crate_reads_what_we_encode_with_many_metadata_keys() {
        let a = le(&[1.0, 2.0]);
        let meta = BTreeMap::from([
            ("x".to_string(), "1".to_string()),
            ("y".to_string(), "[\"a\"]".to_string()),
            ("z".to_string(), String::new()),
        ]);
        let bytes = encode(
            &meta,
            &[EncodeTensor {
                name: "t",
                shape: &[2],
                bytes: &a,
            }],
        );
        assert_eq!(bytes.len() % 8, 0);
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("t").unwrap().data(), &a[..]);
        let (_, m) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let got = m.metadata().clone().unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got["y"], "[\"a\"]");
    }

    #[test]
    fn parser_keeps_duplicates_and_order() {
        let text = r#"{"__metadata__":{"a":"1","a":"2"},"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        let h = parse_header(text).unwrap();
        assert_eq!(
            h.metadata,
            vec![("a".into(), "1".into()), ("a".into(), "2".into())]
        );
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(h.tensors[1].data_offsets, (4, 8));
    }

    #[test]
    fn parser_rejects_non_string_metadata_and_unknown_fields() {
        assert!(parse_header(r#"{"__metadata__":{"a":1}}"#).is_err());
        assert!(
            parse_header(r#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":0}}"#)
                .is_err()
        );
        assert!(
            parse_header(r#"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#).is_err()
        );
        assert!(parse_header("[]").is_err());
        assert!(parse_header("{} x").is_err());
    }

    fn raw(name: &str, shape: &[u64], offsets: (u64, u64)) -> RawTensor {
        RawTensor {
            name: name.into(),
            dtype: "F32".into(),
            shape: shape.to_vec(),
            data_offsets: offsets,
        }
    }

    #[test]
    fn layout_checks() {
        assert!(check_layout(&[raw("a", &[2], (0, 8)), raw("b", &[1], (8, 12))], 12).is_ok());
        // any order in the header
        assert!(check_layout(&[raw("b", &[1], (8, 12)), raw("a", &[2], (0, 8))], 12).is_ok());
        let err = |ts: &[RawTensor], len| check_layout(ts, len).unwrap_err().to_string();
        assert!(err(&[raw("a", &[3], (0, 8))], 8).contains("`a`: holds 8 bytes"));
        assert!(err(&[raw("a", &[2], (4, 12))], 12).contains("gap or overlap"));
        assert!(err(&[raw("a", &[2], (0, 8)), raw("b", &[2], (4, 12))], 12).contains("`b`"));
        assert!(err(&[raw("a", &[2], (0, 8))], 4).contains("truncated tensor data"));
        assert!(err(&[raw("a", &[1], (0, 4))], 8).contains("4 bytes after the last tensor"));
        assert!(err(&[raw("a", &[u64::MAX, 2], (0, 8))], 8).contains("overflows"));
        let mut f16 = raw("h", &[2], (0, 4));
        f16.dtype = "F16".into();
        assert!(err(&[f16], 4).contains("dtype F16"));
    }

    #[test]
    fn split_checks_lengths_before_use() {
        assert!(matches!(
            split(&[1, 2, 3], 100),
            Err(ModelFileErrorKind::Truncated { .. })
        ));
        let mut b = u64::MAX.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        assert!(matches!(
            split(&b, 100),
            Err(ModelFileErrorKind::HeaderTooLarge { .. })
        ));
        let mut b = 16u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}      ");
        assert!(matches!(
            split(&b, 100),
            Err(ModelFileErrorKind::Truncated { part: "header", .. })
        ));
        let mut b = 8u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}      ");
        b.push(7);
        let (text, data) = split(&b, 100).unwrap();
        assert_eq!(text, "{}      ");
        assert_eq!(data, &[7]);
    }
}
