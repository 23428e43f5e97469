// Stand-in for gloo's gloo/rendezvous/store.h: the abstract store that ProcessGroupGloo::GlooStore
// overrides (same virtuals, same order as gloo at libtorch 2.11's pinned commit 3135b0b4, without
// the optional "store v2" API: GLOO_STORE_HAS_STORE_V2 stays undefined, as in that build).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace gloo {
namespace rendezvous {
class Store {
 public:
  virtual ~Store() = default;
  virtual void set(const std::string& key, const std::vector<char>& data) = 0;
  virtual std::vector<char> get(const std::string& key) = 0;
  virtual void wait(const std::vector<std::string>& keys) = 0;
  virtual void wait(const std::vector<std::string>& keys,
                    const std::chrono::milliseconds& timeout) = 0;
};
}  // namespace rendezvous
}  // namespace gloo
