//! `resnet train --nproc N`: torchrun's single-node launch without Python (the data parallelism
//! of §3.4 on one machine). N local workers of this very binary, each with torchrun's variables
//! (MASTER_ADDR=127.0.0.1, a free MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE;
//! rank 0 hosts the store); Ctrl-C, SIGTERM and SIGHUP are forwarded to every worker (each in its
//! own process group, so a terminal's Ctrl-C reaches them once, through here); the launcher waits
//! and fails naming the first rank that failed.
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set in every worker: the number of workers `--nproc` started (for the resume command).
pub const NPROC_VAR: &str = "RESNET_NPROC";

/// After the first worker failed, how long the others may take to notice (a lost peer fails
/// their next collective at once) before they are killed.
const GRACE: Duration = Duration::from_secs(10);

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// A free TCP port on the loopback interface for the store (bound, then released: another
/// process could take it in between, which the store's bind then reports).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free port on 127.0.0.1 for the store")?;
    Ok(l.local_addr()?.port())
}

/// `args` without `--nproc N` / `--nproc=N` (what each worker is started with).
pub fn without_nproc(args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        let s = a.to_string_lossy();
        if s == "--nproc" {
            skip = true;
        } else if !s.starts_with("--nproc=") {
            out.push(a.clone());
        }
    }
    out
}

fn spawn(
    exe: &std::path::Path,
    args: &[OsString],
    rank: usize,
    n: usize,
    port: u16,
) -> Result<Child> {
    let mut c = Command::new(exe);
    c.args(args)
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", n.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("LOCAL_WORLD_SIZE", n.to_string())
        .env("GROUP_RANK", "0")
        .env("TORCHELASTIC_RESTART_COUNT", "0")
        .env(NPROC_VAR, n.to_string())
        .env(crate::sys::dist::LAUNCH_ID_VAR, launch_id())
        .process_group(0);
    // As torchrun: one intra-op thread a worker unless said otherwise (run.threads still wins).
    if std::env::var_os("OMP_NUM_THREADS").is_none() {
        c.env("OMP_NUM_THREADS", "1");
    }
    // SAFETY: prctl only sets this child's parent-death signal; nothing else runs between fork
    // and exec. A launcher killed with -9 thus stops its workers (SIGTERM: they checkpoint).
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    c.spawn()
        .with_context(|| format!("cannot start rank {rank} ({})", exe.display()))
}

/// This launch's id (the launcher's PID and start time), the same for all its workers.
fn launch_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        format!("{}-{}", std::process::id(), t.as_nanos())
    })
    .clone()
}

fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => format!("{s}"),
    }
}

fn signal_all(children: &mut [Option<Child>], sig: libc::c_int) {
    for c in children.iter().flatten() {
        // SAFETY: kill with a child's own pid (still ours: not yet reaped) sends one signal.
        unsafe { libc::kill(c.id() as libc::pid_t, sig) };
    }
}

/// Whether `signal` is ignored (SIG_IGN), as `nohup` leaves SIGHUP for the program it starts.
pub fn signal_ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// How the workers of [`launch`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launched {
    /// Every worker exited 0 (a run stopped by a signal after it began training included: its
    /// rank 0 saved and said how to resume).
    Finished,
    /// A stop signal reached the launcher before every worker had started training: the
    /// workers it started ended by that signal, the others were never started.
    Stopped,
}

/// Whether a worker's end is the stop it was asked for (the forwarded signal's default action,
/// or a stopped command's exit status).
fn stopped_by_signal(status: ExitStatus) -> bool {
    matches!(
        status.signal(),
        Some(libc::SIGTERM | libc::SIGINT | libc::SIGHUP)
    ) || matches!(status.code(), Some(130 | 143))
}

/// Starts `n` workers of this binary with `args`, forwards stop signals, waits for all of them.
/// A stop signal received while they are being started starts no more. Ok when every worker
/// exited 0, or when a stop ended them before training ([`Launched::Stopped`]); else one line
/// naming the first rank that failed. A SIGHUP ignored at start (`nohup`) stays ignored, here
/// and in the workers.
pub fn launch(n: usize, args: &[OsString]) -> Result<Launched> {
    if n == 0 {
        bail!("--nproc 0: must be at least 1");
    }
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let hup_ignored = signal_ignored(libc::SIGHUP);
    let _ = ctrlc::set_handler(|| {
        SIGNALS.fetch_add(1, Ordering::SeqCst);
    });
    if hup_ignored {
        // SAFETY: setting a signal's disposition to SIG_IGN installs no code; the workers
        // inherit it through exec.
        unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    }
    let port = free_port()?;
    let mut children: Vec<Option<Child>> = Vec::with_capacity(n);
    for rank in 0..n {
        if SIGNALS.load(Ordering::SeqCst) > 0 {
            // Told to stop: no more workers (those started are stopped below).
            break;
        }
        match spawn(&exe, args, rank, n, port) {
            Ok(c) => children.push(Some(c)),
            Err(e) => {
                signal_all(&mut children, libc::SIGKILL);
                return Err(e);
            }
        }
    }
    let mut forwarded = 0;
    let mut failed: Option<(usize, String, Instant)> = None;
    let mut all_stopped = true;
    let mut alive = children.len();
    while alive > 0 {
        let got = SIGNALS.load(Ordering::SeqCst);
        while forwarded < got {
            signal_all(&mut children, libc::SIGTERM);
            forwarded += 1;
        }
        for (rank, slot) in children.iter_mut().enumerate() {
            let Some(c) = slot else { continue };
            if let Some(status) = c.try_wait()? {
                *slot = None;
                alive -= 1;
                if !status.success() {
                    all_stopped &= stopped_by_signal(status);
                    if failed.is_none() {
                        failed = Some((rank, describe(status), Instant::now()));
                    }
                }
            }
        }
        if let Some((_, _, at)) = &failed {
            if at.elapsed() > GRACE {
                signal_all(&mut children, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped = SIGNALS.load(Ordering::SeqCst) > 0;
    match failed {
        Some(_) if stopped && all_stopped => Ok(Launched::Stopped),
        None if stopped && children.len() < n => Ok(Launched::Stopped),
        Some((rank, how, _)) => {
            bail!("rank {rank} of {n} failed ({how}; its own message above says why)")
        }
        None => Ok(Launched::Finished),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_the_arguments_without_nproc() {
        let a: Vec<OsString> = [
            "--config",
            "x.toml",
            "--nproc",
            "2",
            "--nproc=3",
            "--seed",
            "1",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let want: Vec<OsString> = ["--config", "x.toml", "--seed", "1"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(without_nproc(&a), want);
    }
}
