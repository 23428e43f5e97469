//! The image-folder index (§3.4's ImageNet layout, [`folder::scan`]) at scale: the scan time and
//! the index's memory on a synthetic tree of 200,000 small files (1,000 classes × 200, as
//! ImageNet's 1,000 class folders hold 1,300 each). A measurement, run by hand:
//! `cargo test --release --test it folder_scale:: -- --ignored --nocapture`.
use resnet::data::folder;
use std::fs;
use std::time::Instant;

/// Resident memory of this process in bytes (Linux).
fn rss() -> u64 {
    let s = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[test]
#[ignore = "measurement: writes 201,000 files under /tmp (about a minute)"]
fn scan_of_200k_files_is_timed_and_sized() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let t = Instant::now();
    for k in 0..1000 {
        let w = format!("n{:08}", 1_000_000 + k);
        for (split, n) in [("train", 200), ("val", 1)] {
            let dir = d.path().join(split).join(&w);
            fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                fs::write(dir.join(format!("{w}_{i}.JPEG")), b"x").unwrap();
            }
        }
    }
    println!("tree written in {:.1} s", t.elapsed().as_secs_f64());
    for pass in 0..3 {
        let before = rss();
        let t = Instant::now();
        let index = folder::scan(d.path()).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let files = index.train.files.len() + index.eval.files.len();
        let path_bytes: usize = index
            .train
            .files
            .iter()
            .chain(&index.eval.files)
            .map(|p| p.as_os_str().len() + std::mem::size_of::<std::path::PathBuf>())
            .sum::<usize>()
            + 8 * files;
        println!(
            "pass {pass}: {files} files scanned in {secs:.3} s; index ≈ {:.1} MB of paths and \
             labels (path bytes + 24-byte PathBuf + 8-byte label each); RSS grew {:.1} MB",
            path_bytes as f64 / 1e6,
            (rss().saturating_sub(before)) as f64 / 1e6
        );
        assert_eq!(files, 201_000);
        drop(index);
    }
}
