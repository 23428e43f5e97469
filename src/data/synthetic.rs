//! A seeded synthetic image set for tests and smoke runs: each class is a fixed random mixture of
//! low-frequency colour gratings, each image that pattern at a random phase shift plus noise. A
//! small net learns it in a few hundred iterations, so end-to-end tests can assert that the loss
//! falls, yet it is not trivially separable by the mean colour.
use super::rng::{mix, SplitMix64};
use super::ImageSet;
use crate::config::SyntheticConfig;
use tch::Tensor;

struct Wave {
    fx: f64,
    fy: f64,
    amp: [f64; 3],
}

/// The [`crate::data::DataSource::content_key`] of a synthetic set: the MD5 of what defines it
/// (this generator's version, classes, sizes and seed).
pub fn content_key(classes: usize, s: &SyntheticConfig, seed: u64) -> String {
    use md5::{Digest, Md5};
    let what = format!(
        "synthetic v1 classes={classes} train={} test={} size={} seed={seed}",
        s.train, s.test, s.image_size
    );
    format!("{:x}", Md5::digest(what))
}

/// `train` and `test` images of `size`×`size`, labels cycling through `classes`, all from `seed`.
pub fn generate(classes: usize, train: usize, test: usize, size: usize, seed: u64) -> ImageSet {
    let mut r = SplitMix64::new(mix(seed, 0x5717));
    let patterns: Vec<Vec<Wave>> = (0..classes)
        .map(|_| {
            (0..3)
                .map(|_| Wave {
                    fx: (r.below(4) as f64 + 1.0) * std::f64::consts::TAU / size as f64,
                    fy: (r.below(4) as f64) * std::f64::consts::TAU / size as f64,
                    amp: [r.normal() * 30.0, r.normal() * 30.0, r.normal() * 30.0],
                })
                .collect()
        })
        .collect();
    let make = |n: usize, stream: u64| {
        let mut r = SplitMix64::new(mix(seed, stream));
        let mut pixels = vec![0u8; n * 3 * size * size];
        let mut labels = vec![0i64; n];
        for (i, img) in pixels.chunks_mut(3 * size * size).enumerate() {
            let c = (i + r.below(classes as u64) as usize) % classes;
            labels[i] = c as i64;
            let (px, py) = (r.next_f64() * 6.3, r.next_f64() * 6.3);
            for ch in 0..3 {
                for y in 0..size {
                    for x in 0..size {
                        let mut v = 128.0 + r.normal() * 20.0;
                        for w in &patterns[c] {
                            v += w.amp[ch] * (w.fx * x as f64 + w.fy * y as f64 + px + py).sin();
                        }
                        img[(ch * size + y) * size + x] = v.clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
        let s = size as i64;
        (
            Tensor::from_slice(&pixels).view([n as i64, 3, s, s]),
            Tensor::from_slice(&labels),
        )
    };
    let (train_images, train_labels) = make(train, 1);
    let (test_images, test_labels) = make(test, 2);
    ImageSet {
        class_names: (0..classes).map(|c| format!("class{c}")).collect(),
        train_images,
        train_labels,
        test_images,
        test_labels,
    }
}

/// Host bytes of building the synthetic set: pixels, their tensor copy, the float copy of the
/// training images for the mean.
pub fn host_bytes(s: &SyntheticConfig) -> f64 {
    let per = 3.0 * (s.image_size as f64).powi(2);
    (s.train as f64 + s.test as f64) * per * 2.0 + s.train as f64 * per * 4.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_images() {
        let a = generate(3, 10, 4, 8, 1);
        let b = generate(3, 10, 4, 8, 1);
        let c = generate(3, 10, 4, 8, 2);
        assert!(a.train_images.equal(&b.train_images));
        assert!(!a.train_images.equal(&c.train_images));
        assert_eq!(a.train_images.size(), vec![10, 3, 8, 8]);
        assert_eq!(a.test_labels.size(), vec![4]);
    }
}
