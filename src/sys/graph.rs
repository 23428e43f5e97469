//! CUDA graphs for the training step of §3.4/§4.2 (`run.cuda_graph`): the same SGD step, captured
//! once and replayed, so a small CIFAR net's ~200 kernel launches per step cost one launch.
//!
//! # Route: extend the C++ shim
//! tch 0.24 has no graph or stream API, and none can be built from what it has: capture needs
//! libtorch's `at::cuda::CUDAGraph` (which also routes the caching allocator to a private pool
//! for the capture) and a non-default current stream, both C++-only. So `csrc/graph.cpp` wraps
//! exactly the calls PyTorch's own `torch.cuda.graph` context manager makes (synchronize, empty
//! the cache, side stream, `capture_begin`, work, `capture_end`, restore the stream), and this
//! module is the thin safe Rust side. tch's `Tensor::as_ptr`/`as_mut_ptr` give the `at::Tensor*`
//! for the one tensor call (the asynchronous copy from page-locked memory).
//!
//! # What the caller must respect
//! A captured graph holds raw device addresses of every tensor the captured work touched, and
//! replays the captured kernels with the values those tensors hold at replay time. Hence: the
//! captured work may not synchronize with the host (no `.double_value`, no copy to the CPU), may
//! not copy from pageable host memory, and every tensor it reads or writes that outlives the
//! capture (parameters, gradients, momentum, BN statistics, the data, the static inputs, the
//! metric slots) must stay alive at the same address for as long as the graph is replayed. That
//! last rule is what [`CudaGraph::replay`]'s `unsafe` stands for. Tensors created inside the
//! capture live in the graph's private memory pool, which the graph keeps.
//!
//! On a machine without CUDA every constructor fails with one message; nothing here panics.
use anyhow::{bail, Result};
use std::ffi::{c_char, c_void, CStr};
use tch::{Device, Tensor};

extern "C" {
    fn resnet_graph_last_error() -> *const c_char;
    fn resnet_cuda_device_count() -> i32;
    fn resnet_graph_new(device: i32, out: *mut *mut c_void) -> i32;
    fn resnet_graph_free(g: *mut c_void);
    fn resnet_graph_enter_side(g: *mut c_void) -> i32;
    fn resnet_graph_exit_side(g: *mut c_void) -> i32;
    fn resnet_graph_capture_begin(g: *mut c_void) -> i32;
    fn resnet_graph_capture_end(g: *mut c_void) -> i32;
    fn resnet_graph_capture_abort(g: *mut c_void) -> i32;
    fn resnet_graph_replay(g: *mut c_void) -> i32;
    fn resnet_copy_to_device_async(dst: *mut c_void, src: *const c_void) -> i32;
    fn resnet_set_autocast_cache_enabled(enabled: i32);
    fn resnet_autocast_cache_enabled() -> i32;
}

/// The shim's message for the last failed call on this thread.
fn last_error() -> String {
    // SAFETY: the shim returns a pointer to its thread-local std::string's NUL-terminated buffer,
    // valid until the next shim call on this thread; it is copied out at once.
    let p = unsafe { resnet_graph_last_error() };
    if p.is_null() {
        return "unknown error in the CUDA graph shim".into();
    }
    // SAFETY: non-null, NUL-terminated (see above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Turns a shim status (0 = success) into a Result carrying the shim's message.
fn check(status: i32) -> Result<()> {
    if status == 0 {
        Ok(())
    } else {
        bail!("{}", last_error())
    }
}

/// Whether this binary was built with the CUDA-graph shim (libtorch with its CUDA backend and
/// the CUDA runtime headers found by build.rs); otherwise every graph call fails with a message.
pub fn built_with_graphs() -> bool {
    cfg!(has_cuda_graph)
}

/// CUDA devices libtorch sees (0 on a machine without a GPU or driver).
pub fn cuda_device_count() -> usize {
    // SAFETY: a plain query without arguments; the shim catches every C++ exception.
    unsafe { resnet_cuda_device_count() }.max(0) as usize
}

/// `dst` (a CUDA tensor) ← `src` (a CPU tensor of the same shape and dtype), enqueued on the
/// current stream without waiting: `src` goes through page-locked memory from libtorch's caching
/// host allocator, which keeps that block until the copy is done, so `src` may be dropped at once.
pub fn copy_to_device_async(dst: &mut Tensor, src: &Tensor) -> Result<()> {
    if !dst.device().is_cuda() || src.device() != Device::Cpu {
        bail!(
            "copy_to_device_async: copies a CPU tensor into a CUDA tensor, got {:?} -> {:?}",
            src.device(),
            dst.device()
        );
    }
    if dst.size() != src.size() || dst.kind() != src.kind() {
        bail!(
            "copy_to_device_async: shape/dtype differ: {:?} {:?} -> {:?} {:?}",
            src.size(),
            src.kind(),
            dst.size(),
            dst.kind()
        );
    }
    // SAFETY: both pointers are live `at::Tensor*` owned by `dst` and `src`, which outlive the
    // call; the shim only reads `src` and calls `copy_` on `dst`, catching every exception.
    check(unsafe {
        resnet_copy_to_device_async(
            dst.as_mut_ptr() as *mut c_void,
            src.as_ptr() as *const c_void,
        )
    })
}

/// Runs `f` with autocast's weight-cast cache switched off (restored afterwards): inside a
/// capture every cast must be a captured kernel, not a tensor cached from outside it.
pub fn without_autocast_cache<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain calls on libtorch's thread-local autocast state, no pointers involved.
    let was = unsafe { resnet_autocast_cache_enabled() };
    unsafe { resnet_set_autocast_cache_enabled(0) };
    let out = f();
    unsafe { resnet_set_autocast_cache_enabled(i32::from(was != 0)) };
    out
}

/// One capturable graph on one CUDA device, with its own side stream (the stream PyTorch's
/// recipe warms up and captures on; replays run on the ordinary current stream).
pub struct CudaGraph {
    raw: *mut c_void,
    captured: bool,
}

impl CudaGraph {
    /// A graph (nothing captured yet) for `device`. Fails with one line without CUDA.
    pub fn new(device: Device) -> Result<CudaGraph> {
        let Device::Cuda(index) = device else {
            bail!("CUDA graphs need a CUDA device, this is {device:?}");
        };
        if !built_with_graphs() {
            bail!("{}", last_error());
        }
        let mut raw: *mut c_void = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success the shim stores a heap object that
        // only `resnet_graph_free` (in Drop) releases.
        check(unsafe { resnet_graph_new(index as i32, &mut raw) })?;
        if raw.is_null() {
            bail!("creating a CUDA graph: the shim returned no graph");
        }
        Ok(CudaGraph {
            raw,
            captured: false,
        })
    }

    /// Whether a capture has completed (the graph can be replayed).
    pub fn is_captured(&self) -> bool {
        self.captured
    }

    /// Runs `f` with this graph's side stream current, the whole device synchronized before and
    /// after (PyTorch warms up the captured work on the capture stream; a handful of calls).
    pub fn on_side_stream<T>(&mut self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        // SAFETY: `self.raw` is the live graph object from `new`.
        check(unsafe { resnet_graph_enter_side(self.raw) })?;
        let out = f();
        // SAFETY: as above; leaving is a no-op if `f` somehow already left.
        let left = check(unsafe { resnet_graph_exit_side(self.raw) });
        let out = out?;
        left?;
        Ok(out)
    }

    /// Captures the device work `f` enqueues (run once, on the side stream; nothing executes)
    /// into this graph. See the module doc for what `f` may do. A failing `f` (or capture)
    /// abandons the capture and leaves the graph uncaptured, with eager work possible again.
    pub fn capture(&mut self, f: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.captured {
            bail!("this CUDA graph is already captured");
        }
        /// Abandons the capture unless disarmed (also when `f` panics).
        struct Abort(*mut c_void, bool);
        impl Drop for Abort {
            fn drop(&mut self) {
                if self.1 {
                    // SAFETY: the live graph object; aborting an ended capture is a no-op.
                    unsafe { resnet_graph_capture_abort(self.0) };
                }
            }
        }
        // SAFETY: `self.raw` is the live graph object from `new`.
        check(unsafe { resnet_graph_capture_begin(self.raw) })?;
        let mut guard = Abort(self.raw, true);
        // A tch call that fails inside the capture (an op that is not capturable) panics; the
        // panic becomes this capture's error instead of a crash, after the capture is abandoned.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(done) => done?,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                bail!("the captured work failed: {}", msg.replace('\n', " "));
            }
        }
        guard.1 = false;
        // SAFETY: as above; a capture is underway (begun just now).
        let ended = check(unsafe { resnet_graph_capture_end(self.raw) });
        drop(guard);
        ended?;
        self.captured = true;
        Ok(())
    }

    /// Launches the captured work on the current stream (asynchronously).
    ///
    /// # Safety
    /// Every tensor the captured work used that was created outside the capture must still be
    /// alive, at the address it had during the capture (not reallocated, not dropped).
    pub unsafe fn replay(&self) -> Result<()> {
        if !self.captured {
            bail!("replaying a CUDA graph that has not been captured");
        }
        check(resnet_graph_replay(self.raw))
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `resnet_graph_new` and is freed exactly once, here.
        unsafe { resnet_graph_free(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shim is compiled and linked (its symbols resolve) and reports the device count that
    /// tch sees; without CUDA a graph is one clear error, never a crash.
    #[test]
    fn shim_links_and_refuses_cleanly_without_cuda() {
        let n = cuda_device_count();
        assert_eq!(n > 0, tch::Cuda::is_available(), "shim sees {n} devices");
        let e = CudaGraph::new(Device::Cpu)
            .err()
            .expect("cpu graph refused");
        assert!(format!("{e}").contains("need a CUDA device"), "{e}");
        if n == 0 {
            let e = CudaGraph::new(Device::Cuda(0))
                .err()
                .expect("no GPU: refused");
            let msg = format!("{e}");
            assert!(
                msg.contains("CUDA device 0 is not available") || msg.contains("built without"),
                "{msg}"
            );
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }

    #[test]
    fn async_copy_checks_its_arguments() {
        let src = Tensor::from_slice(&[1i64, 2, 3]);
        let mut dst = Tensor::zeros([3], (tch::Kind::Int64, Device::Cpu));
        let e = copy_to_device_async(&mut dst, &src).unwrap_err();
        assert!(format!("{e}").contains("into a CUDA tensor"), "{e}");
    }

    #[test]
    fn autocast_cache_switch_is_restored() {
        let before = unsafe { resnet_autocast_cache_enabled() };
        let inside = without_autocast_cache(|| unsafe { resnet_autocast_cache_enabled() });
        assert_eq!(inside, 0);
        assert_eq!(unsafe { resnet_autocast_cache_enabled() }, before);
    }
}
