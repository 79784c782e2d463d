//! Model files: golden bytes, exact round trips, corruption detection, atomic
//! writes and typed errors.
//!
//! Regenerate the golden file (only after an intended format change, and bump
//! `FORMAT_VERSION` if old files no longer read):
//! `DTREC_BLESS=1 cargo test --test io_model_file golden`

use dtrec::io::{
    write_atomic, ModelFile, ModelFileError, ModelFileErrorKind, NamedTensor, ReadLimits,
    FORMAT_VERSION, KIND_CHECKPOINT, KIND_MODEL, OPTIMIZER_PREFIX,
};
use std::path::{Path, PathBuf};

const GOLDEN: &str = "tests/golden/tiny_model.safetensors";

/// A tiny model: 3 items, d = 2, values chosen to exercise exact f32 bits
/// (0.1 is inexact in binary, −0.0, a subnormal, the extremes).
fn tiny_model() -> ModelFile {
    ModelFile::new(
        KIND_MODEL,
        r#"{"model":"sasrec","d":2,"max_len":4,"layers":1,"heads":1}"#,
        vec!["242".into(), "302".into(), "377 \"quoted\" é".into()],
        r#"{"note":"golden"}"#,
        vec![
            NamedTensor::new(
                "item_embedding",
                vec![4, 2],
                vec![0.0, 0.0, 0.1, -0.2, 1.5, -0.0, 3.0e-39, f32::MAX],
            ),
            NamedTensor::new("ln.gamma", vec![2], vec![1.0, f32::MIN_POSITIVE]),
            NamedTensor::new("position_embedding", vec![0, 2], vec![]),
            NamedTensor::new("scalar", vec![], vec![-7.25]),
        ],
    )
}

fn bits(t: &NamedTensor) -> Vec<u32> {
    t.data.iter().map(|v| v.to_bits()).collect()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dtrec-io-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn golden_bytes_and_values() {
    let bytes = tiny_model().to_bytes().unwrap();
    if std::env::var_os("DTREC_BLESS").is_some() {
        std::fs::create_dir_all("tests/golden").unwrap();
        write_atomic(Path::new(GOLDEN), &bytes).unwrap();
    }
    let golden = std::fs::read(GOLDEN).expect("golden file (DTREC_BLESS=1 to create)");
    assert_eq!(bytes, golden, "encoder output differs from {GOLDEN}");

    let m = ModelFile::read(GOLDEN).unwrap();
    assert_eq!(m.format_version, FORMAT_VERSION);
    assert_eq!(m.kind, KIND_MODEL);
    assert_eq!(m.item_vocab[2], "377 \"quoted\" é");
    assert_eq!(
        m.config_json,
        r#"{"model":"sasrec","d":2,"max_len":4,"layers":1,"heads":1}"#
    );
    let emb = m.expect_tensor("item_embedding", &[4, 2]).unwrap();
    assert_eq!(emb.data[2], 0.1);
    assert_eq!(emb.data[5].to_bits(), (-0.0f32).to_bits());
    assert_eq!(emb.data[6], 3.0e-39);
    assert_eq!(emb.data[7], f32::MAX);
    assert_eq!(m.expect_tensor("scalar", &[]).unwrap().data, vec![-7.25]);
    // names sorted, and the golden file also reads through the safetensors crate
    let names: Vec<&str> = m.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["item_embedding", "ln.gamma", "position_embedding", "scalar"]
    );
    let st = safetensors::SafeTensors::deserialize(&golden).unwrap();
    assert_eq!(st.tensor("ln.gamma").unwrap().shape(), &[2]);
}

#[test]
fn same_model_same_bytes() {
    // the metadata map is written sorted: no per-process hash order
    let a = tiny_model().to_bytes().unwrap();
    let mut shuffled = tiny_model();
    shuffled.tensors.reverse();
    assert_eq!(shuffled.to_bytes().unwrap(), a);
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    // pseudo-random finite f32 bit patterns covering all exponents
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut values = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| loop {
                let v = f32::from_bits(next() as u32);
                if v.is_finite() {
                    break v;
                }
            })
            .collect()
    };
    let rng_state = u64::MAX - 12_345;
    let ckpt = ModelFile::new(
        KIND_CHECKPOINT,
        r#"{"d":8}"#,
        (1..=50).map(|i| format!("item{i}")).collect(),
        format!(r#"{{"epoch":17,"step":123456789,"rng":{rng_state}}}"#),
        vec![
            NamedTensor::new("item_embedding", vec![51, 8], values(51 * 8)),
            NamedTensor::new(
                format!("{OPTIMIZER_PREFIX}m.item_embedding"),
                vec![51, 8],
                values(408),
            ),
            NamedTensor::new(
                format!("{OPTIMIZER_PREFIX}v.item_embedding"),
                vec![51, 8],
                values(408),
            ),
        ],
    );
    let dir = TempDir::new("ckpt");
    let path = dir.path().join("ckpt.safetensors");
    ckpt.write(&path).unwrap();
    let back = ModelFile::read(&path).unwrap();
    back.expect_kind(KIND_CHECKPOINT).unwrap();
    assert!(back.expect_kind(KIND_MODEL).is_err());
    assert_eq!(back.extra_json, ckpt.extra_json);
    let extra: serde_json::Value = serde_json::from_str(&back.extra_json).unwrap();
    assert_eq!(extra["rng"].as_u64(), Some(rng_state));
    assert_eq!(back.tensors.len(), 3);
    for t in &ckpt.tensors {
        let r = back.expect_tensor(&t.name, &t.shape).unwrap();
        assert_eq!(bits(r), bits(t), "tensor {}", t.name);
    }
    assert_eq!(back.tensors_with_prefix(OPTIMIZER_PREFIX).count(), 2);
    // writing what was read gives the same bytes
    assert_eq!(back.to_bytes().unwrap(), std::fs::read(&path).unwrap());
}

#[test]
fn every_single_bit_flip_is_detected() {
    let bytes = tiny_model().to_bytes().unwrap();
    let mut flipped = bytes.clone();
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for byte in 0..bytes.len() {
        for bit in 0..8 {
            flipped[byte] ^= 1 << bit;
            match ModelFile::from_bytes(&flipped) {
                Ok(_) => panic!("flip of byte {byte} bit {bit} was accepted"),
                Err(e) => {
                    let kind = format!("{:?}", e.kind);
                    let name = kind.split([' ', '(', '{']).next().unwrap().to_string();
                    *by_kind.entry(name).or_default() += 1;
                }
            }
            flipped[byte] ^= 1 << bit;
        }
    }
    println!(
        "{} flips of a {}-byte file, rejected as: {by_kind:?}",
        bytes.len() * 8,
        bytes.len()
    );
    assert!(by_kind.contains_key("Checksum"), "{by_kind:?}");
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = tiny_model().to_bytes().unwrap();
    for len in 0..bytes.len() {
        assert!(
            ModelFile::from_bytes(&bytes[..len]).is_err(),
            "length {len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(ModelFile::from_bytes(&longer).is_err());
}

#[test]
fn atomic_write_replaces_and_leaves_no_temp_files() {
    let dir = TempDir::new("atomic");
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"old content").unwrap();
    let model = tiny_model();
    model.write(&path).unwrap();
    assert_eq!(
        ModelFile::read(&path).unwrap(),
        ModelFile::from_bytes(&model.to_bytes().unwrap()).unwrap()
    );
    assert_eq!(dir.entries(), ["model.safetensors"]);
}

#[test]
fn failed_writes_leave_the_target_untouched() {
    let dir = TempDir::new("failed");
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"old content").unwrap();

    // invalid model: rejected before any file is created
    let mut bad = tiny_model();
    bad.tensors[0].data[3] = f32::NAN;
    let err = bad.write(&path).unwrap_err();
    assert!(
        matches!(err.kind, ModelFileErrorKind::NonFinite { ref tensor, index: 3 } if tensor == "item_embedding")
    );
    assert_eq!(err.file.as_deref(), Some(path.as_path()));
    assert_eq!(std::fs::read(&path).unwrap(), b"old content");

    // rename fails (target is a non-empty directory): temp file cleaned up
    let blocked = dir.path().join("blocked");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), b"x").unwrap();
    let err = tiny_model().write(&blocked).unwrap_err();
    assert!(matches!(err.kind, ModelFileErrorKind::Io(_)), "{err}");
    assert!(err.to_string().contains("blocked"), "{err}");
    assert_eq!(dir.entries(), ["blocked", "model.safetensors"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"old content");

    // missing directory
    let err = tiny_model()
        .write(dir.path().join("no/such/dir/m.safetensors"))
        .unwrap_err();
    assert!(matches!(err.kind, ModelFileErrorKind::Io(_)));
}

#[test]
fn read_errors_name_the_file() {
    let dir = TempDir::new("errors");
    let missing = dir.path().join("missing.safetensors");
    let err = ModelFile::read(&missing).unwrap_err();
    assert!(matches!(err.kind, ModelFileErrorKind::Io(_)));
    assert!(err.to_string().contains("missing.safetensors"), "{err}");

    let path = dir.path().join("corrupt.safetensors");
    let mut bytes = tiny_model().to_bytes().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40; // inside the last tensor's data
    std::fs::write(&path, &bytes).unwrap();
    let err = ModelFile::read(&path).unwrap_err();
    assert!(
        matches!(err.kind, ModelFileErrorKind::Checksum { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("corrupt.safetensors"), "{err}");
}

#[test]
fn size_limits_are_checked_before_reading() {
    let dir = TempDir::new("limits");
    let path = dir.path().join("m.safetensors");
    tiny_model().write(&path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let tight = ReadLimits {
        max_file_bytes: size - 1,
        max_header_bytes: 1 << 20,
    };
    let err = ModelFile::read_with_limits(&path, &tight).unwrap_err();
    assert!(
        matches!(err.kind, ModelFileErrorKind::FileTooLarge { limit, .. } if limit == size - 1)
    );
    let small_header = ReadLimits {
        max_file_bytes: 1 << 20,
        max_header_bytes: 64,
    };
    let err = ModelFile::read_with_limits(&path, &small_header).unwrap_err();
    assert!(
        matches!(
            err.kind,
            ModelFileErrorKind::HeaderTooLarge { limit: 64, .. }
        ),
        "{err}"
    );
    // a length prefix claiming 2^64 − 1 bytes is refused without allocating
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let err = ModelFile::from_bytes(&bytes).unwrap_err();
    assert!(matches!(
        err.kind,
        ModelFileErrorKind::HeaderTooLarge { .. }
    ));
}

/// Builds a raw safetensors file from header JSON and data bytes.
fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header.to_string();
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn kind_of(bytes: &[u8]) -> ModelFileErrorKind {
    ModelFile::from_bytes(bytes).unwrap_err().kind
}

#[test]
fn hostile_headers_give_typed_errors() {
    let data = [0u8; 8];
    // shape inconsistent with the byte range
    let e = kind_of(&raw_file(
        r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        &data,
    ));
    assert!(
        matches!(e, ModelFileErrorKind::TensorLayout { ref tensor, .. } if tensor == "w"),
        "{e:?}"
    );
    // duplicate tensor name (a plain JSON map would silently keep one)
    let e = kind_of(&raw_file(
        r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        &data,
    ));
    assert!(
        matches!(e, ModelFileErrorKind::DuplicateName { ref name } if name == "w"),
        "{e:?}"
    );
    // duplicate metadata block
    let e = kind_of(&raw_file(r#"{"__metadata__":{},"__metadata__":{}}"#, &[]));
    assert!(
        matches!(e, ModelFileErrorKind::DuplicateName { .. }),
        "{e:?}"
    );
    // wrong dtype
    let e = kind_of(&raw_file(
        r#"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}"#,
        &data,
    ));
    assert!(
        matches!(e, ModelFileErrorKind::DType { ref tensor, ref dtype } if tensor == "h" && dtype == "F16"),
        "{e:?}"
    );
    // overlapping ranges
    let e = kind_of(&raw_file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        &data,
    ));
    assert!(
        matches!(e, ModelFileErrorKind::TensorLayout { .. }),
        "{e:?}"
    );
    // valid container but no metadata at all
    let e = kind_of(&raw_file(
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &data,
    ));
    assert!(
        matches!(e, ModelFileErrorKind::MissingField { .. }),
        "{e:?}"
    );
    // not JSON, not UTF-8
    assert!(matches!(
        kind_of(&raw_file("{", &[])),
        ModelFileErrorKind::Header { .. }
    ));
    let mut bad_utf8 = raw_file("{}", &[]);
    bad_utf8[9] = 0xff;
    assert!(matches!(
        kind_of(&bad_utf8),
        ModelFileErrorKind::Header { .. }
    ));
}

#[test]
fn offsets_that_overflow_are_rejected() {
    // Eight F32 tensors of 2^61 − 4 bytes and one of 28 (each valid alone):
    // their ends sum to nearly 2^64, which overflows an unchecked
    // `end + 8 + header_len` in the container check.
    let size: u64 = (1 << 61) - 4;
    let mut entries = Vec::new();
    let mut begin = 0u64;
    for i in 0..8 {
        entries.push(format!(
            r#""t{i}":{{"dtype":"F32","shape":[{}],"data_offsets":[{begin},{}]}}"#,
            size / 4,
            begin + size
        ));
        begin += size;
    }
    let last = u64::MAX - 3 - begin; // ends at 2^64 − 4
    entries.push(format!(
        r#""t8":{{"dtype":"F32","shape":[{}],"data_offsets":[{begin},{}]}}"#,
        last / 4,
        begin + last
    ));
    let bytes = raw_file(&format!("{{{}}}", entries.join(",")), &[]);
    let e = kind_of(&bytes);
    assert!(
        matches!(
            e,
            ModelFileErrorKind::Truncated {
                part: "tensor data",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn expect_tensor_errors_can_name_the_file() {
    let m = tiny_model();
    let err: ModelFileError = m
        .expect_tensor("nope", &[1])
        .unwrap_err()
        .in_file("m.safetensors");
    assert_eq!(
        err.to_string(),
        "model file m.safetensors: tensor `nope` is missing"
    );
    let err = m.expect_tensor("ln.gamma", &[3]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "model file: tensor `ln.gamma` has shape [2], expected [3]"
    );
}

/// Environment variable that turns the test below into its own writer child.
const CRASH_CHILD_ENV: &str = "DTREC_IO_CRASH_CHILD";

/// A ~4 MB model whose values all equal `fill` (to tell versions apart).
fn big_model(fill: f32) -> ModelFile {
    ModelFile::new(
        KIND_MODEL,
        "{}",
        vec!["only".into()],
        "{}",
        vec![NamedTensor::new("w", vec![1 << 20], vec![fill; 1 << 20])],
    )
}

/// Kills a process that is rewriting a model file in a loop, at several
/// moments, and checks the target path always holds a complete valid file
/// (one of the versions written), never a partial one.
#[test]
fn crash_during_write_never_leaves_a_partial_target() {
    if let Some(path) = std::env::var_os(CRASH_CHILD_ENV) {
        // child: rewrite forever until killed
        let path = PathBuf::from(path);
        for round in 0u64.. {
            big_model((round % 7) as f32).write(&path).unwrap();
        }
        return;
    }
    let dir = TempDir::new("crash");
    let path = dir.path().join("model.safetensors");
    big_model(-1.0).write(&path).unwrap();
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_during_write_never_leaves_a_partial_target",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let check = |when: &str| -> f32 {
        let m = ModelFile::read(&path).unwrap_or_else(|e| panic!("after kill {when}: {e}"));
        let fill = m.tensors[0].data[0];
        assert!(fill == -1.0 || (0.0..7.0).contains(&fill), "{fill}");
        assert!(m.tensors[0].data.iter().all(|&v| v == fill));
        fill
    };
    // kills at fixed delays, landing before, during or between writes
    for delay_ms in [5u64, 23, 61, 117, 230, 350] {
        let mut child = spawn();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix: no destructors, no cleanup
        child.wait().unwrap();
        check(&format!("at {delay_ms} ms"));
    }
    // and one kill once the child has surely replaced the file (polling, so a
    // slow machine cannot turn this test into a no-op)
    big_model(-1.0).write(&path).unwrap();
    let mut child = spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // every read during the child's rewrites must also see a complete file
    while check("(concurrent read)") == -1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer child never replaced the file"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(check("after a completed rewrite"), -1.0);
    let leftovers = dir.entries().len() - 1;
    println!("{leftovers} temp files left by kills in the middle of a write");
}
