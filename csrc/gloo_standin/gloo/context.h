// Stand-in for gloo's gloo/context.h: only what ProcessGroupGloo.hpp's inline code names. The
// shim never constructs, copies or inspects a gloo::Context; the one member declared here is
// exported by libtorch_cpu.so.
#pragma once

#include <chrono>

#include <gloo/transport/device.h>

namespace gloo {
class Context {
 public:
  Context() = delete;
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
