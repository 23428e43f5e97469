//! The memory a run needs (the paper's nets at its batch sizes, §3.4 and §4.2), estimated from the
//! config before anything is allocated, so that a config that cannot fit (`model.depth = 600002`,
//! `optimizer.batch_size = 1000000000`, `data.synthetic.train = 100000000000`) is refused with one
//! line giving the estimate and what is available, instead of aborting in an allocation.
//!
//! The estimate is deliberately rough (within a small factor of the real peak), and only refuses
//! what exceeds the available memory outright:
//! - model state: parameters, gradients, momentum and one transient copy for the update (4 × 4
//!   bytes per parameter), from [`Plan::params`];
//! - activations: for a training batch, every conv/FC output kept three times for backward
//!   (conv output, BN output, ReLU output, float32) plus the input; for an evaluation batch (no
//!   autograd), the two largest layer outputs at a time; the larger of the two counts;
//! - data: the in-memory dataset (synthetic or CIFAR-10) as `u8` on the device, and on the host
//!   while it is built (the pixels, their tensor copy and a float copy for the mean image);
//!   image folders are counted when they are scanned (see `folder::decode_small`).
//!
//! Available: the host's `MemAvailable` (/proc/meminfo); on CUDA, the device's free memory from
//! the CUDA runtime that libtorch has loaded (`cudaMemGetInfo`, found with `dlsym`; tch exposes no
//! such call). Where either cannot be read, that check is skipped and [`Estimate`] says so.
use crate::config::{Config, Dataset, Family};
use crate::net::arch::Plan;
use crate::sys::memory::{self, human};
use anyhow::{bail, Result};
use tch::Device;

const F32: f64 = 4.0;
/// Copies of the parameters held at the peak: weights, gradients, momentum, update temporary.
const PARAM_COPIES: f64 = 4.0;
/// Tensors kept per conv layer for backward: conv output, BN output, ReLU output.
const SAVED_PER_LAYER: f64 = 3.0;
/// CIFAR-10's 50,000 training and 10,000 test images.
const CIFAR10_IMAGES: f64 = 60_000.0;

/// What a run needs and what the machine has, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub params: u64,
    /// Parameters, gradients, momentum and the update's temporary.
    pub model_bytes: f64,
    /// Activations of one training batch (autograd's saved tensors).
    pub train_activation_bytes: f64,
    /// Activations of one evaluation batch (no autograd).
    pub eval_activation_bytes: f64,
    /// The in-memory dataset as it sits on the training device.
    pub data_device_bytes: f64,
    /// The in-memory dataset while it is built on the host (and streaming buffers).
    pub data_host_bytes: f64,
    /// Side of the images the net sees.
    pub input_side: usize,
    /// Whether the training device is a CUDA device.
    pub cuda: bool,
    /// `MemAvailable` of the host; `None` where /proc/meminfo cannot be read.
    pub host_available: Option<u64>,
    /// Free memory of the CUDA device; `None` on the CPU or where it cannot be read.
    pub device_available: Option<u64>,
}

impl Estimate {
    fn activation_bytes(&self) -> f64 {
        self.train_activation_bytes.max(self.eval_activation_bytes)
    }

    /// Bytes needed on the training device (on the CPU: everything, host included).
    pub fn device_bytes(&self) -> f64 {
        let on_device = self.model_bytes + self.activation_bytes() + self.data_device_bytes;
        if self.cuda {
            on_device
        } else {
            // On the CPU the dataset "on the device" is the host tensor itself.
            self.model_bytes + self.activation_bytes() + self.data_host_bytes
        }
    }

    /// Bytes needed on the host.
    pub fn host_bytes(&self) -> f64 {
        if self.cuda {
            self.data_host_bytes
        } else {
            self.device_bytes()
        }
    }

    fn parts(&self) -> String {
        format!(
            "model state {} for {} parameters, activations {} ({}x{} images), data {}",
            human(self.model_bytes),
            self.params,
            human(self.activation_bytes()),
            self.input_side,
            self.input_side,
            human(if self.cuda {
                self.data_device_bytes
            } else {
                self.data_host_bytes
            })
        )
    }
}

/// Side of the images the network is fed.
fn input_side(cfg: &Config) -> usize {
    match cfg.data.dataset {
        Dataset::Synthetic => cfg.data.synthetic.image_size,
        Dataset::Cifar10 => 32,
        Dataset::ImageFolder => cfg.model.image_size(),
        // Detection images are resized whole: at most max_side a side.
        Dataset::Voc | Dataset::Coco => cfg.data.detection.max_side as usize,
    }
}

/// The estimate for `cfg` on `device` (see the module doc).
pub fn estimate(cfg: &Config, device: Device) -> Estimate {
    let plan = Plan::new(&cfg.model);
    let side = input_side(cfg);
    let layers = plan.layers(side);
    let outputs: Vec<f64> = layers
        .iter()
        .map(|l| l.out_channels as f64 * (l.out_side as f64).powi(2))
        .collect();
    let input = 3.0 * (side as f64).powi(2);
    let per_image_train = SAVED_PER_LAYER * outputs.iter().sum::<f64>() + input;
    let largest = outputs.iter().copied().fold(0.0, f64::max);
    let per_image_eval = 2.0 * largest + input;
    let (data_device, data_host) = match cfg.data.dataset {
        Dataset::Synthetic => {
            let s = &cfg.data.synthetic;
            let n = s.train as f64 + s.test as f64;
            (
                n * 3.0 * (s.image_size as f64).powi(2),
                crate::data::synthetic::host_bytes(&cfg.data.synthetic),
            )
        }
        Dataset::Cifar10 => (CIFAR10_IMAGES * 3072.0, CIFAR10_IMAGES * 3072.0 * 6.0),
        // Decoded per batch from files (the detector of issue 25 trains on them).
        Dataset::Voc | Dataset::Coco => (0.0, 0.0),
        // Counted when the folder is scanned; streamed ImageNet-style data needs its prefetched
        // batches of 224x224 crops on the host.
        Dataset::ImageFolder => (
            0.0,
            if cfg.model.family == Family::Imagenet {
                (crate::data::stream::PREFETCH as f64 + 2.0)
                    * cfg.optimizer.batch_size as f64
                    * 3.0
                    * 224.0
                    * 224.0
            } else {
                0.0
            },
        ),
    };
    let params = plan.params();
    let cuda = device.is_cuda();
    Estimate {
        params,
        model_bytes: PARAM_COPIES * F32 * params as f64,
        train_activation_bytes: F32 * per_image_train * cfg.optimizer.batch_size as f64,
        eval_activation_bytes: F32 * per_image_eval * cfg.run.eval_batch_size as f64,
        data_device_bytes: data_device,
        data_host_bytes: data_host,
        input_side: side,
        cuda,
        host_available: memory::host_available(),
        device_available: if cuda {
            memory::cuda_free(device)
        } else {
            None
        },
    }
}

/// The config keys behind the largest part of the estimate, for the message.
fn largest_part(cfg: &Config, e: &Estimate) -> String {
    let data = if e.cuda {
        e.data_device_bytes
    } else {
        e.data_host_bytes
    };
    let parts = [
        (e.model_bytes, 0),
        (e.train_activation_bytes, 1),
        (e.eval_activation_bytes, 2),
        (data, 3),
    ];
    let (_, which) = parts
        .into_iter()
        .fold((f64::MIN, 0), |a, b| if b.0 > a.0 { b } else { a });
    let side = e.input_side;
    match which {
        0 => format!(
            "the model (model.depth = {}, {} classes)",
            cfg.model.depth,
            cfg.model.classes()
        ),
        1 => format!(
            "the activations of a training batch (optimizer.batch_size = {}, model.depth = {}, \
             {side}x{side} images)",
            cfg.optimizer.batch_size, cfg.model.depth
        ),
        2 => format!(
            "the activations of an evaluation batch (run.eval_batch_size = {}, model.depth = {}, \
             {side}x{side} images)",
            cfg.run.eval_batch_size, cfg.model.depth
        ),
        _ => match cfg.data.dataset {
            Dataset::Synthetic => format!(
                "the data (data.synthetic.train = {}, test = {}, image_size = {})",
                cfg.data.synthetic.train, cfg.data.synthetic.test, cfg.data.synthetic.image_size
            ),
            _ => "the data".to_string(),
        },
    }
}

/// Activations of multi-scale testing (Table 4) at shorter sides `sides`: a batch of
/// `run.eval_batch_size` images held at every side (`u8` and normalized float32, square images
/// assumed), and a forward pass of about as many pixels as that batch at the smallest side, at
/// least one view of the largest.
pub fn multi_scale_bytes(cfg: &Config, sides: &[u32]) -> f64 {
    let (Some(&small), Some(&large)) = (sides.iter().min(), sides.iter().max()) else {
        return 0.0;
    };
    let batch = cfg.run.eval_batch_size as f64;
    let held: f64 = sides.iter().map(|&s| 3.0 * (s as f64).powi(2)).sum::<f64>() * 5.0 * batch;
    let large = large as usize;
    let largest = Plan::new(&cfg.model)
        .layers(large)
        .iter()
        .map(|l| l.out_channels as f64 * (l.out_side as f64).powi(2))
        .fold(0.0, f64::max);
    let per_view = 2.0 * largest + 3.0 * (large as f64).powi(2);
    let views = (batch * (small as f64 / large as f64).powi(2)).max(1.0);
    held + F32 * per_view * views
}

/// [`check`] for multi-scale testing at `sides`: the evaluation batch is the multi-scale one.
pub fn check_multi_scale(cfg: &Config, device: Device, sides: &[u32]) -> Result<Estimate> {
    let mut e = estimate(cfg, device);
    e.eval_activation_bytes = e.eval_activation_bytes.max(multi_scale_bytes(cfg, sides));
    e.input_side = sides
        .iter()
        .copied()
        .max()
        .map_or(e.input_side, |s| s as usize);
    refuse_short(cfg, e)
}

/// Estimates what `cfg` needs on `device` and refuses it, naming the estimate, what is available
/// and the keys behind the largest part, when it cannot fit.
pub fn check(cfg: &Config, device: Device) -> Result<Estimate> {
    refuse_short(cfg, estimate(cfg, device))
}

/// Checks that `n` local ranks of `cfg` (each its share of the global batch) fit this machine
/// before any of them starts: on the CPU, at most one rank a core and `n` ranks' memory within
/// what the host has available; on CUDA, one GPU a rank, each rank's share within its device's
/// free memory, and the ranks' host memory within the host's.
pub fn check_ranks(cfg: &Config, device: Device, n: usize) -> Result<Estimate> {
    let mut rank = cfg.clone();
    rank.optimizer.batch_size = (cfg.optimizer.batch_size / n.max(1)).max(1);
    if device.is_cuda() {
        let gpus = tch::Cuda::device_count().max(0) as usize;
        if n > gpus {
            bail!("--nproc {n}: {n} ranks need {n} CUDA devices (one a rank), this machine has {gpus}");
        }
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        if n > cores {
            bail!(
                "--nproc {n}: {n} ranks on the CPU need {n} cores (one a rank), this machine has \
                 {cores}"
            );
        }
    }
    let e = estimate(&rank, device);
    if let Some(have) = e.host_available {
        let need = e.host_bytes() * n as f64;
        if need > have as f64 {
            bail!(
                "--nproc {n}: {n} ranks of {} need about {} of memory on the host ({} each: {}), \
                 but {} is available (MemAvailable)",
                cfg.name,
                human(need),
                human(e.host_bytes()),
                e.parts(),
                human(have as f64)
            );
        }
    }
    refuse_short(&rank, e)
}

/// Refuses the estimate `e` of `cfg` where the host or the device has less memory available.
fn refuse_short(cfg: &Config, e: Estimate) -> Result<Estimate> {
    let refuse = |need: f64, have: u64, place: &str, source: &str| -> Result<()> {
        if need > have as f64 {
            bail!(
                "{}: needs about {} of memory {place} ({}), but {} is available ({source}); \
                 most of it is {}",
                cfg.name,
                human(need),
                e.parts(),
                human(have as f64),
                largest_part(cfg, &e)
            );
        }
        Ok(())
    };
    if let Some(have) = e.device_available {
        refuse(
            e.device_bytes(),
            have,
            "on the CUDA device",
            "free device memory",
        )?;
    }
    if let Some(have) = e.host_available {
        refuse(e.host_bytes(), have, "on the host", "MemAvailable")?;
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        let c = Config::from_toml(&format!(
            "name = \"b\"\n[model]\nfamily = \"cifar\"\ndepth = 20\n{extra}"
        ))
        .unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn resnet20_on_cifar_is_small_and_counted_by_part() {
        let e = estimate(&cfg(""), Device::Cpu);
        assert_eq!(e.params, 269_722);
        assert_eq!(e.model_bytes, 16.0 * 269_722.0);
        // ResNet-20 at 32x32: conv outputs 16*32*32 * 7 + 32*16*16 * 6 + 64*8*8 * 6 + 10 (fc).
        let outputs = 16.0 * 1024.0 * 7.0 + 32.0 * 256.0 * 6.0 + 64.0 * 64.0 * 6.0 + 10.0;
        assert_eq!(
            e.train_activation_bytes,
            4.0 * 128.0 * (3.0 * outputs + 3072.0)
        );
        assert_eq!(e.data_host_bytes, 60_000.0 * 3072.0 * 6.0);
        // About 0.57 GiB of activations and 1.1 GiB of data: fits any machine that runs tests.
        assert!(e.device_bytes() < 2.0 * (1u64 << 30) as f64, "{e:?}");
        assert!(check(&cfg(""), Device::Cpu).is_ok());
    }

    #[test]
    fn absurd_sizes_are_refused_with_the_estimate_and_the_key() {
        if memory::host_available().is_none() {
            crate::errln!("SKIPPED: /proc/meminfo is not readable here");
            return;
        }
        for (extra, key) in [
            (
                "[optimizer]\nbatch_size = 1000000000\n",
                "optimizer.batch_size = 1000000000",
            ),
            (
                "[data]\ndataset = \"synthetic\"\n[data.synthetic]\ntrain = 100000000000\n",
                "data.synthetic.train = 100000000000",
            ),
            (
                "[run]\neval_batch_size = 100000000000\n",
                "run.eval_batch_size = 100000000000",
            ),
        ] {
            let e = format!("{:#}", check(&cfg(extra), Device::Cpu).unwrap_err());
            assert!(e.contains(key) && e.contains("is available"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn multi_scale_testing_counts_its_largest_batch() {
        let c = cfg("[run]\neval_batch_size = 100\n");
        let paper = multi_scale_bytes(&c, &[224, 256, 384, 480, 640]);
        // 100 images at the five sides, u8 and float32: 1.35e9 bytes before any forward pass.
        assert!(paper > 1.35e9 && paper < 3e9, "{paper}");
        assert!(multi_scale_bytes(&c, &[224, 4096]) > 10.0 * paper);
        // 10,000 images at 4096 pixels: 2.5 TB, more than any host has.
        let c = cfg("[run]\neval_batch_size = 10000\n");
        let e = format!(
            "{:#}",
            check_multi_scale(&c, Device::Cpu, &[4096]).unwrap_err()
        );
        assert!(
            e.contains("4096x4096 images") && e.contains("eval_batch_size"),
            "{e}"
        );
    }
}
