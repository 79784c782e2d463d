#![no_main]
//! Fuzz `read_s3rec` (one user per line).

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (options, bytes) = common::options_and_bytes(data);
    common::check(dtrec::data::read_s3rec(bytes, "fuzz", &options), bytes);
});
