#![no_main]
//! Fuzz `read_delimited` (CSV with header `u,i,t,r`).

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (options, bytes) = common::options_and_bytes(data);
    let columns = dtrec::data::Columns::new("u", "i")
        .with_timestamp("t")
        .with_rating("r");
    common::check(
        dtrec::data::read_delimited(bytes, "fuzz", ',', &columns, &options),
        bytes,
    );
});
