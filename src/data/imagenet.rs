//! §3.4's data as the ImageNet 2012 archives ship it, turned into the wnid-folder layout that
//! [`super::folder`] reads (`OUT/train/<wnid>/*.JPEG`, `OUT/val/<wnid>/*.JPEG`), read exactly as
//! torchvision's `ImageNet` dataset reads them:
//!
//! * the devkit (`ILSVRC2012_devkit_t12.tar.gz`): `ILSVRC2012_devkit_t12/data/meta.mat`'s
//!   `synsets` struct array, of which the synsets with `num_children == 0` are the classes
//!   (ILSVRC2012_ID → WNID), and `data/ILSVRC2012_validation_ground_truth.txt`, one ILSVRC2012_ID
//!   per line for the validation images in sorted name order;
//! * `ILSVRC2012_img_train.tar`: a plain tar of one `<wnid>.tar` per class, each a plain tar of
//!   that class's JPEGs, extracted to `train/<wnid>/`;
//! * `ILSVRC2012_img_val.tar`: the validation JPEGs, flat, moved to `val/<wnid>/` by the ground
//!   truth.
//!
//! Streamed: each archive is read member by member (nested tars included) and every file is
//! written once, at its final place; nothing is copied twice. Resumable: a class is filled under
//! `train/.<wnid>.partial`, given a completion marker holding its image count and renamed, so a
//! class folder at its final name is whole and a killed run redoes only the class it was in (the
//! skipped classes' data are seeked over, not read); the validation images go to `.val.partial`,
//! skipping files already whole there, renamed to `val` once all are in. Checked before anything
//! is written: the class tars against the devkit's classes, the validation images against the
//! ground truth's lines; while writing, each class's image count against meta.mat's
//! `num_train_images` where it has that field. Every rule of [`super::archive`] holds at every
//! level (no path outside, regular files only, declared sizes capped). One prepare per output
//! folder at a time (its `.prepare.lock`, held throughout); the archives that made a tree are
//! recorded (`.resnet-sources`: the devkit's MD5 and both tars' listings), and a prepare from
//! other archives, or beside a class folder the devkit does not name, is refused; a completion
//! marker is trusted only when the files present match its count; a class tar's repeated or
//! non-UTF-8 member names are refused; the devkit is read through a fresh private folder.
use super::archive::{self, Member, COMPLETE_MARKER};
use super::matfile::{self, Array, Value};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The devkit members torchvision reads.
pub const META_MAT: &str = "ILSVRC2012_devkit_t12/data/meta.mat";
pub const GROUND_TRUTH: &str = "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt";
/// The most bytes either devkit member may have (the real ones: 2.5 MB and 0.3 MB).
pub const MAX_DEVKIT_MEMBER: u64 = 64 << 20;

/// One class of the devkit: a leaf synset.
#[derive(Debug, Clone, PartialEq)]
pub struct Synset {
    /// ILSVRC2012_ID, 1..=1000 in the real devkit.
    pub id: u32,
    /// WordNet id, the class folder's name (`n01440764`).
    pub wnid: String,
    /// `num_train_images`, where meta.mat has that field: the class tar must hold exactly these.
    pub train_images: Option<u64>,
}

/// What the devkit says.
#[derive(Debug, Clone)]
pub struct Devkit {
    /// The leaf synsets, in meta.mat's order.
    pub classes: Vec<Synset>,
    /// The wnid of each validation image, in sorted image-name order.
    pub val_wnids: Vec<String>,
}

/// A wnid usable as a folder name: ASCII letters, digits and `_`, not empty.
fn valid_wnid(w: &str) -> bool {
    !w.is_empty() && w.len() <= 64 && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn scalar(a: &Array, k: usize, field: &str) -> Result<f64> {
    match a.field(k, field).map(|f| &f.value) {
        Some(Value::Numeric(v)) if v.len() == 1 => Ok(v[0]),
        Some(other) => bail!(
            "synsets({}).{field} is {other:?}, expected one number",
            k + 1
        ),
        None => bail!("synsets has no field {field}"),
    }
}

fn count(a: &Array, k: usize, field: &str) -> Result<u64> {
    let x = scalar(a, k, field)?;
    if x < 0.0 || x.fract() != 0.0 || x > u32::MAX as f64 {
        bail!(
            "synsets({}).{field} = {x}, expected a non-negative integer",
            k + 1
        );
    }
    Ok(x as u64)
}

/// The leaf synsets (`num_children == 0`) of meta.mat's `synsets` struct array: ids unique and
/// positive, wnids unique and folder-safe.
pub fn leaf_synsets(arrays: &[Array]) -> Result<Vec<Synset>> {
    let s = arrays
        .iter()
        .find(|a| a.name == "synsets")
        .ok_or_else(|| anyhow!("no variable `synsets`"))?;
    let Value::Struct { fields, elements } = &s.value else {
        bail!("`synsets` is not a struct array");
    };
    let has_train = fields.iter().any(|f| f == "num_train_images");
    let (mut out, mut ids, mut wnids) = (Vec::new(), HashSet::new(), HashSet::new());
    for k in 0..elements.len() {
        if count(s, k, "num_children")? != 0 {
            continue;
        }
        let id = count(s, k, "ILSVRC2012_ID")?;
        let wnid = match s.field(k, "WNID").map(|f| &f.value) {
            Some(Value::Char(w)) if valid_wnid(w) => w.clone(),
            Some(other) => bail!("synsets({}).WNID is {other:?}, expected a wnid", k + 1),
            None => bail!("synsets has no field WNID"),
        };
        if id == 0 || !ids.insert(id) {
            bail!("synsets({}).ILSVRC2012_ID = {id}: zero or repeated", k + 1);
        }
        if !wnids.insert(wnid.clone()) {
            bail!("synsets({}).WNID = {wnid}: repeated", k + 1);
        }
        let train_images = if has_train {
            Some(count(s, k, "num_train_images")?)
        } else {
            None
        };
        out.push(Synset {
            id: id as u32,
            wnid,
            train_images,
        });
    }
    if out.is_empty() {
        bail!("`synsets` has no leaf synset (num_children == 0)");
    }
    Ok(out)
}

/// The ground-truth file: one ILSVRC2012_ID per line, each one of `classes`, mapped to wnids.
pub fn val_wnids(text: &str, classes: &[Synset]) -> Result<Vec<String>> {
    let by_id: HashMap<u32, &str> = classes.iter().map(|c| (c.id, c.wnid.as_str())).collect();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let id: u32 = l
                .trim()
                .parse()
                .map_err(|_| anyhow!("line {}: `{}` is not an ILSVRC2012_ID", i + 1, l.trim()))?;
            by_id
                .get(&id)
                .map(|w| w.to_string())
                .ok_or_else(|| anyhow!("line {}: id {id} is not a leaf synset of meta.mat", i + 1))
        })
        .collect()
}

/// Reads the devkit's two members (extracted into `scratch`, under the archive rules).
pub fn read_devkit(devkit: &Path, scratch: &Path) -> Result<Devkit> {
    let want = [META_MAT, GROUND_TRUTH];
    archive::extract_tar_gz(devkit, scratch, |p, size| {
        let hit = want.iter().any(|w| p == Path::new(w));
        if hit && size > MAX_DEVKIT_MEMBER {
            bail!(
                "{}: member {} has {size} bytes, more than {MAX_DEVKIT_MEMBER}",
                devkit.display(),
                p.display()
            );
        }
        Ok(hit.then(|| p.to_path_buf()))
    })?;
    for w in want {
        if !scratch.join(w).is_file() {
            bail!(
                "{}: no member {w}; is it ILSVRC2012_devkit_t12.tar.gz?",
                devkit.display()
            );
        }
    }
    let classes = leaf_synsets(&matfile::read(&scratch.join(META_MAT))?)
        .with_context(|| format!("{}: {META_MAT}", devkit.display()))?;
    let text = fs::read_to_string(scratch.join(GROUND_TRUTH))
        .with_context(|| format!("{}: {GROUND_TRUTH} is not text", devkit.display()))?;
    let val_wnids = val_wnids(&text, &classes)
        .with_context(|| format!("{}: {GROUND_TRUTH}", devkit.display()))?;
    Ok(Devkit { classes, val_wnids })
}

/// A member that must be a plain file name (no folder): the archives are flat.
fn flat_name(archive: &Path, m: &Member) -> Result<String> {
    let Some(name) = m.path.to_str().map(str::to_string) else {
        // Two names that differ only in bytes that are not UTF-8 would be one file on disk.
        bail!(
            "{}: member `{}` has a name that is not UTF-8; the ImageNet archives' names are ASCII",
            archive.display(),
            crate::sys::console::shown(&m.path.to_string_lossy())
        );
    };
    if m.path.components().count() != 1 || name.starts_with('.') {
        bail!(
            "{}: member `{}` is not a plain file name; the ImageNet archives are flat",
            archive.display(),
            crate::sys::console::shown(&name)
        );
    }
    Ok(name)
}

/// The validation images' names, sorted, checked against the ground truth's count.
fn list_val(val_tar: &Path, expected: usize) -> Result<Vec<(String, u64)>> {
    let mut names = Vec::new();
    archive::walk_tar_file(val_tar, |m| {
        names.push((flat_name(val_tar, &m)?, m.size));
        Ok(())
    })?;
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!(
            "{}: member `{}` appears twice",
            val_tar.display(),
            crate::sys::console::shown(&w[0].0)
        );
    }
    if names.len() != expected {
        bail!(
            "{}: holds {} images, the devkit's ground truth lists {expected}",
            val_tar.display(),
            names.len()
        );
    }
    Ok(names)
}

/// The class tars of the training archive (`<wnid>.tar`, with their sizes, in archive order),
/// checked against the devkit's classes.
fn list_train(train_tar: &Path, classes: &[Synset]) -> Result<Vec<(String, u64)>> {
    let known: HashSet<&str> = classes.iter().map(|c| c.wnid.as_str()).collect();
    let mut seen = HashSet::new();
    let mut listing = Vec::new();
    archive::walk_tar_file(train_tar, |m| {
        let name = flat_name(train_tar, &m)?;
        listing.push((name.clone(), m.size));
        let wnid = name.strip_suffix(".tar").unwrap_or("");
        if !known.contains(wnid) {
            bail!(
                "{}: member `{name}` is not `<wnid>.tar` for a class of the devkit",
                train_tar.display()
            );
        }
        if !seen.insert(wnid.to_string()) {
            bail!("{}: member `{name}` appears twice", train_tar.display());
        }
        Ok(())
    })?;
    let missing: Vec<&str> = classes
        .iter()
        .map(|c| c.wnid.as_str())
        .filter(|w| !seen.contains(*w))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: holds {} class tars, the devkit has {} classes; missing {}{}",
            train_tar.display(),
            seen.len(),
            classes.len(),
            missing[..missing.len().min(5)].join(", "),
            if missing.len() > 5 { ", ..." } else { "" }
        );
    }
    Ok(listing)
}

/// The three archives and the output folder.
#[derive(Debug, Clone)]
pub struct Archives {
    pub train_tar: PathBuf,
    pub val_tar: PathBuf,
    pub devkit: PathBuf,
}

/// What [`prepare`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub classes: usize,
    pub train_images: usize,
    pub val_images: usize,
    /// Classes found complete from an earlier run and skipped.
    pub classes_skipped: usize,
    /// Validation images found whole from an earlier run.
    pub val_skipped: usize,
}

/// Writes `out/train/<wnid>/` and `out/val/<wnid>/` from the official archives (module doc).
/// All three archives are listed and checked against each other before anything is written.
pub fn prepare(a: &Archives, out: &Path) -> Result<Prepared> {
    for p in [&a.train_tar, &a.val_tar, &a.devkit] {
        if !p.is_file() {
            bail!("{}: no such archive", p.display());
        }
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    // One prepare per --out at a time, for its whole length (two would both finish "ready").
    let _lock = crate::sys::lock::take(&out.join(LOCK_FILE), |holder, path| {
        format!(
            "{} is being prepared by {holder} (lock {}); wait for it to finish or stop it",
            out.display(),
            path.display()
        )
    })?;
    let devkit = read_devkit_privately(&a.devkit, out)?;
    let val_names = list_val(&a.val_tar, devkit.val_wnids.len())?;
    let train_tars = list_train(&a.train_tar, &devkit.classes)?;
    let classes = train_tars.len();
    let key = sources_key(&a.devkit, &val_names, &train_tars)?;
    check_tree(out, &key, &devkit.classes)?;
    crate::sys::atomic::write(&out.join(SOURCES_FILE), format!("{key}\n").as_bytes())?;
    let (val_images, val_skipped) = prepare_val(&a.val_tar, &val_names, &devkit.val_wnids, out)?;
    let (train_images, classes_skipped) = prepare_train(&a.train_tar, &devkit.classes, out)?;
    Ok(Prepared {
        classes,
        train_images,
        val_images,
        classes_skipped,
        val_skipped,
    })
}

/// The lock file of an output folder, held for a whole prepare.
pub const LOCK_FILE: &str = ".prepare.lock";
/// The record of which archives made the tree in an output folder ([`sources_key`]).
pub const SOURCES_FILE: &str = ".resnet-sources";

/// The devkit read through a scratch folder of its own: created fresh and private (mode 0700)
/// with a name no earlier file has (mkdir fails on anything already there, a symbolic link
/// included, so nothing is written where a planted link points), removed afterwards.
fn read_devkit_privately(devkit: &Path, out: &Path) -> Result<Devkit> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let scratch = out.join(format!(".devkit-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch)
        .with_context(|| format!("cannot create the scratch folder {}", scratch.display()))?;
    let read = read_devkit(devkit, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    read
}

/// What identifies the three archives' content: the devkit's bytes and the two tars' member
/// names and sizes (their listings, read anyway), as one MD5.
fn sources_key(
    devkit: &Path,
    val_names: &[(String, u64)],
    train_tars: &[(String, u64)],
) -> Result<String> {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    let mut f =
        fs::File::open(devkit).with_context(|| format!("cannot read {}", devkit.display()))?;
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", devkit.display()))?;
    for (list, tag) in [(val_names, "val"), (train_tars, "train")] {
        h.update(tag);
        for (n, size) in list {
            h.update(format!("\0{n}\0{size}"));
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Refuses an output folder whose tree was made from other archives (its record differs), or
/// holds a tree without a record, or a class folder that is not a class of the devkit: mixing
/// them would give a dataset that neither set of archives describes.
fn check_tree(out: &Path, key: &str, classes: &[Synset]) -> Result<()> {
    let record = out.join(SOURCES_FILE);
    let o = out.display();
    let parts = ["train", "val", ".val.partial"];
    match fs::read_to_string(&record) {
        Ok(old) if old.trim() == key => {}
        Ok(old) => bail!(
            "{o} was prepared from other archives (content key {} in {}, these archives give \
             {key}); prepare into another --out, or remove {o} first",
            crate::sys::console::shown(old.trim()),
            record.display()
        ),
        Err(_) if parts.iter().any(|p| out.join(p).exists()) => bail!(
            "{o} holds a train/ or val/ tree without the record {SOURCES_FILE} of the archives \
             that made it; prepare into another --out, or remove {o} first"
        ),
        Err(_) => {}
    }
    let known: HashSet<&str> = classes.iter().map(|c| c.wnid.as_str()).collect();
    for part in parts {
        let Ok(entries) = fs::read_dir(out.join(part)) else {
            continue;
        };
        for e in entries {
            let name = e?.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && !known.contains(name.as_str()) {
                bail!(
                    "{}: `{}` is not a class of the devkit; remove it (or prepare into another \
                     --out)",
                    out.join(part).display(),
                    crate::sys::console::shown(&name)
                );
            }
        }
    }
    Ok(())
}

/// Removes the hidden files (temporary files of a killed write) from `dir`'s class folders.
fn remove_hidden(dir: &Path) -> Result<()> {
    for class in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let class = class?.path();
        if !class.is_dir() {
            continue;
        }
        for f in fs::read_dir(&class)? {
            let f = f?;
            if f.file_name().to_string_lossy().starts_with('.') {
                fs::remove_file(f.path())
                    .with_context(|| format!("cannot remove {}", f.path().display()))?;
            }
        }
    }
    Ok(())
}

/// The validation images into `out/val/<wnid>/` (through `out/.val.partial`). Returns the
/// images in place and those found whole from an earlier run.
fn prepare_val(
    val_tar: &Path,
    names: &[(String, u64)],
    wnids: &[String],
    out: &Path,
) -> Result<(usize, usize)> {
    let done = out.join("val");
    if let Some(n) = complete_count(&done, 2)? {
        if n != names.len() {
            bail!(
                "{}: {n} images, the ground truth lists {}; remove it and prepare again",
                done.display(),
                names.len()
            );
        }
        eprintln!("{}: complete from an earlier run", done.display());
        return Ok((names.len(), names.len()));
    }
    if done.exists() {
        bail!(
            "{}: exists without the completion marker {COMPLETE_MARKER}; not written by this \
             command, remove it first",
            done.display()
        );
    }
    let partial = out.join(".val.partial");
    let target: HashMap<&str, &str> = names
        .iter()
        .zip(wnids)
        .map(|((n, _), w)| (n.as_str(), w.as_str()))
        .collect();
    for w in wnids.iter().collect::<HashSet<_>>() {
        fs::create_dir_all(partial.join(w))
            .with_context(|| format!("cannot create {}", partial.display()))?;
    }
    eprintln!(
        "{}: {} validation images into {}",
        val_tar.display(),
        names.len(),
        done.display()
    );
    let mut skipped = 0;
    let written = archive::walk_tar_file(val_tar, |mut m| {
        let name = flat_name(val_tar, &m)?;
        let dest = partial.join(target[name.as_str()]).join(&name);
        if fs::metadata(&dest).is_ok_and(|d| d.is_file() && d.len() == m.size) {
            skipped += 1;
            return Ok(());
        }
        m.save(&dest)
    })?;
    if written != names.len() {
        bail!(
            "{}: {written} images on the second reading, {} on the first; was it changed?",
            val_tar.display(),
            names.len()
        );
    }
    remove_hidden(&partial)?;
    fs::write(partial.join(COMPLETE_MARKER), format!("{written}\n"))
        .with_context(|| format!("cannot write the marker in {}", partial.display()))?;
    fs::rename(&partial, &done).with_context(|| format!("cannot rename to {}", done.display()))?;
    Ok((written, skipped))
}

/// The class tars into `out/train/<wnid>/` (each through `train/.<wnid>.partial`). Returns the
/// training images in place and the classes found complete from an earlier run.
fn prepare_train(train_tar: &Path, classes: &[Synset], out: &Path) -> Result<(usize, usize)> {
    let train = out.join("train");
    fs::create_dir_all(&train).with_context(|| format!("cannot create {}", train.display()))?;
    let expect: BTreeMap<&str, Option<u64>> = classes
        .iter()
        .map(|c| (c.wnid.as_str(), c.train_images))
        .collect();
    let (mut images, mut skipped, mut k) = (0usize, 0usize, 0usize);
    archive::walk_tar_file(train_tar, |mut m| {
        let name = flat_name(train_tar, &m)?;
        let wnid = name.trim_end_matches(".tar").to_string();
        k += 1;
        let done = train.join(&wnid);
        if let Some(n) = complete_count(&done, 1)? {
            images += n;
            skipped += 1;
            return Ok(());
        }
        if done.exists() {
            bail!(
                "{}: exists without the completion marker {COMPLETE_MARKER}; not written by \
                 this command, remove it first",
                done.display()
            );
        }
        let n = extract_class(train_tar, &mut m, &train, &wnid, expect[wnid.as_str()])?;
        eprintln!("train {k}/{}: {wnid}, {n} images", classes.len());
        images += n;
        Ok(())
    })?;
    Ok((images, skipped))
}

/// The image count of a completed folder (a class folder: `depth` 1; `val/`, whose images are in
/// class folders: 2), `None` without a completion marker. The marker is checked against the
/// files present: a folder whose marker says another count (files removed or added since, a
/// marker copied) is an error naming both counts, never trusted.
fn complete_count(dir: &Path, depth: usize) -> Result<Option<usize>> {
    let Ok(text) = fs::read_to_string(dir.join(COMPLETE_MARKER)) else {
        return Ok(None);
    };
    let said: Option<usize> = text.trim().parse().ok();
    let present = count_files(dir, depth)?;
    if said != Some(present) {
        bail!(
            "{}: its completion marker says {} images but it holds {present}; remove the \
             folder and prepare again",
            dir.display(),
            crate::sys::console::shown(text.trim())
        );
    }
    Ok(Some(present))
}

/// The regular files (hidden ones left out) in `dir`, or in its subfolders when `depth` is 2.
fn count_files(dir: &Path, depth: usize) -> Result<usize> {
    let mut n = 0;
    for e in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let t = e.file_type()?;
        if depth > 1 && t.is_dir() {
            n += count_files(&e.path(), depth - 1)?;
        } else if depth == 1 && t.is_file() {
            n += 1;
        }
    }
    Ok(n)
}

/// One class tar (the outer member `m`) into `train/<wnid>/`, through a partial folder.
fn extract_class(
    train_tar: &Path,
    m: &mut Member,
    train: &Path,
    wnid: &str,
    expected: Option<u64>,
) -> Result<usize> {
    let partial = train.join(format!(".{wnid}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let inner = train_tar.join(&m.path);
    let size = m.size;
    let mut names = HashSet::new();
    let n = archive::walk_tar(&inner, m.reader(), size, |mut f| {
        let name = flat_name(&inner, &f)?;
        if !names.insert(name.clone()) {
            bail!(
                "{}: member `{}` appears twice (the second would replace the first)",
                inner.display(),
                crate::sys::console::shown(&name)
            );
        }
        f.save(&partial.join(name))
    })?;
    let written = count_files(&partial, 1)?;
    if written != n {
        bail!(
            "{}: {n} images read but {written} files written in {}",
            inner.display(),
            partial.display()
        );
    }
    if let Some(e) = expected {
        if n as u64 != e {
            bail!(
                "{}: holds {n} images, the devkit's meta.mat says num_train_images = {e}",
                inner.display()
            );
        }
    }
    if n == 0 {
        bail!("{}: holds no images", inner.display());
    }
    fs::write(partial.join(COMPLETE_MARKER), format!("{n}\n"))
        .with_context(|| format!("cannot write the marker in {}", partial.display()))?;
    let done = train.join(wnid);
    fs::rename(&partial, &done).with_context(|| format!("cannot rename to {}", done.display()))?;
    Ok(n)
}
