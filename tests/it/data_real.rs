//! §4.2's data for real: the CIFAR-10 images as 32×32 JPEGs in the image-folder layout
//! (`../shared/data/cifar10-jpeg.tar.gz`), extracted once into a cache, decoded on all cores and
//! served through `data::open`. Where `../shared` is absent the test through `data::open` is a
//! visible skip (tests/support: `skip`); the decode of all 60,000 JPEGs without the decoded cache
//! is a benchmark, `#[ignore]`d: `scripts/test --test it data_real:: -- --ignored --nocapture`.
use crate::support;
use resnet::config::Config;
use resnet::data::{self, folder};
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind};

const ARCHIVE: &str = "cifar10-jpeg.tar.gz";
const NEEDS: &str = "../shared/data/cifar10-jpeg.tar.gz";

/// The official archive's `batches.meta.txt` order, which is also the sorted folder order.
use resnet::data::cifar::CLASS_NAMES as NAMES;

#[test]
#[ignore = "benchmark: decodes all 60,000 CIFAR-10 JPEGs of ../shared/data (6 s, 17 s with the first extraction, 2-core VM)"]
fn real_cifar10_jpegs_load_through_the_image_folder_path() {
    let archive = support::shared_data(ARCHIVE).expect(NEEDS);
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("data-cache");
    let t = Instant::now();
    let root = folder::resolve_root(&archive, &cache).unwrap();
    let extract_s = t.elapsed().as_secs_f64();
    let index = folder::scan(&root).unwrap();
    assert_eq!(index.class_names, NAMES);
    assert_eq!(index.train.files.len(), 50_000);
    assert_eq!(index.eval.files.len(), 10_000);
    assert_eq!(index.eval.name, "test");
    let t = Instant::now();
    let (set, skipped) = folder::decode_small(&index, false, 0).unwrap();
    let decode_s = t.elapsed().as_secs_f64();
    eprintln!("extract (or find cached) {extract_s:.1} s; decode 60,000 JPEGs {decode_s:.1} s");
    assert!(skipped.is_empty());
    assert_eq!(set.train_images.size(), vec![50_000, 3, 32, 32]);
    assert_eq!(set.test_images.size(), vec![10_000, 3, 32, 32]);
    assert_eq!(data::label_counts(&set.train_labels, 10), vec![5_000; 10]);
    assert_eq!(data::label_counts(&set.test_labels, 10), vec![1_000; 10]);
    // Per-channel mean of the training images: CIFAR-10's well-known (0.4914, 0.4822, 0.4465)
    // (torchvision / pytorch-cifar normalization constants), up to JPEG re-encoding.
    let mean: Vec<f64> = Vec::try_from(
        set.train_images
            .to_kind(Kind::Float)
            .mean_dim([0, 2, 3].as_slice(), false, Kind::Double)
            / 255.0,
    )
    .unwrap();
    for (m, want) in mean.iter().zip([0.4914, 0.4822, 0.4465]) {
        assert!((m - want).abs() < 0.01, "channel means {mean:?}");
    }
}

#[test]
fn real_cifar10_through_data_open_with_a_validation_split() {
    let Some(archive) = support::shared_data(ARCHIVE) else {
        return support::skip(
            "real_cifar10_through_data_open_with_a_validation_split",
            NEEDS,
        );
    };
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("data-cache");
    let mut cfg = Config::from_toml(&format!(
        "[model]\nfamily = \"cifar\"\ndepth = 20\n[data]\ndataset = \"image_folder\"\n\
         path = {:?}\ncache_dir = {:?}\nvalidation = 5000\n",
        archive, cache
    ))
    .unwrap();
    cfg.name = "real".into();
    cfg.validate().unwrap();
    let (mut src, counts) = data::open_quiet(&cfg, Device::Cpu, false).unwrap();
    // The count table lists the ten classes and the totals of the folders.
    let names: Vec<&str> = counts.rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names[..10], NAMES);
    assert_eq!(counts.rows[10], vec!["total", "50000", "10000"]);
    // The paper's 45k/5k split.
    assert_eq!(
        (src.train_len(), src.eval_len(), src.eval_split()),
        (45_000, 5_000, "validation")
    );
    let b = src.train_batch(0, 128).unwrap();
    assert_eq!(b.images.size(), vec![128, 3, 32, 32]);
    assert_eq!(b.labels.size(), vec![128]);
}
