//! Writing result files (the paper's tables, curves and checkpoints) without ever leaving a
//! half-written file or replacing something that is not ours to replace.
//!
//! A regular file is written through a temporary file in the same folder, synced and renamed over
//! it, so readers see the old file or the new one, never a mix. Where `path` is a symbolic link,
//! the link's final target is replaced and the link itself is kept. Where `path` is not a regular
//! file (a device such as `/dev/null`, a FIFO, or `/dev/stdout` and the other links into `/proc`),
//! it is opened and written directly: renaming a file over it would replace the device or the
//! terminal with a regular file.
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed before giving up (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// Where a write to a path lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A regular file (existing or not) at this path, reached through any links: replaced
    /// atomically.
    Regular(PathBuf),
    /// A device, FIFO, socket or a link into `/proc`: opened and written in place.
    Special(PathBuf),
}

fn under_proc(p: &Path) -> bool {
    p.is_absolute() && p.components().nth(1) == Some(Component::Normal("proc".as_ref()))
}

/// Follows the symbolic links of `path` to what a write must replace.
pub fn resolve(path: &Path) -> Result<Target> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        if under_proc(&p) {
            // Magic links (/dev/stdout -> /proc/self/fd/1 -> pipe:[...]): only the kernel can
            // follow them, and what they name is never ours to rename over.
            return Ok(Target::Special(path.to_path_buf()));
        }
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p)
                    .with_context(|| format!("cannot read the link {}", p.display()))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            Ok(m) if m.is_file() => return Ok(Target::Regular(p)),
            Ok(m) if m.is_dir() => bail!("{} is a folder, not a file", path.display()),
            Ok(_) => return Ok(Target::Special(p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Regular(p)),
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", p.display())),
        }
    }
    bail!(
        "{}: more than {MAX_LINKS} levels of symbolic links",
        path.display()
    )
}

/// A fresh hidden name beside `target`, unique per process and call.
pub fn temp_beside(target: &Path, what: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.{what}-{}-{call}", std::process::id()))
}

/// Writes `bytes` to `path` (see the module doc): atomically for regular files, in place for
/// devices and FIFOs. Creates missing parent folders.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |f| f.write_all(bytes).map_err(Into::into))
}

/// As [`write`], with the content produced by `fill` into the open file (for streaming large
/// contents to disk without holding them in memory). On an error of `fill` the temporary file is
/// removed and the old file is left as it was.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut fs::File) -> Result<()>) -> Result<()> {
    write_with_sync(path, true, fill)
}

/// [`write_with`], syncing the file to disk before the rename only when `sync` is set. Without
/// it a kill still never leaves a partial file at `path` (only a power cut could); archive
/// extraction writes tens of thousands of small files this way, where one sync each would cost
/// minutes.
pub fn write_with_sync(
    path: &Path,
    sync: bool,
    fill: impl FnOnce(&mut fs::File) -> Result<()>,
) -> Result<()> {
    let target = match resolve(path)? {
        Target::Special(p) => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .with_context(|| format!("cannot open {} for writing", path.display()))?;
            return fill(&mut f).with_context(|| format!("cannot write {}", path.display()));
        }
        Target::Regular(p) => p,
    };
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    let tmp = temp_beside(&target, "tmp");
    let result = (|| -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        fill(&mut f).with_context(|| format!("cannot write {}", tmp.display()))?;
        if let Ok(m) = fs::metadata(&target) {
            // Keep the replaced file's permissions.
            let _ = f.set_permissions(m.permissions());
        }
        if sync {
            f.sync_all()
                .with_context(|| format!("cannot sync {}", tmp.display()))?;
        }
        fs::rename(&tmp, &target)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), target.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_file_is_replaced_and_no_temporary_is_left() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/a.csv");
        write(&p, b"1").unwrap();
        write(&p, b"2").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"2");
        assert_eq!(fs::read_dir(d.path().join("sub")).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_kept() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("real")).unwrap();
        let target = d.path().join("real/t.csv");
        fs::write(&target, "old").unwrap();
        // A chain of two links, one relative, one absolute.
        let l1 = d.path().join("l1.csv");
        std::os::unix::fs::symlink("real/t.csv", &l1).unwrap();
        let l2 = d.path().join("l2.csv");
        std::os::unix::fs::symlink(&l1, &l2).unwrap();
        write(&l2, b"new").unwrap();
        assert!(fs::symlink_metadata(&l2).unwrap().file_type().is_symlink());
        assert!(fs::symlink_metadata(&l1).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        // A dangling link gets its target created.
        let dangling = d.path().join("dangling.csv");
        std::os::unix::fs::symlink("real/new.csv", &dangling).unwrap();
        write(&dangling, b"x").unwrap();
        assert_eq!(fs::read(d.path().join("real/new.csv")).unwrap(), b"x");
        // A loop is an error, not a hang.
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        assert!(format!("{:#}", write(&a, b"x").unwrap_err()).contains("levels of symbolic links"));
    }

    #[test]
    fn devices_and_proc_links_are_written_in_place() {
        assert_eq!(
            resolve(Path::new("/dev/null")).unwrap(),
            Target::Special("/dev/null".into())
        );
        assert!(matches!(
            resolve(Path::new("/dev/stdout")).unwrap(),
            Target::Special(_)
        ));
        write(Path::new("/dev/null"), b"nothing").unwrap();
        assert!(!fs::metadata("/dev/null").unwrap().file_type().is_file());
    }

    #[test]
    fn failed_fill_leaves_the_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.bin");
        fs::write(&p, "keep").unwrap();
        let e = write_with(&p, |_| bail!("boom")).unwrap_err();
        assert!(format!("{e:#}").contains("boom"));
        assert_eq!(fs::read(&p).unwrap(), b"keep");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
