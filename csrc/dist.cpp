// Data-parallel training on PyTorch's c10d (src/sys/dist.rs is the Rust side): the C API over
// libtorch's own TCPStore, PrefixStore, ProcessGroupGloo (and ProcessGroupNCCL through
// dist_nccl.cpp), as torch.distributed's init_process_group builds them. tch 0.24 has no
// distributed API; everything here is c10d from the same libtorch, no protocol of our own.
//
// Every function catches all C++ exceptions and returns 0 on success, non-zero on failure, with
// a one-line message (c10::Error::what_without_backtrace, newlines folded) kept per thread for
// resnet_dist_last_error. Nothing here may throw into Rust. Every blocking call takes an explicit
// timeout (c10d's defaults are 300 s for the store and 30 min for a group).
#include "dist.h"

#include <ATen/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

thread_local std::string last_error;

std::string one_line(std::string s) {
  for (auto& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

template <typename F>
int guarded(F&& f) {
  try {
    f();
    last_error.clear();
    return 0;
  } catch (const c10::Error& e) {
    last_error = one_line(e.what_without_backtrace());
  } catch (const std::exception& e) {
    last_error = one_line(e.what());
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return 1;
}

struct Store {
  c10::intrusive_ptr<c10d::Store> store;
};

struct Group {
  c10::intrusive_ptr<c10d::Backend> backend;
};

std::chrono::milliseconds ms(int64_t v) { return std::chrono::milliseconds(v); }

const at::Tensor& flat(const void* t) {
  const auto& x = *static_cast<const at::Tensor*>(t);
  if (!x.defined()) throw std::runtime_error("undefined tensor");
  if (!x.is_contiguous()) throw std::runtime_error("the tensor is not contiguous");
  return x;
}

void wait(const c10::intrusive_ptr<c10d::Work>& w, int64_t timeout_ms) {
  if (!w->wait(ms(timeout_ms))) throw std::runtime_error("the collective did not complete");
}

}  // namespace

extern "C" {

const char* resnet_dist_last_error() { return last_error.c_str(); }

int resnet_dist_has_nccl() { return resnet_dist::has_nccl() ? 1 : 0; }

// c10d logs each failure itself (LOG(ERROR), a C++ backtrace included) before throwing the error
// that this shim returns as one line: raise c10's log threshold to FATAL (3) so a lost peer is
// one line on the terminal. The Rust side skips this when TORCH_CPP_LOG_LEVEL is set.
void resnet_dist_quiet_logs() {
  if (FLAGS_caffe2_log_level < 3) FLAGS_caffe2_log_level = 3;
}

// A TCPStore at host:port. is_server: this process hosts it (binds the port; fails at once when
// it is taken) and, with wait_workers, waits until world_size clients (itself included) joined.
// Clients retry connecting until timeout_ms.
int resnet_dist_tcp_store_new(const char* host, int port, int is_server, int world_size,
                              int wait_workers, int64_t timeout_ms, void** out) {
  *out = nullptr;
  return guarded([&] {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    o.numWorkers = static_cast<std::size_t>(world_size);
    o.waitWorkers = wait_workers != 0;
    o.timeout = ms(timeout_ms);
    auto s = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    *out = new Store{s};
  });
}

// A view of `base` whose keys all start with prefix (torch.distributed's "default_pg/0/").
int resnet_dist_prefix_store_new(void* base, const char* prefix, void** out) {
  *out = nullptr;
  return guarded([&] {
    auto s = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix),
                                                    static_cast<Store*>(base)->store);
    *out = new Store{s};
  });
}

void resnet_dist_store_free(void* s) { delete static_cast<Store*>(s); }

int resnet_dist_store_set(void* s, const char* key, const uint8_t* data, size_t len) {
  return guarded([&] {
    std::vector<uint8_t> v(data, data + len);
    static_cast<Store*>(s)->store->set(std::string(key), v);
  });
}

// Blocks until key exists (at most timeout_ms), then copies its value into a malloc'd buffer
// that the caller releases with resnet_dist_bytes_free.
int resnet_dist_store_get(void* s, const char* key, int64_t timeout_ms, uint8_t** out,
                          size_t* len) {
  *out = nullptr;
  *len = 0;
  return guarded([&] {
    auto& st = static_cast<Store*>(s)->store;
    st->wait({std::string(key)}, ms(timeout_ms));
    auto v = st->get(std::string(key));
    auto* buf = static_cast<uint8_t*>(std::malloc(v.empty() ? 1 : v.size()));
    if (buf == nullptr) throw std::runtime_error("out of memory");
    if (!v.empty()) std::memcpy(buf, v.data(), v.size());
    *out = buf;
    *len = v.size();
  });
}

void resnet_dist_bytes_free(uint8_t* p) { std::free(p); }

int resnet_dist_store_add(void* s, const char* key, int64_t delta, int64_t* out) {
  return guarded([&] { *out = static_cast<Store*>(s)->store->add(std::string(key), delta); });
}

int resnet_dist_store_wait(void* s, const char* key, int64_t timeout_ms) {
  return guarded([&] { static_cast<Store*>(s)->store->wait({std::string(key)}, ms(timeout_ms)); });
}

// backend 0: Gloo, bound to the interface ifname when non-empty, else to the address bind_host
// when non-empty, else to createDefaultDevice's (the host name's address). backend 1: NCCL on
// CUDA device `device`. Connecting to all peers happens here, bounded by timeout_ms.
int resnet_dist_group_new(void* store, int backend, int rank, int size, int64_t timeout_ms,
                          const char* ifname, const char* bind_host, int device, void** out) {
  *out = nullptr;
  return guarded([&] {
    auto& st = static_cast<Store*>(store)->store;
    if (backend == 1) {
      *out = new Group{resnet_dist::make_nccl(st, rank, size, ms(timeout_ms), device)};
      return;
    }
    auto opts = c10d::ProcessGroupGloo::Options::create(ms(timeout_ms));
    if (ifname != nullptr && ifname[0] != '\0') {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (bind_host != nullptr && bind_host[0] != '\0') {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(bind_host));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    *out = new Group{c10::make_intrusive<c10d::ProcessGroupGloo>(st, rank, size, opts)};
  });
}

void resnet_dist_group_free(void* g) { delete static_cast<Group*>(g); }

// In place: tensor <- the sum of every rank's tensor (contiguous, any dtype the backend takes).
int resnet_dist_all_reduce_sum(void* g, void* tensor, int64_t timeout_ms) {
  return guarded([&] {
    std::vector<at::Tensor> ts{flat(tensor)};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = ms(timeout_ms);
    wait(static_cast<Group*>(g)->backend->allreduce(ts, o), timeout_ms);
  });
}

// In place: tensor <- rank root's tensor.
int resnet_dist_broadcast(void* g, void* tensor, int root, int64_t timeout_ms) {
  return guarded([&] {
    std::vector<at::Tensor> ts{flat(tensor)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = ms(timeout_ms);
    wait(static_cast<Group*>(g)->backend->broadcast(ts, o), timeout_ms);
  });
}

int resnet_dist_barrier(void* g, int64_t timeout_ms) {
  return guarded([&] {
    c10d::BarrierOptions o;
    o.timeout = ms(timeout_ms);
    wait(static_cast<Group*>(g)->backend->barrier(o), timeout_ms);
  });
}

}
