//! The training data behind a run (issue 19): class folders must name their classes
//! unambiguously. Small PNG image folders.
mod support;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use support::*;

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 8, |x, y| {
        image::Rgb([seed, (x * 20) as u8, (y * 9) as u8])
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

/// `root/{train,val}/<class>/k.png`, four images per class and split.
fn tree(root: &Path, classes: &[&OsStr]) {
    for split in ["train", "val"] {
        for (c, class) in classes.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for k in 0..4u8 {
                std::fs::write(dir.join(format!("{k}.png")), png(60 * c as u8 + k)).unwrap();
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
