//! Atomic file replacement: temp file in the same directory, fsync, rename.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temp files of concurrent writes within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically.
///
/// The bytes go to a new temporary file `.<name>.tmp-<pid>-<n>` in the same
/// directory (so the rename never crosses file systems), which is synced to
/// disk and then renamed over `path`; on Unix the directory is synced too so
/// the rename itself survives a crash. A reader of `path` sees either the old
/// content or the complete new content, never a partial file. On error the
/// temporary file is removed and `path` is untouched.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("dtrec-doc-atomic-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("metrics.json");
/// dtrec::io::write_atomic(&path, b"{}").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (temp_path, mut file) = create_temp(&dir, &file_name.to_string_lossy())?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp_path, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        // best effort: the temp file may already be gone (renamed) or unremovable
        let _ = fs::remove_file(&temp_path);
    }
    result
}

/// Creates a fresh temp file next to the target (never reusing an existing one).
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    /// Leftovers of crashed writers with our pid are skipped, up to this many.
    const ATTEMPTS: usize = 1000;
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..ATTEMPTS {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_path = dir.join(format!(".{name}.tmp-{pid}-{n}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no temporary file name available")))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
