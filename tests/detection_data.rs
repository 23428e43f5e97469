//! Detection data of issue 24 (the paper's appendix, Tables 7–8): the PASCAL VOC and COCO readers
//! on the real dogs-det archive (both layouts: the same images, per-class counts and boxes), every
//! kind of hostile annotation as a one-line error naming the file, `resnet data show` on a
//! detection config (counts, drawings), and train/bench/eval refusing detection configs.
mod support;

use resnet::config::Config;
use resnet::data::detection::{self as det, DetectionSplit, SplitKind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use support::{refused, resnet, shared_data, skip};

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
    let (Some(vc), Some(cc)) = (dogs_config(t, "dogs_voc"), dogs_config(t, "dogs_coco")) else {
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
}
