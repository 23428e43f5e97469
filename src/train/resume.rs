//! The checks of a resume (§4.2's long runs continue exactly after a kill): the checkpoint's
//! recipe against the config (seed, length, deliberate `--change`s), its tensors restored, the
//! curves read up to its iteration.
use super::trainer::*;
use super::*;
use crate::config::{Config, RecipeChange};
use crate::run::checkpoint::{self, describe_model, Checkpoint};
use crate::run::dir::{self, RunDir, CHANGES_FILE};
use crate::run::records::{CurvesWriter, ResumedCurves};
use crate::run::state::TrainState;
use anyhow::{bail, Context, Result};
use std::path::Path;

pub(super) struct Resume {
    pub(super) state: TrainState,
    pub(super) curves: ResumedCurves,
    /// Deliberate recipe changes (`--change`), applying from `state.iteration` on.
    pub(super) changes: Vec<RecipeChange>,
}

/// How a planned run starts.
pub(super) enum Start {
    /// From iteration 0; `clear`: delete an old run's files first (`--force`, or a resume that
    /// found no checkpoint).
    Fresh { clear: bool },
    /// From the checkpoint, already restored into the trainer.
    Resume(Box<Resume>),
}

/// Recipe keys that `--change KEY` lets a resume alter (the run's length and learning-rate
/// schedule, where the same data now lives, what the data holds: `data.content`, the key of its
/// images and labels, and the number of data-parallel ranks: the same global batch, BN
/// statistics over other slices); a change of anything else in the recipe makes another run.
pub const CHANGEABLE_ON_RESUME: [&str; 9] = [
    "data.content",
    "data.path",
    "schedule.iterations",
    "schedule.milestones",
    "schedule.gamma",
    "schedule.plateau_patience",
    "schedule.plateau_threshold",
    "run.eval_every",
    "run.world_size",
];

/// The resume half of [`prepare`]: the checkpoint is loaded, its recipe compared with `cfg`,
/// its tensors restored into `tr`, and the curves read up to its iteration.
pub(super) fn prepare_resume(
    cfg: &Config,
    dir: &RunDir,
    opts: &TrainOptions,
    tr: &mut Trainer,
    notes: &mut Vec<String>,
) -> Result<Start> {
    if !dir.checkpoint().exists() {
        // Rows before a first checkpoint are recomputed identically; finished records are not.
        let records: Vec<&str> = [dir::SUMMARY_FILE, dir::EVAL_FILE, CHANGES_FILE]
            .into_iter()
            .filter(|f| dir.path.join(f).exists())
            .collect();
        if !records.is_empty() {
            bail!(
                "cannot resume {}: it holds {} but no checkpoint {} to continue from; start over \
                 with --force (deletes them) or choose another folder with --out",
                dir.path.display(),
                records.join(", "),
                dir::CHECKPOINT_FILE
            );
        }
        notes.push(format!(
            "no checkpoint in {} yet: starting from iteration 0",
            dir.path.display()
        ));
        return Ok(Start::Fresh { clear: true });
    }
    let ck = checkpoint::load_checkpoint(&dir.checkpoint())?;
    let recorded = recorded_recipe(&ck, dir, notes)?;
    check_seed(cfg, &ck)?;
    check_length(cfg, &ck)?;
    let mut changes = recorded.recipe_changes(cfg);
    let data_key = tr.data.content_key().to_string();
    changes.extend(data_change(&ck, &data_key, notes));
    changes.sort_by(|a, b| a.key.cmp(&b.key));
    check_changes(&changes, opts, &recorded, cfg, &ck)?;
    tr.restore(&ck, &dir.config())?;
    let curves =
        CurvesWriter::check_resume_at(&dir.curves(), ck.state.iteration, ck.state.last_row)?;
    notes.push(format!(
        "resuming {} at iteration {}",
        dir.path.display(),
        ck.state.iteration
    ));
    for c in &changes {
        notes.push(format!(
            "from iteration {}: {c} (recorded in {})",
            ck.state.iteration,
            dir.changes().display()
        ));
    }
    let mut state = ck.state;
    if !data_key.is_empty() {
        state.data_key = Some(data_key);
    }
    Ok(Start::Resume(Box::new(Resume {
        state,
        curves,
        changes,
    })))
}

/// The change of the training data's content key since the checkpoint (`data.content`), if it
/// changed. A checkpoint from before the key was stored is accepted with a note (the next
/// checkpoint records it).
fn data_change(ck: &Checkpoint, key: &str, notes: &mut Vec<String>) -> Option<RecipeChange> {
    match &ck.state.data_key {
        None if !key.is_empty() => {
            notes.push(format!(
                "note: checkpoint {} records no data content key (written by an earlier \
                 version): the data cannot be compared this time; the next checkpoint records \
                 its key {key}",
                ck.path.display()
            ));
            None
        }
        Some(old) if !key.is_empty() && old != key => Some(RecipeChange {
            key: "data.content".into(),
            old: old.clone(),
            new: key.to_string(),
        }),
        _ => None,
    }
}

/// The recipe the checkpoint was trained with: its embedded config, or for a checkpoint written
/// before configs were embedded, the `config.toml` beside it (with a note saying so).
pub(super) fn recorded_recipe(
    ck: &Checkpoint,
    dir: &RunDir,
    notes: &mut Vec<String>,
) -> Result<Config> {
    if let Some(c) = &ck.config {
        return Ok(c.clone());
    }
    let c = Config::load(&dir.config()).with_context(|| {
        format!(
            "checkpoint {} has no embedded config (an older checkpoint) and the run's config \
             cannot be read",
            ck.path.display()
        )
    })?;
    notes.push(format!(
        "note: checkpoint {} has no embedded config (written by an earlier version); its recipe \
         is taken from {} (the next checkpoint embeds it)",
        ck.path.display(),
        dir.config().display()
    ));
    Ok(c)
}

pub(super) fn check_seed(cfg: &Config, ck: &Checkpoint) -> Result<()> {
    if ck.state.seed != cfg.run.seed {
        bail!(
            "run.seed = {} but the checkpoint {} was trained with seed {}; resume with \
             --seed {} (or start over with --force)",
            cfg.run.seed,
            ck.path.display(),
            ck.state.seed,
            ck.state.seed
        );
    }
    Ok(())
}

pub(super) fn check_length(cfg: &Config, ck: &Checkpoint) -> Result<()> {
    if ck.state.iteration > cfg.schedule.iterations {
        bail!(
            "the checkpoint {} is at iteration {} but schedule.iterations = {}: a run cannot \
             end before its checkpoint (to train further: --iterations N with N >= {} and \
             --change schedule.iterations)",
            ck.path.display(),
            ck.state.iteration,
            cfg.schedule.iterations,
            ck.state.iteration
        );
    }
    Ok(())
}

/// Refuses recipe changes that `opts.changes` does not name, in one line listing every
/// differing key and the way out.
pub(super) fn check_changes(
    changes: &[RecipeChange],
    opts: &TrainOptions,
    recorded: &Config,
    cfg: &Config,
    ck: &Checkpoint,
) -> Result<()> {
    let refused: Vec<&RecipeChange> = changes
        .iter()
        .filter(|c| !opts.changes.contains(&c.key))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let list = refused
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let (was, is) = (describe_model(&recorded.model), describe_model(&cfg.model));
    let models = if was == is {
        String::new()
    } else {
        format!(" (checkpoint is {was}, config is {is})")
    };
    let it = ck.state.iteration;
    let way = if refused
        .iter()
        .all(|c| CHANGEABLE_ON_RESUME.contains(&c.key.as_str()))
    {
        let keys: Vec<&str> = refused.iter().map(|c| c.key.as_str()).collect();
        format!(
            "to make {} deliberately from iteration {it} on, add --change {} (recorded in {})",
            if keys.len() == 1 {
                "this change"
            } else {
                "these changes"
            },
            keys.join(","),
            CHANGES_FILE
        )
    } else {
        "another recipe is another run: start over with --force or choose another folder \
         with --out"
            .to_string()
    };
    bail!(
        "cannot resume {}: its checkpoint (iteration {it}) was trained with another recipe: \
         {list}{models}; {way}",
        ck.path.parent().unwrap_or(Path::new(".")).display()
    )
}
