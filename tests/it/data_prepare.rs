//! `resnet data prepare imagenet` (§3.4's data from the official archives) on a miniature with the
//! real archives' structure, built here: nested class tars, a flat validation tar, a devkit
//! tar.gz with a ground-truth file and a MAT v5 meta.mat.
use crate::support::imagenet_mini as mini;

use mini::{Mini, Raw};
use resnet::data::{folder, imagenet, matfile};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Class tars by member name: what the training archive holds.
type ClassTars = Vec<(String, Vec<u8>)>;

fn archives(p: &[PathBuf; 3]) -> imagenet::Archives {
    imagenet::Archives {
        train_tar: p[0].clone(),
        val_tar: p[1].clone(),
        devkit: p[2].clone(),
    }
}

fn err(m: &Mini, dir: &Path, tars: Option<ClassTars>) -> String {
    let p = m.write(dir, tars);
    let e = imagenet::prepare(&archives(&p), &dir.join("out")).unwrap_err();
    let s = format!("{e:#}");
    assert!(!s.contains('\n'), "{s}");
    s
}

#[test]
fn meta_mat_gives_the_leaf_synsets_compressed_or_not() {
    let m = Mini::new(&[3, 1, 2], 4);
    for compress in [false, true] {
        let arrays = matfile::parse(&mini::meta_mat(&m.synsets(), compress)).unwrap();
        let leaves = imagenet::leaf_synsets(&arrays).unwrap();
        let got: Vec<(u32, &str, Option<u64>)> = leaves
            .iter()
            .map(|s| (s.id, s.wnid.as_str(), s.train_images))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "n00000001", Some(3)),
                (2, "n00000002", Some(1)),
                (3, "n00000003", Some(2))
            ]
        );
    }
    let e = format!("{:#}", imagenet::leaf_synsets(&[]).unwrap_err());
    assert!(e.contains("no variable `synsets`"), "{e}");
}

#[test]
fn miniature_is_laid_out_as_torchvision_reads_it() {
    let d = tempfile::tempdir().unwrap();
    let m = Mini::new(&[4, 2, 3], 7);
    let p = m.write(d.path(), None);
    let out = d.path().join("out");
    let r = imagenet::prepare(&archives(&p), &out).unwrap();
    assert_eq!((r.classes, r.train_images, r.val_images), (3, 9, 7));
    let index = folder::scan(&out).unwrap();
    assert_eq!(index.class_names, m.wnids);
    assert_eq!(index.train.counts(3), vec![4, 2, 3]);
    assert_eq!(index.eval.name, "val");
    for i in 0..m.val {
        let (w, n) = (&m.wnids[m.val_class(i)], Mini::val_name(i));
        assert_eq!(
            fs::read(out.join("val").join(w).join(&n)).unwrap(),
            Mini::image(w, &n)
        );
    }
    let f = format!("{}_101.JPEG", m.wnids[1]);
    assert_eq!(
        fs::read(out.join("train").join(&m.wnids[1]).join(&f)).unwrap(),
        Mini::image(&m.wnids[1], &f)
    );
    // Nothing but the layout (and hidden completion markers) is left in out/.
    let mut top: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, vec!["train", "val"]);
}

#[test]
fn killed_run_redoes_only_the_unfinished_class_and_images() {
    let d = tempfile::tempdir().unwrap();
    let m = Mini::new(&[3, 2, 2], 6);
    let p = m.write(d.path(), None);
    let out = d.path().join("out");
    imagenet::prepare(&archives(&p), &out).unwrap();
    let kept = out
        .join("train")
        .join(&m.wnids[0])
        .join("n00000001_100.JPEG");
    let before = fs::metadata(&kept).unwrap().modified().unwrap();
    // What a kill in class 2 and in the validation images leaves: a partial class folder with
    // one file and a temporary file, classes after it absent, a partial val folder short of one.
    let train = out.join("train");
    let partial = train.join(format!(".{}.partial", m.wnids[1]));
    fs::rename(train.join(&m.wnids[1]), &partial).unwrap();
    fs::remove_file(partial.join(".resnet-complete")).unwrap();
    fs::remove_file(partial.join("n00000002_101.JPEG")).unwrap();
    fs::write(partial.join(".n00000002_101.JPEG.tmp-1-0"), b"half").unwrap();
    fs::remove_dir_all(train.join(&m.wnids[2])).unwrap();
    fs::rename(out.join("val"), out.join(".val.partial")).unwrap();
    fs::remove_file(out.join(".val.partial/.resnet-complete")).unwrap();
    let gone = out.join(".val.partial").join(&m.wnids[m.val_class(0)]);
    fs::remove_file(gone.join(Mini::val_name(0))).unwrap();

    let r = imagenet::prepare(&archives(&p), &out).unwrap();
    assert_eq!((r.classes_skipped, r.val_skipped), (1, 5));
    assert_eq!((r.train_images, r.val_images), (7, 6));
    assert_eq!(fs::metadata(&kept).unwrap().modified().unwrap(), before);
    let index = folder::scan(&out).unwrap();
    assert_eq!(index.train.counts(3), vec![3, 2, 2]);
    assert_eq!(index.eval.files.len(), 6);
    assert!(!partial.exists() && !out.join(".val.partial").exists());
    let n = fs::read_dir(train.join(&m.wnids[1])).unwrap().count();
    assert_eq!(n, 3, "2 images and the marker, no temporary file");
}

#[test]
fn hostile_members_are_refused_and_nothing_lands_outside() {
    let m = Mini::new(&[2, 1], 2);
    let ok = |k: usize| (format!("{}.tar", m.wnids[k]), m.class_tar(k));
    let cases: Vec<(ClassTars, &str)> = vec![
        (
            vec![
                ok(0),
                (
                    "n00000002.tar".into(),
                    mini::tar(&[Raw::File("../../../escaped.JPEG", b"x")]),
                ),
            ],
            "would be written outside",
        ),
        (
            vec![
                ok(0),
                (
                    "n00000002.tar".into(),
                    mini::tar(&[Raw::Symlink("n00000002_1.JPEG", "/etc/passwd")]),
                ),
            ],
            "is a link or special file",
        ),
        (
            vec![ok(0), ok(1), ("../n00000003.tar".into(), vec![0; 512])],
            "would be written outside",
        ),
    ];
    for (tars, want) in cases {
        let d = tempfile::tempdir().unwrap();
        let e = err(&m, d.path(), Some(tars));
        assert!(e.contains(want), "{e}");
        assert!(!d.path().join("escaped.JPEG").exists());
        assert!(!d.path().join("out/escaped.JPEG").exists());
    }
    // A symlink among the class tars is refused on listing, before anything is written.
    let d = tempfile::tempdir().unwrap();
    let p = m.write(d.path(), None);
    let (a, b) = (ok(0), ok(1));
    let raws = [
        Raw::File(&a.0, &a.1),
        Raw::File(&b.0, &b.1),
        Raw::Symlink("n00000003.tar", "/dev/zero"),
    ];
    fs::write(&p[0], mini::tar(&raws)).unwrap();
    let e = format!(
        "{:#}",
        imagenet::prepare(&archives(&p), &d.path().join("out")).unwrap_err()
    );
    assert!(
        e.contains("`n00000003.tar` is a link or special file"),
        "{e}"
    );
    assert!(!d.path().join("out/train").exists());
}

#[test]
fn count_mismatches_are_refused_in_one_line() {
    let m = Mini::new(&[2, 3], 4);
    let d = tempfile::tempdir().unwrap();
    // Class 2's tar holds 2 images where meta.mat says 3.
    let short = Mini::new(&[2, 2], 4);
    let tars = (0..2)
        .map(|k| (format!("{}.tar", m.wnids[k]), short.class_tar(k)))
        .collect();
    let e = err(&m, d.path(), Some(tars));
    assert!(
        e.contains(
            "n00000002.tar: holds 2 images, the devkit's meta.mat says num_train_images = 3"
        ),
        "{e}"
    );
    assert!(!d.path().join("out/train/n00000002").exists());
    // A class tar missing.
    let d = tempfile::tempdir().unwrap();
    let tars = vec![(format!("{}.tar", m.wnids[0]), m.class_tar(0))];
    let e = err(&m, d.path(), Some(tars));
    assert!(
        e.contains("holds 1 class tars, the devkit has 2 classes; missing n00000002"),
        "{e}"
    );
    // One validation image more than the ground truth lists.
    let d = tempfile::tempdir().unwrap();
    let p = m.write(d.path(), None);
    let mut raws: Vec<(String, Vec<u8>)> = (0..5).map(|i| (Mini::val_name(i), vec![1])).collect();
    raws.sort();
    let r: Vec<Raw> = raws.iter().map(|(n, b)| Raw::File(n, b)).collect();
    fs::write(&p[1], mini::tar(&r)).unwrap();
    let e = format!(
        "{:#}",
        imagenet::prepare(&archives(&p), &d.path().join("out")).unwrap_err()
    );
    assert!(
        e.contains("holds 5 images, the devkit's ground truth lists 4"),
        "{e}"
    );
    assert!(!d.path().join("out/val").exists() && !d.path().join("out/train").exists());
}

#[test]
fn cli_prepares_the_miniature_and_errors_in_one_line() {
    let d = tempfile::tempdir().unwrap();
    let m = Mini::new(&[1, 2], 3);
    let p = m.write(d.path(), None);
    let run = |devkit: &Path| {
        Command::new(env!("CARGO_BIN_EXE_resnet"))
            .args(["data", "prepare", "imagenet", "--train-tar"])
            .arg(&p[0])
            .arg("--val-tar")
            .arg(&p[1])
            .arg("--devkit")
            .arg(devkit)
            .arg("--out")
            .arg(d.path().join("out"))
            .output()
            .unwrap()
    };
    let o = run(&p[2]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("2 classes, 3 training images in train/, 3 validation"),
        "{stdout}"
    );
    let bad = d.path().join("not_a_devkit.tar.gz");
    fs::write(&bad, mini::gz(&mini::tar(&[Raw::File("README", b"x")]))).unwrap();
    let o = run(&bad);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("no member ILSVRC2012_devkit_t12/data/meta.mat"),
        "{stderr}"
    );
}

#[test]
fn meta_mat_written_by_scipy_is_read_alike() {
    // tests/fixtures/make_meta_mat.py wrote these with scipy.io.savemat (what torchvision reads
    // the real file with): two leaves and one inner synset, plain and compressed.
    for f in ["meta_scipy.mat", "meta_scipy_z.mat"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/fixtures")
            .join(f);
        let leaves = imagenet::leaf_synsets(&matfile::read(&p).unwrap()).unwrap();
        let got: Vec<(u32, &str, Option<u64>)> = leaves
            .iter()
            .map(|s| (s.id, s.wnid.as_str(), s.train_images))
            .collect();
        assert_eq!(
            got,
            vec![(1, "n01440764", Some(1300)), (2, "n01443537", Some(732))],
            "{f}"
        );
    }
}
