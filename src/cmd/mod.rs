//! The subcommands of `resnet`, one file each with its clap `Args` and `exec` (as cargo's
//! `src/bin/cargo/commands/`), and what several of them share: the config overrides of the
//! command line, `--device` and thread-count parsing.
use anyhow::{bail, Context, Result};
use resnet::config::{Config, DeviceChoice};
use resnet::run::dir::RunDir;
use std::path::{Path, PathBuf};

pub mod analyze;
pub mod bench;
pub mod compare;
pub mod data;
pub mod data_prepare;
pub mod eval;
pub mod export;
pub mod info;
pub mod report;
pub mod reproduce;
pub mod train;

/// Command-line overrides of a config (`resnet train` and `resnet compare` flags).
/// Command-line overrides of a config (`resnet train` flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub iterations: Option<u64>,
    pub device: Option<DeviceChoice>,
    pub out: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub seed: Option<u64>,
    /// `run.cuda_graph` (e.g. to resume an eager run's checkpoint with the graph, or back).
    pub cuda_graph: Option<bool>,
}

impl Overrides {
    /// Applies the flags, then validates the config again. `--iterations N` also drops the
    /// milestones after N (they would never be reached).
    pub fn apply(&self, cfg: &mut Config) -> Result<()> {
        if let Some(n) = self.iterations {
            cfg.schedule.iterations = n;
            cfg.schedule.milestones.retain(|&m| m <= n);
        }
        if let Some(d) = self.device {
            cfg.run.device = d;
        }
        if let Some(o) = &self.out {
            cfg.run.out_dir = o.clone();
        }
        if let Some(p) = &self.data {
            cfg.data.path = p.clone();
        }
        if let Some(s) = self.seed {
            cfg.run.seed = s;
        }
        if let Some(g) = self.cuda_graph {
            cfg.run.cuda_graph = g;
        }
        cfg.validate()
            .context("after applying the command-line flags")
    }
}

/// Parses a `--device` value.
pub fn parse_device(s: &str) -> Result<DeviceChoice> {
    match s {
        "auto" => Ok(DeviceChoice::Auto),
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" => Ok(DeviceChoice::Cuda),
        other => bail!("--device {other:?}: allowed values are auto, cpu, cuda"),
    }
}

/// The config of `resnet train`: `--config FILE`, or the `config.toml` of the run folder given
/// to `--resume DIR` (whose folder then is the run folder), with the flags applied.
pub fn resolve_config(
    config: Option<&Path>,
    resume_dir: Option<&Path>,
    overrides: &Overrides,
) -> Result<Config> {
    let mut cfg = match (config, resume_dir) {
        (Some(_), Some(d)) => bail!(
            "give either --config FILE (with --resume to continue its run) or --resume {} \
             (which reads that run's config.toml), not both",
            d.display()
        ),
        (Some(c), None) => Config::load(c)?,
        (None, Some(d)) => {
            let mut cfg = Config::load(&RunDir::new(d).config())
                .with_context(|| format!("{} is not a run folder to resume", d.display()))?;
            cfg.run.out_dir = d.to_path_buf();
            cfg
        }
        (None, None) => bail!("resnet train needs --config FILE or --resume RUN_FOLDER"),
    };
    overrides.apply(&mut cfg)?;
    Ok(cfg)
}

/// A count of at least 1.
pub fn positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A thread count: 0 (all cores) to `config::MAX_THREADS`.
pub fn thread_count(s: &str) -> Result<usize, String> {
    let max = resnet::config::MAX_THREADS;
    match s.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(format!("must be in 0..={max} (0 = all cores)")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Config {
        let mut c = Config::from_toml(
            "name = \"t\"\n[model]\nfamily = \"cifar\"\ndepth = 8\n[data]\ndataset = \"synthetic\"\n\
             [run]\ndevice = \"cpu\"\n",
        )
        .unwrap();
        c.schedule.iterations = 100;
        c.schedule.milestones = vec![50, 80];
        c
    }

    #[test]
    fn overrides_apply_and_revalidate() {
        let mut c = tiny();
        let o = Overrides {
            iterations: Some(60),
            seed: Some(9),
            out: Some("elsewhere".into()),
            device: Some(DeviceChoice::Cpu),
            data: Some("d".into()),
            cuda_graph: Some(false),
        };
        o.apply(&mut c).unwrap();
        assert_eq!(c.schedule.iterations, 60);
        assert_eq!(c.schedule.milestones, vec![50]);
        assert_eq!((c.run.seed, c.out_dir()), (9, PathBuf::from("elsewhere")));
        assert_eq!(c.data.path, PathBuf::from("d"));
        let e = Overrides {
            iterations: Some(0),
            ..Default::default()
        }
        .apply(&mut c)
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("schedule.iterations = 0"),
            "{e:#}"
        );
        assert!(parse_device("tpu").is_err());
        let e = resolve_config(
            Some(Path::new("a.toml")),
            Some(Path::new("runs/a")),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{e}").contains("not both"));
    }
}
