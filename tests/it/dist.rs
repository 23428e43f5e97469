//! Data parallelism on c10d (src/sys/dist.rs): two real processes on 127.0.0.1. Each test re-executes
//! the test binary, filtered to itself (`dist::<test>`), as rank 1 (the variable PEER_RANK tells the copy which
//! part to play; only the parent's run is what `cargo test` counts); rank 0 runs in the test.
use resnet::sys::dist::{Backend, Env, Group, GroupOptions, Store};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tch::Tensor;

const PEER_RANK: &str = "RESNET_DIST_TEST_PEER_RANK";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env(rank: usize, port: u16) -> Env {
    let vars = [
        ("MASTER_ADDR", "127.0.0.1".to_string()),
        ("MASTER_PORT", port.to_string()),
        ("RANK", rank.to_string()),
        ("WORLD_SIZE", "2".to_string()),
    ];
    Env::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap()
        .unwrap()
}

fn opts(timeout_s: u64) -> GroupOptions {
    let mut o = GroupOptions::new(Backend::Gloo);
    o.timeout = Duration::from_secs(timeout_s);
    o
}

/// Rank 1 in this process's copy, as torchrun would start it: None in the test itself.
fn as_peer() -> Option<Env> {
    std::env::var(PEER_RANK).ok()?;
    Some(Env::from_process().unwrap().unwrap())
}

/// The other rank: this binary re-run on `test` alone, killed (SIGKILL) when dropped.
struct Peer(Child);

impl Peer {
    fn spawn(test: &str, port: u16) -> Peer {
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .args([
                &format!("dist::{test}"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PEER_RANK, "1")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("RANK", "1")
            .env("WORLD_SIZE", "2")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Peer(child)
    }

    /// Waits (at most 30 s) for the peer to exit and asserts that its half passed.
    fn finish(mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.0.try_wait().unwrap() {
                assert!(status.success(), "rank 1 failed: {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("rank 1 did not exit within 30 s");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `body` on both ranks of a 2-process Gloo group.
fn two_ranks(test: &str, body: impl Fn(&Group)) {
    if let Some(e) = as_peer() {
        body(&Group::init(&e, &opts(20)).unwrap());
        return;
    }
    let port = free_port();
    let peer = Peer::spawn(test, port);
    body(&Group::init(&env(0, port), &opts(20)).unwrap());
    peer.finish();
}

/// Rank r's buffer: fractional values whose sums round (so exactness means something).
fn data(rank: usize, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + rank * 104_729) % 1013) as f32 / 97.0 - 5.123)
        .collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t).unwrap()
}

#[test]
fn all_reduce_sum_and_mean_equal_the_local_sums() {
    two_ranks("all_reduce_sum_and_mean_equal_the_local_sums", |g| {
        let n = 100_003;
        let (a, b) = (data(0, n), data(1, n));
        let mut t = Tensor::from_slice(&data(g.rank(), n));
        g.all_reduce_sum(&mut t).unwrap();
        let sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert_eq!(values(&t), sum);
        let mut t = Tensor::from_slice(&data(g.rank(), n));
        g.all_reduce_mean(&mut t).unwrap();
        let mean: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y) / 2.0).collect();
        assert_eq!(values(&t), mean);
        let mut counts = [g.rank() as i64 + 1, 10];
        g.all_reduce_counts(&mut counts).unwrap();
        assert_eq!(counts, [3, 20]);
    });
}

#[test]
fn broadcast_from_either_root_then_barrier_and_store_gather() {
    two_ranks(
        "broadcast_from_either_root_then_barrier_and_store_gather",
        |g| {
            for root in [0, 1] {
                let mut t = Tensor::from_slice(&data(g.rank(), 1000));
                g.broadcast(&mut t, root).unwrap();
                assert_eq!(values(&t), data(root, 1000), "root {root}");
            }
            g.barrier().unwrap();
            let all = g
                .gather_bytes("cfg", format!("hash{}", g.rank()).as_bytes())
                .unwrap();
            assert_eq!(all, vec![b"hash0".to_vec(), b"hash1".to_vec()]);
        },
    );
}

/// Asserts that `r` failed in [lo, hi] seconds from `start` with one line holding every `want`.
fn assert_fails_in(r: anyhow::Result<()>, start: Instant, lo: f64, hi: f64, want: &[&str]) {
    let dt = start.elapsed().as_secs_f64();
    let e = format!("{:#}", r.expect_err("expected an error"));
    assert!(!e.contains('\n'), "not one line: {e}");
    assert!(
        (lo..=hi).contains(&dt),
        "failed after {dt:.2} s, not in [{lo}, {hi}]: {e}"
    );
    for w in want {
        assert!(e.contains(w), "{w:?} missing from: {e}");
    }
    eprintln!("after {dt:.2} s: {e}");
}

#[test]
fn a_peer_that_never_enters_the_collective_times_out() {
    let test = "a_peer_that_never_enters_the_collective_times_out";
    if let Some(e) = as_peer() {
        let _g = Group::init(&e, &opts(3)).unwrap();
        std::thread::sleep(Duration::from_secs(15));
        return;
    }
    let port = free_port();
    let _peer = Peer::spawn(test, port);
    let g = Group::init(&env(0, port), &opts(3)).unwrap();
    let start = Instant::now();
    let r = g.all_reduce_sum(&mut Tensor::from_slice(&data(0, 1000)));
    assert_fails_in(r, start, 2.5, 6.0, &["rank 0 of 2", "all_reduce", "rank 1"]);
}

#[test]
fn a_peer_killed_mid_collective_fails_the_survivor_at_once() {
    let test = "a_peer_killed_mid_collective_fails_the_survivor_at_once";
    if let Some(e) = as_peer() {
        let g = Group::init(&e, &opts(20)).unwrap();
        let mut t = Tensor::from_slice(&data(1, 1 << 20));
        while g.all_reduce_sum(&mut t).is_ok() {}
        return;
    }
    let port = free_port();
    let mut peer = Peer::spawn(test, port);
    let g = Group::init(&env(0, port), &opts(20)).unwrap();
    let mut t = Tensor::from_slice(&data(0, 1 << 20));
    for _ in 0..3 {
        g.all_reduce_sum(&mut t).unwrap();
    }
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        peer.0.kill().unwrap();
        Instant::now()
    });
    let r = loop {
        if let Err(e) = g.all_reduce_sum(&mut t) {
            break Err(e);
        }
    };
    let killed = killer.join().unwrap();
    // Well under the 20 s timeout: Gloo sees the closed connection.
    assert_fails_in(
        r,
        killed,
        0.0,
        5.0,
        &["rank 0 of 2", "all_reduce", "rank 1"],
    );
}

#[test]
fn a_rank_that_never_starts_fails_the_rendezvous_in_bounded_time() {
    let start = Instant::now();
    let r = Group::init(&env(0, free_port()), &opts(3)).map(|_| ());
    assert_fails_in(r, start, 2.5, 9.0, &["rank 0 of 2", "rendezvous", "1/2"]);
}

#[test]
fn an_unreachable_master_fails_in_bounded_time() {
    let start = Instant::now();
    let r = Group::init(&env(1, free_port()), &opts(3)).map(|_| ());
    assert_fails_in(
        r,
        start,
        2.5,
        9.0,
        &["rank 1 of 2", "connecting to the store"],
    );
}

#[test]
fn the_master_port_in_use_is_one_line_at_once() {
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let start = Instant::now();
    let r = Store::tcp("127.0.0.1", port, true, 1, Duration::from_secs(3)).map(|_| ());
    assert_fails_in(
        r,
        start,
        0.0,
        2.0,
        &["hosting the store", &port.to_string()],
    );
}

#[test]
fn nccl_is_one_line_without_a_gpu_and_reduces_with_one() {
    let store = Store::tcp("127.0.0.1", free_port(), true, 1, Duration::from_secs(5)).unwrap();
    let bind = resnet::sys::dist::Bind::Default;
    let r = Group::new(store, 0, 1, 0, &GroupOptions::new(Backend::Nccl), &bind);
    if tch::Cuda::device_count() == 0 {
        let e = format!("{:#}", r.err().expect("NCCL without a GPU must fail"));
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.contains("no NCCL") || e.contains("needs a CUDA GPU"),
            "{e}"
        );
    } else {
        let g = r.unwrap();
        let mut t = Tensor::from_slice(&data(0, 1000)).to_device(tch::Device::Cuda(0));
        g.all_reduce_sum(&mut t).unwrap();
        assert_eq!(values(&t.to_device(tch::Device::Cpu)), data(0, 1000));
    }
}

/// Issue 16's proof (a): one step's gradient averaged over 2 Gloo ranks (each its half of the
/// global batch, BN over that half) equals the single-process mean of the two halves' gradients,
/// with weights broadcast from rank 0 and BN running statistics from rank 0 afterwards.
#[test]
fn two_ranks_average_the_gradients_of_the_halves_with_bn_per_half() {
    use resnet::config::{Family, ModelConfig, NetKind};
    use resnet::train::{dist, optim::FlatSgd};
    use tch::nn::ModuleT;
    two_ranks(
        "two_ranks_average_the_gradients_of_the_halves_with_bn_per_half",
        |g| {
            let cfg = ModelConfig {
                family: Family::Cifar,
                depth: 8,
                kind: NetKind::Residual,
                shortcut: None,
                classes: None,
                stride_in_1x1: true,
            };
            tch::manual_seed(g.rank() as i64); // different weights on each rank before the broadcast
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let net = resnet::net::model::ResNet::new(&vs.root(), &cfg);
            let probe = || {
                let x = Tensor::zeros([2, 3, 16, 16], (tch::Kind::Float, tch::Device::Cpu));
                net.forward_t(&x, false).sum(tch::Kind::Float).backward();
            };
            let opt = FlatSgd::new(&vs, 0.1, 0.9, 1e-4, false, false, probe).unwrap();
            dist::broadcast_params(g, &opt).unwrap();
            tch::manual_seed(7); // the global batch of iteration t: the same on both ranks
            let x = Tensor::randn([8, 3, 16, 16], (tch::Kind::Float, tch::Device::Cpu));
            let y = Tensor::randint(10, [8], (tch::Kind::Int64, tch::Device::Cpu));
            let grad_of = |x: &Tensor, y: &Tensor| {
                let _ = opt.flat_grads().shallow_clone().zero_();
                net.forward_t(x, true)
                    .cross_entropy_for_logits(y)
                    .backward();
                opt.flat_grads().copy()
            };
            // The reference a single process computes: the mean of the halves' gradients.
            let halves: Vec<Tensor> = (0..2)
                .map(|r| {
                    grad_of(
                        &dist::rank_slice(&x, r, 2).unwrap(),
                        &dist::rank_slice(&y, r, 2).unwrap(),
                    )
                })
                .collect();
            let want = (&halves[0] + &halves[1]) / 2.0;
            let r = g.rank();
            let _ = grad_of(
                &dist::rank_slice(&x, r, 2).unwrap(),
                &dist::rank_slice(&y, r, 2).unwrap(),
            );
            dist::all_reduce_grads(g, &opt).unwrap();
            let got = opt.flat_grads();
            let err = (got - &want).abs().max().double_value(&[]);
            let scale = want.abs().max().double_value(&[]);
            assert!(
                scale > 1e-3 && err <= 1e-6 * scale,
                "max |diff| {err} (max |grad| {scale})"
            );
            dist::broadcast_buffers(g, &vs).unwrap();
            let vars = vs.variables();
            let mut names: Vec<&String> =
                vars.keys().filter(|n| !vars[*n].requires_grad()).collect();
            names.sort(); // the same collectives in the same order on both ranks
            for name in names {
                let t = vars[name].to_kind(tch::Kind::Double);
                let mut sum = t.copy();
                g.all_reduce_sum(&mut sum).unwrap();
                assert!(sum.equal(&(t * 2.0)), "{name} differs across ranks");
            }
        },
    );
}
