//! One run's network, flat-buffer SGD, data and schedule on one device (§3.4, §4.2), with a
//! sync-free training step and the test-set evaluation the curves need.
use crate::config::{Config, Precision};
use crate::data::Batch;
use crate::data::{self, DataSource};
use crate::eval;
use crate::net::forward::ForwardMode;
use crate::net::model::ResNet;
use crate::run::checkpoint::{self, MOMENTUM_PREFIX};
use crate::run::state::Accumulators;
use crate::sys::dist::Group;
use crate::sys::graph::CudaGraph;
use crate::train::dist as replica;
use crate::train::optim::FlatSgd;
use crate::train::schedule::Schedule;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Runs `f` (a network's initialization) right after `tch::manual_seed(seed)`, holding a
/// process-wide lock: libtorch's default generator is global, so two runs initializing in parallel
/// threads would otherwise interleave their draws and lose repeatability.
pub fn seeded<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _lock = INIT.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed as i64);
    f()
}

/// One run's network, optimizer, data and schedule on one device.
pub struct Trainer {
    pub cfg: Config,
    pub device: Device,
    pub vs: nn::VarStore,
    pub model: ResNet,
    pub opt: FlatSgd,
    pub data: Box<dyn DataSource>,
    /// Images per class of the data (printed at the start of a run).
    pub class_counts: crate::present::table::Table,
    pub schedule: Schedule,
    pub mode: ForwardMode,
    /// Host-side sums of what has been read from the device.
    pub acc: Accumulators,
    /// Per-step loss (f32) and error count (i64) slots, read by [`Trainer::drain`].
    pub(super) loss_slots: Tensor,
    pub(super) err_slots: Tensor,
    pub(super) pending: usize,
    pub(super) pending_start: u64,
    /// First iteration (0-based) whose loss was NaN or infinite.
    pub first_nonfinite: Option<u64>,
    /// `run.cuda_graph`: the captured step and its static inputs (None: eager steps).
    pub(super) graphed: Option<GraphedStep>,
    /// Data parallelism (src/train/dist.rs): this rank's process group; None for one process.
    /// Set by [`Trainer::join`].
    pub(super) group: Option<Group>,
    /// Whether the data source yields this rank's slice itself ([`DataSource::shard_train`]).
    pub(super) source_sharded: bool,
}

/// Eager steps run on the graph's side stream before the capture (PyTorch's recipe warms up
/// three iterations): cuDNN's benchmark picks its algorithms and lazily created workspaces and
/// buffers exist before the capture, which must not allocate outside its pool or synchronize.
pub const GRAPH_WARMUP_STEPS: u32 = 3;

/// The captured training step of `run.cuda_graph` (see the module doc).
pub(super) struct GraphedStep {
    pub(super) graph: CudaGraph,
    /// Eager warm-up steps still to run before the capture.
    pub(super) warmup_left: u32,
    /// int64 on the device: the batch's parameters ([`DataSource::batch_params`]), then the
    /// metric slot index. Rewritten before every replay; the graph reads it.
    pub(super) inputs: Tensor,
}

impl GraphedStep {
    fn new(device: Device, batch_size: usize, data: &mut dyn DataSource) -> Result<GraphedStep> {
        if !device.is_cuda() {
            bail!(
                "run.cuda_graph = true needs a CUDA device, this run is on {device:?}; set \
                 run.cuda_graph = false"
            );
        }
        let Some(params) = data.batch_params(0, batch_size) else {
            bail!(
                "run.cuda_graph = true needs a dataset held in device memory (cifar10, synthetic, \
                 small-image folders); this one is streamed from disk: set run.cuda_graph = false"
            );
        };
        Ok(GraphedStep {
            graph: CudaGraph::new(device)?,
            warmup_left: GRAPH_WARMUP_STEPS,
            inputs: Tensor::zeros([params.len() as i64 + 1], (Kind::Int64, device)),
        })
    }
}

impl Trainer {
    /// Builds the network (seeded by `run.seed`), the flat-buffer SGD and the data source.
    pub fn new(cfg: &Config, device: Device) -> Result<Trainer> {
        let mode = ForwardMode::of(cfg);
        if cfg.run.precision == Precision::Bf16 {
            if !device.is_cuda() {
                bail!("run.precision = \"bf16\" needs a CUDA device (autocast); use \"fp32\" on the CPU");
            }
            crate::sys::device::use_bf16_autocast();
        }
        let (vs, model) = seeded(cfg.run.seed, || {
            let vs = nn::VarStore::new(device);
            let model = ResNet::new(&vs.root(), &cfg.model);
            (vs, model)
        });
        let o = &cfg.optimizer;
        // The probe pass creates every .grad: eval mode (BN running stats untouched) on zeros.
        let probe = || {
            let x = mode.prepare(Tensor::zeros([2, 3, 32, 32], (Kind::Float, device)));
            mode.run(|| model.forward_t(&x, false))
                .to_kind(Kind::Float)
                .sum(Kind::Float)
                .backward();
        };
        let opt = FlatSgd::new(
            &vs,
            o.lr,
            o.momentum,
            o.weight_decay,
            o.nesterov,
            mode.channels_last,
            probe,
        )?;
        let (mut data, class_counts) = data::open_quiet(cfg, device, false)?;
        if data.num_classes() != cfg.model.classes() {
            bail!(
                "model.classes = {} but the data at {} has {} classes",
                cfg.model.classes(),
                cfg.data.path.display(),
                data.num_classes()
            );
        }
        let cap = cfg.run.log_every.clamp(1, 4096) as i64;
        let graphed = if cfg.run.cuda_graph {
            Some(GraphedStep::new(device, o.batch_size, data.as_mut())?)
        } else {
            None
        };
        Ok(Trainer {
            cfg: cfg.clone(),
            device,
            schedule: Schedule::new(&cfg.schedule, o.lr),
            vs,
            model,
            opt,
            data,
            class_counts,
            mode,
            acc: Accumulators::default(),
            loss_slots: Tensor::zeros([cap], (Kind::Float, device)),
            err_slots: Tensor::zeros([cap], (Kind::Int64, device)),
            pending: 0,
            pending_start: 0,
            first_nonfinite: None,
            graphed,
            group: None,
            source_sharded: false,
        })
    }

    /// One optimizer step on the batch of (0-based) iteration `iteration`: forward, loss,
    /// backward, SGD update, and the step's loss and error count written to a device slot.
    /// No host-device sync (unless the slots are full because nobody called [`Trainer::drain`]
    /// for `run.log_every` steps). With `run.cuda_graph` the same step as a graph replay.
    pub fn step(&mut self, iteration: u64) -> Result<()> {
        if self.pending == self.loss_slots.size()[0] as usize {
            self.drain()?;
        }
        if self.pending == 0 {
            self.pending_start = iteration;
        }
        self.opt.set_lr(self.schedule.lr(iteration));
        match self.graphed.take() {
            None => self.eager_step(iteration)?,
            Some(mut g) => {
                let done = self.graphed_step(&mut g, iteration);
                self.graphed = Some(g);
                done?;
            }
        }
        self.pending += 1;
        Ok(())
    }

    /// Makes this trainer one replica of the data-parallel group `g`: each step trains on its
    /// slice of the global batch (drawn by the source alone when it can) and averages the
    /// gradient over the ranks.
    pub fn join(&mut self, g: Group) {
        self.source_sharded = self.data.shard_train(g.rank(), g.world_size());
        self.group = Some(g);
    }

    /// This rank's process group (None: one process).
    pub fn group(&self) -> Option<&Group> {
        self.group.as_ref()
    }

    /// Whether `run.cuda_graph` is on and its graph has been captured (steps are replays).
    pub fn graph_captured(&self) -> bool {
        self.graphed.as_ref().is_some_and(|g| g.graph.is_captured())
    }

    /// The step as eager tensor work: batch, [`Trainer::train_on`], slot writes.
    pub(super) fn eager_step(&mut self, iteration: u64) -> Result<()> {
        let mut batch = self
            .data
            .train_batch(iteration, self.cfg.optimizer.batch_size)?;
        if let Some(g) = self.group.as_ref().filter(|_| !self.source_sharded) {
            // The global batch a single process draws at this iteration; this rank's slice.
            let (r, w) = (g.rank(), g.world_size());
            batch = Batch {
                images: replica::rank_slice(&batch.images, r, w)?,
                labels: replica::rank_slice(&batch.labels, r, w)?,
            };
        }
        let (loss, wrong) = self.train_on(batch)?;
        let _guard = tch::no_grad_guard();
        let k = self.pending as i64;
        self.loss_slots.get(k).copy_(&loss);
        self.err_slots.get(k).copy_(&wrong);
        Ok(())
    }

    /// Forward, loss, backward and SGD update on `batch`; the step's loss and its number of
    /// misclassified images as device scalars. Device work only (the body of the graph too).
    /// With a process group, the flat gradient is averaged over the ranks before the update
    /// (DistributedDataParallel's one all-reduce a step; not captured: `run.cuda_graph` is
    /// refused for data-parallel runs).
    pub(super) fn train_on(&mut self, batch: Batch) -> Result<(Tensor, Tensor)> {
        let x = self.mode.prepare(batch.images);
        let (logits, loss) = self.mode.run(|| {
            let logits = self.model.forward_t(&x, true);
            let loss = logits
                .to_kind(Kind::Float)
                .cross_entropy_for_logits(&batch.labels);
            (logits, loss)
        });
        loss.backward();
        if let Some(g) = &self.group {
            replica::all_reduce_grads(g, &self.opt)?;
        }
        self.opt.step();
        let _guard = tch::no_grad_guard();
        let wrong = logits
            .argmax(1, false)
            .ne_tensor(&batch.labels)
            .sum(Kind::Int64);
        Ok((loss, wrong))
    }

    /// Reads the pending per-step slots (one sync) into the host accumulators.
    pub fn drain(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let n = self.pending as i64;
        if let Some(g) = &self.group {
            // The global batch's loss (mean of the equal slices' means) and error count.
            let mut l = self.loss_slots.narrow(0, 0, n).contiguous();
            g.all_reduce_mean(&mut l)?;
            let mut e = self.err_slots.narrow(0, 0, n).contiguous();
            g.all_reduce_sum(&mut e)?;
            tch::no_grad(|| {
                self.loss_slots.narrow(0, 0, n).copy_(&l);
                self.err_slots.narrow(0, 0, n).copy_(&e);
            });
        }
        let losses: Vec<f32> =
            Vec::try_from(self.loss_slots.narrow(0, 0, n).to_device(Device::Cpu))?;
        let errs: Vec<i64> = Vec::try_from(self.err_slots.narrow(0, 0, n).to_device(Device::Cpu))?;
        let bs = self.cfg.optimizer.batch_size as u64;
        for (i, (&l, &e)) in losses.iter().zip(&errs).enumerate() {
            if !l.is_finite() && self.first_nonfinite.is_none() {
                self.first_nonfinite = Some(self.pending_start + i as u64);
            }
            let a = &mut self.acc;
            a.loss_sum += l as f64;
            a.errors += e as u64;
            a.images += bs;
            a.steps += 1;
            a.warm_errors += e as u64;
            a.warm_images += bs;
        }
        self.pending = 0;
        Ok(())
    }

    /// Loss and error (percent) on the test/validation split.
    pub fn evaluate(&mut self) -> Result<(f64, f64)> {
        if let Some(g) = &self.group {
            // DDP's broadcast_buffers: every rank evaluates with rank 0's BN running statistics.
            replica::broadcast_buffers(g, &self.vs)?;
            let share = replica::eval_share(self.data.eval_len(), g.rank(), g.world_size());
            let bs = self.cfg.run.eval_batch_size;
            let sums =
                eval::single_crop_sums(&self.model, self.data.as_mut(), bs, self.mode, share)?;
            let mut t = Tensor::from_slice(&sums).to_device(self.device);
            g.all_reduce_sum(&mut t)?;
            let v: Vec<f64> = Vec::try_from(t.to_device(Device::Cpu))?;
            let r = eval::result_of_sums([v[0], v[1], v[2], v[3]])?;
            return Ok((r.loss, r.top1_error));
        }
        let r = eval::evaluate(
            &self.model,
            self.data.as_mut(),
            self.cfg.run.eval_batch_size,
            self.mode,
            &eval::Protocol::SingleCrop,
        )?;
        Ok((r.loss, r.top1_error))
    }

    /// Model tensors (torchvision names, BN running stats included) and momentum buffers, as
    /// stored in a checkpoint.
    pub fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        for s in self.opt.slots() {
            v.push((
                format!("{MOMENTUM_PREFIX}{}", s.name),
                self.opt.momentum_view(s),
            ));
        }
        v
    }

    /// Whether every parameter is finite (one sync).
    pub fn params_finite(&self) -> bool {
        self.opt.flat_params().isfinite().all().int64_value(&[]) != 0
    }

    /// Restores model, momentum and schedule from a checkpoint.
    pub fn restore(&mut self, ck: &checkpoint::Checkpoint, config_path: &Path) -> Result<()> {
        ck.restore_model(&self.vs, &self.cfg.model, config_path)?;
        let started = ck.state.momentum_started;
        self.opt.load_momentum(started, |s| {
            let name = format!("{MOMENTUM_PREFIX}{}", s.name);
            ck.tensors
                .get(&name)
                .map(|t| t.shallow_clone())
                .with_context(|| {
                    format!("checkpoint {}: tensor {name} is missing", ck.path.display())
                })
        })?;
        self.schedule.state = ck.state.schedule.clone();
        self.acc = ck.state.acc.clone();
        Ok(())
    }

    /// Epochs completed after `done` iterations.
    pub fn epoch(&self, done: u64) -> f64 {
        done as f64 * self.cfg.optimizer.batch_size as f64 / self.data.train_len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemoryFormat;
    use crate::run::checkpoint;
    use crate::run::state::TrainState;

    fn tiny() -> Config {
        let mut c = Config::from_toml(
            "name = \"t\"\n[model]\nfamily = \"cifar\"\ndepth = 8\n[data]\ndataset = \"synthetic\"\n\
             [data.synthetic]\ntrain = 64\ntest = 32\nimage_size = 16\n[optimizer]\nbatch_size = 16\n\
             [run]\ndevice = \"cpu\"\nseed = 2\n",
        )
        .unwrap();
        c.schedule.iterations = 100;
        c.schedule.milestones = vec![50, 80];
        c
    }

    #[test]
    fn bf16_needs_cuda() {
        let mut c = tiny();
        c.run.precision = Precision::Bf16;
        let e = Trainer::new(&c, Device::Cpu).err().unwrap();
        assert!(format!("{e}").contains("run.precision = \"bf16\""), "{e}");
    }

    /// Channels-last (weights as strided views of the flat buffer, inputs permuted) computes the
    /// same training steps as NCHW, up to float rounding.
    #[test]
    fn channels_last_trains_like_nchw() {
        let mut a = Trainer::new(&tiny(), Device::Cpu).unwrap();
        let mut c = tiny();
        c.run.memory_format = MemoryFormat::Nhwc;
        let mut b = Trainer::new(&c, Device::Cpu).unwrap();
        // Same start whatever other threads drew from the global generator meanwhile.
        b.vs.copy(&a.vs).unwrap();
        let w = &b.vs.variables()["layer1.0.conv1.weight"];
        assert_eq!(w.stride()[1], 1, "nhwc weight strides {:?}", w.stride());
        for it in 0..3 {
            a.step(it).unwrap();
            b.step(it).unwrap();
        }
        a.drain().unwrap();
        b.drain().unwrap();
        assert_eq!(a.acc.steps, 3);
        assert!(
            (a.acc.loss_sum - b.acc.loss_sum).abs() < 1e-4 * a.acc.loss_sum.abs(),
            "{} vs {}",
            a.acc.loss_sum,
            b.acc.loss_sum
        );
        // Other kernels (and, with tests in parallel, other thread partitions) round differently;
        // three BN training steps amplify that to ~2e-4. A layout bug is far larger.
        let (va, vb) = (a.vs.variables(), b.vs.variables());
        for (n, t) in &va {
            let d = (t - &vb[n]).abs().max().double_value(&[]);
            assert!(d < 1e-3, "{n}: {d}");
        }
        let (la, ea) = a.evaluate().unwrap();
        let (lb, eb) = b.evaluate().unwrap();
        assert!(
            (la - lb).abs() < 1e-4 && (ea - eb).abs() <= 100.0 / 32.0,
            "{la} {lb} {ea} {eb}"
        );
    }

    /// A checkpoint restores parameters, BN statistics and momentum exactly, also across memory
    /// formats (NCHW checkpoint into an NHWC trainer): the next step is the same.
    #[test]
    fn checkpoint_restore_continues_identically_across_memory_formats() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Trainer::new(&tiny(), Device::Cpu).unwrap();
        for it in 0..2 {
            a.step(it).unwrap();
        }
        a.drain().unwrap();
        let state = TrainState {
            format: checkpoint::FORMAT_VERSION,
            iteration: 2,
            seed: 2,
            schedule: a.schedule.state.clone(),
            momentum_started: a.opt.started(),
            acc: a.acc.clone(),
            best_test_error: None,
            best_iteration: 0,
            last_test_error: None,
            last_train_error: None,
            elapsed_s: 0.0,
            last_row: None,
            data_key: None,
        };
        let path = dir.path().join("last.safetensors");
        checkpoint::save_checkpoint(&path, &a.checkpoint_tensors(), &state, Some(&a.cfg)).unwrap();
        let mut c = tiny();
        c.run.memory_format = MemoryFormat::Nhwc;
        let mut b = Trainer::new(&c, Device::Cpu).unwrap();
        let ck = checkpoint::load_checkpoint(&path).unwrap();
        b.restore(&ck, Path::new("config.toml")).unwrap();
        assert_eq!(b.acc, a.acc);
        let (va, vb) = (a.vs.variables(), b.vs.variables());
        for (n, t) in &va {
            assert!(t.equal(&vb[n]), "{n}");
        }
        a.step(2).unwrap();
        b.step(2).unwrap();
        let (va, vb) = (a.vs.variables(), b.vs.variables());
        for (n, t) in &va {
            let d = (t - &vb[n]).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{n}: {d}");
        }
        // Momentum came back too: without it the step would differ by far more.
        let m = &ck.tensors["optimizer.momentum_buffer.fc.weight"];
        assert!(m.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    #[test]
    fn step_without_drain_wraps_through_the_slots() {
        let mut c = tiny();
        c.run.log_every = 2;
        c.run.eval_every = 2;
        c.run.checkpoint_every = 2;
        let mut t = Trainer::new(&c, Device::Cpu).unwrap();
        for it in 0..5 {
            t.step(it).unwrap();
        }
        t.drain().unwrap();
        assert_eq!((t.acc.steps, t.acc.images), (5, 80));
        assert!(t.params_finite() && t.first_nonfinite.is_none());
    }
}
