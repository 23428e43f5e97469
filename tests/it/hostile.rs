//! Hostile inputs never crash the process: every case below ends in one `error: ...`
//! line on stderr and a non-zero exit (1, or clap's 2 for a bad flag value), never a panic or an
//! allocation abort, and nothing that was there before is lost. Cases about the command line run
//! the real binary; the hostile files (a tar header claiming 1 TiB, a gzip bomb, a 1×100000 PNG)
//! are built here on the fly and are small on disk.
use crate::support;
use resnet::config::Config;
use resnet::data::{archive, cifar, fetch, folder};
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::png;

/// What a run of the binary left.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn resnet<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Checks the error contract (exit `code`, no panic, no abort, exactly one `error:` line and it
/// is the last line of stderr; progress lines such as "extracting ..." may precede it) and
/// returns the error line.
fn error_line(o: &Out, code: i32) -> String {
    let e = &o.stderr;
    assert_eq!(o.code, code, "exit code; stderr: {e}");
    for bad in [
        "panicked",
        "memory allocation",
        "RUST_BACKTRACE",
        "core dumped",
    ] {
        assert!(!e.contains(bad), "{bad}: {e}");
    }
    let lines: Vec<&str> = e.trim_end().lines().collect();
    let errors = lines.iter().filter(|l| l.starts_with("error")).count();
    assert_eq!(errors, 1, "one error line: {e}");
    let last = lines.last().expect("an error line");
    assert!(last.starts_with("error: "), "{e}");
    last.to_string()
}

/// The names in `dir` (sorted), to check that nothing appeared or vanished.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> PathBuf {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A tar header (GNU format, so sizes past 8 GiB are representable).
fn header(path: &str, size: u64, kind: tar::EntryType) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A well-formed tar of regular files.
fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut t = Vec::new();
    for (name, data) in members {
        t.extend(header(name, data.len() as u64, tar::EntryType::Regular));
        t.extend_from_slice(data);
        t.resize(t.len().div_ceil(512) * 512, 0);
    }
    t.extend([0u8; 1024]);
    t
}

/// `root/{train,val}/{a,b}/k.png`, 4×4.
fn small_tree(root: &Path) {
    for split in ["train", "val"] {
        for (c, class) in ["a", "b"].into_iter().enumerate() {
            for k in 0..2u8 {
                write(
                    &root.join(format!("{split}/{class}/{k}.png")),
                    png(4, 4, 40 * c as u8 + k),
                );
            }
        }
    }
}

/// An image-folder config (2 classes) whose data is `path`, with the cache in `cache/`, both
/// relative to the config's folder.
fn folder_config(dir: &Path, path: &str, large: bool) -> PathBuf {
    let model = if large {
        "family = \"imagenet\"\ndepth = 18\nclasses = 2\n"
    } else {
        "family = \"cifar\"\ndepth = 8\nclasses = 2\n"
    };
    let augment = if large { "imagenet" } else { "cifar" };
    write(
        &dir.join("cfg.toml"),
        format!(
            "[model]\n{model}[data]\ndataset = \"image_folder\"\npath = \"{path}\"\n\
             cache_dir = \"cache\"\naugment = \"{augment}\"\n[run]\ndevice = \"cpu\"\n"
        ),
    )
}

/// `resnet data show` on `dir/cfg.toml`.
fn data_show(dir: &Path) -> Out {
    resnet(dir, &["data", "show", "--config", "cfg.toml"])
}

// ---- Never write where we should not ----------------------------------------------------------

#[cfg(unix)]
#[test]
fn csv_writes_follow_symlinks_and_leave_devices_alone() {
    let d = tempfile::tempdir().unwrap();
    let real = write(&d.path().join("real/t.csv"), "old");
    let link = d.path().join("link.csv");
    std::os::unix::fs::symlink("real/t.csv", &link).unwrap();
    let o = resnet(d.path(), &["info", "--csv", "link.csv"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&real)
        .unwrap()
        .starts_with("model,family"));
    assert_eq!(listing(d.path()), ["link.csv", "real"]);
    assert_eq!(listing(&d.path().join("real")), ["t.csv"]);
    // A device stays a device (as root, a rename would replace /dev/null with a file).
    use std::os::unix::fs::FileTypeExt;
    let o = resnet(d.path(), &["info", "--csv", "/dev/null"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // /dev/stdout is written in place: the CSV follows the printed table on stdout.
    let o = resnet(d.path(), &["info", "--csv", "/dev/stdout"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("\nmodel,family,shortcut"), "{}", o.stdout);
}

#[test]
fn info_prints_and_writes_nothing_without_csv() {
    let d = tempfile::tempdir().unwrap();
    let o = resnet(d.path(), &["info"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("resnet1202") && !o.stdout.contains("wrote"));
    assert!(listing(d.path()).is_empty(), "{:?}", listing(d.path()));
}

#[test]
fn fetch_keeps_a_wrong_archive_it_did_not_create() {
    let d = tempfile::tempdir().unwrap();
    let mine = "my own copy, 26 bytes long";
    assert_eq!(mine.len(), 26);
    let dest = write(&d.path().join("cifar-10-binary.tar.gz"), mine);
    // A port that was just free: connection refused, as without a network.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let remote = fetch::Remote {
        url: format!("http://{addr}/cifar-10-binary.tar.gz"),
        size: 170_052_171,
        md5: "c32a1d4ab5d03f1284b67883e8d87530".into(),
    };
    let e = format!("{:#}", fetch::download(&remote, &dest, false).unwrap_err());
    assert!(!e.contains('\n'), "{e}");
    assert!(
        e.contains("has 26 bytes") && e.contains("kept as") && e.contains("cannot reach"),
        "{e}"
    );
    assert_eq!(
        fs::read_to_string(d.path().join("cifar-10-binary.tar.gz.bad")).unwrap(),
        mine
    );
    // A second failing try keeps the first .bad and never touches it.
    write(&dest, "another wrong file");
    assert!(fetch::download(&remote, &dest, false).is_err());
    assert!(d.path().join("cifar-10-binary.tar.gz.bad.1").is_file());
    assert_eq!(
        fs::read_to_string(d.path().join("cifar-10-binary.tar.gz.bad")).unwrap(),
        mine
    );
}

#[test]
fn run_name_must_be_a_plain_file_name() {
    let d = tempfile::tempdir().unwrap();
    let work = d.path().join("work");
    fs::create_dir(&work).unwrap();
    for name in ["../escape", "a/b", ".", "..", "/abs"] {
        let cfg = write(
            &work.join("cfg.toml"),
            support::tiny()
                .name(Some(name))
                .synthetic(8, 8, 8)
                .batch(4)
                .iterations(1)
                .every(1, 1, 1)
                .text(),
        );
        let o = resnet(&work, &["info", "--config", "cfg.toml"]);
        let e = error_line(&o, 1);
        assert!(
            e.contains(&format!("name = {name:?}")) && e.contains("plain file name"),
            "{e}"
        );
        if name == "../escape" {
            let o = resnet(
                &work,
                &[OsStr::new("train"), "--config".as_ref(), cfg.as_os_str()],
            );
            error_line(&o, 1);
        }
        assert_eq!(listing(d.path()), ["work"]);
        assert_eq!(listing(&work), ["cfg.toml"]);
    }
}

// ---- Hostile sizes ------------------------------------------------------------------------------

#[test]
fn tar_members_claiming_a_terabyte_are_refused_before_reading() {
    let d = tempfile::tempdir().unwrap();
    let mut t = header("train/a/0.png", 1 << 40, tar::EntryType::Regular);
    t.extend([7u8; 1000]);
    write(&d.path().join("evil.tar.gz"), gz(&t));
    folder_config(d.path(), "evil.tar.gz", false);
    let e = error_line(&data_show(d.path()), 1);
    assert!(
        e.contains("evil.tar.gz") && e.contains("declares 1099511627776 bytes"),
        "{e}"
    );
    // Nothing is left of the extraction but the archive's hash memo.
    assert_eq!(listing(&d.path().join("cache")), [".evil.tar.gz.md5"]);

    // A header claiming more than is there (within the limit) is streamed, then named truncated.
    let mut t = header("train/a/0.png", 5_000_000, tar::EntryType::Regular);
    t.extend([7u8; 1000]);
    write(&d.path().join("evil.tar.gz"), gz(&t));
    let e = error_line(&data_show(d.path()), 1);
    assert!(
        e.contains("`train/a/0.png` is truncated (its header says 5000000 bytes)"),
        "{e}"
    );

    // The CIFAR-10 binary archive: a batch member claiming 1 TiB is refused on its header.
    let mut t = header(
        "cifar-10-batches-bin/data_batch_1.bin",
        1 << 40,
        tar::EntryType::Regular,
    );
    t.extend([0u8; 512]);
    let ar = write(&d.path().join("c/cifar-10-binary.tar.gz"), gz(&t));
    let e = format!(
        "{:#}",
        cifar::extract_members(&ar, &d.path().join("c")).unwrap_err()
    );
    assert!(
        e.contains("data_batch_1.bin` declares 1099511627776 bytes") && !e.contains('\n'),
        "{e}"
    );
    // Within the archive's limit but larger than a batch file: refused on its header too.
    let mut t = header(
        "cifar-10-batches-bin/data_batch_1.bin",
        30_733_073,
        tar::EntryType::Regular,
    );
    t.extend([0u8; 512]);
    write(&ar, gz(&t));
    let e = format!(
        "{:#}",
        cifar::extract_members(&ar, &d.path().join("c")).unwrap_err()
    );
    assert!(
        e.contains("data_batch_1.bin has 30733073 bytes, expected 30730000"),
        "{e}"
    );
    assert!(!d
        .path()
        .join("c/cifar-10-batches-bin/data_batch_1.bin")
        .exists());
    // And a 1 TiB (sparse) batch file on disk is refused by its size, unread.
    let batches = d.path().join("c/cifar-10-batches-bin");
    fs::create_dir_all(&batches).unwrap();
    fs::File::create(batches.join("data_batch_1.bin"))
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let e = format!(
        "{:#}",
        cifar::read_batch(&batches.join("data_batch_1.bin"), 10_000).unwrap_err()
    );
    assert!(e.contains("1099511627776 bytes, expected 30730000"), "{e}");
}

#[test]
fn gzip_bombs_are_refused() {
    let d = tempfile::tempdir().unwrap();
    // 2 GiB of zeros behind an honest header, as 2048 gzip members of 1 MiB each: about 2 MB.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![0u8; 1 << 20]).unwrap();
    let mib = e.finish().unwrap();
    let mut bomb = gz(&header("train/a/0.png", 2 << 30, tar::EntryType::Regular));
    for _ in 0..2048 {
        bomb.extend_from_slice(&mib);
    }
    bomb.extend(gz(&[0u8; 1024]));
    assert!(bomb.len() < 4 << 20, "{}", bomb.len());
    write(&d.path().join("bomb.tar.gz"), &bomb);
    folder_config(d.path(), "bomb.tar.gz", false);
    let t = std::time::Instant::now();
    let e = error_line(&data_show(d.path()), 1);
    assert!(
        e.contains("declares 2147483648 bytes") && e.contains("gzip bomb"),
        "{e}"
    );
    // Refused on the header: not 2 GiB decompressed.
    assert!(t.elapsed().as_secs_f64() < 20.0);

    // Many members, none large, adding up past the limit (here 1 MiB for the test).
    let chunk = vec![1u8; 400 << 10];
    let members: Vec<(String, &[u8])> = (0..4)
        .map(|k| (format!("train/a/{k}.bin"), &chunk[..]))
        .collect();
    let refs: Vec<(&str, &[u8])> = members.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let many = write(&d.path().join("many.tar.gz"), gz(&tar(&refs)));
    let out = d.path().join("many");
    let e = format!(
        "{:#}",
        archive::extract_tar_gz_limited(&many, &out, 1 << 20, |p, _| Ok(Some(p.into())))
            .unwrap_err()
    );
    assert!(
        e.contains("`train/a/2.bin` declares 409600 bytes, 1228800 in all"),
        "{e}"
    );
    assert!(out.join("train/a/1.bin").is_file() && !out.join("train/a/2.bin").exists());

    // A GNU long-name entry is read into memory by the tar parser: capped all the same.
    let mut t = header("@LongLink", 3 << 20, tar::EntryType::GNULongName);
    t.extend(vec![b'a'; 3 << 20]);
    t.extend(header("x", 0, tar::EntryType::Regular));
    t.extend([0u8; 1024]);
    let long = write(&d.path().join("long.tar.gz"), gz(&t));
    let e = format!(
        "{:#}",
        archive::extract_tar_gz_limited(&long, &out, 1 << 20, |p, _| Ok(Some(p.into())))
            .unwrap_err()
    );
    assert!(e.contains("expands to more than 1048576 bytes"), "{e}");
}

/// A PNG header of `w`×`h` with one empty IDAT chunk: what a decoder sees before any pixel.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend(crc.sum().to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    p.extend(chunk(b"IHDR", &ihdr));
    p.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    p.extend(chunk(b"IEND", &[]));
    p
}

#[test]
fn absurd_image_dimensions_are_refused_before_decoding() {
    for (w, h, bytes, needle) in [
        // 475 bytes on disk, 300 KB decoded, but 256 x 25,600,000 once resized for §3.4.
        (1, 100_000, png(1, 100_000, 0), "1x100000 pixels, outside"),
        // Within the side limit but 30,000:1: refused before the resize.
        (
            1,
            30_000,
            png(1, 30_000, 0),
            "more than 16 times the shorter one",
        ),
        // A header claiming 10^10 pixels (30 GB), with no pixel data at all.
        (
            100_000,
            100_000,
            png_header_only(100_000, 100_000),
            "100000x100000",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        for split in ["train", "val"] {
            for class in ["a", "b"] {
                write(
                    &d.path().join(format!("imgs/{split}/{class}/0.png")),
                    &bytes,
                );
            }
        }
        folder_config(d.path(), "imgs", true);
        let e = error_line(&data_show(d.path()), 1);
        assert!(e.contains("0.png") && e.contains(needle), "{w}x{h}: {e}");
    }
    assert!(resnet::data::image::check_dims(Path::new("x"), (0, 5)).is_err());
    assert!(resnet::data::image::check_dims(Path::new("x"), (500, 375)).is_ok());
}

/// A tiny synthetic training config with `extra` appended to its sections.
fn synthetic_config(dir: &Path, model: &str, data: &str, optimizer: &str, run: &str) -> PathBuf {
    write(
        &dir.join("cfg.toml"),
        format!(
            "name = \"big\"\n[model]\nfamily = \"cifar\"\n{model}\n[data]\ndataset = \"synthetic\"\n\
             [data.synthetic]\n{data}\n[optimizer]\n{optimizer}\n[schedule]\nmilestones = []\n\
             iterations = 2\n[run]\ndevice = \"cpu\"\nlog_every = 1\neval_every = 1\n\
             checkpoint_every = 1\nout_dir = \"run\"\n{run}\n"
        ),
    )
}

#[test]
fn sizes_that_cannot_fit_are_refused_with_the_memory_estimate() {
    for (model, data, optimizer, run, key) in [
        ("depth = 600002", "", "", "", "model.depth = 600002"),
        (
            "depth = 8",
            "",
            "batch_size = 1000000000",
            "",
            "optimizer.batch_size = 1000000000",
        ),
        (
            "depth = 8",
            "train = 100000000000",
            "",
            "",
            "data.synthetic.train = 100000000000",
        ),
        (
            "depth = 8",
            "image_size = 1000000",
            "",
            "",
            "1000000x1000000",
        ),
        (
            "depth = 8",
            "",
            "",
            "eval_batch_size = 1000000000000",
            "run.eval_batch_size",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        synthetic_config(d.path(), model, data, optimizer, run);
        let o = resnet(d.path(), &["train", "--config", "cfg.toml"]);
        let e = error_line(&o, 1);
        assert!(
            e.contains("needs about") && e.contains("is available") && e.contains(key),
            "{e}"
        );
        // Refused before the run folder was touched.
        assert_eq!(listing(d.path()), ["cfg.toml"]);
    }
    // The same check in `bench` and `eval`.
    let d = tempfile::tempdir().unwrap();
    synthetic_config(d.path(), "depth = 600002", "", "", "");
    let o = resnet(
        d.path(),
        &[
            "bench", "--config", "cfg.toml", "--iters", "1", "--warmup", "0",
        ],
    );
    assert!(error_line(&o, 1).contains("needs about"));
    let run = d.path().join("run");
    fs::create_dir(&run).unwrap();
    // A run folder as train leaves it (resolved config.toml) whose checkpoint header carries that
    // recipe and no tensors: eval checks the budget from the header, before it loads weights.
    header_only_run(&d.path().join("cfg.toml"), &run);
    let o = resnet(d.path(), &["eval", "--checkpoint", "run/last.safetensors"]);
    let e = error_line(&o, 1);
    assert!(e.contains("needs about"), "{e}");
    assert_eq!(listing(&run), ["config.toml", "last.safetensors"]);
    // On a plain config, the data alone (`data show`) is checked too.
    synthetic_config(d.path(), "depth = 8", "train = 100000000000", "", "");
    let o = resnet(d.path(), &["data", "show", "--config", "cfg.toml"]);
    assert!(error_line(&o, 1).contains("data.synthetic.train = 100000000000"));
}

#[test]
fn thread_counts_out_of_range_are_refused() {
    let d = tempfile::tempdir().unwrap();
    for (section, needle) in [
        (
            "[run]\nthreads = 2147483648\n",
            "run.threads = 2147483648: must be in 0..=4096",
        ),
        (
            "[data]\nworkers = 100000\n",
            "data.workers = 100000: must be in 0..=4096",
        ),
    ] {
        write(
            &d.path().join("cfg.toml"),
            format!("[model]\nfamily = \"cifar\"\ndepth = 20\n{section}"),
        );
        let e = error_line(&resnet(d.path(), &["info", "--config", "cfg.toml"]), 1);
        assert!(e.contains(needle), "{e}");
    }
    let e = error_line(
        &resnet(
            d.path(),
            &["bench", "--config", "cfg.toml", "--threads", "99999"],
        ),
        2,
    );
    assert!(e.contains("--threads") && e.contains("0..=4096"), "{e}");
    let e = error_line(
        &resnet(d.path(), &["data", "bench", "--threads", "5000"]),
        2,
    );
    assert!(e.contains("--threads"), "{e}");
}

#[test]
fn oversized_config_files_are_refused_unread() {
    let d = tempfile::tempdir().unwrap();
    let e = error_line(&resnet(d.path(), &["info", "--config", "/dev/zero"]), 1);
    assert!(e.contains("/dev/zero is larger than 1048576 bytes"), "{e}");
    // A sparse 1 TiB file: refused after 1 MiB, not read to the end.
    fs::File::create(d.path().join("huge.toml"))
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let t = std::time::Instant::now();
    let e = error_line(&resnet(d.path(), &["info", "--config", "huge.toml"]), 1);
    assert!(e.contains("huge.toml is larger than"), "{e}");
    assert!(t.elapsed().as_secs_f64() < 20.0);
}

// ---- Messages, leftovers, paths ---------------------------------------------------------------

#[test]
fn relative_paths_in_a_config_follow_its_folder() {
    let d = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(d.path()).unwrap();
    let cfgs = root.join("cfgs");
    fs::create_dir(&cfgs).unwrap();
    folder_config(&cfgs, "imgs", false);
    let elsewhere = root.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    // The error names the resolved path, not one below the current directory.
    let o = resnet(
        &elsewhere,
        &["data", "show", "--config", "../cfgs/cfg.toml"],
    );
    let e = error_line(&o, 1);
    assert!(
        e.contains(&format!("{}: no such folder", cfgs.join("imgs").display())),
        "{e}"
    );
    // With the data beside the config, it works from anywhere, and the cache lands there too.
    small_tree(&cfgs.join("imgs"));
    let o = resnet(
        &elsewhere,
        &["data", "show", "--config", "../cfgs/cfg.toml"],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("2 classes; 4 training images"),
        "{}",
        o.stdout
    );
    assert!(listing(&elsewhere).is_empty());
    assert!(listing(&cfgs.join("cache"))
        .iter()
        .any(|f| f.starts_with("decoded-")));
    // A run folder's config.toml resolves against the run folder.
    let run = root.join("runs/x");
    write(
        &run.join("config.toml"),
        "[model]\nfamily = \"cifar\"\ndepth = 8\n[data]\npath = \"d\"\ncache_dir = \"../c\"\n",
    );
    let c = Config::load(&run.join("config.toml")).unwrap();
    assert_eq!(c.data.path, run.join("d"));
    assert_eq!(c.data.cache_dir, root.join("runs/c"));
    // Defaults stay relative to the current directory; the resolved TOML makes them absolute.
    let c = Config::load(&folder_config(&cfgs, "imgs", false)).unwrap();
    let mut flags = c.clone();
    flags.data.path = "from-a-flag".into();
    let t: Config = Config::from_toml(&flags.to_toml().unwrap()).unwrap();
    let cwd = fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
    assert_eq!(t.data.path, cwd.join("from-a-flag"));
    assert_eq!(t.data.cache_dir, cfgs.join("cache"));
}

#[test]
fn the_cifar_batches_folder_itself_is_accepted_as_data_path() {
    let d = tempfile::tempdir().unwrap();
    let batches = d.path().join("somewhere/cifar-10-batches-bin");
    let record: Vec<u8> = std::iter::once(3).chain([9u8; 3072]).collect();
    for f in cifar::TRAIN_FILES.iter().chain([&cifar::TEST_FILE]) {
        write(&batches.join(f), &record);
    }
    assert_eq!(cifar::batches_dir(&batches), batches);
    assert_eq!(
        cifar::ensure(&batches, &fetch::Remote::cifar10(), false).unwrap(),
        batches
    );
    assert_eq!(
        cifar::read_dir(&batches, 1).unwrap().train_labels.size(),
        [5]
    );
    // Through the binary: found (no download), and the 1-record files are named, on one line.
    write(
        &d.path().join("cfg.toml"),
        "[model]\nfamily = \"cifar\"\ndepth = 8\n[data]\ndataset = \"cifar10\"\n\
         path = \"somewhere/cifar-10-batches-bin\"\n[run]\ndevice = \"cpu\"\n",
    );
    let o = data_show(d.path());
    let e = error_line(&o, 1);
    assert!(
        e.contains("data_batch_1.bin: 3073 bytes, expected 30730000"),
        "{e}"
    );
    assert!(!o.stderr.contains("downloading"), "{}", o.stderr);
}

#[test]
fn decode_errors_fit_on_one_line() {
    let d = tempfile::tempdir().unwrap();
    small_tree(&d.path().join("imgs"));
    let jpg = d.path().join("imgs/train/b/1.png");
    let full = png(4, 4, 9);
    write(&jpg, &full[..full.len() / 2]);
    write(
        &d.path().join("imgs/val/a/0.png"),
        "line one\nline two\nnot an image",
    );
    folder_config(d.path(), "imgs", false);
    let e = error_line(&data_show(d.path()), 1);
    assert!(e.contains("not a readable JPEG/PNG image"), "{e}");
}

#[test]
fn a_gzip_that_is_not_a_tar_is_named_without_its_bytes() {
    let d = tempfile::tempdir().unwrap();
    let text = "SECRET-PAYLOAD-1234 is not a tar header at all. ".repeat(40);
    write(&d.path().join("plain.tar.gz"), gz(text.as_bytes()));
    folder_config(d.path(), "plain.tar.gz", false);
    let e = error_line(&data_show(d.path()), 1);
    assert!(
        e.contains("plain.tar.gz") && e.contains("not a tar archive"),
        "{e}"
    );
    assert!(!e.contains("SECRET") && !e.contains("tar header at"), "{e}");
    // Not gzip at all.
    write(&d.path().join("plain.tar.gz"), &text);
    let e = error_line(&data_show(d.path()), 1);
    assert!(
        e.contains("not a valid gzip file") && !e.contains("SECRET"),
        "{e}"
    );
}

#[test]
fn interrupted_extractions_leave_no_partial_folders() {
    let d = tempfile::tempdir().unwrap();
    let ar = write(
        &d.path().join("set.tar.gz"),
        gz(&tar(&[("train/a/1.txt", b"x")])),
    );
    let cache = d.path().join("cache");
    // Left by a killed extraction (a pid that cannot exist), and by one still running (ours).
    let dead = cache.join(".set-0123456789abcdef.partial-4294967-0");
    let running = cache.join(format!(
        ".set-0123456789abcdef.partial-{}-77",
        std::process::id()
    ));
    write(&dead.join("train/a/1.txt"), "half");
    write(&running.join("train/a/1.txt"), "busy");
    let dest = archive::extract_cached(&ar, &cache).unwrap();
    assert!(!dead.exists(), "the dead extraction's folder is removed");
    assert!(running.exists(), "a running extraction is left alone");
    assert_eq!(fs::read_to_string(dest.join("train/a/1.txt")).unwrap(), "x");
}

/// Gives `path` the modification time `t` (as `cp -p` or `touch -r` would).
fn set_mtime(path: &Path, t: std::time::SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn caches_are_keyed_by_content_and_superseded_ones_removed() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    // Extraction: same size, same modification time, other content.
    let stored = |content: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        e.write_all(&tar(&[("train/a/1.txt", content)])).unwrap();
        e.finish().unwrap()
    };
    let ar = write(&d.path().join("set.tar.gz"), stored(b"aaaa"));
    let mtime = fs::metadata(&ar).unwrap().modified().unwrap();
    let d1 = archive::extract_cached(&ar, &cache).unwrap();
    write(&ar, stored(b"bbbb"));
    set_mtime(&ar, mtime);
    assert_eq!(
        fs::metadata(&ar).unwrap().len(),
        stored(b"aaaa").len() as u64
    );
    let d2 = archive::extract_cached(&ar, &cache).unwrap();
    assert_ne!(d1, d2);
    assert_eq!(
        fs::read_to_string(d2.join("train/a/1.txt")).unwrap(),
        "bbbb"
    );
    assert!(!d1.exists(), "the superseded extraction is removed");

    // Decoded images: two PNGs of the same byte length but different pixels.
    let root = d.path().join("imgs");
    small_tree(&root);
    let (a, b) = (0..=255u8)
        .flat_map(|x| (0..x).map(move |y| (x, y)))
        .map(|(x, y)| (png(4, 4, x), png(4, 4, y)))
        .find(|(a, b)| a.len() == b.len() && a != b)
        .unwrap();
    let file = root.join("train/a/0.png");
    write(&file, &a);
    let index = folder::scan(&root).unwrap();
    let (s1, _, hit) = folder::decode_small_cached(&index, false, 1, &cache).unwrap();
    assert!(!hit);
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    write(&file, &b);
    set_mtime(&file, mtime);
    let (s2, _, hit) = folder::decode_small_cached(&index, false, 1, &cache).unwrap();
    assert!(!hit, "a file with new content is decoded again");
    assert!(!s1.train_images.equal(&s2.train_images));
    let decoded: Vec<String> = listing(&cache)
        .into_iter()
        .filter(|f| f.starts_with("decoded-"))
        .collect();
    assert_eq!(
        decoded.len(),
        1,
        "the superseded cache is removed: {decoded:?}"
    );
    let (_, _, hit) = folder::decode_small_cached(&index, false, 1, &cache).unwrap();
    assert!(hit);
}

#[test]
fn zero_counts_are_refused() {
    let d = tempfile::tempdir().unwrap();
    synthetic_config(d.path(), "depth = 8", "", "", "");
    for args in [
        &["bench", "--config", "cfg.toml", "--eval-images", "0"][..],
        &["bench", "--config", "cfg.toml", "--iters", "0"][..],
        &["data", "bench", "--batch-size", "0"][..],
        &["data", "bench", "--iterations", "0"][..],
    ] {
        let e = error_line(&resnet(d.path(), args), 2);
        assert!(e.contains(args[args.len() - 2]) && e.contains('0'), "{e}");
    }
    assert_eq!(listing(d.path()), ["cfg.toml"]);
}

/// A run folder holding the resolved config of `config` and a checkpoint with that config
/// embedded in its header and no tensors.
fn header_only_run(config: &Path, run: &Path) {
    use resnet::run::{checkpoint::save_checkpoint, state::TrainState};
    let cfg = Config::load(config).unwrap();
    fs::write(run.join("config.toml"), cfg.to_toml().unwrap()).unwrap();
    let state = TrainState::initial(&cfg);
    save_checkpoint(&run.join("last.safetensors"), &[], &state, Some(&cfg)).unwrap();
}
