//! Safe `.tar.gz` extraction for the datasets of §4.2 (CIFAR-10) and §3.4 (ImageNet-style folders):
//! only regular files and folders, never a path outside the target folder, members streamed to
//! disk under a cap on the decompressed size (gzip bombs, headers claiming terabytes), and a
//! completion marker so that a half-extracted cache is never taken for a whole one.
use anyhow::{anyhow, bail, Context, Result};
use std::cell::RefCell;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// Name of the file written last into a fully extracted cache folder.
pub const COMPLETE_MARKER: &str = ".resnet-complete";

/// An archive may expand to at most this many times its own size...
pub const MAX_RATIO: u64 = 200;
/// ...or to this many bytes, whichever is more. Real datasets expand far less (the CIFAR-10 JPEG
/// tar.gz 4.7×, the PNG one 1.3×, the official binary 1.1×); a gzip bomb or a header claiming
/// terabytes is refused before anything that large is read or written.
pub const MIN_LIMIT: u64 = 1 << 30;

/// The decompressed bytes an archive of `archive_len` bytes may expand to.
pub fn expansion_limit(archive_len: u64) -> u64 {
    archive_len.saturating_mul(MAX_RATIO).max(MIN_LIMIT)
}

/// The member path made relative and checked: `None` when it is absolute, has a `..` or a drive
/// prefix, i.e. when it could land outside the target folder. `./a/b` gives `a/b`.
pub fn safe_member_path(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// A member name for messages: control characters shown as `?`, at most 200 characters.
fn shown(p: &Path) -> String {
    crate::sys::console::shown(&p.to_string_lossy())
}

/// What went wrong below the tar parser, recorded by [`Watch`].
#[derive(Default)]
struct Trouble {
    /// The decompressed stream passed the expansion limit.
    over_limit: bool,
    /// The layer below's own error (flate2's short fixed messages, never data bytes).
    gzip: Option<String>,
    /// The archive is a plain tar (no gzip layer): its read errors are not gzip errors.
    plain: bool,
}

/// The decompressed stream, counted and capped, with its errors recorded so that the messages
/// can say what happened without echoing the tar parser's view of the bytes.
struct Watch<R> {
    inner: R,
    read: u64,
    limit: u64,
    trouble: Rc<RefCell<Trouble>>,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read > self.limit {
            self.trouble.borrow_mut().over_limit = true;
            return Err(std::io::Error::other("expansion limit"));
        }
        let room = (self.limit - self.read + 1).min(buf.len() as u64) as usize;
        match self.inner.read(&mut buf[..room]) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.trouble.borrow_mut().gzip = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// Seeking (a plain tar on disk) lets the tar parser skip the data of members nobody reads.
impl<R: Seek> Seek for Watch<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// One line saying why reading `archive` failed: over the limit, a gzip error, a truncated
/// stream, or a tar header that does not parse (whose bytes are not echoed).
fn describe(
    archive: &Path,
    trouble: &Rc<RefCell<Trouble>>,
    e: &std::io::Error,
    limit: u64,
) -> anyhow::Error {
    let t = trouble.borrow();
    let a = archive.display();
    if t.over_limit {
        anyhow!(
            "{a}: expands to more than {limit} bytes (at most {MAX_RATIO} times the archive's \
             size, at least {MIN_LIMIT}); refusing it as a gzip bomb"
        )
    } else if let Some(g) = &t.gzip {
        if t.plain {
            anyhow!("{a}: cannot read ({g})")
        } else {
            anyhow!("{a}: not a valid gzip file ({g})")
        }
    } else if e.kind() == std::io::ErrorKind::UnexpectedEof {
        anyhow!("{a}: the archive is truncated")
    } else if t.plain {
        anyhow!("{a}: not a tar archive (unreadable tar header)")
    } else {
        anyhow!("{a}: the gzip data is not a tar archive (unreadable tar header)")
    }
}

/// The next member's confined relative path, declared size and type, after the checks every
/// reader of an archive keeps: a readable name that stays inside `within` (the target folder,
/// for the message), and the sizes declared so far within `limit`. `None` for folders.
fn checked_member<R: Read>(
    archive: &Path,
    within: &str,
    entry: &tar::Entry<'_, R>,
    declared: &mut u64,
    limit: u64,
    plain: bool,
) -> Result<Option<(PathBuf, u64, tar::EntryType)>> {
    let raw = entry
        .path()
        .map_err(|_| anyhow!("{}: member with an unreadable name", archive.display()))?
        .into_owned();
    let Some(rel) = safe_member_path(&raw) else {
        bail!(
            "{}: member `{}` would be written outside the target folder {within}; refusing the archive",
            archive.display(),
            shown(&raw)
        );
    };
    let size = entry.size();
    *declared = declared.saturating_add(size);
    if *declared > limit && plain {
        // Uncompressed, the members can hold no more than the bytes there are.
        bail!(
            "{}: the archive is truncated: member `{}` declares {size} bytes, {declared} in \
             all, but the archive has {limit} bytes",
            archive.display(),
            shown(&raw)
        );
    }
    if *declared > limit {
        bail!(
            "{}: member `{}` declares {size} bytes, {declared} in all, over the limit of \
             {limit} bytes for this archive (at most {MAX_RATIO} times its size, at least \
             {MIN_LIMIT}); refusing it as a gzip bomb or a corrupt header",
            archive.display(),
            shown(&raw)
        );
    }
    let kind = entry.header().entry_type();
    if kind.is_dir() || rel.as_os_str().is_empty() {
        return Ok(None);
    }
    Ok(Some((rel, size, kind)))
}

fn refuse_special(archive: &Path, rel: &Path, kind: tar::EntryType) -> anyhow::Error {
    anyhow!(
        "{}: member `{}` is a link or special file ({kind:?}); only regular files are extracted",
        archive.display(),
        shown(rel)
    )
}

/// A regular-file member of an archive being walked by [`walk_tar`]: its confined relative
/// path, its declared size, and its data (read through the archive's caps).
pub struct Member<'a> {
    pub path: PathBuf,
    pub size: u64,
    data: &'a mut dyn Read,
    archive: &'a Path,
    trouble: &'a Rc<RefCell<Trouble>>,
    limit: u64,
}

impl Member<'_> {
    /// The member's bytes (a nested tar is walked from here).
    pub fn reader(&mut self) -> &mut dyn Read {
        self.data
    }

    /// Streams the member to `out` through a temporary name and a rename (no sync), so a file
    /// at `out` is always whole; a member shorter than its header says is an error naming it.
    pub fn save(&mut self, out: &Path) -> Result<()> {
        let (archive, size) = (self.archive, self.size);
        crate::sys::atomic::write_with_sync(out, false, |file| {
            copy_member(&mut self.data, file, size, out).map_err(|e| match e {
                Copied::Read(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => anyhow!(
                    "{}: member `{}` is truncated (its header says {size} bytes)",
                    archive.display(),
                    shown(&self.path)
                ),
                Copied::Read(e) => describe(archive, self.trouble, &e, self.limit),
                Copied::Write(e) => e,
            })
        })
    }
}

/// Calls `visit` with every regular-file member of the tar read from `reader` (named `archive`
/// in messages), under the checks of [`extract_tar_gz`]: a member whose path leaves the
/// archive's folder, a link or special file, or more than `limit` bytes declared in all refuse
/// the archive, whether or not `visit` would have wanted the member. Returns the members visited.
pub fn walk_tar(
    archive: &Path,
    reader: impl Read,
    limit: u64,
    visit: impl FnMut(Member) -> Result<()>,
) -> Result<usize> {
    let trouble = Rc::new(RefCell::new(Trouble {
        plain: true,
        ..Trouble::default()
    }));
    let stream = Watch {
        inner: reader,
        read: 0,
        limit,
        trouble: trouble.clone(),
    };
    let mut ar = tar::Archive::new(stream);
    let entries = ar.entries();
    walk_entries(archive, entries, &trouble, limit, visit)
}

/// [`walk_tar`] over a plain (uncompressed) tar file on disk, whose members' data are skipped
/// by seeking when `visit` does not read them; the limit is the file's own size.
pub fn walk_tar_file(archive: &Path, visit: impl FnMut(Member) -> Result<()>) -> Result<usize> {
    let f =
        fs::File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let limit = f
        .metadata()
        .with_context(|| format!("cannot read {}", archive.display()))?
        .len();
    let trouble = Rc::new(RefCell::new(Trouble {
        plain: true,
        ..Trouble::default()
    }));
    let stream = Watch {
        inner: std::io::BufReader::with_capacity(1 << 20, f),
        read: 0,
        limit,
        trouble: trouble.clone(),
    };
    let mut ar = tar::Archive::new(stream);
    let entries = ar.entries_with_seek();
    walk_entries(archive, entries, &trouble, limit, visit)
}

fn walk_entries<R: Read>(
    archive: &Path,
    entries: std::io::Result<tar::Entries<'_, R>>,
    trouble: &Rc<RefCell<Trouble>>,
    limit: u64,
    mut visit: impl FnMut(Member) -> Result<()>,
) -> Result<usize> {
    let entries = entries.map_err(|e| describe(archive, trouble, &e, limit))?;
    let within = format!("of {}", archive.display());
    let (mut declared, mut visited) = (0u64, 0);
    for entry in entries {
        let mut entry = entry.map_err(|e| describe(archive, trouble, &e, limit))?;
        let Some((path, size, kind)) = checked_member(
            archive,
            &within,
            &entry,
            &mut declared,
            limit,
            trouble.borrow().plain,
        )?
        else {
            continue;
        };
        if !kind.is_file() {
            return Err(refuse_special(archive, &path, kind));
        }
        visit(Member {
            path,
            size,
            data: &mut entry,
            archive,
            trouble,
            limit,
        })?;
        visited += 1;
    }
    Ok(visited)
}

/// Extracts the members of `archive` (gzip-compressed tar) that `select` maps to a relative
/// destination path, below `dest`; `select` gets each member's path and declared size and may
/// refuse the archive. Each file is streamed to a temporary name and renamed, so a file at its
/// final name is always whole. Links and devices are refused, as is any member whose path escapes
/// `dest`, and the archive is refused once its members declare more than
/// [`expansion_limit`] bytes in all. Returns the number of files written.
pub fn extract_tar_gz(
    archive: &Path,
    dest: &Path,
    select: impl FnMut(&Path, u64) -> Result<Option<PathBuf>>,
) -> Result<usize> {
    let len = fs::metadata(archive)
        .with_context(|| format!("cannot open {}", archive.display()))?
        .len();
    extract_tar_gz_limited(archive, dest, expansion_limit(len), select)
}

/// [`extract_tar_gz`] with an explicit limit on the decompressed bytes.
pub fn extract_tar_gz_limited(
    archive: &Path,
    dest: &Path,
    limit: u64,
    mut select: impl FnMut(&Path, u64) -> Result<Option<PathBuf>>,
) -> Result<usize> {
    let f =
        fs::File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let trouble = Rc::new(RefCell::new(Trouble::default()));
    let stream = Watch {
        inner: flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f)),
        read: 0,
        limit,
        trouble: trouble.clone(),
    };
    let mut ar = tar::Archive::new(stream);
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut written = 0;
    let mut declared = 0u64;
    let entries = ar
        .entries()
        .map_err(|e| describe(archive, &trouble, &e, limit))?;
    let within = dest.display().to_string();
    for entry in entries {
        let mut entry = entry.map_err(|e| describe(archive, &trouble, &e, limit))?;
        let Some((raw, size, kind)) =
            checked_member(archive, &within, &entry, &mut declared, limit, false)?
        else {
            continue;
        };
        let Some(rel) = select(&raw, size)? else {
            continue;
        };
        let Some(rel) = safe_member_path(&rel) else {
            bail!("destination `{}` escapes {}", rel.display(), dest.display());
        };
        if !kind.is_file() {
            return Err(refuse_special(archive, &raw, kind));
        }
        let mut member = Member {
            path: raw,
            size,
            data: &mut entry,
            archive,
            trouble: &trouble,
            limit,
        };
        member.save(&dest.join(&rel))?;
        written += 1;
    }
    Ok(written)
}

enum Copied {
    Read(std::io::Error),
    Write(anyhow::Error),
}

/// Streams exactly `size` bytes of a member into `file` (1 MiB at a time).
fn copy_member(
    from: &mut impl Read,
    file: &mut fs::File,
    size: u64,
    out: &Path,
) -> std::result::Result<(), Copied> {
    let mut buf = vec![0u8; size.min(1 << 20) as usize];
    let mut left = size;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = match from.read(&mut buf[..want]) {
            Ok(0) => return Err(Copied::Read(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copied::Read(e)),
        };
        file.write_all(&buf[..n])
            .map_err(|e| Copied::Write(anyhow!("cannot write {}: {e}", out.display())))?;
        left -= n as u64;
    }
    Ok(())
}

/// The MD5 of `archive`'s content, remembered in `cache_dir` beside the file's identity (device,
/// inode, size, modification and change times): a file that has not been touched since is not
/// read again, and any write to it (which always moves its change time) makes it hashed anew.
pub fn content_key(archive: &Path, cache_dir: &Path) -> Result<String> {
    let meta =
        fs::metadata(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let identity = file_identity(&meta);
    let name = archive.file_name().unwrap_or_default().to_string_lossy();
    let memo = cache_dir.join(format!(".{name}.md5"));
    if let Some(id) = &identity {
        if let Ok(text) = fs::read_to_string(&memo) {
            if let Some((seen, md5)) = text.trim().rsplit_once(' ') {
                if seen == id && md5.len() == 32 {
                    return Ok(md5.to_string());
                }
            }
        }
    }
    let md5 = super::fetch::md5_file(archive)?;
    if let Some(id) = identity {
        let _ = fs::create_dir_all(cache_dir);
        let _ = crate::sys::atomic::write(&memo, format!("{id} {md5}\n").as_bytes());
    }
    Ok(md5)
}

#[cfg(unix)]
fn file_identity(m: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    Some(format!(
        "{}:{}:{}:{}.{}:{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

#[cfg(not(unix))]
fn file_identity(_: &fs::Metadata) -> Option<String> {
    None
}

/// Whether process `pid` still runs (always "yes" where /proc is absent, so nothing is removed).
fn alive(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes `.<name>-*.partial-<pid>-*` folders left in `cache_dir` by extractions whose process
/// is gone (killed mid-way); a running extraction's folder is left alone.
fn remove_stale_partials(cache_dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return;
    };
    let prefix = format!(".{name}-");
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let Some((_, tail)) = rest.rsplit_once(".partial-") else {
            continue;
        };
        let pid = tail.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !alive(p)) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Removes the complete extractions of the same archive (same marker) other than `keep`: they
/// hold an earlier content of the file.
fn remove_superseded(cache_dir: &Path, name: &str, marker: &str, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return;
    };
    let prefix = format!("{name}-");
    for e in entries.flatten() {
        let p = e.path();
        let ours = e.file_name().to_string_lossy().starts_with(&prefix)
            && p != keep
            && fs::read_to_string(p.join(COMPLETE_MARKER)).is_ok_and(|m| m == marker);
        if ours {
            crate::errln!("removing the superseded extraction {}", p.display());
            let _ = fs::remove_dir_all(&p);
        }
    }
}

/// Extracts `archive` once into a folder of `cache_dir` named after the archive and keyed by
/// its content ([`content_key`]), and returns that folder. The folder is filled under a temporary
/// name, marked complete and renamed, so an interrupted extraction is never used (and its
/// temporary folder is removed by the next call); a later call finds the marker and returns at
/// once. Extractions of an earlier content of the same archive are removed.
pub fn extract_cached(archive: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let name = archive
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .trim_end_matches(".tgz")
        .to_string();
    remove_stale_partials(cache_dir, &name);
    let key = content_key(archive, cache_dir)?;
    let dest = cache_dir.join(format!("{name}-{}", &key[..16]));
    let marker = fs::canonicalize(archive)
        .unwrap_or_else(|_| archive.to_path_buf())
        .display()
        .to_string();
    if dest.join(COMPLETE_MARKER).is_file() {
        remove_superseded(cache_dir, &name, &marker, &dest);
        return Ok(dest);
    }
    if dest.exists() {
        fs::remove_dir_all(&dest)
            .with_context(|| format!("cannot remove incomplete cache {}", dest.display()))?;
    }
    // Unique per process and call, so concurrent extractions never share a temporary folder.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = cache_dir.join(format!(
        ".{name}-{}.partial-{}-{call}",
        &key[..16],
        std::process::id()
    ));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    crate::errln!(
        "extracting {} into {} (once)",
        archive.display(),
        dest.display()
    );
    let result = extract_tar_gz(archive, &tmp, |p, _| Ok(Some(p.to_path_buf())));
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fs::write(tmp.join(COMPLETE_MARKER), &marker)
        .with_context(|| format!("cannot write the marker in {}", tmp.display()))?;
    if let Err(e) = fs::rename(&tmp, &dest) {
        // Another process may have finished the same extraction first.
        let _ = fs::remove_dir_all(&tmp);
        if !dest.join(COMPLETE_MARKER).is_file() {
            return Err(e).with_context(|| format!("cannot rename to {}", dest.display()));
        }
    }
    remove_superseded(cache_dir, &name, &marker, &dest);
    Ok(dest)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A gzip tar with the given (raw name, content) members; names are written into the header
    /// bytes directly so that hostile names (which `tar::Builder` refuses) can be tested.
    pub(crate) fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_old();
            let n = name.as_bytes();
            h.as_old_mut().name[..n.len()].copy_from_slice(n);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        let raw = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn member_paths_are_confined() {
        assert_eq!(
            safe_member_path(Path::new("./a/b.jpg")),
            Some(PathBuf::from("a/b.jpg"))
        );
        assert_eq!(safe_member_path(Path::new("../x")), None);
        assert_eq!(safe_member_path(Path::new("a/../../x")), None);
        assert_eq!(safe_member_path(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn escaping_member_is_refused_and_nothing_lands_outside() {
        let dir = tempfile::tempdir().unwrap();
        let ar = dir.path().join("evil.tar.gz");
        fs::write(&ar, tar_gz(&[("ok.txt", b"1"), ("../escaped.txt", b"2")])).unwrap();
        let e = extract_tar_gz(&ar, &dir.path().join("out"), |p, _| {
            Ok(Some(p.to_path_buf()))
        })
        .unwrap_err();
        let s = format!("{e:#}");
        assert!(
            s.contains("`../escaped.txt`") && s.contains("outside the target folder"),
            "{s}"
        );
        assert!(!dir.path().join("escaped.txt").exists());
    }

    #[test]
    fn cached_extraction_is_marked_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ar = dir.path().join("set.tar.gz");
        fs::write(&ar, tar_gz(&[("train/a/1.txt", b"x")])).unwrap();
        let cache = dir.path().join("cache");
        let d1 = extract_cached(&ar, &cache).unwrap();
        assert!(d1.join(COMPLETE_MARKER).is_file());
        assert_eq!(fs::read(d1.join("train/a/1.txt")).unwrap(), b"x");
        // A folder without the marker (an interrupted extraction) is redone, not used.
        fs::remove_file(d1.join(COMPLETE_MARKER)).unwrap();
        fs::remove_file(d1.join("train/a/1.txt")).unwrap();
        let d2 = extract_cached(&ar, &cache).unwrap();
        assert_eq!(d1, d2);
        assert_eq!(fs::read(d2.join("train/a/1.txt")).unwrap(), b"x");
    }

    #[test]
    fn truncated_archive_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let ar = dir.path().join("cut.tar.gz");
        let bytes = tar_gz(&[("a.bin", &[7u8; 5000])]);
        fs::write(&ar, &bytes[..bytes.len() / 2]).unwrap();
        let e = extract_cached(&ar, &dir.path().join("c")).unwrap_err();
        let s = format!("{e:#}");
        assert!(s.contains("cut.tar.gz"), "{s}");
        // Nothing is left but the memo of the archive's hash: no partial folder.
        let left: Vec<String> = fs::read_dir(dir.path().join("c"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec![".cut.tar.gz.md5"]);
    }
}
