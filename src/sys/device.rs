//! Where a run computes (§3.4 trained on GPUs; here CPU or CUDA): device choice (and the CUDA
//! checks of `run.cuda_graph`), cuDNN benchmark mode, thread count, and the bfloat16 autocast
//! switch from the C++ shim (csrc/shim.cpp).
use crate::config::{DeviceChoice, Precision, RunConfig};
use anyhow::{bail, Result};
use tch::{Cuda, Device};

extern "C" {
    fn resnet_set_cuda_autocast_dtype(kind: i32);
    fn resnet_get_cuda_autocast_dtype_is_bf16() -> i32;
}

/// Resolves `run.device`: `auto` is CUDA when present (cuDNN benchmark on), else the CPU.
pub fn select(run: &RunConfig) -> Result<Device> {
    if run.threads > 0 {
        tch::set_num_threads(run.threads as i32);
    }
    let device = match run.device {
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Auto => Device::cuda_if_available(),
        DeviceChoice::Cuda => {
            if !Cuda::is_available() {
                bail!("run.device = \"cuda\" but no CUDA device is available; allowed: \"auto\", \"cpu\", \"cuda\"");
            }
            Device::Cuda(0)
        }
    };
    if run.cuda_graph && !device.is_cuda() {
        bail!(
            "run.cuda_graph = true needs a CUDA device and none is available (run.device = \"{}\"); \
             set run.cuda_graph = false to train eagerly on the CPU",
            format!("{:?}", run.device).to_lowercase()
        );
    }
    if run.cuda_graph && !crate::sys::graph::built_with_graphs() {
        bail!(
            "run.cuda_graph = true but this binary was built without the CUDA-graph shim \
             (build.rs found no CUDA runtime headers); set run.cuda_graph = false"
        );
    }
    if device.is_cuda() {
        Cuda::cudnn_set_benchmark(true);
    }
    if run.precision == Precision::Bf16 && !device.is_cuda() {
        bail!("run.precision = \"bf16\" needs a CUDA device (autocast); use \"fp32\" on the CPU");
    }
    Ok(device)
}

/// Makes CUDA autocast use bfloat16 (no loss scaling needed) instead of its float16 default.
pub fn use_bf16_autocast() {
    // SAFETY: plain C calls into libtorch's autocast state, no pointers involved.
    unsafe { resnet_set_cuda_autocast_dtype(1) }
}

/// Whether CUDA autocast currently uses bfloat16.
pub fn autocast_is_bf16() -> bool {
    // SAFETY: as above.
    unsafe { resnet_get_cuda_autocast_dtype_is_bf16() == 1 }
}

/// Blocks until queued device work is done (for timing).
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        Cuda::synchronize(i as i64);
    }
}

/// A short description of the device for logs and benchmark output.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shim_switches_autocast_dtype() {
        super::use_bf16_autocast();
        assert!(super::autocast_is_bf16());
    }
}
