//! Memory probes for the estimate of [`crate::run::budget`] (the paper's nets at its batch sizes,
//! §3.4 and §4.2, must fit before anything is allocated): the host's `MemAvailable` and the CUDA
//! device's free memory, and the refusal of a host allocation that cannot fit.
use anyhow::{bail, Result};
use tch::Device;

/// Bytes as `12.3 GiB` (or MiB, KiB, B).
pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else if v >= 1024.0 {
        format!("{v:.3e} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Refuses to allocate `bytes` on the host for `what` when they exceed `MemAvailable`.
pub fn host_fits(bytes: f64, what: impl FnOnce() -> String) -> Result<()> {
    if let Some(have) = host_available() {
        if bytes > have as f64 {
            bail!(
                "{}: needs about {} of memory, but {} is available (MemAvailable)",
                what(),
                human(bytes),
                human(have as f64)
            );
        }
    }
    Ok(())
}

/// `MemAvailable` from /proc/meminfo, in bytes.
pub fn host_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Free memory of the current CUDA device from the CUDA runtime already loaded by libtorch
/// (`cudaMemGetInfo`), or `None` when the runtime or the call is unavailable.
pub fn cuda_free(device: Device) -> Option<u64> {
    use std::ffi::{c_char, c_int, c_void};
    if !device.is_cuda() {
        return None;
    }
    extern "C" {
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    }
    type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> c_int;
    // SAFETY: dlsym with RTLD_DEFAULT (a null handle on glibc) only looks a symbol up. When found,
    // it is the CUDA runtime's `cudaError_t cudaMemGetInfo(size_t *free, size_t *total)`, called
    // with two valid pointers; it reports on the current device (0, the one runs use).
    unsafe {
        let sym = dlsym(std::ptr::null_mut(), c"cudaMemGetInfo".as_ptr());
        if sym.is_null() {
            return None;
        }
        let f: MemGetInfo = std::mem::transmute::<*mut c_void, MemGetInfo>(sym);
        let (mut free, mut total) = (0usize, 0usize);
        (f(&mut free, &mut total) == 0).then_some(free as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_parsed_in_bytes() {
        let t = "MemTotal:       16000000 kB\nMemAvailable:    1234 kB\n";
        assert_eq!(parse_mem_available(t), Some(1234 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(3.0 * (1u64 << 40) as f64), "3.0 TiB");
    }

    #[test]
    fn no_cuda_free_memory_on_the_cpu() {
        assert_eq!(cuda_free(Device::Cpu), None);
    }
}
