//! Downloading the official CIFAR-10 archive of §4.2 with a progress bar, verified by size and MD5
//! before use. The download goes to `<file>.part`, which is resumed with an HTTP range request when
//! the server allows it; only a complete file with the right MD5 is renamed to its final name, so a
//! partial download never passes for a complete one.
use anyhow::{bail, Context, Result};
use md5::{Digest, Md5};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file on the network and what it must be.
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    pub size: u64,
    /// Lower-case hex.
    pub md5: String,
}

impl Remote {
    /// The official binary CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html).
    pub fn cifar10() -> Remote {
        Remote {
            url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz".into(),
            size: 170_052_171,
            md5: "c32a1d4ab5d03f1284b67883e8d87530".into(),
        }
    }
}

/// MD5 of a file, lower-case hex.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Checks that `path` has the remote's size and MD5; the error says which differs.
pub fn verify(path: &Path, remote: &Remote) -> Result<()> {
    let len = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len != remote.size {
        bail!(
            "{} has {len} bytes, expected {} (from {})",
            path.display(),
            remote.size,
            remote.url
        );
    }
    let md5 = md5_file(path)?;
    if md5 != remote.md5 {
        bail!(
            "{} has MD5 {md5}, expected {} (from {})",
            path.display(),
            remote.md5,
            remote.url
        );
    }
    Ok(())
}

fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// A free name `<file>.bad`, `<file>.bad.1`, ... beside `dest` for a file that fails verification.
fn bad_path(dest: &Path) -> PathBuf {
    let mut p = PathBuf::from(format!("{}.bad", dest.display()));
    let mut k = 0;
    while p.exists() {
        k += 1;
        p = PathBuf::from(format!("{}.bad.{k}", dest.display()));
    }
    p
}

/// Makes `dest` a verified copy of `remote`: returns at once when it already is one, otherwise
/// downloads (resuming `dest.part` where possible), verifies size and MD5, then renames. A file
/// already at `dest` that fails verification was not written by us: it is kept, renamed to
/// `dest.bad`, and the message says so. On a network failure the partial file is kept for the
/// next try and the error says what to do without a network; a complete download with the wrong
/// MD5 is deleted. Where `dest` is a symbolic link, its target receives the file.
pub fn download(remote: &Remote, dest: &Path, progress: bool) -> Result<()> {
    let dest = &match crate::sys::atomic::resolve(dest)? {
        crate::sys::atomic::Target::Regular(p) => p,
        crate::sys::atomic::Target::Special(p) => bail!(
            "{} is not a regular file; cannot download {} into it",
            p.display(),
            remote.url
        ),
    };
    let mut kept = None;
    if dest.is_file() {
        match verify(dest, remote) {
            Ok(()) => return Ok(()),
            Err(e) => {
                let bad = bad_path(dest);
                fs::rename(dest, &bad)
                    .with_context(|| format!("{e:#}; cannot move it aside to {}", bad.display()))?;
                kept = Some(format!("{e:#}; it was kept as {}", bad.display()));
            }
        }
    }
    match fetch_verified(remote, dest, progress) {
        Ok(()) => {
            if let Some(note) = kept {
                eprintln!("note: {note}, and a verified copy was downloaded");
            }
            Ok(())
        }
        Err(e) => match kept {
            Some(note) => Err(e.context(note)),
            None => Err(e),
        },
    }
}

/// The download itself, into `dest.part` then `dest` (see [`download`]).
fn fetch_verified(remote: &Remote, dest: &Path, progress: bool) -> Result<()> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let part = part_path(dest);
    let mut have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if have >= remote.size {
        // Too long to be a prefix of the right file (or complete but unverified): start over.
        fs::remove_file(&part).with_context(|| format!("cannot remove {}", part.display()))?;
        have = 0;
    }
    let offline_help = || {
        format!(
            "to work without a network, download {} ({} bytes, MD5 {}) on another machine and \
             copy it to {}, then run the command again",
            remote.url,
            remote.size,
            remote.md5,
            dest.display()
        )
    };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut req = agent.get(&remote.url);
    if have > 0 {
        req = req.set("Range", &format!("bytes={have}-"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => bail!(
            "downloading {}: the server answered HTTP {code}; {}",
            remote.url,
            offline_help()
        ),
        Err(e) => bail!("cannot reach the server ({e}); {}", offline_help()),
    };
    let resumed = have > 0 && resp.status() == 206;
    let mut file = if resumed {
        fs::OpenOptions::new().append(true).open(&part)
    } else {
        have = 0;
        fs::File::create(&part)
    }
    .with_context(|| format!("cannot write {}", part.display()))?;
    let bar = download_bar(remote, dest, progress, resumed, have);
    let mut body = resp.into_reader();
    let (got, stream_result) = stream_into(&mut body, &mut file, &part, have, remote, &bar)?;
    bar.finish_and_clear();
    file.sync_all()
        .with_context(|| format!("cannot write {}", part.display()))?;
    drop(file);
    if got < remote.size {
        let why = stream_result
            .err()
            .map_or("the connection closed".to_string(), |e| e.to_string());
        bail!(
            "download of {} stopped at {got} of {} bytes ({why}); the partial file {} is kept \
             and the next run resumes it",
            remote.url,
            remote.size,
            part.display()
        );
    }
    if let Err(e) = verify(&part, remote) {
        let _ = fs::remove_file(&part);
        return Err(e.context(format!(
            "the download is corrupt and was deleted; run the command again (or {})",
            offline_help()
        )));
    }
    fs::rename(&part, dest).with_context(|| format!("cannot rename to {}", dest.display()))?;
    Ok(())
}

/// The download's progress bar (hidden unless `progress`), starting at `have` bytes.
fn download_bar(
    remote: &Remote,
    dest: &Path,
    progress: bool,
    resumed: bool,
    have: u64,
) -> indicatif::ProgressBar {
    if !progress {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(remote.size);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    b.set_message(format!(
        "{}{}",
        dest.file_name().unwrap_or_default().to_string_lossy(),
        if resumed { " (resumed)" } else { "" }
    ));
    b.set_position(have);
    b
}

/// Appends the response body to `file` (the partial download `part`, holding `have` bytes).
/// Returns the bytes the file then holds and how the stream ended (a read or write error ends
/// it early and is reported by the caller, which keeps the partial file for a resume). A body
/// longer than the expected size is an error, and the partial file is deleted.
fn stream_into(
    body: &mut dyn Read,
    file: &mut fs::File,
    part: &Path,
    have: u64,
    remote: &Remote,
    bar: &indicatif::ProgressBar,
) -> Result<(u64, std::io::Result<()>)> {
    let mut buf = vec![0u8; 1 << 16];
    let mut got = have;
    let ended = loop {
        match body.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if got + n as u64 > remote.size {
                    let _ = fs::remove_file(part);
                    bail!(
                        "{} sent more than the expected {} bytes; the download was deleted",
                        remote.url,
                        remote.size
                    );
                }
                if let Err(e) = file.write_all(&buf[..n]) {
                    break Err(e);
                }
                got += n as u64;
                bar.set_position(got);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    Ok((got, ended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_known_bytes() {
        // RFC 1321 test suite: MD5("abc").
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        fs::write(&p, b"abc").unwrap();
        assert_eq!(md5_file(&p).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
    }

    fn remote(size: u64) -> Remote {
        Remote {
            url: "http://127.0.0.1/x.tar.gz".into(),
            size,
            md5: String::new(),
        }
    }

    #[test]
    fn streaming_appends_and_stops_at_the_expected_size() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("x.part");
        fs::write(&part, b"abc").unwrap();
        let mut file = fs::OpenOptions::new().append(true).open(&part).unwrap();
        let bar = indicatif::ProgressBar::hidden();
        // Resumed after 3 bytes: 4 more make the expected 7.
        let (got, ended) =
            stream_into(&mut &b"defg"[..], &mut file, &part, 3, &remote(7), &bar).unwrap();
        assert_eq!(got, 7);
        assert!(ended.is_ok());
        assert_eq!(fs::read(&part).unwrap(), b"abcdefg");
        // A body longer than announced is refused and the partial file deleted.
        let e = stream_into(&mut &b"defgh"[..], &mut file, &part, 3, &remote(7), &bar)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sent more than the expected 7 bytes"), "{e}");
        assert!(!part.exists());
    }
}
