//! Image folders in the ImageNet layout of §3.4 (`ROOT/train/<class>/*`, `ROOT/val/<class>/*` or
//! `ROOT/test/<class>/*`, JPEG or PNG), which is also how the real CIFAR-10 JPEGs of §4.2 are laid
//! out here. Classes are the sorted folder names of `train/`. Small images (at most 64×64, like
//! CIFAR) are decoded once, in parallel on all cores, into one `u8` tensor ([`decode_small`]);
//! large ones are streamed by [`super::stream`].
use super::image::{decode_rgb, probe_size, to_chw};
use super::ImageSet;
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Images with both sides at most this many pixels are decoded whole into memory.
pub const SMALL_MAX: u32 = 64;

/// The files of one split, with their class indices.
#[derive(Debug, Clone)]
pub struct Split {
    /// "train", "val" or "test": the folder name.
    pub name: String,
    pub files: Vec<PathBuf>,
    pub labels: Vec<i64>,
}

impl Split {
    /// Images per class, in class order.
    pub fn counts(&self, classes: usize) -> Vec<usize> {
        let mut c = vec![0; classes];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }
}

/// A file left out under `data.skip_corrupt`, and why.
pub type Skipped = (PathBuf, String);

/// What `scan` found under a root.
#[derive(Debug, Clone)]
pub struct FolderIndex {
    pub root: PathBuf,
    pub class_names: Vec<String>,
    pub train: Split,
    pub eval: Split,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    // Hidden files (.DS_Store, our own markers) are not data.
    v.retain(|p| {
        !p.file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with('.'))
    });
    v.sort();
    Ok(v)
}

/// The regular files of `dir` (links followed), sorted, hidden ones left out. The type comes
/// from the directory entry, so only links cost a `stat`: a scan of 201,000 files (1,000 class
/// folders) took 1.8-2.0 s with one `stat` per file, 0.4-0.5 s without, warm page cache, on the
/// 2-core development machine (tests/it/folder_scale.rs); 1.28 million files scale to about 3 s, so
/// the index is not cached.
fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let list = || format!("cannot list {}", dir.display());
    let mut v = Vec::new();
    for e in fs::read_dir(dir).with_context(list)? {
        let e = e.with_context(list)?;
        if e.file_name().to_str().is_some_and(|f| f.starts_with('.')) {
            continue;
        }
        let t = e.file_type().with_context(list)?;
        let file = t.is_file() || (t.is_symlink() && e.path().is_file());
        if file {
            v.push(e.path());
        }
    }
    v.sort();
    Ok(v)
}

/// The class folders of a split, by name. A name that is not UTF-8 is refused: read lossily, two
/// such folders would become one class (both U+FFFD), their labels silently merged.
fn class_dirs(split_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    sorted_entries(split_dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .map(|p| match p.file_name().and_then(|n| n.to_str()) {
            Some(name) => Ok((name.to_string(), p)),
            None => bail!(
                "class folder {} in {}: its name is not UTF-8, so it cannot name a class \
                 (rename it)",
                p.display(),
                split_dir.display()
            ),
        })
        .collect()
}

fn scan_split(
    split_dir: &Path,
    name: &str,
    class_names: &[String],
    classes: &[(String, PathBuf)],
) -> Result<Split> {
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (cname, dir) in classes {
        let Some(label) = class_names.iter().position(|c| c == cname) else {
            bail!(
                "{}: class folder `{cname}` is not among the classes of train/ ({})",
                split_dir.display(),
                class_names.join(", ")
            );
        };
        let entries = sorted_files(dir)?;
        if entries.is_empty() {
            bail!(
                "{}: empty class folder (no image files); remove it or add its images",
                dir.display()
            );
        }
        labels.extend(std::iter::repeat_n(label as i64, entries.len()));
        files.extend(entries);
    }
    Ok(Split {
        name: name.to_string(),
        files,
        labels,
    })
}

/// Lists `root/train/<class>/*` and `root/val/<class>/*` (or `root/test/<class>/*`).
pub fn scan(root: &Path) -> Result<FolderIndex> {
    let layout =
        "expected ROOT/train/<class>/<images> and ROOT/val/<class>/<images> (or ROOT/test/...)";
    if !root.is_dir() {
        bail!("{}: no such folder; {layout}", root.display());
    }
    let train_dir = root.join("train");
    if !train_dir.is_dir() {
        bail!("{}: missing split train/; {layout}", root.display());
    }
    let eval_name = ["val", "test"]
        .into_iter()
        .find(|s| root.join(s).is_dir())
        .ok_or_else(|| {
            anyhow!(
                "{}: missing split val/ (or test/); {layout}",
                root.display()
            )
        })?;
    let train_classes = class_dirs(&train_dir)?;
    if train_classes.is_empty() {
        bail!("{}: no class folders; {layout}", train_dir.display());
    }
    let class_names: Vec<String> = train_classes.iter().map(|(n, _)| n.clone()).collect();
    let train = scan_split(&train_dir, "train", &class_names, &train_classes)?;
    let eval_dir = root.join(eval_name);
    let eval_classes = class_dirs(&eval_dir)?;
    if eval_classes.is_empty() {
        bail!("{}: no class folders; {layout}", eval_dir.display());
    }
    let eval = scan_split(&eval_dir, eval_name, &class_names, &eval_classes)?;
    Ok(FolderIndex {
        root: root.to_path_buf(),
        class_names,
        train,
        eval,
    })
}

/// The folder to scan for `data.path`: the folder itself, or for a `.tar.gz`/`.tgz` archive its
/// extraction in `cache_dir` (done once). When the tree sits in one top-level folder of the
/// archive, that folder.
pub fn resolve_root(path: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let name = path.to_string_lossy();
    let root = if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        if !path.is_file() {
            bail!("data.path = {}: no such archive", path.display());
        }
        super::archive::extract_cached(path, cache_dir)
            .with_context(|| format!("extracting data.path = {}", path.display()))?
    } else {
        path.to_path_buf()
    };
    if !root.join("train").is_dir() {
        if let Ok(entries) = sorted_entries(&root) {
            let dirs: Vec<_> = entries.into_iter().filter(|p| p.is_dir()).collect();
            if dirs.len() == 1 && dirs[0].join("train").is_dir() {
                return Ok(dirs[0].clone());
            }
        }
    }
    Ok(root)
}

/// A rayon pool of `workers` threads (0 = one per core).
pub fn pool(workers: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("resnet-decode-{i}"))
        .build()
        .context("cannot start the decoding threads")
}

/// Decodes every file of `split` (all the size of the first) into [N, 3, H, W] `u8` and labels.
/// A corrupt, non-image or differently sized file is an error naming it, or with `skip_corrupt`
/// is left out and counted. Returns (images, labels, skipped files).
fn decode_split(
    split: &Split,
    size: (u32, u32),
    skip_corrupt: bool,
    pool: &rayon::ThreadPool,
) -> Result<(Tensor, Tensor, Vec<Skipped>)> {
    let (w, h) = size;
    let per = 3 * (w * h) as usize;
    // The pixels, their tensor copy and the float copy for the mean image.
    let bytes = split.files.len() as f64 * per as f64;
    crate::sys::memory::host_fits(6.0 * bytes, || {
        format!(
            "decoding the {} images of {w}x{h} in {}/",
            split.files.len(),
            split.name
        )
    })?;
    let mut pixels = vec![0u8; split.files.len() * per];
    let errors: Vec<Option<String>> = pool.install(|| {
        pixels
            .par_chunks_mut(per)
            .zip(split.files.par_iter())
            .map(|(out, path)| match decode_rgb(path) {
                Ok(img) if img.dimensions() == (w, h) => {
                    to_chw(&img, out);
                    None
                }
                Ok(img) => Some(format!(
                    "{}: {}x{} pixels, but the first image is {w}x{h}; an in-memory folder \
                     needs one image size",
                    path.display(),
                    img.width(),
                    img.height()
                )),
                Err(e) => Some(format!("{e:#}")),
            })
            .collect()
    });
    let mut skipped = Vec::new();
    let mut keep = Vec::with_capacity(split.files.len());
    for (i, e) in errors.into_iter().enumerate() {
        match e {
            None => keep.push(i as i64),
            Some(msg) if skip_corrupt => skipped.push((split.files[i].clone(), msg)),
            Some(msg) => bail!("{msg} (set data.skip_corrupt = true to skip such files)"),
        }
    }
    let n = split.files.len() as i64;
    let mut images = Tensor::from_slice(&pixels).view([n, 3, h as i64, w as i64]);
    let mut labels = Tensor::from_slice(&split.labels);
    if !skipped.is_empty() {
        if keep.is_empty() {
            bail!("{}/: every image was skipped as unreadable", split.name);
        }
        let idx = Tensor::from_slice(&keep);
        images = images.index_select(0, &idx);
        labels = labels.index_select(0, &idx);
    }
    Ok((images, labels, skipped))
}

/// The first readable image's size (skipping unreadable ones only when allowed).
pub fn first_size(split: &Split, skip_corrupt: bool) -> Result<(u32, u32)> {
    let mut last = None;
    for f in split.files.iter().take(if skip_corrupt { 100 } else { 1 }) {
        match probe_size(f) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no images")))
}

/// Decodes a small-image folder whole: both splits into one [N, 3, H, W] `u8` tensor each, in
/// parallel on `workers` threads. Returns the set and the skipped files (with why).
pub fn decode_small(
    index: &FolderIndex,
    skip_corrupt: bool,
    workers: usize,
) -> Result<(ImageSet, Vec<Skipped>)> {
    let size = first_size(&index.train, skip_corrupt)?;
    let pool = pool(workers)?;
    let (train_images, train_labels, mut skipped) =
        decode_split(&index.train, size, skip_corrupt, &pool)?;
    let (test_images, test_labels, s2) = decode_split(&index.eval, size, skip_corrupt, &pool)?;
    skipped.extend(s2);
    Ok((
        ImageSet {
            class_names: index.class_names.clone(),
            train_images,
            train_labels,
            test_images,
            test_labels,
        },
        skipped,
    ))
}

const CACHE_MAGIC: &[u8; 12] = b"RESNETU8v1\0\0";

/// MD5 of a file's bytes, read 64 KiB at a time.
fn file_md5(path: &Path) -> Result<[u8; 16]> {
    use md5::{Digest, Md5};
    use std::io::Read;
    let mut f = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Md5::new();
    let mut buf = [0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

/// The cache file for a decoded folder: `decoded-<source>-<content>.u8`, where `<source>` names
/// the folder and the skip setting and `<content>` is the MD5 of its manifest (every file's path
/// below the root, the MD5 of its bytes, and its label). Any change to what the files hold makes a
/// new key, so a stale cache is never read, whatever the files' sizes and times say. The files
/// are hashed in parallel on the calling rayon pool.
pub fn cache_file(index: &FolderIndex, skip_corrupt: bool, cache_dir: &Path) -> Result<PathBuf> {
    let content = content_digest(index)?;
    Ok(cache_dir.join(format!("{}{content}.u8", cache_prefix(index, skip_corrupt))))
}

/// The MD5 of the folder's manifest: class names, then every file's path below the root, its
/// label and the MD5 of its bytes, split by split (the `<content>` of [`cache_file`], and the
/// folder's [`crate::data::DataSource::content_key`]). Hashed in parallel on the calling pool.
pub fn content_digest(index: &FolderIndex) -> Result<String> {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(index.class_names.join("/"));
    for split in [&index.train, &index.eval] {
        h.update(format!("\n[{}]\n", split.name));
        let digests: Vec<[u8; 16]> = split
            .files
            .par_iter()
            .map(|f| file_md5(f))
            .collect::<Result<_>>()?;
        for ((f, l), d) in split.files.iter().zip(&split.labels).zip(&digests) {
            let rel = f.strip_prefix(&index.root).unwrap_or(f);
            h.update(format!("{}\t{l}\t", rel.display()));
            h.update(d);
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The key of a streamed (large-image) folder: the MD5 of class names, every file's path below
/// the root and its label, split by split. The files' bytes are not read (ImageNet's 1.28 M
/// files are 140 GB): a renamed, added, removed or relabelled file changes it, a file rewritten
/// in place does not.
pub fn manifest_key(index: &FolderIndex) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(index.class_names.join("/"));
    for split in [&index.train, &index.eval] {
        h.update(format!("\n[{}]\n", split.name));
        for (f, l) in split.files.iter().zip(&split.labels) {
            let rel = f.strip_prefix(&index.root).unwrap_or(f);
            h.update(format!("{}\t{l}\n", rel.display()));
        }
    }
    format!("{:x}", h.finalize())
}

/// `decoded-<source>-`: what every cache of this folder (any content) is named with.
fn cache_prefix(index: &FolderIndex, skip_corrupt: bool) -> String {
    use md5::{Digest, Md5};
    let root = fs::canonicalize(&index.root).unwrap_or_else(|_| index.root.clone());
    let source = Md5::digest(format!("{}\nskip={skip_corrupt}\n", root.display()));
    format!("decoded-{:x}-", source)[..25].to_string()
}

/// Removes the caches of the same folder other than `keep`: they hold an earlier content.
fn remove_superseded(keep: &Path, prefix: &str) {
    let (Some(dir), Some(keep_name)) = (keep.parent(), keep.file_name()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.starts_with(prefix) && n.ends_with(".u8") && name != keep_name {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let n = t.numel();
    let mut v = vec![0u8; n * t.kind().elt_size_in_bytes()];
    t.contiguous().copy_data_u8(&mut v, n);
    v
}

/// Writes a decoded set as: magic, n_train, n_test, height, width (u64 LE), then train pixels,
/// train labels (i64 LE), test pixels, test labels. Written under a temporary name and renamed.
fn write_cache(path: &Path, set: &ImageSet) -> Result<()> {
    let sz = set.train_images.size();
    let mut bytes = CACHE_MAGIC.to_vec();
    for v in [sz[0], set.test_images.size()[0], sz[2], sz[3]] {
        bytes.extend_from_slice(&(v as u64).to_le_bytes());
    }
    for t in [
        &set.train_images,
        &set.train_labels,
        &set.test_images,
        &set.test_labels,
    ] {
        bytes.extend(tensor_bytes(t));
    }
    crate::sys::atomic::write(path, &bytes)
}

/// Reads a cache written by `write_cache`; an error when it is damaged.
fn read_cache(path: &Path, class_names: &[String]) -> Result<ImageSet> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bad = || anyhow!("{}: damaged decoded-image cache", path.display());
    if bytes.len() < 44 || &bytes[..12] != CACHE_MAGIC {
        return Err(bad());
    }
    let word =
        |i: usize| u64::from_le_bytes(bytes[12 + 8 * i..20 + 8 * i].try_into().unwrap()) as usize;
    let (ntr, nte, h, w) = (word(0), word(1), word(2), word(3));
    let want = (|| {
        let px = h.checked_mul(w)?.checked_mul(3)?;
        ntr.checked_add(nte)?
            .checked_mul(px.checked_add(8)?)?
            .checked_add(44)
    })();
    if want != Some(bytes.len()) {
        return Err(bad());
    }
    let px = 3 * h * w;
    let mut at = 44;
    let mut take = |n: usize| {
        let s = &bytes[at..at + n];
        at += n;
        s
    };
    let labels = |b: &[u8]| {
        let v: Vec<i64> = b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Tensor::from_slice(&v)
    };
    let (h, w) = (h as i64, w as i64);
    let train_images = Tensor::from_slice(take(ntr * px)).view([ntr as i64, 3, h, w]);
    let train_labels = labels(take(ntr * 8));
    let test_images = Tensor::from_slice(take(nte * px)).view([nte as i64, 3, h, w]);
    let test_labels = labels(take(nte * 8));
    Ok(ImageSet {
        class_names: class_names.to_vec(),
        train_images,
        train_labels,
        test_images,
        test_labels,
    })
}

/// [`decode_small`] through a cache of the decoded `u8` images in `cache_dir`: the first call
/// decodes and writes it, later calls on the unchanged folder read it back at disk speed. A damaged
/// cache is decoded again (with a warning); the skipped files are only known on a decoding call.
pub fn decode_small_cached(
    index: &FolderIndex,
    skip_corrupt: bool,
    workers: usize,
    cache_dir: &Path,
) -> Result<(ImageSet, Vec<Skipped>, bool)> {
    decode_small_keyed(index, skip_corrupt, workers, cache_dir).map(|(s, k, hit, _)| (s, k, hit))
}

/// [`decode_small_cached`] that also returns the folder's [`content_digest`] (computed once for
/// both the cache's name and the key).
pub fn decode_small_keyed(
    index: &FolderIndex,
    skip_corrupt: bool,
    workers: usize,
    cache_dir: &Path,
) -> Result<(ImageSet, Vec<Skipped>, bool, String)> {
    let pool = pool(workers)?;
    let key = pool.install(|| content_digest(index))?;
    let path = cache_dir.join(format!("{}{key}.u8", cache_prefix(index, skip_corrupt)));
    if path.is_file() {
        match read_cache(&path, &index.class_names) {
            Ok(set) => return Ok((set, Vec::new(), true, key)),
            Err(e) => crate::errln!("warning: {e:#}; decoding the images again"),
        }
    }
    let (set, skipped) = decode_small(index, skip_corrupt, workers)?;
    match write_cache(&path, &set) {
        Ok(()) => remove_superseded(&path, &cache_prefix(index, skip_corrupt)),
        Err(e) => crate::errln!("warning: could not write the decoded-image cache: {e:#}"),
    }
    Ok((set, skipped, false, key))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes `ROOT/{split}/{class}/{i}.{png|jpg}` images of `w`×`h` with class-dependent colour.
    pub(crate) fn write_tree(
        root: &Path,
        splits: &[(&str, usize)],
        classes: &[&str],
        w: u32,
        h: u32,
    ) {
        for (split, per_class) in splits {
            for (c, name) in classes.iter().enumerate() {
                let dir = root.join(split).join(name);
                fs::create_dir_all(&dir).unwrap();
                for i in 0..*per_class {
                    let img = image::RgbImage::from_fn(w, h, |x, y| {
                        image::Rgb([
                            (40 * c as u32 + x) as u8,
                            (y * 3 + i as u32) as u8,
                            (x + y) as u8,
                        ])
                    });
                    let ext = if i % 2 == 0 { "png" } else { "jpg" };
                    img.save(dir.join(format!("{i:03}.{ext}"))).unwrap();
                }
            }
        }
    }

    #[test]
    fn scans_sorted_classes_and_counts() {
        let d = tempfile::tempdir().unwrap();
        write_tree(
            d.path(),
            &[("train", 3), ("test", 2)],
            &["dog", "cat"],
            8,
            6,
        );
        let ix = scan(d.path()).unwrap();
        assert_eq!(ix.class_names, vec!["cat", "dog"]);
        assert_eq!(ix.train.counts(2), vec![3, 3]);
        assert_eq!(ix.eval.name, "test");
        let (set, skipped) = decode_small(&ix, false, 2).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(set.train_images.size(), vec![6, 3, 6, 8]);
        // PNG is lossless: pixel (x=5, y=2) of cat/000.png (written as class 1 of ["dog", "cat"],
        // now label 0) has R = 40 + 5, G = 6, B = 7.
        let px: Vec<i64> = (0..3)
            .map(|ch| set.train_images.int64_value(&[0, ch, 2, 5]))
            .collect();
        assert_eq!(px, vec![45, 6, 7]);
        assert_eq!(set.train_labels.int64_value(&[0]), 0);
    }

    fn err(root: &Path) -> String {
        let e = scan(root).and_then(|ix| decode_small(&ix, false, 1).map(|_| ()));
        format!("{:#}", e.unwrap_err())
    }

    #[test]
    fn missing_split_is_named() {
        let d = tempfile::tempdir().unwrap();
        write_tree(d.path(), &[("train", 1)], &["a"], 4, 4);
        let s = err(d.path());
        assert!(s.contains("missing split val/ (or test/)"), "{s}");
        fs::rename(d.path().join("train"), d.path().join("training")).unwrap();
        let s = err(d.path());
        assert!(s.contains("missing split train/"), "{s}");
    }

    #[test]
    fn empty_class_folder_is_named() {
        let d = tempfile::tempdir().unwrap();
        write_tree(d.path(), &[("train", 1), ("val", 1)], &["a", "b"], 4, 4);
        fs::create_dir_all(d.path().join("train/c")).unwrap();
        let s = err(d.path());
        assert!(s.contains("train/c: empty class folder"), "{s}");
    }

    #[test]
    fn corrupt_file_is_named_or_skipped_with_a_count() {
        let d = tempfile::tempdir().unwrap();
        write_tree(d.path(), &[("train", 2), ("val", 1)], &["a", "b"], 4, 4);
        fs::write(d.path().join("train/b/notes.txt"), "not an image").unwrap();
        let s = err(d.path());
        assert!(
            s.contains("train/b/notes.txt: not a readable JPEG/PNG image"),
            "{s}"
        );
        let ix = scan(d.path()).unwrap();
        let (set, skipped) = decode_small(&ix, true, 1).unwrap();
        assert_eq!(skipped.len(), 1);
        assert_eq!(set.train_images.size()[0], 4);
        // A truncated JPEG is also refused.
        let jpg = d.path().join("val/a/001.jpg");
        image::RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9]))
            .save(&jpg)
            .unwrap();
        let b = fs::read(&jpg).unwrap();
        fs::write(&jpg, &b[..b.len() / 3]).unwrap();
        fs::remove_file(d.path().join("train/b/notes.txt")).unwrap();
        let s = err(d.path());
        assert!(s.contains("val/a/001.jpg"), "{s}");
    }

    #[test]
    fn decoded_cache_is_reused_and_keyed_by_the_files() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("set");
        write_tree(&root, &[("train", 3), ("val", 2)], &["a", "b"], 6, 5);
        let cache = d.path().join("cache");
        let ix = scan(&root).unwrap();
        let (s1, _, hit1) = decode_small_cached(&ix, false, 1, &cache).unwrap();
        let (s2, _, hit2) = decode_small_cached(&ix, false, 1, &cache).unwrap();
        assert!(!hit1 && hit2);
        assert!(s1.train_images.equal(&s2.train_images) && s1.test_labels.equal(&s2.test_labels));
        assert_eq!(s2.test_images.size(), vec![4, 3, 5, 6]);
        // A damaged cache is decoded again, not trusted.
        let f = cache_file(&ix, false, &cache).unwrap();
        let b = fs::read(&f).unwrap();
        fs::write(&f, &b[..b.len() - 1]).unwrap();
        let (s3, _, hit3) = decode_small_cached(&ix, false, 1, &cache).unwrap();
        assert!(!hit3 && s3.train_images.equal(&s1.train_images));
        // A changed file changes the key.
        image::RgbImage::new(6, 5)
            .save(root.join("train/a/000.png"))
            .unwrap();
        assert_ne!(cache_file(&scan(&root).unwrap(), false, &cache).unwrap(), f);
    }

    #[test]
    fn mixed_sizes_are_named() {
        let d = tempfile::tempdir().unwrap();
        write_tree(d.path(), &[("train", 1), ("val", 1)], &["a", "b"], 4, 4);
        image::RgbImage::new(5, 4)
            .save(d.path().join("train/b/000.png"))
            .unwrap();
        let s = err(d.path());
        assert!(s.contains("train/b/000.png: 5x4 pixels"), "{s}");
    }
}
