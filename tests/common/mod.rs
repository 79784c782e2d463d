//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// `path` if the dataset file exists. Otherwise the test is skipped with a
/// message (`None`), except under `CI=true`, where a missing file fails it:
/// CI fetches the data first, so a missing file there is a broken setup.
pub fn require_dataset(path: PathBuf, how: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing (CI=true): {how}", path.display());
    }
    eprintln!("SKIPPED: {} is missing ({how})", path.display());
    None
}

/// MovieLens-100K where `.ci/fetch-ml100k.sh` puts it (see [`require_dataset`]).
pub fn require_ml100k() -> Option<PathBuf> {
    require_dataset(dtrec::data::ml100k_path(), "run .ci/fetch-ml100k.sh")
}
