//! Files written whole or not at all: [`write_atomic`] (and [`write_private`], owner-only) write
//! a temp file beside the target, created exclusively with its final mode from the start, flush
//! it to disk, rename it over the target and flush the directory, so a crash leaves the old file
//! or the new one, never a torn or empty one, and the new name survives a power cut. The CA
//! (`ca`) and the token cache file (`tokens`) both write through here.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Creates `dir` and its missing parents, owner-only (0700) on Unix.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Writes `data` to `path` atomically, readable by the owner only (0600).
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic(path, data, 0o600)
}

/// Writes `data` to `path` atomically with `mode` (Unix): exclusive temp file beside it, fsync,
/// rename, fsync of the directory. A missing parent directory is created owner-only. The temp
/// file is removed when anything fails.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        create_private_dir(dir)?;
    }
    let (tmp, mut f) = create_temp(path, mode)?;
    let written = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    sync_dir(dir.unwrap_or(Path::new(".")));
    Ok(())
}

/// Makes the directory's entries (a rename) durable; best effort (not every filesystem or
/// platform lets a directory be synced).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The name of the `attempt`th temp file for `path`: hidden, beside it, and this process's own.
pub(crate) fn temp_name(path: &Path, attempt: u32) -> PathBuf {
    let base = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{base}.{}.{attempt}.tmp", std::process::id()))
}

/// Creates `path` with `mode` from the start (never readable by others, not even briefly),
/// failing with `AlreadyExists` rather than opening or following anything already there.
pub fn create_new(path: &Path, mode: u32) -> std::io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path)
}

/// Creates a new temp file for `path` with `mode`, never opening one that already exists: a
/// name taken (a crashed writer's leftover, or something planted) is skipped, not reused or
/// followed.
fn create_temp(path: &Path, mode: u32) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for attempt in 0..64 {
        let tmp = temp_name(path, attempt);
        match create_new(&tmp, mode) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temp file name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_private_write_is_owner_only_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("file.json");
        write_private(&path, b"first").unwrap();
        write_private(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        assert!(leftovers(path.parent().unwrap()).is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(
                mode(path.parent().unwrap()),
                0o700,
                "a created dir is private"
            );
            let public = dir.path().join("ca.pem");
            write_atomic(&public, b"cert", 0o644).unwrap();
            assert_eq!(mode(&public), 0o644);
        }
    }

    #[test]
    fn a_planted_temp_file_is_neither_reused_nor_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let planted = temp_name(&path, 0);
        std::fs::write(&planted, b"planted").unwrap();
        write_private(&path, b"ours").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"ours");
        assert_eq!(std::fs::read(&planted).unwrap(), b"planted");
    }

    #[test]
    fn a_failed_write_leaves_no_temp_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), b"x").unwrap();
        assert!(write_private(&path, b"data").is_err());
        assert!(leftovers(dir.path()).is_empty());
    }
}
