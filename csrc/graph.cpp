// CUDA graphs for the training step (src/sys/graph.rs is the Rust side). tch 0.24 exposes no graph
// or stream API, so this file wraps libtorch's own `at::cuda::CUDAGraph` and the c10 stream
// pool the same way PyTorch's python `torch.cuda.graph` context manager does
// (torch/cuda/graphs.py): synchronize, empty the caching allocator, make a side stream current,
// `capture_begin` (private memory pool, cudaStreamCaptureModeGlobal), run the step, `capture_end`
// (which instantiates the executable graph), restore the stream; later `replay()` launches the
// whole graph on the then-current stream.
//
// Only ATen/c10 entry points are called (exported by libtorch_cuda.so and libc10_cuda.so), never
// the CUDA runtime directly, so the binary needs no libcudart at link time; the CUDA headers are
// needed only for the types in the ATen headers.
//
// Every function catches all C++ exceptions and returns 0 on success, non-zero on failure, with
// the message kept for `resnet_graph_last_error` (per thread). Nothing here may throw into Rust.
#include <ATen/Tensor.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include <exception>
#include <optional>
#include <string>

namespace {

thread_local std::string last_error;

template <typename F>
int guarded(const char* what, F&& f) {
  try {
    f();
    last_error.clear();
    return 0;
  } catch (const std::exception& e) {
    last_error = std::string(what) + ": " + e.what();
  } catch (...) {
    last_error = std::string(what) + ": unknown C++ exception";
  }
  return 1;
}

// One captured step: the graph, the side stream it is captured on (PyTorch's warm-up and capture
// stream), and the stream that was current before the side stream was entered.
struct Graph {
  c10::DeviceIndex device;
  c10::cuda::CUDAStream side;
  std::optional<c10::cuda::CUDAStream> saved;
  at::cuda::CUDAGraph graph;
  bool capturing = false;
  bool captured = false;

  Graph(c10::DeviceIndex d)
      : device(d), side(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, d)), graph() {}
};

void check_device(int device) {
  auto n = static_cast<int>(c10::cuda::device_count());
  if (device < 0 || device >= n) {
    throw std::runtime_error("CUDA device " + std::to_string(device) + " is not available (" +
                             std::to_string(n) + " CUDA devices found)");
  }
}

// The whole device idles before a stream switch, so no cross-stream event is needed (as
// torch.cuda.graph's __enter__, which synchronizes before capture). Used only a few times.
void enter_side(Graph* g) {
  if (g->saved) throw std::runtime_error("already on the side stream");
  c10::cuda::set_device(g->device);
  c10::cuda::device_synchronize();
  g->saved = c10::cuda::getCurrentCUDAStream(g->device);
  c10::cuda::setCurrentCUDAStream(g->side);
}

void exit_side(Graph* g) {
  if (!g->saved) return;
  c10::cuda::device_synchronize();
  c10::cuda::setCurrentCUDAStream(*g->saved);
  g->saved.reset();
}

}  // namespace

extern "C" {

const char* resnet_graph_last_error() { return last_error.c_str(); }

// Number of CUDA devices libtorch sees (0 without a driver or GPU); never fails.
int resnet_cuda_device_count() {
  try {
    return static_cast<int>(c10::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

int resnet_graph_new(int device, void** out) {
  *out = nullptr;
  return guarded("creating a CUDA graph", [&] {
    check_device(device);
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    *out = new Graph(static_cast<c10::DeviceIndex>(device));
  });
}

void resnet_graph_free(void* p) {
  if (p == nullptr) return;
  auto* g = static_cast<Graph*>(p);
  try {
    exit_side(g);
  } catch (...) {
  }
  try {
    delete g;
  } catch (...) {
  }
}

// Makes the graph's side stream current (device synchronized first).
int resnet_graph_enter_side(void* p) {
  return guarded("switching to the side stream", [&] { enter_side(static_cast<Graph*>(p)); });
}

// Restores the stream that was current before `resnet_graph_enter_side` (device synchronized).
int resnet_graph_exit_side(void* p) {
  return guarded("leaving the side stream", [&] { exit_side(static_cast<Graph*>(p)); });
}

// Starts capturing on the side stream (entered here): frees cached blocks first, as
// torch.cuda.graph does, so the graph's private pool can take them.
int resnet_graph_capture_begin(void* p) {
  auto* g = static_cast<Graph*>(p);
  return guarded("beginning the CUDA graph capture", [&] {
    if (g->captured || g->capturing) throw std::runtime_error("this graph is already captured");
    enter_side(g);
    try {
      c10::cuda::CUDACachingAllocator::emptyCache();
      g->graph.capture_begin({0, 0}, cudaStreamCaptureModeGlobal);
    } catch (...) {
      exit_side(g);
      throw;
    }
    g->capturing = true;
  });
}

// Ends the capture (and instantiates the graph), then leaves the side stream.
int resnet_graph_capture_end(void* p) {
  auto* g = static_cast<Graph*>(p);
  return guarded("ending the CUDA graph capture", [&] {
    if (!g->capturing) throw std::runtime_error("no capture is underway");
    g->capturing = false;
    try {
      g->graph.capture_end();
    } catch (...) {
      try {
        g->graph.reset();
      } catch (...) {
      }
      exit_side(g);
      throw;
    }
    g->captured = true;
    exit_side(g);
  });
}

// Abandons a capture whose body failed: ends it (ignoring the error an invalidated capture
// gives), drops what was captured and leaves the side stream, so eager work can go on.
int resnet_graph_capture_abort(void* p) {
  auto* g = static_cast<Graph*>(p);
  return guarded("abandoning the CUDA graph capture", [&] {
    if (g->capturing) {
      g->capturing = false;
      try {
        g->graph.capture_end();
      } catch (...) {
      }
      try {
        g->graph.reset();
      } catch (...) {
      }
    }
    exit_side(g);
  });
}

// Launches the captured graph on the current stream.
int resnet_graph_replay(void* p) {
  auto* g = static_cast<Graph*>(p);
  return guarded("replaying the CUDA graph", [&] {
    if (!g->captured) throw std::runtime_error("the graph has not been captured");
    g->graph.replay();
  });
}

// dst (a CUDA tensor) <- src (a CPU tensor of the same shape and dtype), asynchronously on the
// current stream: src is first copied into page-locked memory from libtorch's caching host
// allocator, which records the copy's stream and does not hand the block out again before the
// copy has completed, so the caller may drop or reuse src at once.
int resnet_copy_to_device_async(void* dst, const void* src) {
  return guarded("copying to the device", [&] {
    auto* d = static_cast<at::Tensor*>(dst);
    const auto* s = static_cast<const at::Tensor*>(src);
    at::Tensor pinned = s->is_pinned() ? *s : s->pin_memory();
    d->copy_(pinned, /*non_blocking=*/true);
  });
}

}  // extern "C"
