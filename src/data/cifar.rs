//! CIFAR-10 as §4.2 uses it: the official binary version (`cifar-10-binary.tar.gz`), 50k training and
//! 10k test images of 32×32. Each of the six batch files holds 10,000 records of one label byte and
//! 3,072 pixel bytes (the R, G and B planes of 32×32, row-major), which is already the [3, H, W]
//! layout of a `u8` tensor.
use super::fetch::{self, Remote};
use super::ImageSet;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The folder the archive unpacks to.
pub const SUBDIR: &str = "cifar-10-batches-bin";
/// The archive's file name.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_FILE: &str = "test_batch.bin";
/// Records per batch file in the official archive.
pub const RECORDS_PER_FILE: usize = 10_000;
const PIXELS: usize = 3 * 32 * 32;
/// `batches.meta.txt` of the archive, in label order.
pub const CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Bytes of a batch file of `records` records.
pub fn batch_bytes(records: usize) -> u64 {
    (records * (1 + PIXELS)) as u64
}

/// Reads one batch file of `records` records: pixels [records*3072] and labels. The size is
/// checked before anything is read, so a huge or sparse file is refused at once.
pub fn read_batch(path: &Path, records: usize) -> Result<(Vec<u8>, Vec<i64>)> {
    let want = batch_bytes(records);
    let len = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len != want {
        bail!(
            "{}: {len} bytes, expected {want} ({records} records of 1 label byte + 3072 pixel bytes); \
             the file is truncated or not a CIFAR-10 binary batch (delete it and run \
             `resnet data fetch cifar10` to extract it again)",
            path.display()
        );
    }
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 != want {
        bail!("{}: changed size while being read", path.display());
    }
    let mut pixels = Vec::with_capacity(records * PIXELS);
    let mut labels = Vec::with_capacity(records);
    for (i, rec) in bytes.chunks_exact(1 + PIXELS).enumerate() {
        if rec[0] > 9 {
            bail!(
                "{}: record {i} has label byte {}; CIFAR-10 labels are 0-9 \
                 (is this the CIFAR-100 binary file?)",
                path.display(),
                rec[0]
            );
        }
        labels.push(rec[0] as i64);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((pixels, labels))
}

fn read_files(dir: &Path, files: &[&str], records: usize) -> Result<(Tensor, Tensor)> {
    let mut pixels = Vec::with_capacity(files.len() * records * PIXELS);
    let mut labels = Vec::with_capacity(files.len() * records);
    for f in files {
        let (p, l) = read_batch(&dir.join(f), records)?;
        pixels.extend_from_slice(&p);
        labels.extend_from_slice(&l);
    }
    let n = labels.len() as i64;
    Ok((
        Tensor::from_slice(&pixels).view([n, 3, 32, 32]),
        Tensor::from_slice(&labels),
    ))
}

/// Reads the six batch files in `dir` (the `cifar-10-batches-bin` folder), `records` per file.
pub fn read_dir(dir: &Path, records: usize) -> Result<ImageSet> {
    if let Some(missing) = TRAIN_FILES
        .iter()
        .chain([&TEST_FILE])
        .find(|f| !dir.join(f).is_file())
    {
        bail!(
            "{}: missing {missing}; the folder must hold data_batch_1.bin ... data_batch_5.bin \
             and test_batch.bin of {ARCHIVE}",
            dir.display()
        );
    }
    let (train_images, train_labels) = read_files(dir, &TRAIN_FILES, records)?;
    let (test_images, test_labels) = read_files(dir, &[TEST_FILE], records)?;
    Ok(ImageSet {
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        train_images,
        train_labels,
        test_images,
        test_labels,
    })
}

/// The batch files that `ensure` expects.
fn members() -> Vec<&'static str> {
    TRAIN_FILES.iter().copied().chain([TEST_FILE]).collect()
}

/// Where the batch files live for `data.path`: `root/cifar-10-batches-bin`, or `root` itself when
/// it is that folder (named so, or holding the batch files).
pub fn batches_dir(root: &Path) -> PathBuf {
    let holds_batches = members().iter().all(|m| root.join(m).is_file());
    if holds_batches || root.file_name() == Some(SUBDIR.as_ref()) {
        root.to_path_buf()
    } else {
        root.join(SUBDIR)
    }
}

/// Makes sure the batches folder of `root` ([`batches_dir`]) holds the six batch files: if any is
/// missing, downloads (or reuses a verified) `cifar-10-binary.tar.gz` beside that folder and
/// extracts the missing members only. Returns the batches folder.
pub fn ensure(root: &Path, remote: &Remote, progress: bool) -> Result<PathBuf> {
    let dir = batches_dir(root);
    if members().iter().all(|m| dir.join(m).is_file()) {
        return Ok(dir);
    }
    let base = if dir == root {
        root.parent().unwrap_or(Path::new("."))
    } else {
        root
    };
    let archive = base.join(ARCHIVE);
    if !archive.is_file() {
        crate::errln!(
            "CIFAR-10 is not in {}; downloading {}",
            dir.display(),
            remote.url
        );
    }
    fetch::download(remote, &archive, progress)?;
    extract_members(&archive, base)?;
    Ok(dir)
}

/// Extracts `cifar-10-batches-bin/<six files>` from the archive into `root` (those not there
/// yet); errors when one of them is absent from the archive or is not whole records of at most a
/// batch file's size (checked on the member's header, before its data is read).
pub fn extract_members(archive: &Path, root: &Path) -> Result<()> {
    let members = members();
    let want = batch_bytes(RECORDS_PER_FILE);
    let mut found = Vec::new();
    super::archive::extract_tar_gz(archive, root, |p, size| {
        let wanted = p.parent() == Some(Path::new(SUBDIR))
            && p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| members.contains(&f));
        if !wanted {
            return Ok(None);
        }
        let record = batch_bytes(1);
        if size == 0 || size > want || size % record != 0 {
            bail!(
                "{}: member {} has {size} bytes, expected {want} (whole records of {record} \
                 bytes); it is not the CIFAR-10 binary archive",
                archive.display(),
                p.display()
            );
        }
        found.push(p.to_path_buf());
        Ok((!root.join(p).is_file()).then(|| p.to_path_buf()))
    })?;
    for m in &members {
        if !found.iter().any(|p| p.ends_with(m)) {
            bail!(
                "{}: the archive has no member {SUBDIR}/{m}; it is not the CIFAR-10 binary archive",
                archive.display()
            );
        }
    }
    Ok(())
}

/// The [`crate::data::DataSource::content_key`] of the CIFAR-10 batch files of `data.path`
/// ([`batches_dir`]): the MD5 of their names and MD5s, each remembered in `cache_dir` beside the
/// file's identity ([`super::archive::content_key`]), so a file untouched since is not read again.
pub fn content_key(root: &Path, cache_dir: &Path) -> Result<String> {
    use md5::{Digest, Md5};
    let dir = batches_dir(root);
    let mut h = Md5::new();
    for m in members() {
        let md5 = super::archive::content_key(&dir.join(m), cache_dir)?;
        h.update(format!("{m} {md5}\n"));
    }
    Ok(format!("{:x}", h.finalize()))
}

/// `ensure` then `read_dir`, for the official archive.
pub fn load(root: &Path, progress: bool) -> Result<ImageSet> {
    let dir = ensure(root, &Remote::cifar10(), progress)?;
    read_dir(&dir, RECORDS_PER_FILE)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A batch file of `records` records: label `i % 10`, pixel bytes `(i + j) % 251`.
    pub(crate) fn fake_batch(records: usize, seed: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(records * (1 + PIXELS));
        for i in 0..records {
            v.push(((i + seed) % 10) as u8);
            v.extend((0..PIXELS).map(|j| ((i + j + seed) % 251) as u8));
        }
        v
    }

    pub(crate) fn write_fake_dir(dir: &Path, records: usize) {
        fs::create_dir_all(dir).unwrap();
        for (k, f) in TRAIN_FILES.iter().chain([&TEST_FILE]).enumerate() {
            fs::write(dir.join(f), fake_batch(records, k)).unwrap();
        }
    }

    #[test]
    fn reads_records_as_planes() {
        let d = tempfile::tempdir().unwrap();
        write_fake_dir(d.path(), 3);
        let s = read_dir(d.path(), 3).unwrap();
        assert_eq!(s.train_images.size(), vec![15, 3, 32, 32]);
        assert_eq!(s.test_images.size(), vec![3, 3, 32, 32]);
        // record 1 of data_batch_1 (seed 0): label 1; R plane pixel (0, 2) is byte j = 2.
        assert_eq!(s.train_labels.int64_value(&[1]), 1);
        assert_eq!(s.train_images.int64_value(&[1, 0, 0, 2]), 3);
        // G plane starts at byte 1024: pixel (0,0) of G is j = 1024 -> (1 + 1024) % 251.
        assert_eq!(
            s.train_images.int64_value(&[1, 1, 0, 0]),
            ((1 + 1024) % 251) as i64
        );
    }

    #[test]
    fn truncated_file_names_file_and_sizes() {
        let d = tempfile::tempdir().unwrap();
        write_fake_dir(d.path(), 2);
        let p = d.path().join("data_batch_3.bin");
        let b = fs::read(&p).unwrap();
        fs::write(&p, &b[..b.len() - 100]).unwrap();
        let s = format!("{:#}", read_dir(d.path(), 2).unwrap_err());
        assert!(
            s.contains("data_batch_3.bin") && s.contains("6046 bytes, expected 6146"),
            "{s}"
        );
    }

    #[test]
    fn label_above_nine_is_refused() {
        let d = tempfile::tempdir().unwrap();
        write_fake_dir(d.path(), 2);
        let p = d.path().join("test_batch.bin");
        let mut b = fs::read(&p).unwrap();
        b[3073] = 12;
        fs::write(&p, &b).unwrap();
        let s = format!("{:#}", read_dir(d.path(), 2).unwrap_err());
        assert!(
            s.contains("test_batch.bin") && s.contains("record 1 has label byte 12"),
            "{s}"
        );
    }

    #[test]
    fn missing_member_is_named() {
        let d = tempfile::tempdir().unwrap();
        write_fake_dir(d.path(), 1);
        fs::remove_file(d.path().join("data_batch_4.bin")).unwrap();
        let s = format!("{:#}", read_dir(d.path(), 1).unwrap_err());
        assert!(s.contains("missing data_batch_4.bin"), "{s}");
    }

    #[test]
    fn archive_without_a_member_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let b = fake_batch(1, 0);
        let members: Vec<(String, &[u8])> = TRAIN_FILES
            .iter()
            .map(|f| (format!("{SUBDIR}/{f}"), &b[..]))
            .chain([("cifar-10-batches-bin/readme.html".to_string(), &b"x"[..])])
            .collect();
        let refs: Vec<(&str, &[u8])> = members.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        let ar = d.path().join(ARCHIVE);
        fs::write(&ar, crate::data::archive::tests::tar_gz(&refs)).unwrap();
        let s = format!("{:#}", extract_members(&ar, d.path()).unwrap_err());
        assert!(
            s.contains("no member cifar-10-batches-bin/test_batch.bin"),
            "{s}"
        );
        // Only expected members were written.
        assert!(!d.path().join(SUBDIR).join("readme.html").exists());
        assert!(d.path().join(SUBDIR).join("data_batch_1.bin").is_file());
    }
}
