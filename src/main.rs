//! The `dtrec` command-line tool.

fn main() {
    println!(
        "dtrec {}: the model is not built yet (see the open issues); kernels compiled for {}",
        env!("CARGO_PKG_VERSION"),
        dtrec::kernels::simd_path()
    );
}
