//! Atomic file writes: the bytes go to a temporary file beside the target, are synced, and the
//! temporary file is renamed over the target, so the target is either what it was or the
//! complete new file, whatever fails (panics included). Model files and pictures are saved so.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Removes the temporary file on every way out until the rename disarms it.
struct TempFile {
    path: Option<PathBuf>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Writes `path` atomically: `write` gets the new temporary file and gives it back once it has
/// written it (it may wrap it in buffers or checksums meanwhile). `verb` names the operation in
/// messages ("saving", "writing"); failures are [`Error::Io`] naming the path.
pub fn write_with(path: &Path, verb: &str, write: impl FnOnce(File) -> io::Result<File>) -> Result<()> {
    let fail = |what: &str, e: io::Error| Error::Io(format!("{verb} {}: {what}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Io(format!("{verb} {}: the path does not name a file", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut tmp_name = OsString::from(name);
    tmp_name.push(format!(".latent.tmp{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let tmp = dir.join(tmp_name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| fail(&format!("cannot create {}", tmp.display()), e))?;
    let mut guard = TempFile { path: Some(tmp.clone()) };
    let file = write(file).map_err(|e| fail("writing", e))?;
    file.sync_all().map_err(|e| fail("syncing", e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| fail(&format!("renaming {} over it", tmp.display()), e))?;
    guard.path = None;
    // Make the rename itself durable. Best effort: some file systems cannot sync a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// [`write_with`] of a byte string.
pub fn write_bytes(path: &Path, verb: &str, bytes: &[u8]) -> Result<()> {
    write_with(path, verb, |mut f| {
        io::Write::write_all(&mut f, bytes)?;
        Ok(f)
    })
}
