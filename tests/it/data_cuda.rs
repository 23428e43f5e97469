//! The §4.2 and §3.4 batch augmentation run as tensor work on the training device: on a GPU the
//! batches must equal the CPU ones (same seed, same iteration). `#[ignore = "needs CUDA"]`:
//! scripts/device_check.sh runs this binary with `--include-ignored` on the GPU machine.
use crate::support;
use resnet::config::Augment;
use resnet::data::{folder, stream::Streaming, synthetic, DataSource, InMemory};
use tch::Device;

#[test]
#[ignore = "needs CUDA"]
fn cifar_batches_on_cuda_equal_the_cpu_ones() {
    let gpu = support::require_cuda();
    let mk = |d| {
        InMemory::new(
            synthetic::generate(10, 512, 64, 32, 1),
            Augment::Cifar,
            0,
            3,
            d,
        )
        .unwrap()
    };
    let (mut c, mut g) = (mk(Device::Cpu), mk(gpu));
    for it in [0u64, 7, 3] {
        let a = c.train_batch(it, 128).unwrap();
        let b = g.train_batch(it, 128).unwrap();
        assert_eq!(b.images.device(), gpu);
        assert!(a.labels.equal(&b.labels.to_device(Device::Cpu)));
        assert!(a
            .images
            .allclose(&b.images.to_device(Device::Cpu), 1e-6, 1e-6, false));
    }
}

#[test]
#[ignore = "needs CUDA"]
fn imagenet_batches_on_cuda_equal_the_cpu_ones() {
    let gpu = support::require_cuda();
    let d = tempfile::tempdir().unwrap();
    for (split, n) in [("train", 4), ("val", 2)] {
        for c in ["a", "b"] {
            let dir = d.path().join(split).join(c);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                image::RgbImage::from_fn(320, 250, |x, y| {
                    image::Rgb([(x + i) as u8, (y * 2) as u8, (x ^ y) as u8])
                })
                .save(dir.join(format!("{i}.jpg")))
                .unwrap();
            }
        }
    }
    let mk = |dev| {
        Streaming::new(
            folder::scan(d.path()).unwrap(),
            Augment::Imagenet,
            0,
            9,
            0,
            false,
            dev,
        )
        .unwrap()
    };
    let (mut c, mut g) = (mk(Device::Cpu), mk(gpu));
    for it in [0u64, 1, 5] {
        let a = c.train_batch(it, 4).unwrap();
        let b = g.train_batch(it, 4).unwrap();
        assert_eq!(b.images.device(), gpu);
        assert!(a
            .images
            .allclose(&b.images.to_device(Device::Cpu), 1e-4, 1e-5, false));
    }
    let ten = g.eval_ten_crop(3).unwrap().next().unwrap().unwrap();
    assert_eq!(ten.images.size(), vec![3, 10, 3, 224, 224]);
}
