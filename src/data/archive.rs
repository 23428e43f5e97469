//! Safe `.tar.gz` extraction for the datasets of §4.2 (CIFAR-10) and §3.4 (ImageNet-style folders):
//! only regular files and folders, never a path outside the target folder, and a completion marker
//! so that a half-extracted cache is never taken for a whole one.
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Name of the file written last into a fully extracted cache folder.
pub const COMPLETE_MARKER: &str = ".resnet-complete";

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

/// Extracts the members of `archive` (gzip-compressed tar) that `select` maps to a relative
/// destination path, below `dest`. Each file is written to a temporary name and renamed, so a
/// file at its final name is always whole. Links and devices are refused, as is any member whose
/// path escapes `dest`. Returns the number of files written.
pub fn extract_tar_gz(
    archive: &Path,
    dest: &Path,
    mut select: impl FnMut(&Path) -> Option<PathBuf>,
) -> Result<usize> {
    let f =
        fs::File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut written = 0;
    let entries = ar
        .entries()
        .with_context(|| format!("{}: not a gzip-compressed tar archive", archive.display()))?;
    for entry in entries {
        let mut entry = entry
            .with_context(|| format!("{}: corrupt or truncated archive", archive.display()))?;
        let raw = entry
            .path()
            .with_context(|| format!("{}: member with an unreadable name", archive.display()))?
            .into_owned();
        let Some(rel) = safe_member_path(&raw) else {
            bail!(
                "{}: member `{}` would be written outside the target folder {}; refusing the archive",
                archive.display(),
                raw.display(),
                dest.display()
            );
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() || rel.as_os_str().is_empty() {
            continue;
        }
        let Some(rel) = select(&rel) else { continue };
        let Some(rel) = safe_member_path(&rel) else {
            bail!("destination `{}` escapes {}", rel.display(), dest.display());
        };
        if !kind.is_file() {
            bail!(
                "{}: member `{}` is a link or special file ({kind:?}); only regular files are extracted",
                archive.display(),
                raw.display()
            );
        }
        let out = dest.join(&rel);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let tmp = out.with_file_name(format!(
            ".{}.part",
            out.file_name().unwrap_or_default().to_string_lossy()
        ));
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).with_context(|| {
            format!(
                "{}: member `{}` is truncated",
                archive.display(),
                raw.display()
            )
        })?;
        fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &out).with_context(|| format!("cannot rename to {}", out.display()))?;
        written += 1;
    }
    Ok(written)
}

/// Extracts `archive` once into a folder of `cache_dir` named after the archive and keyed by its
/// size and modification time, and returns that folder. The folder is filled under a temporary
/// name, marked complete and renamed, so an interrupted extraction is never used; a later call
/// finds the marker and returns at once.
pub fn extract_cached(archive: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let meta =
        fs::metadata(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let name = archive
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .trim_end_matches(".tgz")
        .to_string();
    let key = super::rng::mix(meta.len(), mtime);
    let dest = cache_dir.join(format!("{name}-{key:016x}"));
    if dest.join(COMPLETE_MARKER).is_file() {
        return Ok(dest);
    }
    if dest.exists() {
        fs::remove_dir_all(&dest)
            .with_context(|| format!("cannot remove incomplete cache {}", dest.display()))?;
    }
    let tmp = cache_dir.join(format!(".{name}-{key:016x}.partial-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    eprintln!(
        "extracting {} into {} (once)",
        archive.display(),
        dest.display()
    );
    let result = extract_tar_gz(archive, &tmp, |p| Some(p.to_path_buf()));
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fs::write(tmp.join(COMPLETE_MARKER), archive.display().to_string())
        .with_context(|| format!("cannot write the marker in {}", tmp.display()))?;
    if let Err(e) = fs::rename(&tmp, &dest) {
        // Another process may have finished the same extraction first.
        let _ = fs::remove_dir_all(&tmp);
        if !dest.join(COMPLETE_MARKER).is_file() {
            return Err(e).with_context(|| format!("cannot rename to {}", dest.display()));
        }
    }
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
        let e =
            extract_tar_gz(&ar, &dir.path().join("out"), |p| Some(p.to_path_buf())).unwrap_err();
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
        assert!(fs::read_dir(dir.path().join("c")).unwrap().next().is_none());
    }
}
