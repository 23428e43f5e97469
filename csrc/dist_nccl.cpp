// ProcessGroupNCCL for data-parallel training on GPUs (src/sys/dist.rs is the Rust side; dist.cpp
// holds the C API). Its own translation unit because ProcessGroupNCCL.hpp needs the CUDA, NCCL
// and CCCL headers (-DUSE_C10D_NCCL), which only a CUDA build of libtorch has beside it.
#include "dist.h"

#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <stdexcept>
#include <string>

namespace resnet_dist {

c10::intrusive_ptr<c10d::Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                            int size, std::chrono::milliseconds timeout,
                                            int device) {
  auto n = static_cast<int>(c10::cuda::device_count());
  if (n == 0) {
    throw std::runtime_error("the nccl backend needs a CUDA GPU and this machine has none "
                             "(use the gloo backend on the CPU)");
  }
  if (device < 0 || device >= n) {
    throw std::runtime_error("CUDA device " + std::to_string(device) + " (LOCAL_RANK) is not "
                             "available: " + std::to_string(n) + " CUDA devices found");
  }
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
  // As init_process_group(device_id=...): barrier and communicator creation use this device.
  pg->setBoundDeviceId(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device)));
  return pg;
}

bool has_nccl() { return true; }

}  // namespace resnet_dist
