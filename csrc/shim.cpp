// What the paper's training needs from libtorch's autocast that tch 0.24 does not expose:
// choosing bfloat16 as the CUDA autocast dtype (tch's `autocast` only toggles autocast, whose
// CUDA default is float16, which would need loss scaling), and switching autocast's weight-cast
// cache (off while a CUDA graph is captured). The CUDA-graph API itself is in graph.cpp (compiled
// only against a CUDA build of libtorch; graph_stub.cpp otherwise). Everything else (flat
// parameter and gradient buffers, channels-last strides) is built from tch's own API in src/.
#include <ATen/autocast_mode.h>

extern "C" {

// kind: 0 = float16, 1 = bfloat16. Applies to CUDA autocast.
void resnet_set_cuda_autocast_dtype(int kind) {
  at::autocast::set_autocast_dtype(at::kCUDA, kind == 1 ? at::kBFloat16 : at::kHalf);
}

int resnet_get_cuda_autocast_dtype_is_bf16() {
  return at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16 ? 1 : 0;
}

}

extern "C" {

// Whether autocast caches the casts of leaf tensors (weights) within an autocast region. The
// CUDA-graph step turns it off around its capture, as PyTorch advises for graphs
// (torch.cuda.make_graphed_callables), so every cast is a captured kernel.
void resnet_set_autocast_cache_enabled(int enabled) {
  at::autocast::set_autocast_cache_enabled(enabled != 0);
}

int resnet_autocast_cache_enabled() { return at::autocast::is_autocast_cache_enabled() ? 1 : 0; }

}
