//! §4.2 "Analysis of Layer Responses" (Figure 7): the standard deviation of every 3×3 layer's
//! response (its output after BN, before the nonlinearity, and before the shortcut addition in
//! residual blocks) over the evaluation split, in layer order and sorted in descending order.
//!
//! `resnet analyze responses --checkpoint RUN/last.safetensors ...` rebuilds each run's network
//! from the recipe its checkpoint carries (as `resnet eval` does, [`eval::open`]), runs the whole evaluation split through it in
//! eval mode (BN with its running statistics) with the model's response tap
//! ([`ResNet::forward_tapped`]), and keeps exact streaming moments of every response: the std is
//! that of all the response's values (images × channels × positions) over the split, the
//! population std, not an estimate from a sample. It writes `responses.csv` into each run folder,
//! and `figure7_responses.{csv,svg,png}` (all runs, two panels) into the results folder.
use crate::config::{Config, Family, NetKind};
use crate::data::{self, DataSource};
use crate::eval::{self, Opened};
use crate::net::arch::Plan;
use crate::net::forward::ForwardMode;
use crate::net::model::{ResNet, Response};
use crate::present::plot::{self, Line, LineFigure, LinePanel};
use crate::present::table::{write_atomic, Table};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::{Kind as TKind, Tensor};

/// File each run folder receives.
pub const RESPONSES_FILE: &str = "responses.csv";
/// Header of `responses.csv` (and of the combined `figure7_responses.csv`).
pub const RESPONSES_HEADER: [&str; 4] = ["run", "layer", "name", "std"];

/// Exact running mean and sum of squared deviations of every value of a stream of tensors,
/// merged batch by batch (Chan, Golub and LeVeque's pairwise update), in float64 on the tensors'
/// device (no host sync per batch).
#[derive(Debug, Default)]
pub struct Moments {
    count: f64,
    /// Scalar float64 tensors; `None` before the first batch.
    mean: Option<Tensor>,
    m2: Option<Tensor>,
}

impl Moments {
    /// Adds every value of `x`.
    pub fn add(&mut self, x: &Tensor) {
        let n = x.numel() as f64;
        if n == 0.0 {
            return;
        }
        let x = x.to_kind(TKind::Double);
        let mean_b = x.mean(TKind::Double);
        let m2_b = (&x - &mean_b).square().sum(TKind::Double);
        match (self.mean.take(), self.m2.take()) {
            (Some(mean), Some(m2)) => {
                let total = self.count + n;
                let delta = &mean_b - &mean;
                self.mean = Some(mean + &delta * (n / total));
                self.m2 = Some(m2 + m2_b + delta.square() * (self.count * n / total));
                self.count = total;
            }
            _ => {
                self.mean = Some(mean_b);
                self.m2 = Some(m2_b);
                self.count = n;
            }
        }
    }

    /// Values seen.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Population standard deviation of every value seen (NaN before any).
    pub fn std(&self) -> f64 {
        match &self.m2 {
            Some(m2) => (m2.double_value(&[]) / self.count).sqrt(),
            None => f64::NAN,
        }
    }
}

/// One 3×3 layer's response std; `index` counts the 3×3 layers from 1 in forward order (the x
/// axis of Figure 7's top panel).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStd {
    pub index: usize,
    pub name: String,
    pub std: f64,
}

/// Names of the 3×3 main-path layers of `plan` in forward order: Figure 7's layers (6n+1 for a
/// CIFAR net: the first conv and both convs of every block). An error when there are none.
pub fn layers_3x3(plan: &Plan) -> Result<Vec<String>> {
    let names: Vec<String> = plan
        .layers(plan.nominal_input())
        .into_iter()
        .filter(|l| l.weighted && l.name != "fc" && l.kernel == 3)
        .map(|l| l.name)
        .collect();
    if names.is_empty() {
        bail!("the network has no 3×3 layers, so there are no responses to measure (Figure 7)");
    }
    Ok(names)
}

/// Std of every 3×3 layer response of `model` over the evaluation split of `data` (eval-mode
/// BN), in forward order.
pub fn layer_stds(
    model: &ResNet,
    data: &mut dyn DataSource,
    batch_size: usize,
    mode: ForwardMode,
) -> Result<Vec<LayerStd>> {
    let _guard = tch::no_grad_guard();
    let mut names: Vec<String> = Vec::new();
    let mut moments: Vec<Moments> = Vec::new();
    let mut first = true;
    for b in data.eval_batches(batch_size)? {
        let x = mode.prepare(b?.images);
        let mut k = 0;
        let mut mismatch = None;
        let mut tap = |r: Response| {
            if r.kernel != 3 {
                return;
            }
            if first {
                names.push(r.name.to_string());
                moments.push(Moments::default());
            } else if names.get(k).map(String::as_str) != Some(r.name) {
                mismatch.get_or_insert_with(|| r.name.to_string());
                return;
            }
            moments[k].add(r.output);
            k += 1;
        };
        let _logits = mode.run(|| model.forward_tapped(&x, false, &mut tap));
        if let Some(name) = mismatch {
            bail!("layer {name} reported out of order by the forward pass");
        }
        first = false;
    }
    if first {
        bail!("the evaluation split is empty");
    }
    Ok(names
        .into_iter()
        .zip(&moments)
        .enumerate()
        .map(|(i, (name, m))| LayerStd {
            index: i + 1,
            name,
            std: m.std(),
        })
        .collect())
}

/// One run's measured responses.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResponses {
    /// The run folder and its name (the `run` column).
    pub dir: PathBuf,
    pub run: String,
    /// The paper's legend name (`plain-20`, `ResNet-56`), made unique among the runs shown.
    pub label: String,
    pub kind: NetKind,
    pub depth: usize,
    pub split: String,
    pub images: usize,
    pub layers: Vec<LayerStd>,
}

impl RunResponses {
    /// Mean of the layers' stds.
    pub fn mean_std(&self) -> f64 {
        self.layers.iter().map(|l| l.std).sum::<f64>() / self.layers.len().max(1) as f64
    }

    /// The stds sorted in descending order (Figure 7's bottom panel).
    pub fn sorted(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.layers.iter().map(|l| l.std).collect();
        v.sort_by(|a, b| b.total_cmp(a));
        v
    }
}

/// The rows of `responses.csv` for `runs`: run, layer index, layer name, std.
pub fn csv_table(runs: &[RunResponses]) -> Table {
    let mut t = Table::new(RESPONSES_HEADER);
    for r in runs {
        for l in &r.layers {
            t.push(vec![
                r.run.clone(),
                l.index.to_string(),
                l.name.clone(),
                l.std.to_string(),
            ]);
        }
    }
    t
}

/// One line per run in `order`, coloured by depth; plain nets dashed.
fn lines(
    runs: &[RunResponses],
    order: &[usize],
    points: impl Fn(&RunResponses) -> Vec<f64>,
) -> Vec<Line> {
    let mut depths: Vec<usize> = runs.iter().map(|r| r.depth).collect();
    depths.sort_unstable();
    depths.dedup();
    order
        .iter()
        .map(|&i| {
            let r = &runs[i];
            let k = depths.iter().position(|&d| d == r.depth).unwrap_or(0);
            Line {
                label: r.label.clone(),
                color: plot::PALETTE[k % plot::PALETTE.len()].to_string(),
                dashed: r.kind == NetKind::Plain,
                points: points(r)
                    .into_iter()
                    .enumerate()
                    .map(|(j, s)| ((j + 1) as f64, s))
                    .collect(),
            }
        })
        .collect()
}

/// Figure 7: std against layer index (original order) and against rank (sorted by magnitude),
/// one line per run, plain nets first then ResNets, by depth, as in the paper's legend.
pub fn figure(runs: &[RunResponses], title: &str) -> LineFigure {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| (runs[i].kind != NetKind::Plain, runs[i].depth));
    let panel = |title: &str, x_label: &str, lines| LinePanel {
        title: title.into(),
        x_label: x_label.into(),
        y_label: "std".into(),
        lines,
    };
    LineFigure {
        title: title.into(),
        panels: vec![
            panel(
                "layer order",
                "layer index (original)",
                lines(runs, &order, |r| r.layers.iter().map(|l| l.std).collect()),
            ),
            panel(
                "sorted",
                "layer index (sorted by magnitude)",
                lines(runs, &order, RunResponses::sorted),
            ),
        ],
        note: "std of each 3×3 layer's output after BN, before the ReLU and the addition; \
               dashed: plain nets"
            .into(),
    }
}

/// A checkpoint to analyse, checked: the checkpoint with its recipe, and its run folder.
pub struct Target {
    pub opened: Opened,
    pub dir: PathBuf,
}

/// Checks every checkpoint before anything runs: it reads, with its recipe (embedded, or the
/// `config.toml` beside an older one); the network is a CIFAR net (Figure 7 is a CIFAR-10
/// analysis) with 3×3 layers; and no two checkpoints share a run folder (each folder receives
/// one `responses.csv`).
pub fn check(checkpoints: &[PathBuf]) -> Result<Vec<Target>> {
    if checkpoints.is_empty() {
        bail!("analyze responses needs at least one --checkpoint");
    }
    let mut targets: Vec<Target> = Vec::new();
    for ck in checkpoints {
        let opened = eval::open(ck)?;
        let model = &opened.cfg.model;
        if model.family != Family::Cifar {
            bail!(
                "checkpoint {}: model.family = \"imagenet\"; Figure 7 analyses the CIFAR-10 nets \
                 of §4.2 (model.family = \"cifar\")",
                ck.display()
            );
        }
        layers_3x3(&Plan::new(model)).with_context(|| format!("checkpoint {}", ck.display()))?;
        let dir = opened.dir.path.clone();
        if let Some(other) = targets.iter().find(|t| t.dir == dir) {
            bail!(
                "{} and {} are in the same run folder {}, which receives one {RESPONSES_FILE}",
                other.opened.checkpoint.display(),
                ck.display(),
                dir.display()
            );
        }
        targets.push(Target { opened, dir });
    }
    Ok(targets)
}

/// The paper's name for a network: `plain-20`, `ResNet-56`.
fn legend_name(cfg: &Config) -> String {
    match cfg.model.kind {
        NetKind::Plain => format!("plain-{}", cfg.model.depth),
        NetKind::Residual => format!("ResNet-{}", cfg.model.depth),
    }
}

/// Measures one checked run: its network from the checkpoint, its evaluation split.
pub fn measure(t: &mut Target) -> Result<RunResponses> {
    let (device, _vs, model) = t.opened.restore(None)?;
    let cfg = &t.opened.cfg;
    let (mut data, _) = data::open_quiet(cfg, device, false)?;
    let layers = layer_stds(
        &model,
        data.as_mut(),
        cfg.run.eval_batch_size,
        ForwardMode::of(cfg),
    )?;
    // The forward pass must report exactly the plan's 3×3 layers.
    let want = layers_3x3(&model.plan)?;
    let got: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    if got != want {
        bail!("the forward pass reported the 3×3 layers {got:?}, the plan has {want:?}");
    }
    Ok(RunResponses {
        run: t
            .dir
            .canonicalize()
            .unwrap_or_else(|_| t.dir.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| cfg.name.clone()),
        dir: t.dir.clone(),
        label: legend_name(cfg),
        kind: cfg.model.kind,
        depth: cfg.model.depth,
        split: data.eval_split().to_string(),
        images: data.eval_len(),
        layers,
    })
}

/// Makes the legend labels unique: a repeated `ResNet-20` gets its run name in brackets.
fn unique_labels(runs: &mut [RunResponses]) {
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    for r in runs.iter_mut() {
        if labels.iter().filter(|l| **l == r.label).count() > 1 {
            r.label = format!("{} ({})", r.label, r.run);
        }
    }
}

/// Per run: net, 3×3 layers, mean, largest and smallest std (for the terminal and reports).
pub fn summary_table(runs: &[RunResponses]) -> Table {
    let mut t = Table::new([
        "run", "net", "split", "layers", "mean_std", "max_std", "min_std",
    ]);
    for r in runs {
        let sorted = r.sorted();
        t.push(vec![
            r.run.clone(),
            r.label.clone(),
            r.split.clone(),
            r.layers.len().to_string(),
            format!("{:.4}", r.mean_std()),
            format!("{:.4}", sorted.first().copied().unwrap_or(f64::NAN)),
            format!("{:.4}", sorted.last().copied().unwrap_or(f64::NAN)),
        ]);
    }
    t
}

/// What `analyze responses` measured and wrote.
#[derive(Debug, Clone)]
pub struct ResponsesOutput {
    pub runs: Vec<RunResponses>,
    pub files: Vec<PathBuf>,
}

/// `resnet analyze responses`: checks every checkpoint, measures every run, then writes each
/// run's `responses.csv` and `figure7_responses.{csv,svg,png}` under `results_dir` (nothing is
/// written unless every run was measured).
pub fn analyze(
    checkpoints: &[PathBuf],
    results_dir: &Path,
    note: &mut dyn FnMut(&RunResponses),
) -> Result<ResponsesOutput> {
    let mut targets = check(checkpoints)?;
    let mut runs = Vec::new();
    for t in &mut targets {
        let r = measure(t).with_context(|| format!("{}", t.opened.checkpoint.display()))?;
        note(&r);
        runs.push(r);
    }
    unique_labels(&mut runs);
    // Everything is rendered before the first file is written, so a failure leaves no run
    // folder with a responses.csv of a figure that never came.
    let split = &runs[0].split;
    let title = format!("Standard deviations of layer responses ({split} split), as in Figure 7");
    let svg_text = plot::lines_to_svg(&figure(&runs, &title));
    let png_bytes = plot::svg_to_png(&svg_text, 2.0)?;
    let mut files = Vec::new();
    for r in &runs {
        let p = r.dir.join(RESPONSES_FILE);
        csv_table(std::slice::from_ref(r))
            .write_csv(&p)
            .with_context(|| format!("writing {}", p.display()))?;
        files.push(p);
    }
    let stem = results_dir.join("figure7_responses");
    let csv = stem.with_extension("csv");
    csv_table(&runs)
        .write_csv(&csv)
        .with_context(|| format!("writing {}", csv.display()))?;
    let svg = stem.with_extension("svg");
    write_atomic(&svg, svg_text.as_bytes())?;
    let png = stem.with_extension("png");
    write_atomic(&png, &png_bytes)?;
    files.extend([csv, svg, png]);
    Ok(ResponsesOutput { runs, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Augment, ModelConfig};
    use crate::data::{synthetic, InMemory};
    use tch::{nn, Device};

    fn cpu() -> (TKind, Device) {
        (TKind::Float, Device::Cpu)
    }

    #[test]
    fn streaming_moments_equal_the_std_of_everything_at_once() {
        tch::manual_seed(1);
        // Far from zero, in uneven pieces: the merge must not lose precision.
        let parts: Vec<Tensor> = [7, 1, 300, 64]
            .iter()
            .map(|&n| Tensor::randn([n, 3, 5], cpu()) * 2.0 + 1000.0)
            .collect();
        let mut m = Moments::default();
        for p in &parts {
            m.add(p);
        }
        m.add(&Tensor::zeros([0, 3], cpu()));
        let all = Tensor::cat(&parts, 0).to_kind(TKind::Double);
        let want = all.std(false).double_value(&[]);
        assert_eq!(m.count(), all.numel() as f64);
        assert!(
            (m.std() - want).abs() < 1e-10 * want,
            "{} vs {want}",
            m.std()
        );
        assert!(Moments::default().std().is_nan());
    }

    #[test]
    fn three_by_three_layers_of_a_plan() {
        let plan = Plan::new(&ModelConfig::cifar(20, NetKind::Plain));
        let names = layers_3x3(&plan).unwrap();
        assert_eq!(names.len(), 19);
        assert_eq!(
            (&names[0][..], &names[1][..], &names[18][..]),
            ("conv1", "layer1.0.conv1", "layer3.2.conv2")
        );
        // ImageNet bottleneck nets: only the middle conv of each block (the stem is 7×7).
        let r50 = Plan::new(&ModelConfig::imagenet(
            50,
            NetKind::Residual,
            crate::config::Shortcut::B,
        ));
        assert_eq!(layers_3x3(&r50).unwrap().len(), 16);
        // A network without 3×3 layers: a 7×7 stem and no blocks.
        let bare = Plan {
            stages: vec![],
            ..r50
        };
        let e = format!("{:#}", layers_3x3(&bare).unwrap_err());
        assert!(e.contains("no 3×3 layers"), "{e}");
    }

    /// A tiny CIFAR net with BN statistics and affine parameters away from 0/1.
    fn tiny(kind: NetKind) -> (nn::VarStore, ResNet) {
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), &ModelConfig::cifar(8, kind));
        let _g = tch::no_grad_guard();
        for (name, mut v) in vs.variables() {
            if name.contains("bn") {
                let r = Tensor::rand_like(&v);
                let shift = if name.ends_with("var") || name.ends_with("weight") {
                    0.5
                } else {
                    -0.5
                };
                v.copy_(&(r + shift));
            }
        }
        (vs, net)
    }

    #[test]
    fn layer_stds_are_exact_over_the_split_in_uneven_batches() {
        let (_vs, net) = tiny(NetKind::Residual);
        let mut data = InMemory::new(
            synthetic::generate(10, 20, 37, 8, 2),
            Augment::None,
            0,
            2,
            Device::Cpu,
        )
        .unwrap();
        let nchw = ForwardMode {
            channels_last: false,
            bf16_autocast: false,
        };
        let got = layer_stds(&net, &mut data, 8, nchw).unwrap();
        // Directly: the whole split in one forward pass, every response kept, std at once.
        let x = Tensor::cat(
            &data
                .eval_batches(1000)
                .unwrap()
                .map(|b| b.unwrap().images)
                .collect::<Vec<_>>(),
            0,
        );
        assert_eq!(x.size()[0], 37);
        let mut want: Vec<(String, f64)> = Vec::new();
        let _g = tch::no_grad_guard();
        let _logits = net.forward_tapped(&x, false, &mut |r: Response| {
            if r.kernel == 3 {
                let s = r.output.to_kind(TKind::Double).std(false).double_value(&[]);
                want.push((r.name.to_string(), s));
            }
        });
        assert_eq!(got.len(), 7);
        for (g, (i, (name, s))) in got.iter().zip(want.iter().enumerate()) {
            assert_eq!((g.index, &g.name), (i + 1, name));
            assert!((g.std - s).abs() < 1e-9 * s, "{name}: {} vs {s}", g.std);
        }
        // Channels-last inputs measure the same responses.
        let nhwc = ForwardMode {
            channels_last: true,
            ..nchw
        };
        for (a, b) in layer_stds(&net, &mut data, 16, nhwc)
            .unwrap()
            .iter()
            .zip(&got)
        {
            assert!((a.std - b.std).abs() < 1e-4 * b.std, "{a:?} {b:?}");
        }
    }

    fn run(label: &str, kind: NetKind, depth: usize, stds: &[f64]) -> RunResponses {
        RunResponses {
            dir: PathBuf::from(label),
            run: label.to_lowercase(),
            label: label.into(),
            kind,
            depth,
            split: "test".into(),
            images: 10,
            layers: stds
                .iter()
                .enumerate()
                .map(|(i, &s)| LayerStd {
                    index: i + 1,
                    name: format!("l{i}"),
                    std: s,
                })
                .collect(),
        }
    }

    #[test]
    fn figure_has_one_line_per_run_in_each_panel_plain_dashed_and_sorted_descending() {
        let runs = vec![
            run("ResNet-56", NetKind::Residual, 56, &[0.5, 0.9, 0.2, 0.4]),
            run("plain-20", NetKind::Plain, 20, &[1.0, 2.0, 1.5]),
            run("ResNet-20", NetKind::Residual, 20, &[0.8, 0.6, 1.1]),
        ];
        let fig = figure(&runs, "t");
        assert_eq!(fig.panels.len(), 2);
        for p in &fig.panels {
            let labels: Vec<&str> = p.lines.iter().map(|l| l.label.as_str()).collect();
            assert_eq!(labels, ["plain-20", "ResNet-20", "ResNet-56"]);
            assert_eq!(
                p.lines.iter().map(|l| l.dashed).collect::<Vec<_>>(),
                [true, false, false]
            );
        }
        // Same colour for the same depth, plain or not.
        assert_eq!(fig.panels[0].lines[0].color, fig.panels[0].lines[1].color);
        assert_ne!(fig.panels[0].lines[1].color, fig.panels[0].lines[2].color);
        assert_eq!(
            fig.panels[0].lines[2].points,
            vec![(1.0, 0.5), (2.0, 0.9), (3.0, 0.2), (4.0, 0.4)]
        );
        assert_eq!(
            fig.panels[1].lines[2].points,
            vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.4), (4.0, 0.2)]
        );
        let svg = plot::lines_to_svg(&fig);
        assert_eq!(svg.matches(r#"<g class="panel">"#).count(), 2);
        assert_eq!(svg.matches(r#"class="line""#).count(), 2 * runs.len());
        assert_eq!(svg.matches("stroke-dasharray").count(), 2 * 2);
        for label in ["plain-20", "ResNet-20", "ResNet-56"] {
            assert_eq!(svg.matches(&format!(">{label}</text>")).count(), 2);
        }
        assert!(svg.contains("layer index (sorted by magnitude)") && svg.contains(">std</text>"));
        // y from 0 to a round value above the largest std (2.0).
        let png = plot::svg_to_png(&svg, 1.0).unwrap();
        assert!(image::load_from_memory(&png).is_ok());
        assert_eq!(runs[2].mean_std(), (0.8 + 0.6 + 1.1) / 3.0);
    }

    #[test]
    fn csv_rows_and_unique_labels() {
        let mut runs = vec![
            run("ResNet-20", NetKind::Residual, 20, &[0.5, 0.25]),
            run("ResNet-20", NetKind::Residual, 20, &[0.75]),
        ];
        runs[1].run = "seed1".into();
        unique_labels(&mut runs);
        assert_eq!(runs[1].label, "ResNet-20 (seed1)");
        let t = csv_table(&runs);
        assert_eq!(t.headers, RESPONSES_HEADER);
        assert_eq!(
            t.rows,
            vec![
                vec!["resnet-20", "1", "l0", "0.5"],
                vec!["resnet-20", "2", "l1", "0.25"],
                vec!["seed1", "1", "l0", "0.75"],
            ]
        );
    }

    /// A checkpoint (no tensors: `check` builds no network) carrying the recipe of a `family`
    /// net, in its own run folder `dir`.
    fn write_run(dir: &Path, family: &str, depth: usize) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let cfg = Config::from_toml(&format!(
            "name = \"x\"\n[model]\nfamily = \"{family}\"\ndepth = {depth}\nclasses = 10\n"
        ))
        .unwrap();
        let state = crate::run::state::TrainState::initial(&cfg);
        let ck = dir.join("last.safetensors");
        crate::run::checkpoint::save_checkpoint(&ck, &[], &state, Some(&cfg)).unwrap();
        ck
    }

    /// The error `check` gives (which must fail).
    fn check_err(checkpoints: &[PathBuf]) -> anyhow::Error {
        check(checkpoints).err().expect("check should fail")
    }

    #[test]
    fn check_names_what_cannot_be_analysed_before_anything_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let cifar = write_run(&tmp.path().join("c"), "cifar", 20);
        let imagenet = write_run(&tmp.path().join("i"), "imagenet", 18);
        assert_eq!(check(std::slice::from_ref(&cifar)).unwrap().len(), 1);
        let e = format!("{:#}", check_err(&[cifar.clone(), imagenet]));
        assert!(
            e.contains("i/last.safetensors") && e.contains("model.family = \"imagenet\""),
            "{e}"
        );
        let e = format!("{:#}", check_err(&[cifar.clone(), cifar.clone()]));
        assert!(e.contains("same run folder"), "{e}");
        let e = format!(
            "{:#}",
            check_err(&[tmp.path().join("none/last.safetensors")])
        );
        assert!(e.contains("does not exist"), "{e}");
        std::fs::write(&cifar, b"not a checkpoint").unwrap();
        let e = format!("{:#}", check_err(&[cifar]));
        assert!(
            e.contains("c/last.safetensors is truncated or corrupt"),
            "{e}"
        );
        assert!(format!("{:#}", check_err(&[])).contains("--checkpoint"));
    }
}
