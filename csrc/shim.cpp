// The one thing the paper's training needs from libtorch that tch 0.24 does not expose:
// choosing bfloat16 as the CUDA autocast dtype (tch's `autocast` only toggles autocast, whose
// CUDA default is float16, which would need loss scaling). Everything else (flat parameter and
// gradient buffers, channels-last strides) is built from tch's own API in src/.
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
