// Stand-in for gloo's gloo/transport/device.h (gloo is compiled into libtorch_cpu.so, its headers
// are not in the wheel; see csrc/gloo_standin/README.md). ProcessGroupGloo.hpp only holds these
// types by pointer, so incomplete declarations are all it needs.
#pragma once

namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport
}  // namespace gloo
