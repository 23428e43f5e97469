// Stand-in for graph.cpp when libtorch has no CUDA backend (libtorch_cuda.so) or the CUDA runtime
// headers were not found at build time: the same C symbols, every fallible one failing with a
// message that says why, so `run.cuda_graph = true` is one clear error and never a link failure.
#include <string>

namespace {
const char* kWhy =
    "this binary was built without CUDA graph support (libtorch without libtorch_cuda.so, or no "
    "CUDA runtime headers found by build.rs); rebuild against the CUDA wheel of "
    "scripts/setup-libtorch.sh";
}

extern "C" {
const char* resnet_graph_last_error() { return kWhy; }
int resnet_cuda_device_count() { return 0; }
int resnet_graph_new(int, void** out) {
  *out = nullptr;
  return 1;
}
void resnet_graph_free(void*) {}
int resnet_graph_enter_side(void*) { return 1; }
int resnet_graph_exit_side(void*) { return 0; }
int resnet_graph_capture_begin(void*) { return 1; }
int resnet_graph_capture_end(void*) { return 1; }
int resnet_graph_capture_abort(void*) { return 0; }
int resnet_graph_replay(void*) { return 1; }
int resnet_copy_to_device_async(void*, const void*) { return 1; }
}
