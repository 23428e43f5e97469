//! Loader throughput for §4.2 / §3.4 training: how many images per second the data side delivers,
//! to compare with what a training step consumes (the loader must never be the bottleneck).
//! Measuring only; the caller displays the rows.
//!
//! Measured with `resnet data bench --device cpu --folder ../shared/data/cifar10-jpeg.tar.gz` on
//! the 2-core development machine (2026-11-27, load average about 2; the machine is shared):
//! CIFAR batches of 128 with §4.2 augmentation 108,000 images/s on 2 threads (58,000 on 1), i.e.
//! about 300 times the 350 images/s a ResNet-20 training step consumes there; decoding the 60,000
//! real CIFAR JPEGs 1.4 s (4.1 s with a cold page cache; 45 s seen once under a load average of
//! 9), and 2.8 s for `data show` when the decoded cache exists. §3.4 streaming of 500×375 JPEGs:
//! 449 images/s on 2 cores. Under heavy load, libtorch's 2 intra-op threads contend with other
//! processes: the same CIFAR benchmark fell to 6,900 images/s on 2 threads (56,600 on 1).
use super::{folder, stream, DataSource, ImageSet, InMemory};
use crate::config::Augment;
use crate::sys::device;
use anyhow::Result;
use std::path::Path;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One measurement.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub what: String,
    pub images: usize,
    pub seconds: f64,
}

impl Measurement {
    pub fn images_per_s(&self) -> f64 {
        self.images as f64 / self.seconds
    }
}

/// CIFAR-shaped in-memory batches with §4.2 augmentation (gather, mean, pad, crop, flip) on
/// `device`: `iterations` batches of `batch_size` from `n` random 32×32 images (50,000 for CIFAR-10;
/// the cost does not depend on pixel values), after a few warm-up batches.
pub fn cifar_augment(
    device: Device,
    n: i64,
    batch_size: usize,
    iterations: u64,
) -> Result<Measurement> {
    let set = ImageSet {
        class_names: (0..10).map(|c| c.to_string()).collect(),
        train_images: Tensor::randint(256, [n, 3, 32, 32], (Kind::Uint8, Device::Cpu)),
        train_labels: Tensor::randint(10, [n], (Kind::Int64, Device::Cpu)),
        test_images: Tensor::zeros([1, 3, 32, 32], (Kind::Uint8, Device::Cpu)),
        test_labels: Tensor::zeros([1], (Kind::Int64, Device::Cpu)),
    };
    let mut src = InMemory::new(set, Augment::Cifar, 0, 0, device)?;
    let mut sink = Tensor::zeros([], (Kind::Float, device));
    for it in 0..3 {
        sink += src.train_batch(it, batch_size)?.images.sum(Kind::Float);
    }
    device::synchronize(device);
    let t = Instant::now();
    for it in 0..iterations {
        // Reduce each batch so that lazy work cannot be skipped; one sync at the end.
        sink += src.train_batch(3 + it, batch_size)?.images.sum(Kind::Float);
    }
    let _ = sink.double_value(&[]);
    device::synchronize(device);
    Ok(Measurement {
        what: format!(
            "cifar10 batches of {batch_size}, pad+crop+flip+mean on {}",
            device::describe(device)
        ),
        images: iterations as usize * batch_size,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Scanning and decoding a whole small-image folder (both splits) into memory.
pub fn folder_decode(root: &Path, workers: usize) -> Result<Measurement> {
    let t = Instant::now();
    let index = folder::scan(root)?;
    let (set, _) = folder::decode_small(&index, false, workers)?;
    let n = (set.train_images.size()[0] + set.test_images.size()[0]) as usize;
    Ok(Measurement {
        what: format!(
            "decode {} into memory ({} threads)",
            root.display(),
            if workers == 0 {
                rayon::current_num_threads()
            } else {
                workers
            }
        ),
        images: n,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// ImageNet-style streaming training batches (§3.4 augmentation) from a large-image folder.
pub fn folder_stream(
    root: &Path,
    workers: usize,
    batch_size: usize,
    iterations: u64,
    device: Device,
) -> Result<Measurement> {
    let index = folder::scan(root)?;
    let mut src = stream::Streaming::new(index, Augment::Imagenet, 0, 0, workers, false, device)?;
    let _ = src.train_batch(0, batch_size)?;
    let t = Instant::now();
    for it in 1..=iterations {
        let _ = src.train_batch(it, batch_size)?.images.sum(Kind::Float);
    }
    device::synchronize(device);
    Ok(Measurement {
        what: format!(
            "stream {} with scale/crop/flip/PCA, batches of {batch_size}",
            root.display()
        ),
        images: iterations as usize * batch_size,
        seconds: t.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cifar_bench_counts_images() {
        let m = cifar_augment(Device::Cpu, 100, 16, 2).unwrap();
        assert_eq!(m.images, 32);
        assert!(m.seconds > 0.0 && m.images_per_s().is_finite());
    }
}
