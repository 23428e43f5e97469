//! Detection data of issue 24 (the paper's appendix, Tables 7–8): the PASCAL VOC and COCO readers
//! on the real dogs-det archive (both layouts: the same images, per-class counts and boxes), every
//! kind of hostile annotation as a one-line error naming the file, `resnet data show` on a
//! detection config (counts, drawings), and train/bench/eval refusing detection configs.
use crate::support::{self, refused, resnet, shared_data, skip};
use resnet::config::Config;
use resnet::data::detection::{self as det, DetectionSplit, SplitKind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const DOGS: &str = "dogs-det.tar.gz";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One extraction of the archive per test binary at a time.
static EXTRACT: Mutex<()> = Mutex::new(());

/// `configs/<name>.toml` on the shared archive, extracted into the tests' cache; `None` (and a
/// visible skip) without ../shared.
fn dogs_config(test: &str, name: &str) -> Option<Config> {
    let Some(archive) = shared_data(DOGS) else {
        skip(test, &format!("../shared/data/{DOGS}"));
        return None;
    };
    let mut cfg = Config::load(&repo().join(format!("configs/{name}.toml"))).unwrap();
    cfg.data.path = archive;
    cfg.data.cache_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("data-cache");
    let _one = EXTRACT.lock().unwrap_or_else(|e| e.into_inner());
    det::detection_root(&cfg).unwrap();
    Some(cfg)
}

fn stem(name: &str) -> &str {
    name.strip_suffix(".jpg").unwrap_or(name)
}

/// Both splits' images paired by name (VOC's id = COCO's file name without `.jpg`), with the
/// same classes, and boxes related by `voc_of_coco`.
fn assert_same(
    voc: &DetectionSplit,
    coco: &DetectionSplit,
    voc_of_coco: impl Fn([f64; 4]) -> [f64; 4],
) {
    assert_eq!(voc.images.len(), coco.images.len());
    let by_name: std::collections::HashMap<&str, &det::GtImage> =
        coco.images.iter().map(|i| (stem(&i.name), i)).collect();
    for v in &voc.images {
        let c = by_name[v.name.as_str()];
        assert_eq!((v.width, v.height), (c.width, c.height), "{}", v.name);
        assert_eq!(v.path, c.path, "one photograph for both layouts");
        let mut vb: Vec<_> = v
            .objects
            .iter()
            .map(|o| (o.class, o.bbox.map(|x| x as i64)))
            .collect();
        let mut cb: Vec<_> = c
            .objects
            .iter()
            .map(|o| (o.class, voc_of_coco(o.bbox).map(|x| x as i64)))
            .collect();
        vb.sort();
        cb.sort();
        assert_eq!(vb, cb, "{}", v.name);
        assert!(v.objects.iter().all(|o| !o.difficult && !o.crowd));
    }
}

#[test]
fn dogs_voc_and_coco_layouts_give_the_same_images_counts_and_boxes() {
    let t = "dogs_voc_and_coco_layouts_give_the_same_images_counts_and_boxes";
    // One skip line when the archive is absent: the second config is only asked for after the
    // first was found.
    let Some(vc) = dogs_config(t, "dogs_voc") else {
        return;
    };
    let Some(cc) = dogs_config(t, "dogs_coco") else {
        return;
    };
    let (vtrain, vtest) = det::read_splits(&vc).unwrap();
    let (ctrain, ctest) = det::read_splits(&cc).unwrap();
    for (v, c, images, boxes) in [(&vtrain, &ctrain, 856, 916), (&vtest, &ctest, 683, 745)] {
        assert_eq!((v.images.len(), v.boxes()), (images, boxes));
        assert_eq!((c.images.len(), c.boxes()), (images, boxes));
        assert_eq!(v.class_counts(), c.class_counts(), "per class, by position");
        assert_eq!(v.classes.len(), 10);
        assert_eq!(c.category_ids, (1..=10).collect::<Vec<u64>>());
        // dogs_voc reads the archive's corners as written: exactly COCO's boxes.
        assert_same(v, c, |b| b);
    }
    assert_eq!(ctrain.classes[0], "Shih-Tzu");
    assert_eq!(vtrain.classes[0], "n02086240");
    // The devkit's 1-based reading of the same files: x1, y1 one pixel left/up (clipped at 0).
    let mut one = vc.clone();
    one.data.detection.voc_one_based = true;
    let vtest1 = det::read_split(&one, SplitKind::Test).unwrap();
    assert_same(&vtest1, &ctest, |b| {
        [(b[0] - 1.0).max(0.0), (b[1] - 1.0).max(0.0), b[2], b[3]]
    });
}

#[test]
fn data_show_prints_both_splits_per_class_and_draws_pngs_of_the_images_size() {
    let t = "data_show_prints_both_splits_per_class_and_draws_pngs_of_the_images_size";
    let Some(cfg) = dogs_config(t, "dogs_coco") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n",
        std::fs::read_to_string(repo().join("configs/dogs_coco.toml"))
            .unwrap()
            .replace(
                "path = \"../../shared/data/dogs-det.tar.gz\"",
                &format!(
                    "path = {:?}\ncache_dir = {:?}",
                    cfg.data.path, cfg.data.cache_dir
                )
            )
    );
    let c = support::write_config(dir.path(), "dogs_coco", &text);
    let out = dir.path().join("drawn");
    let o = resnet(&[
        "data".as_ref(),
        "show".as_ref(),
        "--config".as_ref(),
        c.as_os_str(),
        "--draw".as_ref(),
        "2".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let total = stdout.lines().find(|l| l.starts_with("total")).unwrap();
    let cells: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(cells, ["total", "856", "916", "683", "745"], "{stdout}");
    assert!(stdout.contains("Shih-Tzu"), "{stdout}");
    let test = det::read_split(&cfg, SplitKind::Test).unwrap();
    for img in &test.images[..2] {
        let png = det::draw::picture_path(&out, img);
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png.display());
        let drawn = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(drawn.dimensions(), (img.width, img.height));
        let photo = image::open(&img.path).unwrap().to_rgb8();
        assert_ne!(drawn, photo, "boxes were drawn");
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
}

// ---- tiny hand-written datasets for the hostile cases ----

const VOC_XML: &str = "<annotation><filename>a.jpg</filename><size><width>40</width>\
<height>30</height><depth>3</depth></size><object><name>dog</name><difficult>0</difficult>\
<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>\
<object><name>cat</name><difficult>1</difficult><bndbox><xmin>5</xmin><ymin>5</ymin>\
<xmax>40</xmax><ymax>10</ymax></bndbox></object></annotation>";

/// A VOC root with image `a` (40x30) in both image sets, and its config (`dataset = "voc"`,
/// classes cat and dog). Returns the config's path.
fn voc_fixture(dir: &Path, xml: &str) -> PathBuf {
    for d in ["JPEGImages", "Annotations", "ImageSets/Main"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("JPEGImages/a.jpg"), support::png(40, 30, 1)).unwrap();
    std::fs::write(dir.join("Annotations/a.xml"), xml).unwrap();
    std::fs::write(dir.join("ImageSets/Main/trainval.txt"), "a\n").unwrap();
    std::fs::write(dir.join("ImageSets/Main/test.txt"), "a\n").unwrap();
    support::write_config(
        dir,
        "voc",
        "[model]\nfamily = \"imagenet\"\ndepth = 18\nclasses = 2\n[data]\ndataset = \"voc\"\n\
         path = \".\"\n[data.detection]\nclasses = [\"cat\", \"dog\"]\n",
    )
}

fn coco_json(images: &str, anns: &str) -> String {
    format!(
        "{{\"info\": {{}}, \"licenses\": [], \"images\": [{images}], \"annotations\": [{anns}], \
         \"categories\": [{{\"id\": 7, \"name\": \"dog\"}}, {{\"id\": 3, \"name\": \"cat\"}}]}}"
    )
}

const COCO_IMAGES: &str = "{\"id\": 42, \"file_name\": \"COCO_val2014_000000000042.jpg\", \
\"width\": 40, \"height\": 30}, {\"id\": 43, \"file_name\": \"COCO_val2014_000000000043.jpg\", \
\"width\": 40, \"height\": 30}";
const COCO_ANNS: &str = "{\"id\": 1, \"image_id\": 42, \"category_id\": 7, \"bbox\": [0, 2.5, 20, \
10], \"area\": 150.5, \"iscrowd\": 0, \"segmentation\": [[0, 0, 1, 1]]}, {\"id\": 2, \
\"image_id\": 42, \"category_id\": 3, \"bbox\": [10, 10, 30, 20], \"area\": 600, \"iscrowd\": 1}";

/// A COCO 2014-style layout (`annotations/instances_val2014.json`, `val2014/`) used for both
/// splits, and its config. Returns the config's path.
fn coco_fixture(dir: &Path, json: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("annotations")).unwrap();
    std::fs::create_dir_all(dir.join("val2014")).unwrap();
    for id in [42, 43] {
        let f = dir.join(format!("val2014/COCO_val2014_0000000000{id}.jpg"));
        std::fs::write(f, support::png(40, 30, 2)).unwrap();
    }
    std::fs::write(dir.join("annotations/instances_val2014.json"), json).unwrap();
    let set = "{ annotations = \"annotations/instances_val2014.json\", images = \"val2014\" }";
    support::write_config(
        dir,
        "coco",
        &format!(
            "[model]\nfamily = \"imagenet\"\ndepth = 18\nclasses = 2\n[data]\n\
             dataset = \"coco\"\npath = \".\"\n[data.detection]\ncoco_train = {set}\n\
             coco_test = {set}\n"
        ),
    )
}

fn show(config: &Path) -> std::process::Output {
    resnet(&[
        "data".as_ref(),
        "show".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ])
}

#[test]
fn tiny_voc_reads_the_devkits_convention_difficult_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load(&voc_fixture(dir.path(), VOC_XML)).unwrap();
    let s = det::read_split(&cfg, SplitKind::Train).unwrap();
    assert_eq!(s.classes, ["cat", "dog"]);
    assert_eq!(s.category_ids, [1, 2]);
    let img = &s.images[0];
    assert_eq!(
        (img.id, img.name.as_str(), img.width, img.height),
        (1, "a", 40, 30)
    );
    assert_eq!(
        img.objects[0].bbox,
        [0.0, 1.0, 20.0, 30.0],
        "x1 = xmin - 1, x2 = xmax"
    );
    assert_eq!(img.objects[0].class, 1);
    assert!(!img.objects[0].difficult && img.objects[1].difficult);
    assert_eq!(img.objects[1].area, 36.0 * 6.0);
    let o = show(&dir.path().join("voc.toml"));
    assert!(o.status.success(), "{}", support::stderr(&o));
}

#[test]
fn tiny_coco_sorts_categories_flags_crowd_keeps_area_and_empty_images() {
    let dir = tempfile::tempdir().unwrap();
    let c = coco_fixture(dir.path(), &coco_json(COCO_IMAGES, COCO_ANNS));
    let cfg = Config::load(&c).unwrap();
    let s = det::read_split(&cfg, SplitKind::Test).unwrap();
    assert_eq!(s.classes, ["cat", "dog"], "sorted by category id");
    assert_eq!(s.category_ids, [3, 7]);
    assert_eq!(s.images.len(), 2, "the image without boxes stays");
    assert!(s.images[1].objects.is_empty());
    let img = &s.images[0];
    assert_eq!(img.id, 42);
    assert!(img.path.ends_with("val2014/COCO_val2014_000000000042.jpg"));
    let (dog, cat) = (&img.objects[0], &img.objects[1]);
    assert_eq!(
        (dog.class, dog.bbox, dog.area, dog.crowd),
        (1, [0.0, 2.5, 20.0, 12.5], 150.5, false)
    );
    assert_eq!(
        (cat.class, cat.bbox, cat.crowd),
        (0, [10.0, 10.0, 40.0, 30.0], true)
    );
}

/// Each hostile VOC case: (what is changed, the file the error must name, words it must hold).
#[test]
fn hostile_voc_annotations_are_one_line_errors_naming_the_file() {
    let box_of = |b: &str| VOC_XML.replacen("<xmin>1</xmin><ymin>2</ymin><xmax>20</xmax>", b, 1);
    let cases: Vec<(&str, String, &str, &[&str])> = vec![
        (
            "outside",
            box_of("<xmin>1</xmin><ymin>2</ymin><xmax>90</xmax>"),
            "a.xml",
            &["object 1", "outside the 40x30 image"],
        ),
        (
            "x2 < x1",
            box_of("<xmin>30</xmin><ymin>2</ymin><xmax>10</xmax>"),
            "a.xml",
            &["x2 < x1"],
        ),
        (
            "class",
            VOC_XML.replacen("<name>dog</name>", "<name>horse</name>", 1),
            "a.xml",
            &["unknown class name \"horse\""],
        ),
        (
            "malformed",
            "<annotation><size><width>4".into(),
            "a.xml",
            &["malformed XML"],
        ),
        (
            "not a number",
            box_of("<xmin>1</xmin><ymin>two</ymin><xmax>20</xmax>"),
            "a.xml",
            &["<ymin> is \"two\""],
        ),
        (
            "huge",
            format!("{VOC_XML}{}", " ".repeat(1 << 20)),
            "a.xml",
            &["larger than any accepted"],
        ),
    ];
    for (what, xml, file, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let c = voc_fixture(dir.path(), &xml);
        let line = refused(&show(&c), words);
        assert!(line.contains(file), "{what}: {line}");
    }
    // The image file missing; an image listed twice.
    let dir = tempfile::tempdir().unwrap();
    let c = voc_fixture(dir.path(), VOC_XML);
    std::fs::remove_file(dir.path().join("JPEGImages/a.jpg")).unwrap();
    let line = refused(&show(&c), &["image a", "is missing"]);
    assert!(
        line.contains("trainval.txt") && line.contains("a.jpg"),
        "{line}"
    );
    let dir = tempfile::tempdir().unwrap();
    let c = voc_fixture(dir.path(), VOC_XML);
    std::fs::write(dir.path().join("ImageSets/Main/trainval.txt"), "a\nb\na\n").unwrap();
    let line = refused(&show(&c), &["listed twice"]);
    assert!(line.contains("trainval.txt"), "{line}");
    // An image set that is not there.
    let dir = tempfile::tempdir().unwrap();
    let c = voc_fixture(dir.path(), VOC_XML);
    std::fs::remove_file(dir.path().join("ImageSets/Main/test.txt")).unwrap();
    refused(&show(&c), &["test.txt"]);
}

#[test]
fn hostile_coco_annotations_are_one_line_errors_naming_the_file() {
    let ann = |a: &str| coco_json(COCO_IMAGES, a);
    let one = |bbox: &str, image: u64, cat: u64| {
        format!("{{\"id\": 1, \"image_id\": {image}, \"category_id\": {cat}, \"bbox\": {bbox}, \"iscrowd\": 0}}")
    };
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "outside",
            ann(&one("[30, 0, 20, 10]", 42, 7)),
            &["annotation id 1 (image id 42)", "outside the 40x30 image"],
        ),
        (
            "negative width",
            ann(&one("[30, 0, -20, 10]", 42, 7)),
            &["x2 < x1"],
        ),
        (
            "unknown image",
            ann(&one("[0, 0, 2, 2]", 99, 7)),
            &["image id 99", "no image has this image_id"],
        ),
        (
            "unknown category",
            ann(&one("[0, 0, 2, 2]", 42, 5)),
            &["unknown category_id 5"],
        ),
        (
            "image twice",
            coco_json(
                &format!(
                    "{COCO_IMAGES}, {}",
                    COCO_IMAGES.split("}, ").next().unwrap().to_string() + "}"
                ),
                "",
            ),
            &["image id 42", "listed twice"],
        ),
        (
            "annotation twice",
            ann(&format!(
                "{}, {}",
                one("[0, 0, 2, 2]", 42, 7),
                one("[0, 0, 2, 2]", 43, 7)
            )),
            &["annotation id 1", "listed twice"],
        ),
        (
            "malformed",
            "{\"images\": [".into(),
            &["malformed COCO instances JSON"],
        ),
        (
            "wrong type",
            coco_json(
                COCO_IMAGES,
                "{\"image_id\": 42, \"category_id\": 7, \"bbox\": \"big\"}",
            ),
            &["malformed COCO instances JSON"],
        ),
    ];
    for (what, json, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let c = coco_fixture(dir.path(), &json);
        let line = refused(&show(&c), words);
        assert!(line.contains("instances_val2014.json"), "{what}: {line}");
    }
    // A missing image file; a file_name leaving its folder; classes that are not the file's.
    let dir = tempfile::tempdir().unwrap();
    let c = coco_fixture(dir.path(), &coco_json(COCO_IMAGES, COCO_ANNS));
    std::fs::remove_file(dir.path().join("val2014/COCO_val2014_000000000043.jpg")).unwrap();
    let line = refused(&show(&c), &["image id 43", "is missing"]);
    assert!(line.contains("instances_val2014.json"), "{line}");
    let dir = tempfile::tempdir().unwrap();
    let escaping = COCO_IMAGES.replace("COCO_val2014_000000000043.jpg", "../x.jpg");
    let c = coco_fixture(dir.path(), &coco_json(&escaping, COCO_ANNS));
    refused(
        &show(&c),
        &[
            "instances_val2014.json",
            "\"../x.jpg\" is not a relative path",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = coco_fixture(dir.path(), &coco_json(COCO_IMAGES, COCO_ANNS));
    let text = std::fs::read_to_string(&c).unwrap() + "classes = [\"dog\", \"cat\"]\n";
    std::fs::write(&c, text).unwrap();
    refused(
        &show(&c),
        &[
            "instances_val2014.json",
            "[cat, dog]",
            "data.detection.classes",
        ],
    );
}

#[test]
fn train_bench_and_eval_refuse_a_detection_config_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let c = voc_fixture(dir.path(), VOC_XML);
    let out = dir.path().join("runs");
    let c_os = c.as_os_str();
    for args in [
        vec![
            "train".as_ref(),
            "--config".as_ref(),
            c_os,
            "--out".as_ref(),
            out.as_os_str(),
        ],
        vec!["bench".as_ref(), "--config".as_ref(), c_os],
        vec![
            "eval".as_ref(),
            "--checkpoint".as_ref(),
            c_os,
            "--config".as_ref(),
            c_os,
        ],
    ] {
        refused(&resnet(&args), &["detection data", "issue 25"]);
    }
    assert!(!out.exists(), "nothing written");
    // --draw is for detection configs only.
    let tiny = support::tiny().write(dir.path(), "tiny");
    let o = resnet(&[
        "data".as_ref(),
        "show".as_ref(),
        "--config".as_ref(),
        tiny.as_os_str(),
        "--draw".as_ref(),
        "1".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    refused(
        &o,
        &["--draw", "only for detection configs", "\"synthetic\""],
    );
    assert!(!out.exists(), "nothing written");
}

// ---- the box-aware transform and the loader ----

use det::loader::{DetectionLoader, Normalization, Sizes};
use det::{GtImage, GtObject};

fn obj(class: usize, bbox: [f64; 4], difficult: bool, crowd: bool) -> GtObject {
    GtObject {
        class,
        bbox,
        area: (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]),
        crowd,
        difficult,
    }
}

/// Five photographs of different sizes written as PNGs into `dir`, with boxes; image 4 holds
/// only a difficult and a crowd object (no training target).
fn loader_split(dir: &Path) -> DetectionSplit {
    let sizes = [(40u32, 30u32), (30, 50), (64, 20), (20, 20), (33, 21)];
    let images = sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| {
            let path = dir.join(format!("{i}.png"));
            std::fs::write(&path, support::png(w, h, i as u8 * 40)).unwrap();
            let (wf, hf) = (w as f64, h as f64);
            let objects = if i == 4 {
                vec![
                    obj(0, [1.0, 1.0, 9.0, 9.0], true, false),
                    obj(1, [2.0, 2.0, 5.0, 5.0], false, true),
                ]
            } else {
                vec![
                    obj(i % 2, [1.0, 2.0, wf / 2.0, hf - 1.0], false, false),
                    obj(1, [0.0, 0.0, wf, hf], i == 1, false),
                ]
            };
            GtImage {
                id: 100 + i as u64,
                name: format!("{i}.png"),
                path,
                width: w,
                height: h,
                objects,
            }
        })
        .collect();
    DetectionSplit {
        classes: vec!["a".into(), "b".into()],
        category_ids: vec![1, 2],
        images,
    }
}

fn sizes(shorter: u32, max_side: u32, divisor: u32) -> Sizes {
    Sizes {
        shorter,
        max_side,
        divisor,
        flip: true,
    }
}

fn loader(dir: &Path, s: Sizes, seed: u64) -> DetectionLoader {
    let norm = Normalization::faster_rcnn();
    DetectionLoader::new(loader_split(dir), s, norm, seed, 1, tch::Device::Cpu).unwrap()
}

fn floats(t: &tch::Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

#[test]
fn the_same_seed_and_iteration_give_the_same_batch_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = loader(dir.path(), sizes(40, 60, 1), 3);
    assert_eq!(
        a.train_len(),
        4,
        "the image without a training target is left out"
    );
    let first: Vec<_> = (0..6).map(|it| a.train_batch(it, 3).unwrap()).collect();
    // A resumed run: a new loader, starting at iteration 4.
    let mut b = loader(dir.path(), sizes(40, 60, 1), 3);
    for it in [4u64, 5] {
        let (x, y) = (&first[it as usize], b.train_batch(it, 3).unwrap());
        assert_eq!(
            (&x.indices, &x.flipped, &x.sizes),
            (&y.indices, &y.flipped, &y.sizes)
        );
        assert_eq!(floats(&x.images), floats(&y.images));
        for (s, t) in x.targets.iter().zip(&y.targets) {
            assert_eq!(floats(&s.boxes), floats(&t.boxes));
        }
    }
    assert!(first.iter().all(|b| !b.indices.contains(&4)));
    assert!(first.iter().any(|b| b.flipped.contains(&true)));
    assert!(first.iter().any(|b| b.flipped.contains(&false)));
    let mut c = loader(dir.path(), sizes(40, 60, 1), 4);
    let other: Vec<_> = (0..6).map(|it| c.train_batch(it, 3).unwrap()).collect();
    assert!(
        first
            .iter()
            .zip(&other)
            .any(|(x, y)| x.indices != y.indices || x.flipped != y.flipped),
        "another seed, other batches"
    );
}

#[test]
fn a_batch_pads_images_of_different_sizes_and_keeps_each_size_and_its_targets() {
    let dir = tempfile::tempdir().unwrap();
    let l = loader(dir.path(), sizes(40, 60, 16), 0);
    let split = l.split().clone();
    let batches: Vec<_> = l.test_batches(2).map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 3);
    let order: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(order, [0, 1, 2, 3, 4], "test images in order");
    let mean = Normalization::faster_rcnn().mean;
    for b in &batches {
        let (bn, c, hh, ww) = b.images.size4().unwrap();
        assert_eq!((bn as usize, c), (b.indices.len(), 3));
        let (mw, mh) = (
            b.sizes.iter().map(|s| s.0).max().unwrap(),
            b.sizes.iter().map(|s| s.1).max().unwrap(),
        );
        assert_eq!(
            (ww as u32, hh as u32),
            (mw.div_ceil(16) * 16, mh.div_ceil(16) * 16)
        );
        for (k, &i) in b.indices.iter().enumerate() {
            let img = &split.images[i];
            let (w, h) = b.sizes[k];
            assert_eq!(
                (w, h),
                det::transforms::target_size((img.width, img.height), 40, 60)
            );
            assert!(w.min(h) == 40 || w.max(h) == 60, "{w}x{h}");
            assert_eq!(b.original_sizes[k], (img.width, img.height));
            assert!(!b.flipped[k]);
            // Inside: the resized photograph, normalized; outside: zeros.
            let x = b.images.get(k as i64);
            let inside = x.narrow(1, 0, h as i64).narrow(2, 0, w as i64);
            let photo =
                resnet::data::image::resize_to(&image::open(&img.path).unwrap().to_rgb8(), (w, h));
            let want = photo.get_pixel(w - 1, h - 1)[2] as f32 / 255.0 - mean[2];
            assert!(
                (inside.double_value(&[2, h as i64 - 1, w as i64 - 1]) as f32 - want).abs() < 1e-6
            );
            let total = x.abs().sum(tch::Kind::Double).double_value(&[]);
            let kept = inside.abs().sum(tch::Kind::Double).double_value(&[]);
            assert!((total - kept).abs() < 1e-6, "padding is zero");
            // Targets: the non-difficult, non-crowd boxes, mapped exactly by the size ratios,
            // and back to the original by the inverse mapping.
            let want: Vec<&GtObject> = img
                .objects
                .iter()
                .filter(|o| !o.difficult && !o.crowd)
                .collect();
            let got = floats(&b.targets[k].boxes);
            assert_eq!(got.len(), 4 * want.len());
            for (j, o) in want.iter().enumerate() {
                let r = det::transforms::resize_box(o.bbox, (img.width, img.height), (w, h));
                for q in 0..4 {
                    assert!((got[4 * j + q] as f64 - r[q]).abs() < 1e-4);
                }
                let back = b.to_original(k, r);
                for q in 0..4 {
                    assert!((back[q] - o.bbox[q]).abs() < 1e-9, "{back:?} {:?}", o.bbox);
                }
            }
        }
    }
}

#[test]
fn a_flipped_training_image_is_the_mirror_with_mirrored_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = loader(dir.path(), sizes(40, 60, 1), 1);
    let mut plain = loader(dir.path(), sizes(40, 60, 1), 1);
    let batches: Vec<_> = (0..8).map(|it| l.train_batch(it, 2).unwrap()).collect();
    let tests: Vec<_> = plain.test_batches(1).map(|b| b.unwrap()).collect();
    let mut seen = 0;
    for b in &batches {
        for (k, &i) in b.indices.iter().enumerate() {
            if !b.flipped[k] {
                continue;
            }
            seen += 1;
            let (w, h) = b.sizes[k];
            let f = b
                .images
                .get(k as i64)
                .narrow(1, 0, h as i64)
                .narrow(2, 0, w as i64);
            let t = &tests[i];
            let u = t
                .images
                .get(0)
                .narrow(1, 0, h as i64)
                .narrow(2, 0, w as i64);
            assert_eq!(floats(&f), floats(&u.flip([2])));
            let (fb, ub) = (floats(&b.targets[k].boxes), floats(&t.targets[0].boxes));
            for j in 0..fb.len() / 4 {
                let m = det::transforms::flip_box(
                    [ub[4 * j], ub[4 * j + 1], ub[4 * j + 2], ub[4 * j + 3]].map(|v| v as f64),
                    w,
                );
                for q in 0..4 {
                    assert!((fb[4 * j + q] as f64 - m[q]).abs() < 1e-4);
                }
                // Back in the original image: the unflipped box.
                let back = b.to_original(
                    k,
                    [fb[4 * j], fb[4 * j + 1], fb[4 * j + 2], fb[4 * j + 3]].map(|v| v as f64),
                );
                let orig = t.to_original(
                    0,
                    [ub[4 * j], ub[4 * j + 1], ub[4 * j + 2], ub[4 * j + 3]].map(|v| v as f64),
                );
                for q in 0..4 {
                    assert!((back[q] - orig[q]).abs() < 1e-3);
                }
            }
        }
    }
    assert!(seen > 0);
    let _ = plain.train_batch(0, 1).unwrap();
}

#[test]
fn dogs_training_batches_have_the_configs_scale_and_boxes_inside() {
    let t = "dogs_training_batches_have_the_configs_scale_and_boxes_inside";
    let Some(cfg) = dogs_config(t, "dogs_voc") else {
        return;
    };
    let split = det::read_split(&cfg, SplitKind::Train).unwrap();
    let s = Sizes::of(&cfg.data.detection);
    let mut l = DetectionLoader::new(
        split,
        s,
        Normalization::faster_rcnn(),
        0,
        2,
        tch::Device::Cpu,
    )
    .unwrap();
    assert_eq!(l.train_len(), 856);
    let b = l.train_batch(7, 2).unwrap();
    for (k, &(w, h)) in b.sizes.iter().enumerate() {
        assert_eq!(w.min(h), 320, "the images' own scale");
        let boxes = floats(&b.targets[k].boxes);
        assert!(!boxes.is_empty());
        for q in boxes.chunks(4) {
            assert!(
                q[0] >= 0.0 && q[1] >= 0.0 && q[2] <= w as f32 && q[3] <= h as f32 && q[0] < q[2]
            );
        }
    }
}
