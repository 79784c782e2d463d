//! Times loading `../shared/datasets/s3rec/Beauty.txt` and building its
//! leave-one-out split (target: < 1 s in release mode).
//!
//! ```text
//! cargo run --release --example load_beauty
//! ```

use std::process::ExitCode;
use std::time::Instant;

use dtrec::data::{leave_one_out, load, shared_dataset, Format, ReadOptions};

fn main() -> ExitCode {
    let path = shared_dataset("Beauty.txt");
    let mut times = Vec::new();
    for run in 0..5 {
        let start = Instant::now();
        let data = match load(&path, &Format::S3rec, &ReadOptions::default()) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e} (set DTREC_SHARED_DIR?)");
                return ExitCode::FAILURE;
            }
        };
        let loaded = start.elapsed();
        let split = leave_one_out(&data).expect("leave-one-out on a loaded store");
        let total = start.elapsed();
        if run == 0 {
            println!(
                "{}: {} users, {} items, {} interactions; {split}",
                path.display(),
                data.num_users(),
                data.num_items(),
                data.num_interactions()
            );
        }
        println!(
            "run {run}: load {:.1} ms + split {:.1} ms = {:.1} ms",
            loaded.as_secs_f64() * 1e3,
            (total - loaded).as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3
        );
        times.push(total.as_secs_f64());
    }
    let first = times[0];
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "load + leave-one-out: first {:.1} ms, best of 5 {:.1} ms (target < 1000 ms)",
        first * 1e3,
        best * 1e3
    );
    ExitCode::SUCCESS
}
