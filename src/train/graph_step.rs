//! The training step of §3.4/§4.2 captured once as a CUDA graph and replayed (`run.cuda_graph`):
//! eager warm-up steps on the side stream, one capture, then per step the inputs written and the
//! graph replayed (see the module doc of [`crate::train`]).
use super::trainer::*;
use anyhow::{Context, Result};
use tch::Tensor;

impl Trainer {
    /// The step of `run.cuda_graph`: eager warm-up steps on the side stream, then (once) the
    /// capture, and every step: this iteration's inputs written, graph replayed.
    pub(super) fn graphed_step(&mut self, g: &mut GraphedStep, iteration: u64) -> Result<()> {
        if !g.graph.is_captured() && (g.warmup_left > 0 || !self.opt.started()) {
            g.warmup_left = g.warmup_left.saturating_sub(1);
            return g.graph.on_side_stream(|| self.eager_step(iteration));
        }
        let bs = self.cfg.optimizer.batch_size;
        let mut host = self
            .data
            .batch_params(iteration, bs)
            .context("the data source stopped providing batch parameters")?;
        host.push(self.pending as i64);
        crate::sys::graph::copy_to_device_async(&mut g.inputs, &Tensor::from_slice(&host))?;
        if !g.graph.is_captured() {
            let inputs = g.inputs.shallow_clone();
            crate::sys::graph::without_autocast_cache(|| {
                g.graph.capture(|| self.captured_step(&inputs))
            })
            .context("capturing the training step as a CUDA graph (run.cuda_graph)")?;
        }
        // SAFETY: the captured work used only tensors this Trainer owns for its whole life (the
        // VarStore's variables and BN statistics, the optimizer's flat buffers and 0-d scalars,
        // the data source's device tensors, `g.inputs`, the metric slots), or tensors created
        // during the capture, which live in the graph's own pool. Nothing reallocates them:
        // restore, set_lr and the eager paths write into them in place. The graph is dropped
        // with the Trainer.
        unsafe { g.graph.replay() }
    }

    /// What the graph captures: the batch assembled on the device from `inputs`, the step, and
    /// the slot writes at the slot index that `inputs` carries last.
    pub(super) fn captured_step(&mut self, inputs: &Tensor) -> Result<()> {
        let n = inputs.size()[0];
        let batch = self.data.assemble_batch(&inputs.narrow(0, 0, n - 1))?;
        let (loss, wrong) = self.train_on(batch)?;
        let _guard = tch::no_grad_guard();
        let k = inputs.narrow(0, n - 1, 1);
        let _ = self.loss_slots.index_copy_(0, &k, &loss.view([1]));
        let _ = self.err_slots.index_copy_(0, &k, &wrong.view([1]));
        Ok(())
    }
}
