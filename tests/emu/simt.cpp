// The SIMT emulator (see include/simt.hpp) and the runtime API it stands in
// for. Single-threaded by design: a launch runs its blocks one after another
// on the calling thread; calls from several threads are serialised.
//
// Fibers switch with six pushes and pops on x86-64 (swapcontext would make a
// sigprocmask system call per switch, and a block switches millions of times);
// other targets use ucontext.
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif
#if defined(SIMT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// ------------------------------------------------------------ streams, graphs
struct CUstream_st {
  bool capturing = false;
  bool invalidated = false;
  std::vector<std::function<void()>> ops;
};
struct CUevent_st {};
struct CUgraph_st {
  std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> ops;
};

#if defined(__x86_64__)
// simt_switch(save, load): saves the callee-saved registers on this stack,
// stores the stack pointer in *save, and resumes the stack `load`.
extern "C" void simt_switch(void** save, void* load);
asm(R"(
  .pushsection .text
  .globl simt_switch
  .type simt_switch, @function
simt_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size simt_switch, .-simt_switch
  .popsection
)");
#endif

namespace simt {
namespace {

[[noreturn]] void fail(const char* fmt, ...) {
  std::fprintf(stderr, "\n[simt emulator] ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

// ------------------------------------------------------------------ fibers
enum class St { kReady, kBlockWait, kWarpWait, kDone };

// A saved execution context.
struct Context {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

void switch_context(Context& save, Context& load) {
#if defined(__x86_64__)
  simt_switch(&save.sp, load.sp);
#else
  swapcontext(&save.uc, &load.uc);
#endif
}

struct Fiber {
  Context ctx;
  St st = St::kDone;
  uint3 tid{0, 0, 0};
  int linear = 0;
  const char* file = "";
  int line = 0;
  const char* what = "";
  void* fake_stack = nullptr;  // AddressSanitizer's, while switched away
};

struct Warp {
  int waiting = 0;
  uint64_t gen = 0;
  uint64_t slots[2][32];
};

constexpr size_t kStackBytes = size_t(256) << 10;

struct Machine {
  std::recursive_mutex mutex;  // one launch at a time
  // the block running now
  uint3 bidx{0, 0, 0};
  dim3 bdim, gdim;
  int n = 0;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<std::unique_ptr<char[]>> stacks;
  const Body* body = nullptr;
  Fiber* cur = nullptr;
  Context sched;
  int block_waiting = 0;
  void* sched_fake_stack = nullptr;
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  // runtime
  cudaError_t last_error = cudaSuccess;
  std::map<uintptr_t, size_t> allocations;  // base → bytes
  uintptr_t hit_lo = 0, hit_hi = 0;         // the allocation of the last checked load
  int capturing = 0;                        // streams capturing (global mode)
  std::vector<CUstream_st*> capture_streams;
  uint64_t grids_run = 0;  // varies the block order from grid to grid
};

Machine& M() {
  static Machine* m = new Machine;  // never destroyed: usable from static destructors
  return *m;
}

// Switches between the scheduler and a fiber, with AddressSanitizer told
// which stack is live.
void switch_to_fiber(Machine& m, Fiber& f, int index) {
#if defined(SIMT_ASAN)
  __sanitizer_start_switch_fiber(&m.sched_fake_stack, m.stacks[size_t(index)].get(), kStackBytes);
#else
  (void)index;
#endif
  m.cur = &f;
  switch_context(m.sched, f.ctx);
#if defined(SIMT_ASAN)
  __sanitizer_finish_switch_fiber(m.sched_fake_stack, nullptr, nullptr);
#endif
}

void yield_to_scheduler(Machine& m, Fiber& f) {
#if defined(SIMT_ASAN)
  __sanitizer_start_switch_fiber(&f.fake_stack, m.sched_stack_bottom, m.sched_stack_size);
#endif
  switch_context(f.ctx, m.sched);
#if defined(SIMT_ASAN)
  __sanitizer_finish_switch_fiber(f.fake_stack, &m.sched_stack_bottom, &m.sched_stack_size);
#endif
}

// A fiber's first and only frame: runs the kernel body, then hands control
// back for good.
void fiber_entry() {
  Machine& m = M();
#if defined(SIMT_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &m.sched_stack_bottom, &m.sched_stack_size);
#endif
  (*m.body)();
  m.cur->st = St::kDone;
#if defined(SIMT_ASAN)
  __sanitizer_start_switch_fiber(nullptr, m.sched_stack_bottom, m.sched_stack_size);
#endif
#if defined(__x86_64__)
  Context dead;
  switch_context(dead, m.sched);  // never resumed
  __builtin_unreachable();
#endif
  // ucontext: returning resumes uc_link, the scheduler
}

void start_fiber(Machine& m, Fiber& f, char* stack) {
#if defined(SIMT_ASAN)
  // A fiber never returns from its frames: their redzones are still poisoned
  // when the stack is reused for the next block.
  ASAN_UNPOISON_MEMORY_REGION(stack, kStackBytes);
#endif
#if defined(__x86_64__)
  // The stack as simt_switch leaves it: six saved registers, then the return
  // address fiber_entry, then a null return address for fiber_entry itself
  // (so fiber_entry starts with rsp = 8 mod 16, as after a call).
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + kStackBytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;
  *--sp = reinterpret_cast<void*>(&fiber_entry);
  for (int i = 0; i < 6; ++i) *--sp = nullptr;
  f.ctx.sp = sp;
  (void)m;
#else
  getcontext(&f.ctx.uc);
  f.ctx.uc.uc_stack.ss_sp = stack;
  f.ctx.uc.uc_stack.ss_size = kStackBytes;
  f.ctx.uc.uc_link = &m.sched.uc;
  makecontext(&f.ctx.uc, fiber_entry, 0);
#endif
}

std::string where(const Machine& m) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "block (%u,%u,%u) of grid (%u,%u,%u), %d threads", m.bidx.x,
                m.bidx.y, m.bidx.z, m.gdim.x, m.gdim.y, m.gdim.z, m.n);
  return buf;
}

[[noreturn]] void deadlock(const Machine& m) {
  std::string s;
  int shown = 0;
  for (const Fiber& f : m.fibers) {
    if (f.st == St::kDone || shown >= 8) continue;
    char buf[256];
    std::snprintf(buf, sizeof buf, "\n  thread %d waits at %s %s:%d", f.linear,
                  f.st == St::kBlockWait ? "__syncthreads" : f.what, f.file, f.line);
    s += buf;
    ++shown;
  }
  fail("deadlock in %s: no thread can run and no barrier can be released:%s", where(m).c_str(),
       s.c_str());
}

void run_block(Machine& m) {
  const int n = m.n;
  if (int(m.stacks.size()) < n) m.stacks.resize(size_t(n));
  for (int i = 0; i < n; ++i) {
    if (!m.stacks[size_t(i)]) m.stacks[size_t(i)].reset(new char[kStackBytes]);
    Fiber& f = m.fibers[size_t(i)];
    f = Fiber{};
    f.linear = i;
    f.tid = uint3{unsigned(i) % m.bdim.x, (unsigned(i) / m.bdim.x) % m.bdim.y,
                  unsigned(i) / (m.bdim.x * m.bdim.y)};
    f.st = St::kReady;
    start_fiber(m, f, m.stacks[size_t(i)].get());
  }
  for (Warp& w : m.warps) w = Warp{};
  m.block_waiting = 0;

  for (;;) {
    bool ran = false;
    for (int i = 0; i < n; ++i) {
      Fiber& f = m.fibers[size_t(i)];
      if (f.st != St::kReady) continue;
      switch_to_fiber(m, f, i);
      ran = true;
    }
    int live = 0;
    for (int i = 0; i < n; ++i) live += m.fibers[size_t(i)].st != St::kDone ? 1 : 0;
    if (live == 0) break;

    bool released = false;
    if (m.block_waiting > 0 && m.block_waiting == live) {
      const Fiber* first = nullptr;
      for (Fiber& f : m.fibers) {
        if (f.st != St::kBlockWait) continue;
        if (first == nullptr) {
          first = &f;
        } else if (f.line != first->line || std::strcmp(f.file, first->file) != 0) {
          fail("divergent __syncthreads in %s: thread %d waits at %s:%d, thread %d at %s:%d",
               where(m).c_str(), first->linear, first->file, first->line, f.linear, f.file, f.line);
        }
        f.st = St::kReady;
      }
      m.block_waiting = 0;
      released = true;
    }
    for (size_t w = 0; w < m.warps.size(); ++w) {
      Warp& W = m.warps[w];
      if (W.waiting == 0) continue;
      const int lo = int(w) * 32, hi = std::min(n, lo + 32);
      if (hi - lo < 32)
        fail("warp collective in a partial warp (%d lanes) in %s", hi - lo, where(m).c_str());
      for (int i = lo; i < hi; ++i)
        if (m.fibers[size_t(i)].st == St::kDone)
          fail("warp collective %s at %s:%d waits for lane %d, which has exited, in %s",
               m.fibers[size_t(lo)].what, m.fibers[size_t(lo)].file, m.fibers[size_t(lo)].line,
               i - lo, where(m).c_str());
      if (W.waiting < 32) continue;
      for (int i = lo; i < hi; ++i) m.fibers[size_t(i)].st = St::kReady;
      W.waiting = 0;
      W.gen += 1;
      released = true;
    }
    if (!ran && !released) deadlock(m);
  }
}

}  // namespace

const uint3& thread_idx() {
  return M().cur->tid;
}
const uint3& block_idx() {
  return M().bidx;
}
const dim3& block_dim() {
  return M().bdim;
}
const dim3& grid_dim() {
  return M().gdim;
}
int lane() {
  return M().cur->linear & 31;
}

void syncthreads(const char* file, int line) {
  Machine& m = M();
  Fiber& f = *m.cur;
  f.st = St::kBlockWait;
  f.file = file;
  f.line = line;
  m.block_waiting += 1;
  yield_to_scheduler(m, f);
}

const uint64_t* warp_exchange(unsigned mask, uint64_t value, const char* what) {
  Machine& m = M();
  Fiber& f = *m.cur;
  if (mask != 0xffffffffu)
    fail("%s with mask 0x%08x in %s: the emulator (and linalign) use full-warp collectives only",
         what, mask, where(m).c_str());
  Warp& W = m.warps[size_t(f.linear / 32)];
  const uint64_t slot = W.gen & 1u;
  W.slots[slot][f.linear & 31] = value;
  f.st = St::kWarpWait;
  f.what = what;
  f.file = "(warp)";
  f.line = 0;
  W.waiting += 1;
  yield_to_scheduler(m, f);
  // Valid until this lane's next-but-one exchange: the other slot takes the
  // next one, and this slot is only rewritten once every lane has read it.
  return W.slots[slot];
}

void check_device_load(const void* p, size_t bytes, size_t align, const char* what) {
  Machine& m = M();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % align != 0)
    fail("%s of %zu bytes at %p: misaligned (needs %zu) in %s, thread %d", what, bytes, p, align,
         where(m).c_str(), m.cur != nullptr ? m.cur->linear : -1);
  if (a >= m.hit_lo && a + bytes <= m.hit_hi) return;
  auto it = m.allocations.upper_bound(a);
  if (it != m.allocations.begin()) {
    --it;
    if (a >= it->first && a + bytes <= it->first + it->second) {
      m.hit_lo = it->first;
      m.hit_hi = it->first + it->second;
      return;
    }
  }
  fail("%s of %zu bytes at %p: outside every cudaMalloc allocation, in %s, thread %d", what, bytes,
       p, where(m).c_str(), m.cur != nullptr ? m.cur->linear : -1);
}

namespace {

// Runs op now, or records it into the graph a capturing stream is building.
void enqueue(cudaStream_t stream, std::function<void()> op) {
  if (stream != nullptr && stream->capturing) {
    stream->ops.push_back(std::move(op));
  } else {
    op();
  }
}

// Every block of a (checked) grid, one after another.
void run_grid(dim3 grid, dim3 block, const Body& body) {
  Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const uint3 saved_bidx = m.bidx;
  m.bdim = block;
  m.gdim = grid;
  m.n = int(threads);
  m.fibers.resize(std::max(m.fibers.size(), size_t(m.n)));
  m.warps.assign(size_t((m.n + 31) / 32), Warp{});
  m.body = &body;
  // Blocks run in a scrambled order, a different one for every grid: CUDA
  // promises none, so a kernel that relies on one (block 0 first, the last
  // block to finish being the highest index) fails here, not only on a GPU.
  // Block j = (a·i + c) mod N for i = 0 .. N−1 with gcd(a, N) = 1 is a
  // permutation; LINALIGN_EMU_BLOCK_ORDER=linear runs them in index order.
  const uint64_t N = uint64_t(grid.x) * grid.y * grid.z;
  const char* order = std::getenv("LINALIGN_EMU_BLOCK_ORDER");
  const bool linear = order != nullptr && std::string(order) == "linear";
  uint64_t a = 1, c = 0;
  if (!linear && N > 1) {
    a = (0x9e3779b97f4a7c15ull + 2 * m.grids_run) % N;
    while (std::gcd(a, N) != 1) a = (a + 1) % N;
    c = (0x632be59bd9b4e019ull * (m.grids_run + 1)) % N;
  }
  ++m.grids_run;
  for (uint64_t i = 0; i < N; ++i) {
    const uint64_t j = uint64_t((unsigned __int128)(a)*i % N + c) % N;
    m.bidx = uint3{unsigned(j % grid.x), unsigned(j / grid.x % grid.y),
                   unsigned(j / (uint64_t(grid.x) * grid.y))};
    run_block(m);
  }
  m.bidx = saved_bidx;
  m.cur = nullptr;
  m.body = nullptr;
}

}  // namespace

void launch(dim3 grid, dim3 block, cudaStream_t stream, Body body) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535u || grid.z > 65535u) {
    M().last_error = cudaErrorInvalidConfiguration;
    return;
  }
  enqueue(stream, [grid, block, body]() { run_grid(grid, block, body); });
}

}  // namespace simt

// ------------------------------------------------------------- runtime API
namespace {

using simt::M;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// A call a global-mode capture forbids: invalidates every capture.
bool forbidden_in_capture() {
  simt::Machine& m = M();
  if (m.capturing == 0) return false;
  for (CUstream_st* s : m.capture_streams) s->invalidated = true;
  return true;
}

cudaError_t set(cudaError_t e) {
  if (e != cudaSuccess) M().last_error = e;
  return e;
}

}  // namespace

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorStreamCaptureUnsupported:
      return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated:
      return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  return cudaGetErrorName(e);
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = M().last_error;
  M().last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  return M().last_error;
}

// LINALIGN_EMU_DEVICES (default 1), LINALIGN_EMU_SMS (132) and
// LINALIGN_EMU_L2_BYTES (1 MiB: small, so tests of a few rows of 50k
// tokens already split a call into several L2 row groups).
cudaError_t cudaGetDeviceCount(int* count) {
  *count = env_int("LINALIGN_EMU_DEVICES", 1);
  return *count > 0 ? cudaSuccess : set(cudaErrorNoDevice);
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  int n = 0;
  (void)cudaGetDeviceCount(&n);
  return device >= 0 && device < n ? cudaSuccess : set(cudaErrorInvalidDevice);
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return set(cudaErrorInvalidDevice);
  if (attr == cudaDevAttrMultiProcessorCount) {
    *value = env_int("LINALIGN_EMU_SMS", 132);
  } else if (attr == cudaDevAttrL2CacheSize) {
    *value = env_int("LINALIGN_EMU_L2_BYTES", 1 << 20);
  } else {
    return set(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  return forbidden_in_capture() ? set(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  *ptr = nullptr;
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  const size_t rounded = std::max<size_t>(256, (bytes + 255) / 256 * 256);
  void* p = std::aligned_alloc(256, rounded);
  if (p == nullptr) return set(cudaErrorMemoryAllocation);
  std::memset(p, 0xff, rounded);
  M().allocations[reinterpret_cast<uintptr_t>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (attributes == nullptr) return set(cudaErrorInvalidValue);
  *attributes = cudaPointerAttributes{cudaMemoryTypeUnregistered, -2, nullptr, nullptr};
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  const auto& al = M().allocations;
  auto it = al.upper_bound(a);
  if (ptr != nullptr && it != al.begin()) {
    --it;
    if (a < it->first + std::max<size_t>(it->second, 1)) {
      *attributes = cudaPointerAttributes{cudaMemoryTypeDevice, 0, const_cast<void*>(ptr), nullptr};
    }
  }
  return cudaSuccess;
}
cudaError_t cudaFree(void* ptr) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (ptr == nullptr) return cudaSuccess;
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  auto& al = M().allocations;
  const auto it = al.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == al.end()) return set(cudaErrorInvalidValue);
  al.erase(it);
  M().hit_lo = M().hit_hi = 0;
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  if (bytes > 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind,
                            cudaStream_t stream) {
  simt::enqueue(stream, [=]() {
    if (bytes > 0) std::memmove(dst, src, bytes);
  });
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  simt::enqueue(stream, [=]() { std::memset(dst, value, bytes); });
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = new CUstream_st;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return forbidden_in_capture() ? set(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) {
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  *status = stream == nullptr || !stream->capturing ? cudaStreamCaptureStatusNone
            : stream->invalidated                   ? cudaStreamCaptureStatusInvalidated
                                                    : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  if (stream == nullptr || stream->capturing) return set(cudaErrorInvalidValue);
  stream->capturing = true;
  stream->invalidated = false;
  stream->ops.clear();
  M().capturing += 1;
  M().capture_streams.push_back(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  if (stream == nullptr || !stream->capturing) return set(cudaErrorInvalidValue);
  stream->capturing = false;
  M().capturing -= 1;
  auto& cs = M().capture_streams;
  cs.erase(std::remove(cs.begin(), cs.end(), stream), cs.end());
  if (stream->invalidated) return set(cudaErrorStreamCaptureInvalidated);
  *graph = new CUgraph_st{std::move(stream->ops)};
  stream->ops.clear();
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  *event = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) {
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (graph == nullptr) return set(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->ops};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return set(cudaErrorInvalidValue);
  for (const auto& op : exec->ops) simt::enqueue(stream, op);
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
