//! The `resnet` command line: parses arguments and dispatches, one small function per subcommand.
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use resnet::config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "resnet",
    version,
    about = "Reproduce the experiments of Deep Residual Learning for Image Recognition (He et al., 2015)",
    long_about = "Reproduce the experiments of Deep Residual Learning for Image Recognition \
(He, Zhang, Ren, Sun, 2015): plain vs residual nets on CIFAR-10 (depth 20-1202) and ImageNet \
(18-152), shortcut options A/B/C, error curves and the paper's tables.\n\n\
Every run is described by one TOML config (see configs/); flags only override it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print (and write as CSV) layers, parameters and multiply-adds per model, beside the
    /// paper's Table 1 / Table 6 figures.
    Info(InfoArgs),
    /// Datasets: download CIFAR-10, check a config's data, measure the loader.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download and verify (size, MD5) a dataset, then extract it.
    Fetch(FetchArgs),
    /// Open the data of a config and print the images per class.
    Show(ShowArgs),
    /// Measure loader throughput in images/s (CIFAR augmentation; image-folder decoding).
    Bench(BenchArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FetchWhat {
    /// The official cifar-10-binary.tar.gz (170,052,171 bytes).
    Cifar10,
}

#[derive(clap::Args)]
struct FetchArgs {
    what: FetchWhat,
    /// Folder receiving the archive and cifar-10-batches-bin/ (data.path of a cifar10 config).
    #[arg(long, default_value = "data/cifar10")]
    dir: PathBuf,
}

#[derive(clap::Args)]
struct ShowArgs {
    #[arg(long)]
    config: PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Small-image folder (or .tar.gz of one) to time decoding on, e.g.
    /// ../shared/data/cifar10-jpeg.tar.gz.
    #[arg(long)]
    folder: Option<PathBuf>,
    /// Large-image folder to time §3.4 streaming on.
    #[arg(long)]
    stream: Option<PathBuf>,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 200)]
    iterations: u64,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Decoding threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// libtorch intra-op threads for the tensor work (0 = libtorch's default, all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Where archives are extracted.
    #[arg(long, default_value = ".cache")]
    cache_dir: PathBuf,
}

fn data_fetch(a: FetchArgs) -> Result<()> {
    match a.what {
        FetchWhat::Cifar10 => {
            let dir =
                resnet::data::cifar::ensure(&a.dir, &resnet::data::fetch::Remote::cifar10(), true)?;
            let set = resnet::data::cifar::read_dir(&dir, resnet::data::cifar::RECORDS_PER_FILE)?;
            println!(
                "CIFAR-10 ready in {}: {} training and {} test images",
                dir.display(),
                set.train_labels.size()[0],
                set.test_labels.size()[0]
            );
        }
    }
    Ok(())
}

fn data_show(a: ShowArgs) -> Result<()> {
    let cfg = Config::load(&a.config)?;
    let device = resnet::device::select(&cfg.run)?;
    let src = resnet::data::open(&cfg, device)?;
    println!(
        "{} classes; {} training images; evaluation on {} ({} images)",
        src.num_classes(),
        src.train_len(),
        src.eval_split(),
        src.eval_len()
    );
    Ok(())
}

fn data_bench(a: BenchArgs) -> Result<()> {
    let run: resnet::config::RunConfig =
        toml::from_str(&format!("device = {:?}\nthreads = {}", a.device, a.threads))
            .with_context(|| format!("--device {}: allowed: auto, cpu, cuda", a.device))?;
    let device = resnet::device::select(&run)?;
    let b = resnet::data::bench::cifar_augment(device, 50_000, a.batch_size, a.iterations)?;
    let mut rows = vec![b];
    if let Some(f) = &a.folder {
        let root = resnet::data::folder::resolve_root(f, &a.cache_dir)?;
        rows.push(resnet::data::bench::folder_decode(&root, a.workers)?);
    }
    if let Some(f) = &a.stream {
        let root = resnet::data::folder::resolve_root(f, &a.cache_dir)?;
        rows.push(resnet::data::bench::folder_stream(
            &root,
            a.workers,
            a.batch_size.min(64),
            a.iterations.min(20),
            device,
        )?);
    }
    let mut t = resnet::table::Table::new(["what", "images", "seconds", "images/s"]);
    for m in &rows {
        t.push(vec![
            m.what.clone(),
            m.images.to_string(),
            format!("{:.3}", m.seconds),
            format!("{:.0}", m.images_per_s()),
        ]);
    }
    print!("{}", t.to_text());
    Ok(())
}

#[derive(clap::Args)]
struct InfoArgs {
    /// Only the model of this config (default: every model of the paper).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where to write the CSV.
    #[arg(long, default_value = "results/info.csv")]
    csv: PathBuf,
}

fn info(a: InfoArgs) -> Result<()> {
    let models = match &a.config {
        Some(p) => vec![Config::load(p)?.model],
        None => resnet::info::paper_models(),
    };
    let t = resnet::info::table(&models);
    print!("{}", t.to_text());
    println!("\n{}", resnet::info::COUNTING_NOTE);
    t.write_csv(&a.csv)
        .with_context(|| format!("writing {}", a.csv.display()))?;
    println!("wrote {}", a.csv.display());
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info(a),
        Command::Data(DataCommand::Fetch(a)) => data_fetch(a),
        Command::Data(DataCommand::Show(a)) => data_show(a),
        Command::Data(DataCommand::Bench(a)) => data_bench(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
