//! Exclusive folder locks (one writer of a run folder, of a compare's runs, of a `data prepare`
//! output at a time): a lock file holding the owner's PID, locked with flock(2), so the kernel
//! releases it when the process ends in any way (`kill -9` included) and a lock is never stale.
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// Takes the lock file `path` (created if missing; its PID written into it) and returns it open:
/// the lock lasts as long as the file. A lock held by another process fails with
/// `busy(holder, path)` (`holder`: "process PID"). The file is opened without following links,
/// and one that is a link (symbolic or hard) or not a regular file is refused: the PID is written
/// only into a file of the folder's own.
pub fn take(path: &Path, busy: impl FnOnce(&str, &Path) -> String) -> Result<std::fs::File> {
    let mut file = open_lock(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = std::io::Read::read_to_string(&mut file, &mut holder);
            let holder = match holder.trim() {
                "" => "another process".to_string(),
                pid => format!("process {pid}"),
            };
            bail!("{}", busy(&holder, path));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
    file.set_len(0)
        .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .with_context(|| format!("cannot write lock file {}", path.display()))?;
    Ok(file)
}

/// Opens (creating) the lock file `path`: never through a symbolic link, never a file with
/// other names (a hard link), a FIFO or a device.
fn open_lock(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refuse = |what: &str| {
        anyhow::anyhow!(
            "lock file {} is {what}, not the folder's own file; remove it (the lock is \
             recreated) and run the command again",
            path.display()
        )
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse("a symbolic link"),
            _ => anyhow::Error::new(e).context(format!("cannot open lock file {}", path.display())),
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot inspect lock file {}", path.display()))?;
    if !meta.is_file() {
        return Err(refuse(crate::sys::atomic::file_kind(&meta.file_type())));
    }
    if meta.nlink() != 1 {
        return Err(refuse("a hard link to another file"));
    }
    Ok(file)
}
