//! Proof on real data (paper §4.2's recipe, shortened to 400 iterations): ResNet-20 on the
//! lossless CIFAR-10 PNGs of ../shared/data reaches at most 60 % test error on the CPU. Slow
//! (minutes): `cargo test --release -- --ignored`.
use resnet::config::Config;
use resnet::train::{self, TrainOptions};
use std::path::Path;

#[test]
#[ignore = "trains ResNet-20 on the real CIFAR-10 PNGs for 400 iterations (minutes on a CPU)"]
fn resnet20_learns_cifar10_png_in_400_iterations() {
    let data = Path::new("../shared/data/cifar10-png.tar.gz");
    assert!(data.exists(), "{} is missing", data.display());
    let mut cfg = Config::load(Path::new("configs/cifar10_png_resnet20_400.toml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    cfg.run.out_dir = tmp.path().join("run");
    let t0 = std::time::Instant::now();
    let o = train::run(
        &cfg,
        &TrainOptions {
            progress: true,
            ..Default::default()
        },
    )
    .unwrap();
    let s = &o.summary;
    println!(
        "ResNet-20, 400 iterations: test error {:.2}% (train {:.2}%), {:.1} s",
        s.final_test_error,
        s.final_train_error,
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(s.iterations, 400);
    assert!(
        s.final_test_error <= 60.0,
        "test error {:.2}%",
        s.final_test_error
    );
}
