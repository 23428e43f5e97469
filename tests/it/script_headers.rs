//! The Python references write our CSV formats (run folders of scripts/reference/train.py, bench
//! rows of scripts/reference/bench.py): their header constants equal ours, read from the source.
use resnet::analysis::throughput::CSV_HEADER;
use resnet::run::records::{CURVES_HEADER, SUMMARY_HEADER};

/// The string constant `NAME = "..."` or `NAME = ("..." "...")` of a Python file.
fn python_constant(script: &str, name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(&format!("\n{name} = "))
        .unwrap_or_else(|| panic!("{script}: no constant {name}"));
    let rest = &text[start + name.len() + 4..];
    let end = if rest.starts_with('(') {
        rest.find("\n)").unwrap()
    } else {
        rest.find('\n').unwrap()
    };
    rest[..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<String>()
}

#[test]
fn reference_trainer_writes_our_curves_and_summary_headers() {
    let py = "scripts/reference/train.py";
    assert_eq!(python_constant(py, "CURVES_HEADER"), CURVES_HEADER);
    assert_eq!(python_constant(py, "SUMMARY_HEADER"), SUMMARY_HEADER);
}

#[test]
fn reference_bench_writes_our_bench_header() {
    let py = "scripts/reference/bench.py";
    assert_eq!(python_constant(py, "CSV_HEADER"), CSV_HEADER);
}

/// scripts/bench_loader.sh picked the torchvision side's folder before our side had extracted the
/// archive, so on a fresh cache it compared with another dataset's folder (CIFAR-10's PNGs)
/// silently. Run here with stand-ins for `resnet` (which extracts, as `data bench --stream`
/// does) and for Python (which records the folder it is given), in a copy of the script's
/// folder layout: the folder given is the archive's own, found after the extraction.
#[test]
fn bench_loader_compares_the_folder_extracted_from_its_own_archive() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let exe = |p: &std::path::Path, text: &str| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_loader.sh");
    exe(
        &repo.join("scripts/bench_loader.sh"),
        &std::fs::read_to_string(script).unwrap(),
    );
    std::fs::create_dir_all(repo.join(".bench-tv/torchvision")).unwrap();
    // `resnet data bench ... --cache-dir CACHE` extracts into CACHE/<stem>-<key>/train.
    exe(
        &repo.join("target/release/resnet"),
        "#!/bin/sh\nwhile [ \"$1\" != --cache-dir ]; do shift; done\n\
         mkdir -p \"$2/imagewoof2-320-sub116x60-0123456789abcdef/train/a\"\n\
         echo 'what images seconds images_per_s'\n",
    );
    exe(
        &repo.join(".venv/bin/python"),
        &format!(
            "#!/bin/sh\necho \"$2\" > {}\n",
            tmp.path().join("given").display()
        ),
    );
    let cache = tmp.path().join("cache");
    // Another dataset already extracted in the same cache: CIFAR-10's tree.
    std::fs::create_dir_all(cache.join("cifar10-png-fedcba9876543210/train/cat")).unwrap();
    let archive = tmp.path().join("imagewoof2-320-sub116x60.tar.gz");
    std::fs::write(&archive, b"stand-in").unwrap();
    let o = std::process::Command::new("bash")
        .arg(repo.join("scripts/bench_loader.sh"))
        .arg(&archive)
        .arg(&cache)
        .arg(tmp.path().join("out.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let given = std::fs::read_to_string(tmp.path().join("given")).unwrap();
    assert_eq!(
        given.trim(),
        cache
            .join("imagewoof2-320-sub116x60-0123456789abcdef")
            .display()
            .to_string()
    );
}
