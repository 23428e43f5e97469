//! The gradient all-reduce of §3.4's data parallelism timed on c10d Gloo between 2 local ranks:
//! buffers the size of ResNet-20's (Table 6, 269,722 floats) and ResNet-18's (Table 1,
//! 11,689,512 floats) gradients. `cargo run --release --example dist_allreduce [REPS]` starts
//! rank 1 itself (this binary with torchrun's variables) and prints median and min per size.
//! scripts/dist_allreduce_reference.py does the same with Python's torch.distributed.
use anyhow::Result;
use resnet::sys::dist::{Backend, Env, Group, GroupOptions};
use std::time::{Duration, Instant};
use tch::Tensor;

const SIZES: [(&str, i64); 2] = [("resnet20", 269_722), ("resnet18", 11_689_512)];

fn main() -> Result<()> {
    let reps: usize = std::env::args().nth(1).map_or(Ok(20), |s| s.parse())?;
    let mut peer = None;
    let env = match Env::from_process()? {
        Some(e) => e,
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let vars = |rank: &str| {
                [
                    ("MASTER_ADDR", "127.0.0.1".to_string()),
                    ("MASTER_PORT", port.to_string()),
                    ("RANK", rank.to_string()),
                    ("WORLD_SIZE", "2".to_string()),
                ]
            };
            peer = Some(
                std::process::Command::new(std::env::current_exe()?)
                    .arg(reps.to_string())
                    .envs(vars("1"))
                    .spawn()?,
            );
            let v = vars("0");
            Env::from_vars(|k| v.iter().find(|(n, _)| *n == k).map(|(_, x)| x.clone()))?
                .expect("set above")
        }
    };
    tch::set_num_threads(1);
    let mut opts = GroupOptions::new(Backend::Gloo);
    opts.timeout = Duration::from_secs(60);
    let started = Instant::now();
    let g = Group::init(&env, &opts)?;
    if g.rank() == 0 {
        println!(
            "setup (store + group): {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    for (name, n) in SIZES {
        let mut t = Tensor::ones([n], (tch::Kind::Float, tch::Device::Cpu));
        g.all_reduce_sum(&mut t)?; // warm-up
        let mut ms = Vec::with_capacity(reps);
        for _ in 0..reps {
            g.barrier()?;
            let t0 = Instant::now();
            g.all_reduce_mean(&mut t)?;
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        if g.rank() == 0 {
            let (med, min) = (ms[ms.len() / 2], ms[0]);
            println!("{name} ({n} floats): median {med:.2} ms, min {min:.2} ms over {reps}");
        }
    }
    if let Some(mut p) = peer {
        anyhow::ensure!(p.wait()?.success(), "rank 1 failed");
    }
    Ok(())
}
