// Stand-in for dist_nccl.cpp when build.rs found no CUDA/NCCL headers (or libtorch has no CUDA
// backend): asking for NCCL is one clear error, never a link failure.
#include "dist.h"

#include <stdexcept>

namespace resnet_dist {

c10::intrusive_ptr<c10d::Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                            std::chrono::milliseconds, int) {
  throw std::runtime_error(
      "this build has no NCCL (libtorch without libtorch_cuda.so, or no CUDA/NCCL/CCCL headers "
      "found by build.rs: run scripts/setup-libtorch.sh); use the gloo backend");
}

bool has_nccl() { return false; }

}  // namespace resnet_dist
