//! The `resnet` command line: parses arguments and dispatches, one small function per subcommand.
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use resnet::config::{Config, Kind};
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
    /// Print layers, parameters and multiply-adds per model, beside the paper's Table 1 /
    /// Table 6 figures (and write them as CSV with --csv).
    Info(InfoArgs),
    /// Train one network as in §3.4 / §4.2 into its run folder (config.toml, curves.csv,
    /// summary.csv, last.safetensors); resumable exactly after a crash, Ctrl-C, SIGTERM or
    /// SIGHUP (the last three save a checkpoint first). One process at a time per run folder.
    Train(TrainArgs),
    /// Evaluate a checkpoint (top-1/top-5 error) with the network of the recipe it carries
    /// (older checkpoints: its run's config.toml), one crop, ten crops or multi-scale (§3.4);
    /// appends to the run's eval.csv.
    Eval(EvalArgs),
    /// Training and evaluation images/s of a config's run (steady state after a warm-up), with
    /// the share spent on data; or, with --summarize, the comparison table of collected rows.
    Bench(TrainBenchArgs),
    /// Datasets: download CIFAR-10, check a config's data, measure the loader.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train (or reuse finished runs of) {plain, residual} x depths with one recipe and plot
    /// training/test error against iterations as in the paper's Figure 6.
    Compare(CompareArgs),
    /// Gather finished runs (every RUNS/*/summary.csv) into the paper's Table 6 (CIFAR-10),
    /// Tables 2 and 3 (ImageNet top-1/top-5, 10-crop) and Table 4 (multi-scale testing), ours
    /// beside the paper's numbers, as CSV and Markdown.
    Report(ReportArgs),
    /// Analyses of trained runs (Figure 7's layer responses).
    #[command(subcommand)]
    Analyze(AnalyzeCommand),
}

#[derive(Subcommand)]
enum AnalyzeCommand {
    /// Figure 7 (§4.2): the std of every 3×3 layer's response (after BN, before the ReLU and the
    /// shortcut addition) over the evaluation split, with eval-mode BN. Writes responses.csv
    /// into each run folder and figure7_responses.{csv,svg,png} (all runs, in layer order and
    /// sorted) into --results.
    Responses(ResponsesArgs),
}

#[derive(clap::Args)]
struct ResponsesArgs {
    /// Checkpoints (RUN/last.safetensors) of CIFAR runs, each rebuilt from the recipe it
    /// carries; several are plotted together (`--checkpoint A B` or repeated).
    #[arg(long, required = true, num_args = 1.., action = clap::ArgAction::Append)]
    checkpoint: Vec<PathBuf>,
    /// Where to write figure7_responses.csv, .svg and .png (default: the folder holding the
    /// first checkpoint's run folder, e.g. runs/, so the repository's results/ is only written
    /// when asked, e.g. --results results).
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
}

fn analyze_responses(a: ResponsesArgs) -> Result<()> {
    use resnet::responses;
    let results = a
        .results
        .unwrap_or_else(|| runs_folder_of(&a.checkpoint[0]));
    let out = responses::analyze(&a.checkpoint, &results, &mut |r| {
        resnet::outln!(
            "{} ({}): {} {} images, {} 3x3 layers, mean std {:.4}",
            r.dir.display(),
            r.label,
            r.images,
            r.split,
            r.layers.len(),
            r.mean_std()
        )
    })?;
    resnet::out!("\n{}", responses::summary_table(&out.runs).to_text());
    for f in &out.files {
        resnet::outln!("wrote {}", f.display());
    }
    Ok(())
}

/// The folder holding a checkpoint's run folder (`runs/` for `runs/x/last.safetensors`; `.`
/// when the path has no such parent).
fn runs_folder_of(checkpoint: &std::path::Path) -> PathBuf {
    checkpoint
        .parent()
        .and_then(|run| run.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf()
}

#[derive(clap::Args)]
struct TrainBenchArgs {
    /// The experiment config (TOML): model, data, run.device/precision/memory_format/threads.
    #[arg(long, required_unless_present = "summarize")]
    config: Option<PathBuf>,
    /// Timed training iterations.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    iters: u64,
    /// Untimed iterations before the timing.
    #[arg(long, default_value_t = 20, value_name = "N")]
    warmup: u64,
    /// Test images to time the evaluation on (at least 1).
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = positive_usize)]
    eval_images: usize,
    /// Also time data, forward, backward and optimizer separately (a sync after each).
    #[arg(long)]
    profile: bool,
    /// Override run.device: auto, cpu or cuda.
    #[arg(long)]
    device: Option<String>,
    /// Override run.threads (intra-op CPU threads; 0 = all cores).
    #[arg(long, value_parser = thread_count)]
    threads: Option<usize>,
    /// Name in the `impl` column (`+graph` is appended for the CUDA-graph step).
    #[arg(long, default_value = "ours")]
    label: String,
    /// Which step to time: `off` (eager), `on` (run.cuda_graph), `both`, or `auto` (both on
    /// CUDA, eager on the CPU; the config's run.cuda_graph = true means `on`).
    #[arg(long, default_value = "auto", value_name = "MODE")]
    graph: String,
    /// Also append the CSV row to this file.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Print medians and ratios (ours/typical, ours/careful) of the rows in this CSV file
    /// (as scripts/bench_compare.sh collects them) instead of measuring.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    summarize: Option<PathBuf>,
}

fn bench(a: TrainBenchArgs) -> Result<()> {
    use resnet::bench;
    if let Some(path) = &a.summarize {
        let t = bench::summarize(&bench::read_csv(path)?);
        resnet::out!("{}", t.to_text());
        resnet::outln!(
            "ratios are our fastest variant / that one (above 1: ours is faster); medians over runs"
        );
        return Ok(());
    }
    let path = a.config.as_deref().expect("clap requires --config");
    let cfg = bench::load_config(path, a.device.as_deref(), a.threads)?;
    let mode = bench::StepMode::parse(&a.graph, &cfg)?;
    let mut records = Vec::new();
    for (cfg, label) in bench::variants(&cfg, mode, &a.label) {
        let opts = bench::BenchOptions {
            iters: a.iters,
            warmup: a.warmup,
            eval_images: a.eval_images,
            profile: a.profile,
            label,
        };
        let out = bench::run(&cfg, &opts)?;
        if let Some(p) = &out.profile {
            resnet::errln!("{} (eager phases)", p.to_text());
        }
        resnet::outln!("{}", out.bound_text());
        resnet::outln!(
            "{} [{}, {} data, {} warm-up iterations]",
            out.record.to_text(),
            out.device,
            out.data,
            a.warmup
        );
        if let Some(csv) = &a.csv {
            bench::append_csv(csv, &out.record)?;
        }
        records.push(out.record);
    }
    if let [eager, graph] = records.as_slice() {
        resnet::outln!(
            "graph / eager: {:.2}x training images/s",
            bench::ratio(graph.train_images_per_s, eager.train_images_per_s)
        );
    }
    resnet::outln!("{}", bench::CSV_HEADER);
    for r in &records {
        resnet::outln!("{}", r.to_csv_line());
    }
    Ok(())
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
    /// Folder receiving the archive and cifar-10-batches-bin/: the default data.path of a cifar10
    /// config, and what configs/cifar_*.toml name, when run from the repository's root.
    #[arg(long, default_value = resnet::config::DEFAULT_CIFAR10_DIR)]
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
    /// Images per batch (1 to 65536).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch_size: u32,
    /// Timed batches (at least 1).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    iterations: u64,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Decoding threads (0 = all cores).
    #[arg(long, default_value_t = 0, value_parser = thread_count)]
    workers: usize,
    /// libtorch intra-op threads for the tensor work (0 = libtorch's default, all cores).
    #[arg(long, default_value_t = 0, value_parser = thread_count)]
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

fn data_show(a: ShowArgs) -> Result<()> {
    let cfg = Config::load(&a.config)?;
    let device = resnet::device::select(&cfg.run)?;
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

fn data_bench(a: BenchArgs) -> Result<()> {
    let run: resnet::config::RunConfig =
        toml::from_str(&format!("device = {:?}\nthreads = {}", a.device, a.threads))
            .with_context(|| format!("--device {}: allowed: auto, cpu, cuda", a.device))?;
    let device = resnet::device::select(&run)?;
    let batch_size = a.batch_size as usize;
    let b = resnet::data::bench::cifar_augment(device, 50_000, batch_size, a.iterations)?;
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
            batch_size.min(64),
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
    resnet::out!("{}", t.to_text());
    Ok(())
}

#[derive(clap::Args)]
struct TrainArgs {
    /// The experiment config (TOML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run from its checkpoint: alone with --config, or given the run folder
    /// (`--resume runs/NAME`, which reads that folder's config.toml). The recipe (model, data,
    /// optimizer, schedule, seed) must be the one the checkpoint was trained with (see --change).
    #[arg(long, num_args = 0..=1, value_name = "RUN_FOLDER")]
    resume: Option<Option<PathBuf>>,
    /// Start over in a run folder that holds another run: once the new run has been checked
    /// (config, device, data, model; nothing is deleted if any check fails), deletes the old
    /// run's last.safetensors, curves.csv, summary.csv, eval.csv and changes.csv, and replaces
    /// its config.toml.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// With --resume: let the resume change these recipe keys deliberately (comma separated:
    /// schedule.iterations, schedule.milestones, schedule.gamma, schedule.plateau_patience,
    /// schedule.plateau_threshold, run.eval_every, data.path), e.g. `--resume runs/NAME --iterations 96000
    /// --change schedule.iterations`. Each change is recorded in the run's changes.csv with the
    /// iteration it applies from; without it, a resume whose recipe differs from the
    /// checkpoint's is refused.
    #[arg(long, value_delimiter = ',', value_name = "KEY", requires = "resume")]
    change: Vec<String>,
    /// Override schedule.iterations (milestones after it are dropped).
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// Override run.device: auto, cpu or cuda.
    #[arg(long)]
    device: Option<String>,
    /// Override run.out_dir (the run folder).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Override data.path.
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// Override run.seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override run.cuda_graph (true: replay the training step as one CUDA graph; CUDA only).
    /// Switching it on --resume continues the same run exactly.
    #[arg(long, value_name = "BOOL")]
    cuda_graph: Option<bool>,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// A checkpoint (last.safetensors) inside a run folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Ten-crop testing (Table 3): softmax averaged over 10 crops (ImageNet-style data only).
    #[arg(long, conflicts_with = "multi_scale")]
    ten_crop: bool,
    /// Multi-scale testing (§3.4, Table 4): the whole image (fully convolutional) resized to each
    /// shorter side, and its flip; softmax averaged over all of them. Alone: the paper's
    /// 224,256,384,480,640.
    #[arg(long, value_name = "SIDES", num_args = 0..=1, default_missing_value = "224,256,384,480,640")]
    multi_scale: Option<String>,
    /// Where to append the result (default: eval.csv in the run folder).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Override the recipe's run.device: auto, cpu or cuda (e.g. a GPU run evaluated on a CPU).
    #[arg(long)]
    device: Option<String>,
}

fn train(a: TrainArgs) -> Result<()> {
    use resnet::train;
    let overrides = train::Overrides {
        iterations: a.iterations,
        device: a.device.as_deref().map(train::parse_device).transpose()?,
        out: a.out,
        data: a.data,
        seed: a.seed,
        cuda_graph: a.cuda_graph,
    };
    let resume_dir = a.resume.clone().flatten();
    let cfg = train::resolve_config(a.config.as_deref(), resume_dir.as_deref(), &overrides)?;
    let opts = train::TrainOptions {
        resume: a.resume.is_some(),
        force: a.force,
        progress: true,
        changes: a.change,
    };
    let out = train::run(&cfg, &opts)?;
    if out.interrupted {
        // After SIGHUP the terminal may be gone: a failed print must not turn the saved,
        // interrupted run into a panic.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "resume with: {}",
            train::resume_command(&out.dir)
        );
        std::process::exit(130);
    }
    let s = &out.summary;
    resnet::outln!(
        "{}: {} iterations, final train error {:.2}%, final {} error {:.2}% (best {:.2}% at {}), {:.1} s; wrote {}",
        s.name,
        s.iterations,
        s.final_train_error,
        s.eval_split,
        s.final_test_error,
        s.best_test_error,
        s.best_iteration,
        s.wall_s,
        out.dir.display()
    );
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    use resnet::eval::Protocol;
    let protocol = match (&a.multi_scale, a.ten_crop) {
        (Some(list), _) => Protocol::multi_scale(list)?,
        (None, true) => Protocol::TenCrop,
        (None, false) => Protocol::SingleCrop,
    };
    let opts = resnet::eval::EvalOptions {
        protocol,
        csv: a.csv,
        device: a
            .device
            .as_deref()
            .map(resnet::train::parse_device)
            .transpose()?,
    };
    let out = resnet::eval::measure(&a.checkpoint, &opts)?;
    for n in &out.notes {
        resnet::errln!("{n}");
    }
    let r = &out.row;
    resnet::outln!(
        "{} (iteration {}): {} split, {} images, {} ({} views per image): top-1 error {:.2}%, top-5 error {:.2}%, loss {:.4}",
        r.checkpoint, r.iteration, r.split, r.images, r.protocol, r.crops, r.top1_error, r.top5_error, r.loss
    );
    // The numbers are printed first: a failed write loses nothing that was measured.
    resnet::eval::record(&out)?;
    resnet::outln!("appended to {}", out.csv.display());
    Ok(())
}

#[derive(clap::Args)]
struct InfoArgs {
    /// Only the model of this config (default: every model of the paper).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also write the table as CSV to this file (nothing is written without it).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
}

fn info(a: InfoArgs) -> Result<()> {
    let models = match &a.config {
        Some(p) => vec![Config::load(p)?.model],
        None => resnet::info::paper_models(),
    };
    let t = resnet::info::table(&models);
    resnet::out!("{}", t.to_text());
    resnet::outln!("\n{}", resnet::info::COUNTING_NOTE);
    if let Some(csv) = &a.csv {
        t.write_csv(csv)
            .with_context(|| format!("writing {}", csv.display()))?;
        resnet::outln!("wrote {}", csv.display());
    }
    Ok(())
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Network kinds: `plain`, `resnet` (or `residual`).
    #[arg(required = true, value_parser = kind_arg)]
    kinds: Vec<Kind>,
    /// Depths, comma separated (6n+2 for CIFAR, 18/34/50/101/152 for ImageNet).
    #[arg(long, value_delimiter = ',', default_value = "20,32,44,56")]
    depths: Vec<usize>,
    /// The recipe; its model.kind and model.depth are replaced per grid cell.
    #[arg(long, default_value = "configs/cifar_resnet20.toml")]
    config: PathBuf,
    /// Override schedule.iterations (milestones after it are dropped).
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// Override data.path.
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// Override run.device: auto, cpu or cuda.
    #[arg(long)]
    device: Option<String>,
    /// Override run.seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Train every network once per seed, comma separated (e.g. 0,1,2): one run folder per
    /// seed (compare-<recipe>-<model>-s<seed>); `resnet report` gives best (mean±std) over them.
    #[arg(long, value_delimiter = ',', value_name = "SEEDS")]
    seeds: Vec<u64>,
    /// Folder receiving one run folder per network (compare-<recipe>-<model>).
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Where to write compare-<recipe>.csv, .svg and .png (default: the --out folder, so the
    /// repository's results/ is only written when asked, e.g. --results results).
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Retrain every network, even finished ones.
    #[arg(long)]
    force: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// Train up to N grid cells at once, as child `resnet train` processes (their output in
    /// OUT/.jobs/<name>.log); prints the aggregate training images/s. 1: one after another here.
    #[arg(long, default_value_t = 1, value_name = "N")]
    jobs: usize,
    /// Override run.cuda_graph (replay each training step as one CUDA graph; CUDA only).
    #[arg(long, value_name = "BOOL")]
    cuda_graph: Option<bool>,
}

/// A count of at least 1.
fn positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A thread count: 0 (all cores) to `config::MAX_THREADS`.
fn thread_count(s: &str) -> Result<usize, String> {
    let max = resnet::config::MAX_THREADS;
    match s.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(format!("must be in 0..={max} (0 = all cores)")),
        Err(e) => Err(e.to_string()),
    }
}

fn kind_arg(s: &str) -> Result<Kind, String> {
    resnet::compare::parse_kind(s).map_err(|e| e.to_string())
}

fn compare(a: CompareArgs) -> Result<()> {
    use resnet::train;
    let mut recipe = Config::load(&a.config)?;
    let overrides = train::Overrides {
        iterations: a.iterations,
        device: a.device.as_deref().map(train::parse_device).transpose()?,
        out: None,
        data: a.data,
        seed: a.seed,
        cuda_graph: a.cuda_graph,
    };
    overrides.apply(&mut recipe)?;
    let mut spec = resnet::compare::CompareSpec {
        recipe,
        kinds: a.kinds,
        depths: a.depths,
        seeds: a.seeds,
        results_dir: a.results.unwrap_or_else(|| a.out.clone()),
        runs_dir: a.out,
        force: a.force,
        progress: !a.quiet,
    };
    if a.jobs != 1 {
        compare_jobs(&spec, a.jobs)?;
        // Every cell is finished now: the grid pass below reuses them all.
        spec.force = false;
    }
    let out = resnet::compare::compare(&spec, &mut train::run, &mut |n| resnet::outln!("{n}"))?;
    resnet::out!("\n{}", out.table.to_text());
    for f in [&out.csv, &out.svg, &out.png] {
        resnet::outln!("wrote {}", f.display());
    }
    Ok(())
}

/// `compare --jobs N`: trains the unfinished grid cells as up to N concurrent child processes
/// of this executable (`resnet train --config ...`), then prints their aggregate throughput.
fn compare_jobs(spec: &resnet::compare::CompareSpec, jobs: usize) -> Result<()> {
    use resnet::compare;
    let cells = spec.cells()?;
    let exe = std::env::current_exe().context("cannot locate the resnet executable")?;
    let command = |job: &compare::TrainJob| {
        let mut c = std::process::Command::new(&exe);
        c.args(job.args());
        c
    };
    let r = compare::train_parallel(&cells, spec.force, jobs, &command, &mut |n| {
        resnet::outln!("{n}")
    })?;
    if r.trained > 0 {
        resnet::outln!(
            "{} runs trained with --jobs {jobs} in {:.1} s: {:.1} training images/s together",
            r.trained,
            r.wall_s,
            r.images_per_s()
        );
    }
    Ok(())
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Folder holding one folder per run.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Where to write table6_cifar10.*, runs_cifar10.*, tables2_3_imagenet.*,
    /// table4_imagenet.*, curves_cifar10.*
    /// and report.md (default: the --runs folder, so the repository's results/ is only written
    /// when asked, e.g. --out results).
    #[arg(long, visible_alias = "results", value_name = "DIR")]
    out: Option<PathBuf>,
}

fn report(a: ReportArgs) -> Result<()> {
    let out = a.out.unwrap_or_else(|| a.runs.clone());
    let r = resnet::report::report(&a.runs, &out)?;
    resnet::outln!("{} finished runs under {}\n", r.runs, a.runs.display());
    resnet::outln!("Table 6: CIFAR-10 test error (%)\n{}", r.cifar.to_text());
    resnet::outln!("CIFAR-10 runs, per seed\n{}", r.cifar_runs.to_text());
    resnet::outln!(
        "Tables 2 and 3: ImageNet validation error (%)\n{}",
        r.imagenet.to_text()
    );
    resnet::outln!(
        "Table 4: ImageNet validation error (%), multi-scale testing\n{}",
        r.table4.to_text()
    );
    for f in &r.files {
        resnet::outln!("wrote {}", f.display());
    }
    Ok(())
}

/// Parses the command line; a usage error is printed as one line (clap's message without the
/// usage block) with clap's exit code, `--help` and `--version` as usual.
fn parse_cli() -> Cli {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.to_string();
            let msg: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            resnet::errln!("{}", msg.join(" "));
            std::process::exit(e.exit_code());
        }
    }
}

fn main() {
    let cli = parse_cli();
    let result = match cli.command {
        Command::Info(a) => info(a),
        Command::Train(a) => train(a),
        Command::Eval(a) => eval(a),
        Command::Compare(a) => compare(a),
        Command::Report(a) => report(a),
        Command::Analyze(AnalyzeCommand::Responses(a)) => analyze_responses(a),
        Command::Bench(a) => bench(a),
        Command::Data(DataCommand::Fetch(a)) => data_fetch(a),
        Command::Data(DataCommand::Show(a)) => data_show(a),
        Command::Data(DataCommand::Bench(a)) => data_bench(a),
    };
    if let Err(e) = result {
        // One line whatever the causes hold (a decoder's or the OS's message may span several).
        let msg = format!("{e:#}").replace(['\n', '\r'], " ");
        resnet::errln!("error: {msg}");
        std::process::exit(1);
    }
}
