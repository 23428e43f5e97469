//! `resnet data`: the datasets of §4.2 and §3.4: download CIFAR-10, show a config's data, and
//! measure the loader.
use super::thread_count;
use anyhow::{Context, Result};
use clap::Subcommand;
use resnet::config::Config;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Command {
    /// Download and verify (size, MD5) a dataset, then extract it.
    Fetch(FetchArgs),
    /// Open the data of a config and print the images per class.
    Show(ShowArgs),
    /// Measure loader throughput in images/s (CIFAR augmentation; image-folder decoding).
    Bench(LoaderBenchArgs),
    /// Turn official archives into the folder layout a config reads (streamed, resumable).
    Prepare(super::data_prepare::Args),
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FetchWhat {
    /// The official cifar-10-binary.tar.gz (170,052,171 bytes).
    Cifar10,
}

#[derive(clap::Args)]
pub struct FetchArgs {
    pub what: FetchWhat,
    /// Folder receiving the archive and cifar-10-batches-bin/: the default data.path of a cifar10
    /// config, and what configs/cifar_*.toml name, when run from the repository's root.
    #[arg(long, default_value = resnet::config::DEFAULT_CIFAR10_DIR)]
    pub dir: PathBuf,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Detection configs: draw the ground-truth boxes of the first N test images into --out.
    #[arg(long, requires = "out")]
    pub draw: Option<usize>,
    /// Folder receiving the --draw pictures (created).
    #[arg(long, requires = "draw")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct LoaderBenchArgs {
    /// Small-image folder (or .tar.gz of one) to time decoding on, e.g.
    /// ../shared/data/cifar10-jpeg.tar.gz.
    #[arg(long)]
    pub folder: Option<PathBuf>,
    /// Large-image folder to time §3.4 streaming on.
    #[arg(long)]
    pub stream: Option<PathBuf>,
    /// Images per batch (1 to 65536).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch_size: u32,
    /// Timed batches (at least 1).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: u64,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Decoding threads (0 = all cores).
    #[arg(long, default_value_t = 0, value_parser = thread_count)]
    pub workers: usize,
    /// libtorch intra-op threads for the tensor work (0 = libtorch's default, all cores).
    #[arg(long, default_value_t = 0, value_parser = thread_count)]
    pub threads: usize,
    /// Where archives are extracted.
    #[arg(long, default_value = ".cache")]
    pub cache_dir: PathBuf,
}

fn fetch(a: FetchArgs) -> Result<()> {
    match a.what {
        FetchWhat::Cifar10 => {
            let dir =
                resnet::data::cifar::ensure(&a.dir, &resnet::data::fetch::Remote::cifar10(), true)?;
            let set = resnet::data::cifar::read_dir(&dir, resnet::data::cifar::RECORDS_PER_FILE)?;
            resnet::outln!(
                "CIFAR-10 ready in {}: {} training and {} test images",
                dir.display(),
                set.train_labels.size()[0],
                set.test_labels.size()[0]
            );
        }
    }
    Ok(())
}

fn show(a: ShowArgs) -> Result<()> {
    let cfg = Config::load(&a.config)?;
    if cfg.data.dataset.is_detection() {
        return show_detection(&cfg, a.draw.zip(a.out));
    }
    if a.draw.is_some() {
        anyhow::bail!(
            "--draw: only for detection configs (data.dataset = \"voc\" or \"coco\"); {} has \
             data.dataset = \"{}\"",
            a.config.display(),
            cfg.data.dataset.name()
        );
    }
    let device = resnet::sys::device::select(&cfg.run)?;
    let src = resnet::data::open(&cfg, device)?;
    resnet::outln!(
        "{} classes; {} training images; evaluation on {} ({} images)",
        src.num_classes(),
        src.train_len(),
        src.eval_split(),
        src.eval_len()
    );
    Ok(())
}

/// Per-class image and box counts of both splits, and the drawn ground truth when asked.
fn show_detection(cfg: &Config, draw: Option<(usize, PathBuf)>) -> Result<()> {
    use resnet::data::detection as det;
    let (train, test) = det::read_splits(cfg)?;
    resnet::out!("{}", det::count_table(&train, &test).to_text());
    resnet::outln!(
        "{} classes; train: {} images, {} boxes; test: {} images, {} boxes",
        train.classes.len(),
        train.images.len(),
        train.boxes(),
        test.images.len(),
        test.boxes()
    );
    if let Some((n, out)) = draw {
        let written = det::draw::ground_truth(&test, n, &out)?;
        resnet::outln!("drew {written} test images into {}", out.display());
    }
    Ok(())
}

fn loader_bench(a: LoaderBenchArgs) -> Result<()> {
    let run: resnet::config::RunConfig =
        toml::from_str(&format!("device = {:?}\nthreads = {}", a.device, a.threads))
            .with_context(|| format!("--device {}: allowed: auto, cpu, cuda", a.device))?;
    let device = resnet::sys::device::select(&run)?;
    let batch_size = a.batch_size as usize;
    let b = resnet::data::loader_bench::cifar_augment(device, 50_000, batch_size, a.iterations)?;
    let mut rows = vec![b];
    if let Some(f) = &a.folder {
        let root = resnet::data::folder::resolve_root(f, &a.cache_dir)?;
        rows.push(resnet::data::loader_bench::folder_decode(&root, a.workers)?);
    }
    if let Some(f) = &a.stream {
        let root = resnet::data::folder::resolve_root(f, &a.cache_dir)?;
        rows.push(resnet::data::loader_bench::stream_decode(&root, a.workers)?);
        rows.push(resnet::data::loader_bench::folder_stream(
            &root,
            a.workers,
            batch_size.min(64),
            a.iterations.min(20),
            device,
        )?);
    }
    let mut t = resnet::present::table::Table::new(["what", "images", "seconds", "images/s"]);
    for m in &rows {
        t.push(vec![
            m.what.clone(),
            m.images.to_string(),
            format!("{:.3}", m.seconds),
            format!("{:.0}", m.images_per_s()),
        ]);
    }
    resnet::out!("{}", t.to_text());
    Ok(())
}

/// Runs a `data` subcommand.
pub fn exec(c: Command) -> Result<()> {
    match c {
        Command::Fetch(a) => fetch(a),
        Command::Show(a) => show(a),
        Command::Bench(a) => loader_bench(a),
        Command::Prepare(a) => super::data_prepare::exec(a),
    }
}
