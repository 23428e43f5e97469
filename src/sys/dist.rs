//! Data-parallel training of §3.4 ("a mini-batch of 256 on 8 GPUs") on PyTorch's c10d engine:
//! torchrun's environment, the TCPStore rendezvous, Gloo on CPUs and NCCL on GPUs.
//!
//! # Route: a shim over c10d from the same libtorch
//! tch 0.24 has no distributed API (no process group, no store). Rather than a protocol of our
//! own, `csrc/dist.cpp` calls libtorch's own c10d classes exactly as `torch.distributed`'s
//! `init_process_group` builds them: a `TCPStore` (hosted by torchrun's agent, or by rank 0
//! without torchrun) wrapped in a `PrefixStore("default_pg/0/")`, then a `ProcessGroupGloo` or
//! `ProcessGroupNCCL` on it. The wheel lacks gloo's headers, so five stand-in declarations live
//! in `csrc/gloo_standin` (../shared/notes/c10d.md tells why that is sound). This module is the
//! thin safe side: [`Env`] (torchrun's variables, validated), [`Store`], [`Group`].
//!
//! # Timeouts
//! c10d's defaults are 300 s for the store and 30 min for a group; here every blocking call
//! (rendezvous included) takes the one explicit [`GroupOptions::timeout`], default
//! [`DEFAULT_TIMEOUT`]. A failed collective leaves the group broken (Gloo closes its pairs): the
//! caller must stop, never retry.
use anyhow::{bail, Context, Result};
use std::ffi::{c_char, c_void, CStr, CString};
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

extern "C" {
    fn resnet_dist_last_error() -> *const c_char;
    fn resnet_dist_has_nccl() -> i32;
    fn resnet_dist_quiet_logs();
    fn resnet_dist_tcp_store_new(
        host: *const c_char,
        port: i32,
        is_server: i32,
        world_size: i32,
        wait_workers: i32,
        timeout_ms: i64,
        out: *mut *mut c_void,
    ) -> i32;
    fn resnet_dist_prefix_store_new(
        base: *mut c_void,
        prefix: *const c_char,
        out: *mut *mut c_void,
    ) -> i32;
    fn resnet_dist_store_free(s: *mut c_void);
    fn resnet_dist_store_set(
        s: *mut c_void,
        key: *const c_char,
        data: *const u8,
        len: usize,
    ) -> i32;
    fn resnet_dist_store_get(
        s: *mut c_void,
        key: *const c_char,
        timeout_ms: i64,
        out: *mut *mut u8,
        len: *mut usize,
    ) -> i32;
    fn resnet_dist_bytes_free(p: *mut u8);
    fn resnet_dist_store_add(s: *mut c_void, key: *const c_char, delta: i64, out: *mut i64) -> i32;
    fn resnet_dist_store_wait(s: *mut c_void, key: *const c_char, timeout_ms: i64) -> i32;
    #[allow(clippy::too_many_arguments)]
    fn resnet_dist_group_new(
        store: *mut c_void,
        backend: i32,
        rank: i32,
        size: i32,
        timeout_ms: i64,
        ifname: *const c_char,
        bind_host: *const c_char,
        device: i32,
        out: *mut *mut c_void,
    ) -> i32;
    fn resnet_dist_group_free(g: *mut c_void);
    fn resnet_dist_all_reduce_sum(g: *mut c_void, tensor: *mut c_void, timeout_ms: i64) -> i32;
    fn resnet_dist_broadcast(
        g: *mut c_void,
        tensor: *mut c_void,
        root: i32,
        timeout_ms: i64,
    ) -> i32;
    fn resnet_dist_barrier(g: *mut c_void, timeout_ms: i64) -> i32;
}

/// Every collective's and the rendezvous' bound unless `run.dist_timeout_s` says otherwise:
/// the store default of torch.distributed (its group default, 30 min, hides a lost rank).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The key prefix torch.distributed gives the default group's store.
const GROUP_PREFIX: &str = "default_pg/0/";

/// The shim's message for the last failed call on this thread (one line).
fn last_error() -> String {
    // SAFETY: the shim returns its thread-local std::string's NUL-terminated buffer, valid until
    // the next shim call on this thread; it is copied out at once.
    let p = unsafe { resnet_dist_last_error() };
    if p.is_null() {
        return "unknown error in the c10d shim".into();
    }
    // SAFETY: non-null, NUL-terminated (see above).
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    if s.is_empty() {
        "unknown error in the c10d shim".into()
    } else {
        s
    }
}

/// Turns a shim status (0 = success) into a Result carrying the shim's message.
fn check(status: i32) -> Result<(), String> {
    if status == 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).with_context(|| format!("{what} {s:?} contains a NUL byte"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// Whether this binary has ProcessGroupNCCL (a CUDA libtorch and the CUDA, NCCL and CCCL
/// headers at build time; build.rs says which).
pub fn built_with_nccl() -> bool {
    // SAFETY: a constant query without arguments.
    unsafe { resnet_dist_has_nccl() != 0 }
}

/// The collective engine: Gloo (CPU tensors) or NCCL (CUDA tensors, one GPU a rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Gloo,
    Nccl,
}

impl Backend {
    /// The backend that follows the device, as torch.distributed's default: NCCL on CUDA.
    pub fn for_device(device: Device) -> Backend {
        if device.is_cuda() {
            Backend::Nccl
        } else {
            Backend::Gloo
        }
    }

    pub fn parse(s: &str) -> Result<Backend> {
        match s {
            "gloo" => Ok(Backend::Gloo),
            "nccl" => Ok(Backend::Nccl),
            _ => bail!("dist backend {s:?}: expected \"gloo\" or \"nccl\""),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }

    /// Refuses NCCL where it cannot run, before any rendezvous: one line.
    pub fn check_available(self, cuda_devices: usize) -> Result<()> {
        if self == Backend::Nccl {
            if !built_with_nccl() {
                bail!("dist backend nccl: {}", nccl_stub_message());
            }
            if cuda_devices == 0 {
                bail!("dist backend nccl needs a CUDA GPU and this machine has none (use gloo on the CPU)");
            }
        }
        Ok(())
    }
}

fn nccl_stub_message() -> &'static str {
    "this build has no NCCL (libtorch without its CUDA backend, or no CUDA/NCCL/CCCL headers at \
     build time: run scripts/setup-libtorch.sh and rebuild)"
}

/// The variables torchrun gives each worker (and `resnet train --nproc` gives its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub master_addr: String,
    pub master_port: u16,
    pub rank: usize,
    pub world_size: usize,
    pub local_rank: usize,
    pub local_world_size: usize,
    /// TORCHELASTIC_RESTART_COUNT: how often torchrun restarted the workers (0 without it).
    pub restart_count: u32,
    /// TORCHELASTIC_USE_AGENT_STORE: torchrun's agent already hosts the store on MASTER_PORT,
    /// so every rank connects as a client; otherwise rank 0 hosts it.
    pub agent_store: bool,
    /// What identifies this launch among others on the same machine ([`LAUNCH_ID_VAR`], set by
    /// `--nproc`, else torchrun's TORCHELASTIC_RUN_ID): rank 0 publishes it in the store and every
    /// other rank compares it before the group forms, so that a rank that reached another job's
    /// store on the same port is refused at once.
    pub launch_id: Option<String>,
}

/// The variable `resnet train --nproc` gives its workers: one id per launch.
pub const LAUNCH_ID_VAR: &str = "RESNET_LAUNCH_ID";

impl Env {
    /// torchrun's environment of this process; None when neither RANK nor WORLD_SIZE is set
    /// (a single-process run).
    pub fn from_process() -> Result<Option<Env>> {
        Env::from_vars(|k| std::env::var(k).ok())
    }

    /// As [`Env::from_process`], the variables read through `get`. Each bad value is one line
    /// naming the variable and the value.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Env>> {
        if get("RANK").is_none() && get("WORLD_SIZE").is_none() {
            return Ok(None);
        }
        let need = |k: &str| {
            get(k).with_context(|| {
                format!("{k} is not set (RANK/WORLD_SIZE are: a distributed run needs MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE)")
            })
        };
        let world_size = number(&need("WORLD_SIZE")?, "WORLD_SIZE", 1)?;
        let rank = number(&need("RANK")?, "RANK", 0)?;
        if rank >= world_size {
            bail!("RANK={rank} is not below WORLD_SIZE={world_size}");
        }
        let master_addr = need("MASTER_ADDR")?;
        if master_addr.trim().is_empty() {
            bail!("MASTER_ADDR is empty");
        }
        let port = need("MASTER_PORT")?;
        let master_port = number(&port, "MASTER_PORT", 1)?;
        let master_port = u16::try_from(master_port)
            .map_err(|_| anyhow::anyhow!("MASTER_PORT={port:?}: not a port (1 to 65535)"))?;
        let local_rank = match get("LOCAL_RANK") {
            Some(v) => number(&v, "LOCAL_RANK", 0)?,
            None => rank,
        };
        let local_world_size = match get("LOCAL_WORLD_SIZE") {
            Some(v) => number(&v, "LOCAL_WORLD_SIZE", 1)?,
            None => world_size,
        };
        if local_world_size > world_size {
            bail!("LOCAL_WORLD_SIZE={local_world_size} is above WORLD_SIZE={world_size}");
        }
        if local_rank >= local_world_size {
            bail!("LOCAL_RANK={local_rank} is not below LOCAL_WORLD_SIZE={local_world_size}");
        }
        let restart_count = match get("TORCHELASTIC_RESTART_COUNT") {
            Some(v) => u32::try_from(number(&v, "TORCHELASTIC_RESTART_COUNT", 0)?)
                .map_err(|_| anyhow::anyhow!("TORCHELASTIC_RESTART_COUNT={v:?}: too large"))?,
            None => 0,
        };
        let agent_store = match get("TORCHELASTIC_USE_AGENT_STORE").as_deref() {
            None | Some("False") | Some("false") | Some("0") => false,
            Some("True") | Some("true") | Some("1") => true,
            Some(v) => bail!("TORCHELASTIC_USE_AGENT_STORE={v:?}: expected True or False"),
        };
        let launch_id = get(LAUNCH_ID_VAR)
            .or_else(|| get("TORCHELASTIC_RUN_ID"))
            .filter(|v| !v.is_empty());
        Ok(Some(Env {
            master_addr,
            master_port,
            rank,
            world_size,
            local_rank,
            local_world_size,
            restart_count,
            agent_store,
            launch_id,
        }))
    }

    /// Whether this process hosts the store: rank 0, unless torchrun's agent does.
    pub fn hosts_store(&self) -> bool {
        self.rank == 0 && !self.agent_store
    }
}

/// `v` as a whole number of at least `min`, or one line naming the variable.
fn number(v: &str, var: &str, min: usize) -> Result<usize> {
    let n: usize = v
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{var}={v:?}: not a whole number"))?;
    if n < min {
        bail!("{var}={v:?}: must be at least {min}");
    }
    Ok(n)
}

/// c10d logs every failure (with a C++ backtrace) before returning it; the errors here already
/// carry its message in one line, so its own log is silenced unless TORCH_CPP_LOG_LEVEL asks.
fn quiet_c10d_logs() {
    if std::env::var_os("TORCH_CPP_LOG_LEVEL").is_none() {
        // SAFETY: sets one int in libc10; called before any c10d object exists on this thread.
        unsafe { resnet_dist_quiet_logs() }
    }
}

/// Runs `f` on a thread of its own and waits for it at most `timeout` (plus a margin for the
/// shim's own bound to fire first): `None` when it has not returned by then. A c10d call that
/// waits on a peer which accepted the connection but never answers has no bound of its own.
fn within_deadline<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout + DEADLINE_MARGIN).ok()
}

/// How long past a timeout [`within_deadline`] waits for c10d to report it itself.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// The store key under which rank 0 publishes its launch id.
const LAUNCH_KEY: &str = "resnet/launch_id";

/// Rank 0 publishes `env.launch_id` in the store; every other rank reads it and refuses a store
/// of another launch at once, naming the port (a second job on the same MASTER_PORT), before
/// the group is formed.
fn check_launch(store: &Store, env: &Env) -> Result<()> {
    let Some(mine) = &env.launch_id else {
        return Ok(());
    };
    if env.rank == 0 {
        return store.set(LAUNCH_KEY, mine.as_bytes());
    }
    let theirs = store.get(LAUNCH_KEY)?;
    if theirs != mine.as_bytes() {
        bail!(
            "rank {} of {}: the store at {}:{} belongs to another launch (its id {}, ours {mine}): \
             another job uses MASTER_PORT {}; give each job its own port",
            env.rank,
            env.world_size,
            env.master_addr,
            env.master_port,
            crate::sys::console::shown(&String::from_utf8_lossy(&theirs)),
            env.master_port
        );
    }
    Ok(())
}

/// A c10d key-value store (TCPStore, or a PrefixStore view of one).
pub struct Store {
    raw: *mut c_void,
    timeout: Duration,
}

// SAFETY: c10d stores are used from any thread by torch.distributed (TCPStore's client
// serializes its socket behind a mutex); the handle owns its intrusive_ptr.
unsafe impl Send for Store {}

impl Store {
    /// A TCPStore at host:port. The server binds the port (an error at once when it is taken)
    /// and waits up to `timeout` until `world_size` processes (itself included) connected; a
    /// client retries connecting until `timeout`. Either way the call ends by the deadline,
    /// also where something at the port accepts the connection and never answers.
    pub fn tcp(
        host: &str,
        port: u16,
        server: bool,
        world_size: usize,
        timeout: Duration,
    ) -> Result<Store> {
        quiet_c10d_logs();
        let h = cstring("store host", host)?;
        let role = if server { "hosting" } else { "connecting to" };
        let started = Instant::now();
        let ms = millis(timeout);
        let made = within_deadline(timeout, move || {
            let mut raw = std::ptr::null_mut();
            // SAFETY: valid C string and out-pointer; on success `raw` is a heap handle freed in
            // Drop (or, past the deadline, never: the process is ending with the error).
            check(unsafe {
                resnet_dist_tcp_store_new(
                    h.as_ptr(),
                    i32::from(port),
                    i32::from(server),
                    world_size as i32,
                    1,
                    ms,
                    &mut raw,
                )
            })
            .map(|()| raw as usize)
        })
        .unwrap_or_else(|| {
            Err(format!(
                "no answer within the timeout (something on port {port} accepts connections but \
                 does not answer as a store: another program or job on MASTER_PORT?)"
            ))
        });
        let raw = made.map_err(|e| {
            anyhow::anyhow!(
                "{role} the store at {host}:{port} (world size {world_size}, timeout {} s) failed after {:.1} s: {e}",
                timeout.as_secs_f64(),
                started.elapsed().as_secs_f64()
            )
        })? as *mut c_void;
        Ok(Store { raw, timeout })
    }

    /// The same store with every key prefixed by `prefix`.
    pub fn prefixed(&self, prefix: &str) -> Result<Store> {
        let p = cstring("store prefix", prefix)?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `self.raw` is live; the new handle holds its own reference to the base store.
        check(unsafe { resnet_dist_prefix_store_new(self.raw, p.as_ptr(), &mut raw) })
            .map_err(|e| anyhow::anyhow!("store prefix {prefix:?}: {e}"))?;
        Ok(Store {
            raw,
            timeout: self.timeout,
        })
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let k = cstring("store key", key)?;
        // SAFETY: live handle, valid key, `value` valid for `len` bytes.
        check(unsafe { resnet_dist_store_set(self.raw, k.as_ptr(), value.as_ptr(), value.len()) })
            .map_err(|e| anyhow::anyhow!("store set {key:?}: {e}"))
    }

    /// The value of `key`, waiting up to the store's timeout until some process sets it.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let k = cstring("store key", key)?;
        let (mut p, mut len) = (std::ptr::null_mut(), 0usize);
        // SAFETY: live handle, valid key and out-pointers; on success `p` is a malloc'd buffer
        // of `len` bytes that is copied and released below.
        check(unsafe {
            resnet_dist_store_get(self.raw, k.as_ptr(), millis(self.timeout), &mut p, &mut len)
        })
        .map_err(|e| anyhow::anyhow!("store get {key:?}: {e}"))?;
        // SAFETY: see above; `p` is non-null on success.
        let v = unsafe { std::slice::from_raw_parts(p, len) }.to_vec();
        unsafe { resnet_dist_bytes_free(p) };
        Ok(v)
    }

    /// Adds `delta` to the counter `key` (0 when new) and returns the new value.
    pub fn add(&self, key: &str, delta: i64) -> Result<i64> {
        let k = cstring("store key", key)?;
        let mut out = 0i64;
        // SAFETY: live handle, valid key and out-pointer.
        check(unsafe { resnet_dist_store_add(self.raw, k.as_ptr(), delta, &mut out) })
            .map_err(|e| anyhow::anyhow!("store add {key:?}: {e}"))?;
        Ok(out)
    }

    /// Waits up to `timeout` until `key` exists.
    pub fn wait(&self, key: &str, timeout: Duration) -> Result<()> {
        let k = cstring("store key", key)?;
        // SAFETY: live handle, valid key.
        check(unsafe { resnet_dist_store_wait(self.raw, k.as_ptr(), millis(timeout)) })
            .map_err(|e| anyhow::anyhow!("store wait {key:?} ({} s): {e}", timeout.as_secs_f64()))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: `raw` came from the shim and is freed once.
        unsafe { resnet_dist_store_free(self.raw) }
    }
}

/// How a group is set up; [`GroupOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    pub backend: Backend,
    /// Bounds the rendezvous and every collective.
    pub timeout: Duration,
}

impl GroupOptions {
    pub fn new(backend: Backend) -> GroupOptions {
        GroupOptions {
            backend,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Where Gloo binds its sockets, as torch.distributed chooses: `GLOO_SOCKET_IFNAME` when set,
/// the loopback address for a single-host run on 127.0.0.1/localhost, else the host name's
/// address (binding every rank to MASTER_ADDR would break on a second node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Interface(String),
    Host(String),
    Default,
}

impl Bind {
    pub fn choose(master_addr: &str, ifname: Option<&str>) -> Bind {
        if let Some(i) = ifname
            .and_then(|v| v.split(',').next())
            .filter(|i| !i.is_empty())
        {
            return Bind::Interface(i.to_string());
        }
        let loopback =
            master_addr == "localhost" || master_addr == "::1" || master_addr.starts_with("127.");
        if loopback {
            Bind::Host(master_addr.to_string())
        } else {
            Bind::Default
        }
    }
}

/// One process group (torch.distributed's default group): its store, rank and backend.
pub struct Group {
    raw: *mut c_void,
    store: Store,
    rank: usize,
    world_size: usize,
    backend: Backend,
    device: Device,
    timeout: Duration,
}

// SAFETY: c10d process groups are thread-safe (collectives are queued to their own threads);
// the handle owns its intrusive_ptr.
unsafe impl Send for Group {}

impl Group {
    /// The rendezvous of torch.distributed's `init_process_group(init_method="env://")`: the
    /// store (hosted here when [`Env::hosts_store`]), its "default_pg/0/" view, the launch id
    /// compared ([`Env::launch_id`]), the group; every step bounded by `opts.timeout`.
    pub fn init(env: &Env, opts: &GroupOptions) -> Result<Group> {
        opts.backend
            .check_available(tch::Cuda::device_count() as usize)?;
        let tcp = Store::tcp(
            &env.master_addr,
            env.master_port,
            env.hosts_store(),
            env.world_size,
            opts.timeout,
        )
        .with_context(|| format!("rank {} of {}: rendezvous", env.rank, env.world_size))?;
        // torchrun's agent store outlives a restart of the workers: as torch.distributed's env://
        // rendezvous does, each attempt works under its own prefix, so that no key of an earlier
        // attempt (a rank's address, a starting iteration) is read by this one.
        let store = if env.agent_store {
            tcp.prefixed(&format!("/worker/attempt_{}", env.restart_count))?
                .prefixed(GROUP_PREFIX)?
        } else {
            tcp.prefixed(GROUP_PREFIX)?
        };
        check_launch(&store, env)?;
        let ifname = std::env::var("GLOO_SOCKET_IFNAME").ok();
        let bind = Bind::choose(&env.master_addr, ifname.as_deref());
        Group::new(store, env.rank, env.world_size, env.local_rank, opts, &bind)
    }

    /// A group over `store` (already prefixed); NCCL runs on CUDA device `local_rank`.
    pub fn new(
        store: Store,
        rank: usize,
        world_size: usize,
        local_rank: usize,
        opts: &GroupOptions,
        bind: &Bind,
    ) -> Result<Group> {
        let (ifname, host) = match bind {
            Bind::Interface(i) => (cstring("GLOO_SOCKET_IFNAME", i)?, CString::default()),
            Bind::Host(h) => (CString::default(), cstring("bind address", h)?),
            Bind::Default => (CString::default(), CString::default()),
        };
        let backend = opts.backend;
        let started = Instant::now();
        let (store_raw, ms) = (store.raw as usize, millis(opts.timeout));
        // Past the deadline the store handle is leaked with the waiting thread (the process is
        // ending with the error), never freed under it.
        let made = within_deadline(opts.timeout, move || {
            let mut raw = std::ptr::null_mut();
            // SAFETY: live store handle (the group keeps its own reference), valid C strings and
            // out-pointer; on success `raw` is a heap handle freed in Drop.
            check(unsafe {
                resnet_dist_group_new(
                    store_raw as *mut c_void,
                    i32::from(backend == Backend::Nccl),
                    rank as i32,
                    world_size as i32,
                    ms,
                    ifname.as_ptr(),
                    host.as_ptr(),
                    local_rank as i32,
                    &mut raw,
                )
            })
            .map(|()| raw as usize)
        });
        let Some(made) = made else {
            std::mem::forget(store);
            bail!(
                "rank {rank} of {world_size}: creating the {} group did not complete within its \
                 timeout ({} s)",
                backend.name(),
                opts.timeout.as_secs_f64()
            );
        };
        let raw = made.map_err(|e| {
            anyhow::anyhow!(
                "rank {rank} of {world_size}: creating the {} group failed after {:.1} s (timeout {} s): {e}",
                backend.name(),
                started.elapsed().as_secs_f64(),
                opts.timeout.as_secs_f64()
            )
        })? as *mut c_void;
        let device = match backend {
            Backend::Gloo => Device::Cpu,
            Backend::Nccl => Device::Cuda(local_rank),
        };
        Ok(Group {
            raw,
            store,
            rank,
            world_size,
            backend,
            device,
            timeout: opts.timeout,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the group's tensors live: the CPU (Gloo) or cuda:LOCAL_RANK (NCCL).
    pub fn device(&self) -> Device {
        self.device
    }

    /// The group's store (keys under "default_pg/0/"), for agreements outside the collectives.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One line for a failed collective: who, what, how long, c10d's message, and which peer
    /// the failure points to when that is knowable (with two ranks, the other one).
    fn failed(&self, what: &str, started: Instant, e: String) -> anyhow::Error {
        let lost = [
            "closed by peer",
            "timed out",
            "Timed out",
            "pair closure",
            "reset by peer",
        ];
        let hint = if !lost.iter().any(|p| e.contains(p)) {
            String::new()
        } else if self.world_size == 2 {
            format!(" (rank {} was lost or is stuck)", 1 - self.rank)
        } else {
            " (a peer rank was lost or is stuck)".to_string()
        };
        anyhow::anyhow!(
            "rank {} of {}: {what} ({}) failed after {:.2} s (timeout {} s): {e}{hint}",
            self.rank,
            self.world_size,
            self.backend.name(),
            started.elapsed().as_secs_f64(),
            self.timeout.as_secs_f64()
        )
    }

    fn flat_on_device(&self, what: &str, t: &Tensor) -> Result<()> {
        if t.device() != self.device {
            bail!(
                "rank {}: {what}: the tensor is on {:?}, the {} group works on {:?}",
                self.rank,
                t.device(),
                self.backend.name(),
                self.device
            );
        }
        if !t.is_contiguous() {
            bail!(
                "rank {}: {what}: the tensor is not contiguous (one flat buffer)",
                self.rank
            );
        }
        Ok(())
    }

    /// In place: `t` ← the sum over ranks.
    pub fn all_reduce_sum(&self, t: &mut Tensor) -> Result<()> {
        let what = format!("all_reduce of {} values", t.numel());
        self.flat_on_device(&what, t)?;
        let started = Instant::now();
        // SAFETY: live group; `t` is a live `at::Tensor*` for the duration of the blocking call.
        check(unsafe {
            resnet_dist_all_reduce_sum(
                self.raw,
                t.as_mut_ptr() as *mut c_void,
                millis(self.timeout),
            )
        })
        .map_err(|e| self.failed(&what, started, e))
    }

    /// In place: `t` (float32, one flat buffer) ← the mean over ranks (sum, then / world size).
    pub fn all_reduce_mean(&self, t: &mut Tensor) -> Result<()> {
        if t.kind() != Kind::Float {
            bail!(
                "rank {}: all_reduce_mean takes float32, got {:?}",
                self.rank,
                t.kind()
            );
        }
        self.all_reduce_sum(t)?;
        if self.world_size > 1 {
            let _ = t.g_div_scalar_(self.world_size as f64);
        }
        Ok(())
    }

    /// `counts` ← their sums over ranks (eval totals, stop flags).
    pub fn all_reduce_counts(&self, counts: &mut [i64]) -> Result<()> {
        let mut t = Tensor::from_slice(counts).to_device(self.device);
        self.all_reduce_sum(&mut t)?;
        let t = t.to_device(Device::Cpu);
        counts.copy_from_slice(&Vec::<i64>::try_from(&t)?);
        Ok(())
    }

    /// In place: `t` ← rank `root`'s `t`.
    pub fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        let what = format!("broadcast of {} values from rank {root}", t.numel());
        if root >= self.world_size {
            bail!(
                "rank {}: {what}: no such rank (world size {})",
                self.rank,
                self.world_size
            );
        }
        self.flat_on_device(&what, t)?;
        let started = Instant::now();
        // SAFETY: as in all_reduce_sum.
        check(unsafe {
            resnet_dist_broadcast(
                self.raw,
                t.as_mut_ptr() as *mut c_void,
                root as i32,
                millis(self.timeout),
            )
        })
        .map_err(|e| self.failed(&what, started, e))
    }

    /// Returns once every rank called it (or fails at the timeout).
    pub fn barrier(&self) -> Result<()> {
        let started = Instant::now();
        // SAFETY: live group.
        check(unsafe { resnet_dist_barrier(self.raw, millis(self.timeout)) })
            .map_err(|e| self.failed("barrier", started, e))
    }

    /// Every rank's `value` under `key`, in rank order (for comparing a config hash at start).
    pub fn gather_bytes(&self, key: &str, value: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.store.set(&format!("{key}/{}", self.rank), value)?;
        (0..self.world_size)
            .map(|r| {
                self.store
                    .get(&format!("{key}/{r}"))
                    .with_context(|| format!("rank {}: waiting for rank {r}'s {key}", self.rank))
            })
            .collect()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: `raw` came from the shim and is freed once.
        unsafe { resnet_dist_group_free(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> Result<Option<Env>> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_vars(|k| m.get(k).cloned())
    }

    const OK: [(&str, &str); 4] = [
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", "29500"),
        ("RANK", "1"),
        ("WORLD_SIZE", "2"),
    ];

    fn with(over: &[(&'static str, &'static str)]) -> Result<Option<Env>> {
        let mut v: Vec<(&str, &str)> = OK
            .iter()
            .filter(|(k, _)| !over.iter().any(|(o, _)| o == k))
            .copied()
            .collect();
        v.extend(over.iter().filter(|(_, val)| !val.is_empty()).copied());
        env_of(&v)
    }

    fn err(over: &[(&'static str, &'static str)]) -> String {
        let e = format!("{:#}", with(over).unwrap_err());
        assert!(!e.contains('\n'), "{e}");
        e
    }

    #[test]
    fn no_rank_no_world_size_is_a_single_process() {
        assert_eq!(env_of(&[("MASTER_PORT", "1")]).unwrap(), None);
    }

    #[test]
    fn torchrun_env_is_parsed_with_defaults() {
        let e = with(&[]).unwrap().unwrap();
        assert_eq!(
            (e.rank, e.world_size, e.local_rank, e.local_world_size),
            (1, 2, 1, 2)
        );
        assert_eq!(
            (e.master_port, e.restart_count, e.agent_store),
            (29500, 0, false)
        );
        let e = with(&[
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("LOCAL_RANK", "0"),
            ("LOCAL_WORLD_SIZE", "1"),
        ])
        .unwrap()
        .unwrap();
        assert!(e.agent_store && !e.hosts_store());
        assert_eq!((e.local_rank, e.local_world_size), (0, 1));
    }

    #[test]
    fn bad_env_values_are_one_line_each_naming_variable_and_value() {
        let cases: [(&[(&str, &str)], &str); 10] = [
            (
                &[("WORLD_SIZE", "0")],
                "WORLD_SIZE=\"0\": must be at least 1",
            ),
            (
                &[("WORLD_SIZE", "two")],
                "WORLD_SIZE=\"two\": not a whole number",
            ),
            (&[("RANK", "-1")], "RANK=\"-1\": not a whole number"),
            (&[("RANK", "2")], "RANK=2 is not below WORLD_SIZE=2"),
            (
                &[("MASTER_PORT", "70000")],
                "MASTER_PORT=\"70000\": not a port",
            ),
            (&[("MASTER_PORT", "")], "MASTER_PORT is not set"),
            (&[("MASTER_ADDR", " ")], "MASTER_ADDR is empty"),
            (
                &[("LOCAL_WORLD_SIZE", "3")],
                "LOCAL_WORLD_SIZE=3 is above WORLD_SIZE=2",
            ),
            (
                &[("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "1")],
                "LOCAL_RANK=1 is not below LOCAL_WORLD_SIZE=1",
            ),
            (
                &[("TORCHELASTIC_USE_AGENT_STORE", "yes")],
                "TORCHELASTIC_USE_AGENT_STORE=\"yes\"",
            ),
        ];
        for (over, want) in cases {
            let e = err(over);
            assert!(e.contains(want), "{over:?}: {e}");
        }
    }

    #[test]
    fn gloo_binds_loopback_for_local_runs_and_the_interface_when_named() {
        assert_eq!(
            Bind::choose("127.0.0.1", None),
            Bind::Host("127.0.0.1".into())
        );
        assert_eq!(Bind::choose("10.0.0.5", None), Bind::Default);
        assert_eq!(
            Bind::choose("10.0.0.5", Some("eth1,eth2")),
            Bind::Interface("eth1".into())
        );
    }

    #[test]
    fn nccl_without_a_gpu_is_one_clear_error() {
        let e = Backend::Nccl.check_available(0).unwrap_err().to_string();
        assert!(e.contains("nccl") && !e.contains('\n'), "{e}");
        assert!(
            e.contains("no NCCL") || e.contains("needs a CUDA GPU"),
            "{e}"
        );
        Backend::Gloo.check_available(0).unwrap();
        assert_eq!(Backend::for_device(Device::Cuda(0)), Backend::Nccl);
        assert!(Backend::parse("mpi").is_err());
    }
}
