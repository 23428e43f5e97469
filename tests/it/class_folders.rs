//! The training data behind a run (issue 19): class folders must name their classes
//! unambiguously. Small PNG image folders.
use crate::support;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use support::*;

/// `root/{train,val}/<class>/k.png`, four images per class and split.
fn tree(root: &Path, classes: &[&OsStr]) {
    for split in ["train", "val"] {
        for (c, class) in classes.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for k in 0..4u8 {
                std::fs::write(dir.join(format!("{k}.png")), png(8, 8, 60 * c as u8 + k)).unwrap();
            }
        }
    }
}

/// A config training a ResNet-8 on the image folder `data` (beside it) into `out`.
fn folder_config(dir: &Path, classes: usize, out: &Path) -> std::path::PathBuf {
    let text = config_text(out, 20, "")
        .replace(
            "dataset = \"synthetic\"",
            "dataset = \"image_folder\"\npath = \"data\"\ncache_dir = \"cache\"",
        )
        .replace(
            "[data.synthetic]\ntrain = 256\ntest = 64\nimage_size = 16\n",
            "",
        )
        .replace("depth = 8\n", &format!("depth = 8\nclasses = {classes}\n"))
        .replace("batch_size = 32", "batch_size = 4");
    write_config(dir, "cfg", &text)
}

/// Class folders whose names are not UTF-8 both became U+FFFD and merged into one class, labels
/// wrong, no word; they are refused in one line naming the folder.
#[test]
fn class_folders_with_names_that_are_not_utf8_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (OsStr::from_bytes(b"cat\xff"), OsStr::from_bytes(b"cat\xfe"));
    tree(&tmp.path().join("data"), &[a, b]);
    let cfg = folder_config(tmp.path(), 2, &tmp.path().join("run"));
    let o = resnet(&[
        OsStr::new("data"),
        OsStr::new("show"),
        OsStr::new("--config"),
        cfg.as_os_str(),
    ]);
    refused(&o, &["not UTF-8", "train"]);
}

/// Swaps the contents of two class folders of the training split (every label of theirs flips;
/// the file names, counts and sizes stay).
fn swap_classes(train: &Path, a: &str, b: &str) {
    let t = train.join("swap-tmp");
    std::fs::rename(train.join(a), &t).unwrap();
    std::fs::rename(train.join(b), train.join(a)).unwrap();
    std::fs::rename(&t, train.join(b)).unwrap();
}

/// A resume on training data that changed since the checkpoint (two class folders swapped: every
/// label of theirs flips) went on silently. The checkpoint records the data's content key; a
/// different key is a recipe change, refused in one line naming both keys, and accepted with
/// `--change data.content`, which changes.csv records.
#[test]
fn a_resume_on_changed_training_data_is_refused_unless_deliberate() {
    let tmp = tempfile::tempdir().unwrap();
    let names = [OsStr::new("cat"), OsStr::new("dog")];
    tree(&tmp.path().join("data"), &names);
    let out = tmp.path().join("run");
    let cfg = folder_config(tmp.path(), 2, &out);
    let train = |extra: &[&str]| {
        let mut a = vec![OsStr::new("train"), OsStr::new("--config"), cfg.as_os_str()];
        a.extend(extra.iter().map(OsStr::new));
        resnet(&a)
    };
    let o = train(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = |dir: &Path| {
        let h = resnet::run::checkpoint::read_header(&dir.join("last.safetensors")).unwrap();
        h.state
            .data_key
            .expect("the checkpoint records its data's key")
    };
    let before = key(&out);
    swap_classes(&tmp.path().join("data/train"), "cat", "dog");
    let longer = ["--resume", "--iterations", "40", "--change"];
    let o = train(&[&longer[..], &["schedule.iterations"]].concat());
    let line = refused(&o, &["data.content", &before, "--change data.content"]);
    let after: String = (line.split(&format!("{before} -> ")).nth(1).unwrap_or(""))
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert!(after.len() == 32 && after != before, "{line}");
    assert_eq!(curve_rows(&out), 2, "the refused resume wrote nothing");
    let o = train(&[&longer[..], &["schedule.iterations,data.content"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(curve_rows(&out), 4);
    let changes = std::fs::read_to_string(out.join("changes.csv")).unwrap();
    assert!(
        changes.contains(&format!("20,data.content,{before},")),
        "{changes}"
    );
    assert_ne!(key(&out), before, "the new data's key is recorded");
}
