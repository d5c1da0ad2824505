//! Atomic file writes: the bytes go to a temporary file beside the target, are synced, and the
//! temporary file is renamed over the target, so the target is either what it was or the
//! complete new file, whatever fails (panics included). Model files and pictures are saved so.
//!
//! - The temporary file is `.<name>.latent-tmp-<pid>-<n>` in the target's directory (hidden,
//!   and named for the process writing it; a name over 200 bytes is cut to its first 150 and a
//!   hash of the whole, so that a target name the file system allows has a temporary one too). A process killed while saving leaves one behind:
//!   the next save to the same target removes those whose process no longer exists.
//! - A target that is a symbolic link is followed (through every link in the chain): the new
//!   file replaces the file the link points to, and the link stays. A target that exists and is
//!   not a regular file (a directory, a device, a FIFO) is refused with [`Error::Io`].
//! - Messages name the target, never the temporary file.

use std::ffi::OsStr;
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

/// The most symbolic links followed from a target (as Linux's own limit).
const MAX_LINKS: usize = 40;

/// The prefix of the temporary files of target file `name`. Names of up to 255 bytes are valid
/// targets, and the temporary name adds up to 45, so a long name is shortened (saving to a
/// 236-255-byte name failed with "File name too long" before).
fn temp_prefix(name: &OsStr) -> String {
    let s = name.to_string_lossy();
    if s.len() <= 200 {
        return format!(".{s}.latent-tmp-");
    }
    let mut cut = 150;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    // FNV-1a over the whole name: two long names that share their first 150 bytes differ here.
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    format!(".{}~{hash:016x}.latent-tmp-", &s[..cut])
}

/// The file `path` names once symbolic links are followed (it need not exist).
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if t.is_relative() => dir.join(t),
                    _ => t,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other(format!("more than {MAX_LINKS} symbolic links")))
}

/// Whether process `pid` exists (conservatively true when that cannot be told).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Removes the temporary files of `name` in `dir` left by processes that no longer exist
/// (killed while saving). Best effort: failures are ignored.
fn remove_stale(dir: &Path, name: &OsStr) {
    let prefix = temp_prefix(name);
    let me = std::process::id();
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|s| s.strip_prefix(&prefix)) else { continue };
        let Some((pid, n)) = rest.split_once('-') else { continue };
        let (Ok(pid), true) = (pid.parse::<u32>(), !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if pid != me && !process_alive(pid) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Writes `path` atomically: `write` gets the new temporary file and gives it back once it has
/// written it (it may wrap it in buffers or checksums meanwhile). `verb` names the operation in
/// messages ("saving", "writing"); failures are [`Error::Io`] naming the path.
pub fn write_with(path: &Path, verb: &str, write: impl FnOnce(File) -> io::Result<File>) -> Result<()> {
    let fail = |what: &str, e: io::Error| Error::Io(format!("{verb} {}: {what}: {e}", path.display()));
    let target = follow_links(path).map_err(|e| fail("following its symbolic links", e))?;
    // A directory fails at the rename; a device or a FIFO would be replaced by it.
    if let Ok(m) = fs::metadata(&target)
        && !m.is_file()
        && !m.is_dir()
    {
        return Err(Error::Io(format!("{verb} {}: it exists and is not a regular file", path.display())));
    }
    let name = target
        .file_name()
        .ok_or_else(|| Error::Io(format!("{verb} {}: the path does not name a file", path.display())))?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    remove_stale(dir, name);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp_name = format!("{}{}-{}", temp_prefix(name), std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let tmp = dir.join(tmp_name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| fail("cannot create a temporary file beside it", e))?;
    let mut guard = TempFile { path: Some(tmp.clone()) };
    let file = write(file).map_err(|e| fail("writing", e))?;
    file.sync_all().map_err(|e| fail("syncing", e))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(|e| fail("renaming the new file over it", e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_of_dead_processes_are_removed_and_others_kept() {
        let dir = std::env::temp_dir().join(format!("latent-atomic-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let dead = dir.join(".m.bin.latent-tmp-999999999-0");
        let mine = dir.join(format!(".m.bin.latent-tmp-{}-77", std::process::id()));
        let other = dir.join(".other.bin.latent-tmp-999999999-0");
        for p in [&dead, &mine, &other] {
            fs::write(p, b"x").unwrap();
        }
        write_bytes(&dir.join("m.bin"), "writing", b"new").unwrap();
        assert!(!dead.exists());
        assert!(mine.exists() && other.exists());
        assert_eq!(fs::read(dir.join("m.bin")).unwrap(), b"new");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn targets_with_the_longest_names_are_written() {
        let dir = std::env::temp_dir().join(format!("latent-atomic-long-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for len in [200, 201, 236, 255] {
            let name = format!("{}.bin", "é".repeat((len - 4) / 2)) + &"x".repeat((len - 4) % 2);
            assert_eq!(name.len(), len);
            write_bytes(&dir.join(&name), "writing", b"long").unwrap();
            assert_eq!(fs::read(dir.join(&name)).unwrap(), b"long");
            // A stale temporary file of that target goes at its next save; a live one stays.
            let dead = dir.join(format!("{}999999999-0", temp_prefix(OsStr::new(&name))));
            fs::write(&dead, b"x").unwrap();
            write_bytes(&dir.join(&name), "writing", b"again").unwrap();
            assert!(!dead.exists(), "{len}: the stale temporary file stayed");
        }
        // Two long names sharing their first 150 bytes get different temporary names.
        let (a, b) = ("a".repeat(240), format!("{}b", "a".repeat(239)));
        assert_ne!(temp_prefix(OsStr::new(&a)), temp_prefix(OsStr::new(&b)));
        assert!(temp_prefix(OsStr::new(&"é".repeat(127))).len() + 31 <= 255);
        // Only the targets are left.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 4);
        fs::remove_dir_all(&dir).unwrap();
    }
}
