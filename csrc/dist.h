// What dist.cpp (the Gloo side and the C API) needs from the NCCL translation unit:
// dist_nccl.cpp when build.rs found CUDA and NCCL headers, else dist_nccl_stub.cpp.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace resnet_dist {

// A ProcessGroupNCCL on CUDA device `device`, collectives bounded by `timeout`. Throws with one
// line where the build has no NCCL or the machine no GPU.
c10::intrusive_ptr<c10d::Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                            int size, std::chrono::milliseconds timeout,
                                            int device);

// Whether this build compiled ProcessGroupNCCL in.
bool has_nccl();

}  // namespace resnet_dist
