//! `[data.imagenet]`: §3.4's transform sizes (scale range 256–480, crop 224, test resize 256,
//! multi-scale sides 224–640) as config keys with the paper's values by default, validated with
//! one line naming the key and value, and used by the streaming loader, 10-crop and multi-scale.
use resnet::config::{Config, ImagenetTransform};
use resnet::data::{folder, stream::Streaming, DataSource};
use tch::Device;

const BASE: &str = "name = \"t\"\n[model]\nfamily = \"imagenet\"\ndepth = 18\nclasses = 2\n\
                    [data]\ndataset = \"image_folder\"\naugment = \"imagenet\"\n";

fn err(imagenet: &str) -> String {
    let text = format!("{BASE}[data.imagenet]\n{imagenet}\n");
    let e = Config::from_toml(&text).and_then(|c| c.validate().map(|_| c));
    let s = format!("{:#}", e.unwrap_err());
    assert!(!s.contains('\n'), "{s}");
    s
}

#[test]
fn defaults_are_the_papers_sizes() {
    let c = Config::from_toml(BASE).unwrap();
    let t = &c.data.imagenet;
    assert_eq!(
        (t.scale_min, t.scale_max, t.crop, t.test_resize),
        (256, 480, 224, 256)
    );
    assert_eq!(t.multi_scale, vec![224, 256, 384, 480, 640]);
    assert_eq!(*t, ImagenetTransform::default());
}

#[test]
fn bad_combinations_are_one_line_naming_key_and_value() {
    for (text, want) in [
        ("crop = 300", "data.imagenet.crop = 300 is larger than the smallest training scale data.imagenet.scale_min = 256"),
        ("test_resize = 200", "data.imagenet.test_resize = 200 is smaller than data.imagenet.crop = 224"),
        ("scale_min = 500", "data.imagenet.scale_min = 500 is larger than data.imagenet.scale_max = 480"),
        ("crop = 0", "data.imagenet.crop = 0: must be in 1..=1024"),
        ("scale_max = 5000", "data.imagenet.scale_max = 5000: must be in 1..=1024"),
        ("multi_scale = []", "data.imagenet.multi_scale = []: list at least one"),
        ("multi_scale = [224, 0]", "data.imagenet.multi_scale = [224, 0]: side 0 must be in"),
        ("multi_scale = [128, 128]", "side 128 is listed twice"),
        ("cropp = 3", "unknown field `cropp`"),
    ] {
        let e = err(text);
        assert!(e.contains(want), "{text}: {e}");
    }
}

/// Two classes of three 150×100 JPEGs each, in train/ and val/.
fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for split in ["train", "val"] {
        for (c, class) in ["a", "b"].iter().enumerate() {
            let dir = d.path().join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..3u32 {
                let img = image::RgbImage::from_fn(150, 100, |x, y| {
                    image::Rgb([(x * 3 + i) as u8, (y * 2) as u8, (c * 200) as u8])
                });
                img.save(dir.join(format!("{i}.jpg"))).unwrap();
            }
        }
    }
    d
}

#[test]
fn reduced_sizes_reach_the_training_ten_crop_and_multi_scale_views() {
    let d = tree();
    let t = ImagenetTransform {
        scale_min: 64,
        scale_max: 80,
        crop: 56,
        test_resize: 64,
        multi_scale: vec![56, 72],
    };
    let index = folder::scan(d.path()).unwrap();
    let aug = resnet::config::Augment::Imagenet;
    let mut s =
        Streaming::with_transform(index, aug, 0, 1, 1, false, Device::Cpu, t.clone()).unwrap();
    assert_eq!(s.mean().size(), vec![3, 56, 56]);
    assert_eq!(
        s.train_batch(0, 4).unwrap().images.size(),
        vec![4, 3, 56, 56]
    );
    let b = s.eval_batches(6).unwrap().next().unwrap().unwrap();
    assert_eq!(b.images.size(), vec![6, 3, 56, 56]);
    let b = s.eval_ten_crop(6).unwrap().next().unwrap().unwrap();
    assert_eq!(b.images.size(), vec![6, 10, 3, 56, 56]);
    let b = s
        .eval_multi_scale(&t.multi_scale, 6)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut shorter: Vec<i64> = b.groups.iter().map(|g| g.images.size()[2]).collect();
    shorter.sort();
    shorter.dedup();
    assert_eq!(
        shorter,
        vec![56, 72],
        "150x100 images at shorter sides 56 and 72"
    );
    // A bad transform is refused by the loader too, not only by the config.
    let bad = ImagenetTransform { crop: 100, ..t };
    let index = folder::scan(d.path()).unwrap();
    let e = Streaming::with_transform(index, aug, 0, 1, 1, false, Device::Cpu, bad);
    assert!(format!("{:#}", e.err().unwrap()).contains("data.imagenet.crop = 100"));
}
