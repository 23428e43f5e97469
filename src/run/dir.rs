//! The run folder of a training run (§4.2's 64k-iteration runs take hours: they must survive a
//! kill): `config.toml`, `curves.csv`, `summary.csv`, the checkpoint `last.safetensors`,
//! `eval.csv`, `responses.csv`, `changes.csv` (deliberate recipe changes of a resumed run) and
//! `.lock` (one writer at a time). The file names are defined here once; every module uses them.
use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// File names inside a run folder.
pub const CONFIG_FILE: &str = "config.toml";
pub const CURVES_FILE: &str = "curves.csv";
pub const SUMMARY_FILE: &str = "summary.csv";
pub const CHECKPOINT_FILE: &str = "last.safetensors";
pub const EVAL_FILE: &str = "eval.csv";
pub const CHANGES_FILE: &str = "changes.csv";
pub const LOCK_FILE: &str = ".lock";
/// The lock of a folder of runs filled by one `compare` (its `--out`).
pub const RUNS_LOCK_FILE: &str = ".compare.lock";
/// What `resnet train --force` deletes before a new run (`config.toml` is replaced).
pub const FORCE_DELETES: [&str; 5] = [
    CURVES_FILE,
    SUMMARY_FILE,
    CHECKPOINT_FILE,
    EVAL_FILE,
    CHANGES_FILE,
];

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }
    pub fn curves(&self) -> PathBuf {
        self.path.join(CURVES_FILE)
    }
    pub fn summary(&self) -> PathBuf {
        self.path.join(SUMMARY_FILE)
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.path.join(CHECKPOINT_FILE)
    }
    pub fn eval_csv(&self) -> PathBuf {
        self.path.join(EVAL_FILE)
    }

    /// The run files present in the folder (what makes it "hold a run").
    pub fn existing_run_files(&self) -> Vec<&'static str> {
        [CONFIG_FILE, CURVES_FILE, SUMMARY_FILE, CHECKPOINT_FILE]
            .into_iter()
            .filter(|f| self.path.join(f).exists())
            .collect()
    }

    pub fn changes(&self) -> PathBuf {
        self.path.join(CHANGES_FILE)
    }

    /// Refuses a new run in a folder that holds one, unless `force`.
    pub fn check_new_run(&self, force: bool) -> Result<()> {
        let existing = self.existing_run_files();
        if !existing.is_empty() && !force {
            bail!(
                "run folder {} already holds a run ({}); pass --resume to continue it or \
                 --force to start over (deletes its {}), or choose another folder with --out",
                self.path.display(),
                existing.join(", "),
                FORCE_DELETES.join(", ")
            );
        }
        Ok(())
    }

    /// Deletes an old run's files ([`FORCE_DELETES`]) for `--force`.
    pub fn clear_old_run(&self) -> Result<()> {
        for f in FORCE_DELETES {
            let p = self.path.join(f);
            if p.exists() {
                std::fs::remove_file(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        Ok(())
    }

    /// Writes the resolved config (atomically).
    pub fn write_config(&self, cfg: &Config) -> Result<()> {
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("cannot create run folder {}", self.path.display()))?;
        crate::present::table::write_atomic(&self.config(), cfg.to_toml()?.as_bytes())
    }
}

/// The exclusive lock on a run folder (`.lock`, holding the owner's PID): one writer at a time.
/// The kernel releases it when the process ends in any way (`kill -9` included), so a lock is
/// never stale; the file itself stays.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

impl RunLock {
    /// Takes the lock of the existing folder `dir`, or refuses naming the process that holds it.
    /// The lock file is opened without following links, and one that is a link (symbolic or
    /// hard) or not a regular file is refused: its PID is written only into a file of the run
    /// folder's own. Holding the lock, the temporaries of killed writes are removed.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let lock = Self::take(&dir.join(LOCK_FILE), |holder, path| {
            format!(
                "run folder {} is in use by {holder} (lock {}); wait for it to finish or stop \
                 it (Ctrl-C saves a checkpoint) before training into this folder again",
                dir.display(),
                path.display()
            )
        })?;
        crate::sys::atomic::remove_dead_temporaries(dir)?;
        Ok(lock)
    }

    /// Takes the lock of a folder of runs that one `compare` fills (its `--out`; the file
    /// [`RUNS_LOCK_FILE`], the folder created if missing): one compare per folder at a time, so
    /// two never share the child logs of `.jobs/`. Refuses naming the process that holds it.
    pub fn acquire_runs(dir: &Path) -> Result<RunLock> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
        Self::take(&dir.join(RUNS_LOCK_FILE), |holder, path| {
            format!(
                "{} is in use by the compare of {holder} (lock {}): one compare per --out at a \
                 time; wait for it to finish, stop it (Ctrl-C saves its runs' checkpoints) or \
                 choose another --out",
                dir.display(),
                path.display()
            )
        })
    }

    /// Takes the lock file `path` ([`crate::sys::lock::take`]), or fails with
    /// `busy(holder, path)`.
    fn take(path: &Path, busy: impl FnOnce(&str, &Path) -> String) -> Result<RunLock> {
        let file = crate::sys::lock::take(path, busy)?;
        Ok(RunLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One holder at a time; the file names the holder's PID; dropping the lock releases it.
    #[test]
    fn run_lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLock::acquire(dir.path()).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(&held.path).unwrap().trim(), pid);
        let e = format!("{:#}", RunLock::acquire(dir.path()).unwrap_err());
        assert!(e.contains(&format!("in use by process {pid}")), "{e}");
        drop(held);
        RunLock::acquire(dir.path()).unwrap();
    }
}
