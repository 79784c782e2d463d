//! Fuzz target: the model-file reader on arbitrary bytes must return (`Ok` or
//! `Err`), never panic, overflow or allocate without bound. Any file it accepts
//! must re-encode and read back to the same content.
//!
//! `cargo +nightly fuzz run model_file` (from the repository root).
//! Stable mirror: `tests/io_fuzz_mirror.rs`.
#![no_main]

use dtrec::io::{ModelFile, ReadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ReadLimits {
        max_file_bytes: 1 << 20,
        max_header_bytes: 1 << 16,
    };
    if let Ok(model) = ModelFile::from_bytes_with_limits(data, &limits) {
        let bytes = model.to_bytes().expect("an accepted file re-encodes");
        let back = ModelFile::from_bytes(&bytes).expect("a re-encoded file reads back");
        assert_eq!(back, model);
    }
});
