#![no_main]
//! Fuzz `read_atomic` (RecBole `.inter`), with ratings and timestamps.

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (options, bytes) = common::options_and_bytes(data);
    let columns = dtrec::data::Columns::recbole().with_rating("rating");
    common::check(
        dtrec::data::read_atomic(bytes, "fuzz", &columns, &options),
        bytes,
    );
});
