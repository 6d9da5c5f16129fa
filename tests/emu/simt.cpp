// The SIMT emulator (see include/simt.hpp) and the runtime API it stands in
// for. Single-threaded by design: the device runs one operation at a time, a
// grid's blocks one after another, on the thread that waits for it; calls
// from several host threads are serialised.
//
// Fibers switch with six pushes and pops on x86-64 (swapcontext would make a
// sigprocmask system call per switch, and a block switches millions of times);
// other targets use ucontext.
#if !defined(__x86_64__)
#include <ucontext.h>
#endif
#include <link.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <unordered_map>
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

// Where the program image is (GNU ld defines these).
extern "C" char __executable_start[];
extern "C" char _end[];

// ------------------------------------------------------------ streams, graphs
using Op = std::function<void()>;
struct QueuedOp {
  Op run;                              // null for an event wait
  CUstream_st* wait_stream = nullptr;  // event wait: until this stream has run
  uint64_t wait_until = 0;             // ... this many operations
};
struct CUstream_st {
  bool capturing = false;
  bool invalidated = false;
  bool destroyed = false;
  std::vector<Op> captured;
  std::deque<QueuedOp> pending;
  uint64_t enqueued = 0, done = 0;
};
struct CUevent_st {
  CUstream_st* stream = nullptr;  // of the last record (null: complete)
  uint64_t at = 0;                // complete once stream->done >= at
};
struct CUgraph_st {
  std::vector<Op> ops;
};
struct CUgraphExec_st {
  std::vector<Op> ops;
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
// kSpin: the thread called __nanosleep (a spin-wait on another block): it
// runs again once the other blocks of its cooperative grid have run.
enum class St { kReady, kBlockWait, kWarpWait, kSpin, kDone };

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
  Collective kind = kShfl;
  int arg = 0, width = 32;
  bool fenced = false;         // a __threadfence since this thread's last atomic
  bool slept = false;          // kSpin: in __nanosleep (else: yielding after an atomic)
  void* fake_stack = nullptr;  // AddressSanitizer's, while switched away
};

struct Warp {
  int waiting = 0;
  uint64_t gen = 1;  // collectives completed (+1): orders the lanes' accesses
  uint64_t slots[2][32];
};

constexpr size_t kStackBytes = size_t(256) << 10;

// ------------------------------------------------------ device memory
// One reserved arena; a shadow word per 2-byte granule (see simt.hpp):
//   grid 0: not allocated; 1: allocated, never written; 2: written by the
//   host (copy, memset) or a finished grid; ≥ 3: written by that grid's
//   `block`, after `fences` of that block's __threadfence()s (atomic: by an
//   atomic).
constexpr size_t kArenaBytes = size_t(16) << 30;
constexpr size_t kGranule = 2;
constexpr size_t kGap = 256;  // unallocated bytes after every allocation
constexpr uint32_t kUnallocated = 0, kUnwritten = 1, kHostWritten = 2, kFirstGrid = 3;
struct Shadow {
  uint32_t grid;
  uint32_t block : 20;
  uint32_t fences : 11;
  uint32_t atomic : 1;
};
static_assert(sizeof(Shadow) == 8, "a shadow word");
constexpr uint32_t kMaxBlocks = 1u << 20, kMaxFences = (1u << 11) - 1;

// ------------------------------------------------------ shared memory
// __shared__ variables are thread_local function statics (simt.hpp): they
// live in the program's thread-local block, where nothing else is touched by
// kernel code, so every kernel access there is a shared-memory access. A
// record per byte of that block, valid for the block (of threads) whose
// serial it holds, so nothing needs clearing between blocks.
struct SharedCell {
  uint64_t serial;
  uint32_t w_epoch, r_epoch;   // barrier epochs (0: none)
  uint32_t w_gen, r_gen;       // the accessor's warp collectives at the access
  int16_t w_thread, r_thread;  // r_thread −2: several readers
  int16_t r_warp;              // −2: readers in several warps
  uint8_t w_atomic;
  uint8_t known;  // a kernel has written it: poisoned at every block start
};

// This OS thread's instance of the program's thread-local block.
struct TlsBlock {
  char* lo = nullptr;
  size_t bytes = 0;
};
int find_tls(dl_phdr_info* info, size_t, void* out) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    if (info->dlpi_phdr[i].p_type != PT_TLS) continue;
    auto* b = static_cast<TlsBlock*>(out);
    b->lo = static_cast<char*>(info->dlpi_tls_data);
    b->bytes = info->dlpi_phdr[i].p_memsz;
  }
  return 1;  // the first object is the program itself
}
const TlsBlock& tls_block() {
  thread_local TlsBlock block = [] {
    TlsBlock b;
    dl_iterate_phdr(find_tls, &b);
    return b;
  }();
  return block;
}

struct Machine {
  std::recursive_mutex mutex;                            // one launch at a time
  Traffic traffic;                                       // what kernels and memsets did (simt.hpp)
  std::vector<std::pair<uintptr_t, uintptr_t>> watched;  // [begin, end) of watch()
  // the block running now
  uint3 bidx{0, 0, 0};
  dim3 bdim, gdim;
  uint32_t block_linear = 0;
  int n = 0;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<std::unique_ptr<char[]>> stacks;
  const Body* body = nullptr;
  const char* kernel = "";
  Fiber* cur = nullptr;
  Context sched;
  int block_waiting = 0;
  uint32_t barrier_epoch = 1;
  uint64_t block_serial = 0;  // the running block's (unique: from blocks_started)
  uint64_t blocks_started = 0;
  uint64_t rounds = 0;
  void* sched_fake_stack = nullptr;
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  // the memory model of the running grid
  uint32_t grid = kFirstGrid - 1;
  uint32_t fences = 0;   // of the running block
  bool stored = false;   // a global store since its last fence
  uint64_t changes = 0;  // global stores and value-changing atomics (spin livelock check)
  std::unordered_map<uint32_t, uint32_t> knowledge;  // block → fences acquired
  std::unordered_map<uintptr_t, std::unordered_map<uint32_t, uint32_t>> released;  // per address
  // device memory
  char* arena = nullptr;
  Shadow* shadow = nullptr;
  uintptr_t cursor = 0;                     // next-fit allocation point (offset)
  std::map<uintptr_t, size_t> allocations;  // base → bytes (live)
  std::map<uintptr_t, size_t> pinned;       // cudaMallocHost: base → bytes (live)
  std::map<uintptr_t, size_t> freed;        // base → bytes (recently freed, for reports)
  // shared memory: a record per byte of the thread-local block
  size_t shared_bytes = 0;
  SharedCell* shared = nullptr;
  std::vector<size_t> shared_known;  // offsets of the bytes kernels use
  // runtime
  cudaError_t last_error = cudaSuccess;
  int capturing = 0;  // streams capturing (global mode)
  std::vector<CUstream_st*> capture_streams;
  std::vector<CUstream_st*> streams;  // live streams with a queue
  // Destroyed streams: kept (events may still name them) and reachable, so
  // LeakSanitizer does not report a program that destroys its streams.
  std::vector<CUstream_st*> retired_streams;
  size_t next_stream = 0;      // round-robin point
  uint64_t grids_run = 0;      // varies the block order from grid to grid
  bool cooperative = false;    // the running grid's blocks are co-resident
  bool parked_asleep = false;  // the block step_block parked has a thread in __nanosleep
  std::vector<std::unique_ptr<char[]>> stack_pool;  // fiber stacks of finished resident blocks
};

// A block of a cooperative grid while another block runs: what Machine holds
// for the running block, parked here (park / resume swap it in and out).
struct BlockState {
  uint3 bidx{0, 0, 0};
  uint32_t block_linear = 0;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<std::unique_ptr<char[]>> stacks;
  int block_waiting = 0;
  uint32_t barrier_epoch = 1;
  uint64_t block_serial = 0;
  uint32_t fences = 0;
  bool stored = false;
  std::unordered_map<uint32_t, uint32_t> knowledge;
  // Its __shared__ memory: the bytes (and their records) at the offsets of
  // m.shared_known, in that order, when it was parked.
  std::vector<char> shared_data;
  std::vector<SharedCell> shared_cells;
  bool started = false, done = false;
};

void swap_state(Machine& m, BlockState& b);

Machine& M() {
  static Machine* m = [] {
    Machine* mm = new Machine;  // never destroyed: usable from static destructors
    void* a = mmap(nullptr, kArenaBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void* s = mmap(nullptr, kArenaBytes / kGranule * sizeof(Shadow), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a == MAP_FAILED || s == MAP_FAILED) fail("cannot reserve the emulated device memory");
    mm->arena = static_cast<char*>(a);
    mm->shadow = static_cast<Shadow*>(s);
    mm->shared_bytes = std::max<size_t>(tls_block().bytes, 1);
    void* c = mmap(nullptr, mm->shared_bytes * sizeof(SharedCell), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (c == MAP_FAILED) fail("cannot reserve the shared-memory records");
    mm->shared = static_cast<SharedCell*>(c);
    mm->cursor = kGap;  // never an allocation at the arena's first byte
    return mm;
  }();
  return *m;
}

// Kernel code of this OS thread runs with its accesses checked.
thread_local bool t_armed = false;

// The emulator's own code runs unarmed, also when kernel code calls into it:
// the inline standard-library functions it uses (std::string, containers) may
// be the instrumented copies the linker kept from a kernel translation unit
// (one definition per program; which copy wins depends on the link), and
// their accesses are the emulator's, not the kernel's — checked, they would
// recurse into the check or be reported as a kernel touching host memory.
// Fiber switches save and restore the flag (yield_to_scheduler), so a fiber
// resumed inside the runtime stays unarmed until it returns to kernel code.
struct Unarmed {
  const bool was = t_armed;
  Unarmed() { t_armed = false; }
  ~Unarmed() { t_armed = was; }
  Unarmed(const Unarmed&) = delete;
  Unarmed& operator=(const Unarmed&) = delete;
};

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
  const bool armed = t_armed;
  t_armed = false;
#if defined(SIMT_ASAN)
  __sanitizer_start_switch_fiber(&f.fake_stack, m.sched_stack_bottom, m.sched_stack_size);
#endif
  switch_context(f.ctx, m.sched);
#if defined(SIMT_ASAN)
  __sanitizer_finish_switch_fiber(f.fake_stack, &m.sched_stack_bottom, &m.sched_stack_size);
#endif
  t_armed = armed;
}

// A fiber's first and only frame: runs the kernel body, then hands control
// back for good.
void fiber_entry() {
  Machine& m = M();
#if defined(SIMT_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &m.sched_stack_bottom, &m.sched_stack_size);
#endif
  (*m.body)();
  t_armed = false;
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
  char buf[256];
  std::snprintf(buf, sizeof buf, "kernel %s, block (%u,%u,%u) of grid (%u,%u,%u), %d threads",
                m.kernel, m.bidx.x, m.bidx.y, m.bidx.z, m.gdim.x, m.gdim.y, m.gdim.z, m.n);
  return buf;
}
std::string where_thread(const Machine& m) {
  return where(m) + ", thread " + std::to_string(m.cur != nullptr ? m.cur->linear : -1);
}

[[noreturn]] void deadlock(const Machine& m) {
  std::string s;
  int shown = 0;
  for (const Fiber& f : m.fibers) {
    if (f.st == St::kDone || shown >= 8) continue;
    char buf[256];
    std::snprintf(buf, sizeof buf, "\n  thread %d waits at %s %s:%d", f.linear,
                  f.st == St::kBlockWait ? "__syncthreads"
                  : f.st == St::kSpin    ? "__nanosleep"
                                         : "a warp collective",
                  f.file, f.line);
    s += buf;
    ++shown;
  }
  fail("deadlock in %s: no thread can run and no barrier can be released:%s", where(m).c_str(),
       s.c_str());
}

const char* collective_name(Collective k) {
  switch (k) {
    case kShfl:
      return "__shfl_sync";
    case kShflDown:
      return "__shfl_down_sync";
    case kShflUp:
      return "__shfl_up_sync";
    case kShflXor:
      return "__shfl_xor_sync";
    case kBallot:
      return "__ballot_sync";
  }
  return "?";
}

// Releases the barrier when every thread of the block waits at it: all at
// one call site, none exited.
bool release_barrier(Machine& m, int live) {
  if (m.block_waiting == 0 || m.block_waiting != live) return false;
  if (live != m.n) {
    int exited = 0;
    while (m.fibers[size_t(exited)].st != St::kDone) ++exited;
    const Fiber& w = *std::find_if(m.fibers.begin(), m.fibers.begin() + m.n,
                                   [](const Fiber& f) { return f.st == St::kBlockWait; });
    fail("__syncthreads at %s:%d reached by %d of the %d threads of %s: thread %d has exited",
         w.file, w.line, live, m.n, where(m).c_str(), exited);
  }
  const Fiber& first = m.fibers[0];
  for (int i = 0; i < m.n; ++i) {
    Fiber& f = m.fibers[size_t(i)];
    if (f.line != first.line || std::strcmp(f.file, first.file) != 0)
      fail("divergent __syncthreads in %s: thread %d waits at %s:%d, thread %d at %s:%d",
           where(m).c_str(), first.linear, first.file, first.line, f.linear, f.file, f.line);
    f.st = St::kReady;
  }
  m.block_waiting = 0;
  m.barrier_epoch += 1;
  return true;
}

// Releases each warp whose 32 lanes wait at one collective (same kind, call
// site, argument shape).
bool release_warps(Machine& m) {
  bool released = false;
  for (size_t w = 0; w < m.warps.size(); ++w) {
    Warp& W = m.warps[w];
    if (W.waiting == 0) continue;
    const int lo = int(w) * 32, hi = std::min(m.n, lo + 32);
    const Fiber& a = m.fibers[size_t(lo)];
    if (hi - lo < 32)
      fail("warp collective in a partial warp (%d lanes) in %s", hi - lo, where(m).c_str());
    for (int i = lo; i < hi; ++i) {
      const Fiber& f = m.fibers[size_t(i)];
      if (f.st == St::kDone)
        fail("warp collective at %s:%d waits for lane %d, which has exited, in %s", a.file, a.line,
             i - lo, where(m).c_str());
    }
    if (W.waiting < 32) continue;
    for (int i = lo; i < hi; ++i) {
      const Fiber& f = m.fibers[size_t(i)];
      if (f.kind != a.kind || f.line != a.line || std::strcmp(f.file, a.file) != 0 ||
          f.width != a.width)
        fail(
            "lanes of warp %zu meet at different collectives in %s: lane 0 at %s (%s:%d), lane %d "
            "at %s (%s:%d)",
            w, where(m).c_str(), collective_name(a.kind), a.file, a.line, i - lo,
            collective_name(f.kind), f.file, f.line);
    }
    for (int i = lo; i < hi; ++i) m.fibers[size_t(i)].st = St::kReady;
    W.waiting = 0;
    W.gen += 1;
    released = true;
  }
  return released;
}

// A block's threads at their start: fresh fibers, barrier state, shared
// memory poisoned.
void start_block(Machine& m) {
  const int n = m.n;
  if (int(m.stacks.size()) < n) m.stacks.resize(size_t(n));
  if (int(m.fibers.size()) < n) m.fibers.resize(size_t(n));
  m.warps.assign(size_t((n + 31) / 32), Warp{});
  for (int i = 0; i < n; ++i) {
    if (!m.stacks[size_t(i)]) {
      if (!m.stack_pool.empty()) {
        m.stacks[size_t(i)] = std::move(m.stack_pool.back());
        m.stack_pool.pop_back();
      } else {
        m.stacks[size_t(i)].reset(new char[kStackBytes]);
      }
    }
    Fiber& f = m.fibers[size_t(i)];
    f = Fiber{};
    f.linear = i;
    f.tid = uint3{unsigned(i) % m.bdim.x, (unsigned(i) / m.bdim.x) % m.bdim.y,
                  unsigned(i) / (m.bdim.x * m.bdim.y)};
    f.st = St::kReady;
    start_fiber(m, f, m.stacks[size_t(i)].get());
  }
  m.block_waiting = 0;
  m.barrier_epoch = 1;
  m.block_serial = ++m.blocks_started;
  m.fences = 0;
  m.stored = false;
  m.knowledge.clear();
  // Shared memory starts as garbage: 0xff bytes (NaN, −1), never written.
  for (size_t off : m.shared_known) tls_block().lo[off] = char(0xff);
}

// Runs the block's threads until they have all exited (true) or every live
// one waits and at least one spins in __nanosleep (false: parked, to run
// again after the other blocks of its cooperative grid).
bool step_block(Machine& m) {
  const int n = m.n;
  for (;;) {
    // The threads between two collectives run in an order that changes from
    // round to round: i → (a·i + c) mod n, gcd(a, n) = 1 (every 4th round in
    // index order, one in reverse).
    const uint64_t r = m.rounds++;
    uint64_t a = 1, c = 0;
    if (n > 1 && r % 4 != 0) {
      a = r % 4 == 1 ? uint64_t(n - 1) : (0x9e3779b97f4a7c15ull * (r + 1)) % uint64_t(n);
      while (std::gcd(a, uint64_t(n)) != 1) a = (a + 1) % uint64_t(n);
      c = (0x632be59bd9b4e019ull * (r + 7)) % uint64_t(n);
    }
    bool ran = false;
    for (int k = 0; k < n; ++k) {
      const int i = int((a * uint64_t(k) + c) % uint64_t(n));
      Fiber& f = m.fibers[size_t(i)];
      if (f.st != St::kReady) continue;
      switch_to_fiber(m, f, i);
      ran = true;
    }
    int live = 0, spinning = 0;
    for (int i = 0; i < n; ++i) {
      live += m.fibers[size_t(i)].st != St::kDone ? 1 : 0;
      spinning += m.fibers[size_t(i)].st == St::kSpin ? 1 : 0;
    }
    if (live == 0) break;
    const bool released = release_barrier(m, live) | release_warps(m);
    if (ran || released) continue;
    if (spinning == 0) deadlock(m);
    if (!m.cooperative) {
      const Fiber& f = *std::find_if(m.fibers.begin(), m.fibers.begin() + n,
                                     [](const Fiber& x) { return x.st == St::kSpin; });
      fail(
          "thread %d of %s spins (__nanosleep at %s:%d) waiting for another block, but the grid "
          "was not launched cooperatively: CUDA does not promise that the blocks it waits for "
          "are resident (launch it with cudaLaunchAttributeCooperative)",
          f.linear, where(m).c_str(), f.file, f.line);
    }
    m.parked_asleep = false;
    for (int i = 0; i < n; ++i) {
      Fiber& f = m.fibers[size_t(i)];
      if (f.st != St::kSpin) continue;
      m.parked_asleep |= f.slept;
      f.st = St::kReady;
    }
    m.cur = nullptr;
    return false;
  }
  m.cur = nullptr;
  return true;
}

void run_block(Machine& m) {
  start_block(m);
  step_block(m);  // (not cooperative: a spinning block fails)
}

void swap_state(Machine& m, BlockState& b) {
  std::swap(m.bidx, b.bidx);
  std::swap(m.block_linear, b.block_linear);
  std::swap(m.fibers, b.fibers);
  std::swap(m.warps, b.warps);
  std::swap(m.stacks, b.stacks);
  std::swap(m.block_waiting, b.block_waiting);
  std::swap(m.barrier_epoch, b.barrier_epoch);
  std::swap(m.block_serial, b.block_serial);
  std::swap(m.fences, b.fences);
  std::swap(m.stored, b.stored);
  std::swap(m.knowledge, b.knowledge);
}

// Parks the running block in b (its shared memory copied out).
void park(Machine& m, BlockState& b) {
  const size_t k = m.shared_known.size();
  b.shared_data.resize(k);
  b.shared_cells.resize(k);
  for (size_t i = 0; i < k; ++i) {
    b.shared_data[i] = tls_block().lo[m.shared_known[i]];
    b.shared_cells[i] = m.shared[m.shared_known[i]];
  }
  swap_state(m, b);
}

// Makes parked block b the running one (its shared memory copied back;
// bytes first used since it was parked are garbage and unwritten to it: their
// records carry another block's serial).
void resume(Machine& m, BlockState& b) {
  swap_state(m, b);
  for (size_t i = 0; i < m.shared_known.size(); ++i) {
    const size_t off = m.shared_known[i];
    if (i < b.shared_data.size()) {
      tls_block().lo[off] = b.shared_data[i];
      m.shared[off] = b.shared_cells[i];
    } else {
      tls_block().lo[off] = char(0xff);
    }
  }
}

[[noreturn]] void livelock(Machine& m, std::vector<BlockState>& blocks) {
  std::string s;
  int shown = 0;
  for (BlockState& b : blocks) {
    if (b.done || shown >= 8) continue;
    for (const Fiber& f : b.fibers) {
      if (f.st != St::kReady || f.file == nullptr || f.line == 0) continue;
      char buf[256];
      std::snprintf(buf, sizeof buf, "\n  block (%u,%u,%u) thread %d spins at %s:%d", b.bidx.x,
                    b.bidx.y, b.bidx.z, f.linear, f.file, f.line);
      s += buf;
      ++shown;
      break;
    }
  }
  fail(
      "livelock in cooperative grid %s: every unfinished block spins and none changed global "
      "memory since they last ran:%s",
      m.kernel, s.c_str());
}

// Every block of a cooperative grid resident at once: each runs until it
// exits or parks (in a spin-wait, or yielding after a global atomic), then
// the next; a pass over the unfinished blocks in which every one slept in
// __nanosleep and none started, exited or changed global memory is a
// livelock (each spins on what the others would have to write).
void run_resident(Machine& m, const std::vector<uint32_t>& order) {
  const dim3 grid = m.gdim;
  std::vector<BlockState> blocks(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    const uint32_t j = order[k];
    blocks[k].block_linear = j;
    blocks[k].bidx = uint3{j % grid.x, j / grid.x % grid.y, j / (grid.x * grid.y)};
  }
  BlockState home;  // the machine's own fibers and stacks, for the non-resident grids
  swap_state(m, home);
  size_t left = blocks.size();
  while (left > 0) {
    const uint64_t changes = m.changes;
    bool moved = false;
    for (BlockState& b : blocks) {
      if (b.done) continue;
      resume(m, b);
      if (!b.started) {
        b.started = moved = true;
        start_block(m);
      }
      const bool finished = step_block(m);
      park(m, b);
      if (!finished && !m.parked_asleep) moved = true;  // it yielded after an atomic
      if (finished) {
        b.done = moved = true;
        --left;
        for (auto& st : b.stacks)
          if (st) m.stack_pool.push_back(std::move(st));
        b = BlockState{};  // (its fibers and shared memory freed)
        b.done = true;
      }
    }
    if (left > 0 && !moved && m.changes == changes) livelock(m, blocks);
  }
  swap_state(m, home);
}

// ------------------------------------------------------ memory checks

enum class Space { kStack, kGlobal, kShared, kImage, kHost };

Space space_of(const Machine& m, uintptr_t a) {
  const uintptr_t stack = reinterpret_cast<uintptr_t>(m.stacks[size_t(m.cur->linear)].get());
  if (a - stack < kStackBytes) return Space::kStack;
  if (a - reinterpret_cast<uintptr_t>(m.arena) < kArenaBytes) return Space::kGlobal;
  if (a - reinterpret_cast<uintptr_t>(tls_block().lo) < tls_block().bytes) return Space::kShared;
  if (a >= reinterpret_cast<uintptr_t>(__executable_start) && a < reinterpret_cast<uintptr_t>(_end))
    return Space::kImage;  // code, constants, static data
  return Space::kHost;
}

// "N bytes past the end of the M-byte allocation at B" and the like.
std::string describe_device(const Machine& m, uintptr_t a) {
  char buf[200];
  auto it = m.allocations.upper_bound(a);
  if (it != m.allocations.begin()) {
    --it;
    if (a < it->first + it->second + kGap) {
      std::snprintf(buf, sizeof buf, "%zu bytes past the end of the %zu-byte allocation at %p",
                    size_t(a - (it->first + it->second)), it->second,
                    reinterpret_cast<void*>(it->first));
      return buf;
    }
  }
  auto f = m.freed.upper_bound(a);
  if (f != m.freed.begin()) {
    --f;
    if (a < f->first + f->second) {
      std::snprintf(buf, sizeof buf, "inside the %zu-byte allocation at %p, which was freed",
                    f->second, reinterpret_cast<void*>(f->first));
      return buf;
    }
  }
  return "outside every cudaMalloc allocation";
}

bool published(const Machine& m, const Shadow& s) {
  if (s.block == m.block_linear) return true;
  const auto it = m.knowledge.find(s.block);
  return it != m.knowledge.end() && it->second > s.fences;
}

[[noreturn]] void race_global(const Machine& m, uintptr_t a, size_t bytes, const char* access,
                              const Shadow& s) {
  const uint32_t gx = m.gdim.x, gy = m.gdim.y;
  fail(
      "global-memory race in %s: %s of %zu bytes at %p reads or overwrites what block "
      "(%u,%u,%u) of this grid %s, with no __threadfence() + atomic (release) by the writer "
      "and atomic on the same address (acquire) by this block between them",
      where_thread(m).c_str(), access, bytes, reinterpret_cast<void*>(a), s.block % gx,
      s.block / gx % gy, s.block / (gx * gy), s.atomic ? "updated atomically" : "stored");
}

// A kernel's access to device memory: inside a live allocation, initialised
// when read, and ordered after another block's store of the running grid.
void global_access(Machine& m, uintptr_t a, size_t bytes, bool write, bool atomic,
                   const char* access) {
  const size_t g0 = (a - reinterpret_cast<uintptr_t>(m.arena)) / kGranule;
  const size_t g1 = (a + bytes - 1 - reinterpret_cast<uintptr_t>(m.arena)) / kGranule;
  if (atomic)
    m.traffic.atomic_bytes += bytes;
  else
    (write ? m.traffic.store_bytes : m.traffic.load_bytes) += bytes;
  if (write && !atomic) m.changes += 1;
  for (const auto& [b, e] : m.watched)
    if (a < e && a + bytes > b) {
      const uint64_t in = std::min<uintptr_t>(e, a + bytes) - std::max<uintptr_t>(b, a);
      (write ? m.traffic.watched_store_bytes : m.traffic.watched_load_bytes) += in;
    }
  for (size_t g = g0; g <= g1; ++g) {
    Shadow& s = m.shadow[g];
    if (s.grid == kUnallocated)
      fail("out-of-bounds %s of %zu bytes at %p in %s: %s", access, bytes,
           reinterpret_cast<void*>(a), where_thread(m).c_str(),
           describe_device(m, reinterpret_cast<uintptr_t>(m.arena) + g * kGranule).c_str());
    if (s.grid == kUnwritten && (!write || atomic))
      fail(
          "read of uninitialised device memory (initcheck): %s of %zu bytes at %p in %s; "
          "no host copy, memset or kernel wrote it",
          access, bytes, reinterpret_cast<void*>(a), where_thread(m).c_str());
    if (s.grid == m.grid && !published(m, s) && !(atomic && s.atomic))
      race_global(m, a, bytes, access, s);
    if (write) {
      m.stored = true;
      s.grid = m.grid;
      s.block = m.block_linear;
      s.fences = std::min(m.fences, kMaxFences);
      s.atomic = atomic ? 1 : 0;
    }
  }
}

// A kernel's access to __shared__ memory: written before it is read, and no
// two threads touching a byte (one writing) without a barrier — or, within a
// warp, a collective — between them.
void shared_access(Machine& m, uintptr_t a, size_t bytes, bool write, bool atomic,
                   const char* access) {
  const Fiber& f = *m.cur;
  const int16_t t = int16_t(f.linear), warp = int16_t(f.linear / 32);
  const uint32_t gen = uint32_t(m.warps[size_t(warp)].gen);
  const size_t off = a - reinterpret_cast<uintptr_t>(tls_block().lo);
  if (off + bytes > m.shared_bytes)
    fail("%s of %zu bytes at %p runs past the end of __shared__ memory in %s", access, bytes,
         reinterpret_cast<void*>(a), where_thread(m).c_str());
  // Thread u's access (at warp generation g) is ordered before this one.
  auto ordered = [&](int16_t u, uint32_t g) { return u == t || (u / 32 == warp && g < gen); };
  auto race = [&](const char* kind, int16_t u) {
    fail(
        "shared-memory race (%s) in %s: %s of %zu bytes at %p (offset %zu of __shared__ "
        "memory) and thread %d, with no __syncthreads() between them",
        kind, where_thread(m).c_str(), access, bytes, reinterpret_cast<void*>(a), off, int(u));
  };
  for (size_t i = 0; i < bytes; ++i) {
    SharedCell& c = m.shared[off + i];
    if (!c.known && write) {
      c.known = 1;
      m.shared_known.push_back(off + i);
    }
    if (c.serial != m.block_serial) c = SharedCell{m.block_serial, 0, 0, 0, 0, -1, -1, -1, 0, 1};
    const bool w_now = c.w_epoch == m.barrier_epoch;
    if (!write || atomic) {
      if (c.w_epoch == 0)
        fail(
            "read of uninitialised __shared__ memory in %s: %s of %zu bytes at %p (offset %zu); "
            "no thread of this block wrote it",
            where_thread(m).c_str(), access, bytes, reinterpret_cast<void*>(a), off);
      if (w_now && !ordered(c.w_thread, c.w_gen) && !(atomic && c.w_atomic))
        race(atomic ? "atomic after write" : "read after write", c.w_thread);
    }
    if (write) {
      if (w_now && !ordered(c.w_thread, c.w_gen) && !(atomic && c.w_atomic))
        race("write after write", c.w_thread);
      if (c.r_epoch == m.barrier_epoch && c.r_thread != t) {
        const bool same_warp_later = c.r_warp == warp && c.r_gen < gen;
        if (!same_warp_later) race("write after read", c.r_thread < 0 ? int16_t(-1) : c.r_thread);
      }
      c.w_epoch = m.barrier_epoch;
      c.w_thread = t;
      c.w_gen = gen;
      c.w_atomic = atomic ? 1 : 0;
    } else {
      if (c.r_epoch != m.barrier_epoch) {
        c.r_epoch = m.barrier_epoch;
        c.r_thread = t;
        c.r_warp = warp;
        c.r_gen = gen;
      } else if (c.r_thread != t) {
        c.r_thread = -2;
        if (c.r_warp != warp) c.r_warp = -2;
        c.r_gen = std::max(c.r_gen, gen);
      }
    }
  }
}

// libFuzzer's coverage counters (clang -fsanitize=fuzzer-no-link, the fuzz
// build): one byte of static memory per edge, bumped by instrumented kernel
// code. Weak: absent (null) in every other build.
extern "C" uint8_t __start___sancov_cntrs[] __attribute__((weak));
extern "C" uint8_t __stop___sancov_cntrs[] __attribute__((weak));
bool coverage_counter(uintptr_t a) {
  return __start___sancov_cntrs != nullptr &&
         a >= reinterpret_cast<uintptr_t>(__start___sancov_cntrs) &&
         a < reinterpret_cast<uintptr_t>(__stop___sancov_cntrs);
}

void check_access(const void* p, size_t bytes, bool write, const char* access) {
  const Unarmed runtime;
  Machine& m = M();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  switch (space_of(m, a)) {
    case Space::kStack:
      return;
    case Space::kGlobal:
      return global_access(m, a, bytes, write, false, access);
    case Space::kShared:
      return shared_access(m, a, bytes, write, false, access);
    case Space::kImage:
      if (write && !coverage_counter(a))
        fail(
            "%s of %zu bytes at %p in %s: a store into the program's static memory (not "
            "__shared__, not device memory)",
            access, bytes, p, where_thread(m).c_str());
      return;
    case Space::kHost:
      fail(
          "%s of %zu bytes at %p in %s: host memory, not device memory (a host pointer "
          "reached a kernel)",
          access, bytes, p, where_thread(m).c_str());
  }
}

}  // namespace

uint3 thread_idx() {
  return M().cur->tid;
}

Traffic traffic() {
  Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  return m.traffic;
}

void watch(const void* p, size_t bytes) {
  Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (bytes > 0) m.watched.emplace_back(a, a + bytes);
}
void unwatch_all() {
  Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  m.watched.clear();
}
uint3 block_idx() {
  return M().bidx;
}
dim3 block_dim() {
  return M().bdim;
}
dim3 grid_dim() {
  return M().gdim;
}
int lane() {
  return M().cur->linear & 31;
}

Armed::Armed() {
  t_armed = true;
}
Armed::~Armed() {
  t_armed = false;
}

void syncthreads(const char* file, int line) {
  const Unarmed runtime;
  Machine& m = M();
  Fiber& f = *m.cur;
  f.st = St::kBlockWait;
  f.file = file;
  f.line = line;
  m.block_waiting += 1;
  yield_to_scheduler(m, f);
}

void threadfence() {
  const Unarmed runtime;
  Machine& m = M();
  // A fence orders the block's global stores before it: one with no store
  // since the block's last fence publishes nothing new (and takes no number).
  if (m.stored) {
    m.fences += 1;
    m.stored = false;
  }
  if (m.fences > kMaxFences)
    fail("more than %u __threadfence()s after global stores in %s", kMaxFences, where(m).c_str());
  m.cur->fenced = true;
}

void spin(const char* file, int line) {
  const Unarmed runtime;
  Machine& m = M();
  Fiber& f = *m.cur;
  f.st = St::kSpin;
  f.slept = line != 0;
  f.file = file;
  f.line = line;
  yield_to_scheduler(m, f);
}

void after_atomic(const void* p, bool changed) {
  const Unarmed runtime;
  Machine& m = M();
  if (changed) m.changes += 1;
  if (m.cooperative && space_of(m, reinterpret_cast<uintptr_t>(p)) == Space::kGlobal)
    spin("(after a global atomic)", 0);
}

uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, int arg, int width,
                         const char* file, int line) {
  const Unarmed runtime;
  Machine& m = M();
  Fiber& f = *m.cur;
  if (mask != 0xffffffffu)
    fail(
        "%s with mask 0x%08x at %s:%d in %s: the emulator (and linalign) use full-warp "
        "collectives only",
        collective_name(kind), mask, file, line, where(m).c_str());
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0)
    fail("%s width %d at %s:%d in %s: not a power of two in [1, 32]", collective_name(kind), width,
         file, line, where(m).c_str());
  Warp& W = m.warps[size_t(f.linear / 32)];
  const uint64_t slot = W.gen & 1u;
  const int lane = f.linear & 31;
  W.slots[slot][lane] = value;
  f.st = St::kWarpWait;
  f.kind = kind;
  f.arg = arg;
  f.width = width;
  f.file = file;
  f.line = line;
  W.waiting += 1;
  yield_to_scheduler(m, f);
  // Valid until this lane's next-but-one collective: the other slot takes the
  // next one, and this slot is only rewritten once every lane has read it.
  const uint64_t* all = W.slots[slot];
  const int seg = lane & ~(width - 1), in = lane & (width - 1);
  switch (kind) {
    case kShfl:
      return all[seg + (arg & (width - 1))];
    case kShflDown:
      return in + arg < width ? all[lane + arg] : value;
    case kShflUp:
      return in >= arg ? all[lane - arg] : value;
    case kShflXor: {
      const int src = lane ^ arg;
      return (src & ~(width - 1)) == seg ? all[src] : value;
    }
    case kBallot: {
      uint64_t b = 0;
      for (int l = 0; l < 32; ++l) b |= uint64_t(all[l] != 0) << l;
      return b;
    }
  }
  return value;
}

void load_global(void* dst, const void* p, size_t bytes, size_t align) {
  const Unarmed runtime;
  Machine& m = M();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % align != 0)
    fail("__ldg of %zu bytes at %p: misaligned (needs %zu) in %s", bytes, p, align,
         where_thread(m).c_str());
  if (space_of(m, a) != Space::kGlobal)
    fail("__ldg of %zu bytes at %p in %s: outside every cudaMalloc allocation (%s)", bytes, p,
         where_thread(m).c_str(), space_of(m, a) == Space::kHost ? "host memory" : "not global");
  global_access(m, a, bytes, false, false, "__ldg");
  std::memcpy(dst, p, bytes);
}

void atomic_access(void* p, size_t bytes, const char* what) {
  const Unarmed runtime;
  Machine& m = M();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % bytes != 0)
    fail("%s of %zu bytes at %p: misaligned in %s", what, bytes, p, where_thread(m).c_str());
  const Space sp = space_of(m, a);
  if (sp == Space::kShared) return shared_access(m, a, bytes, true, true, what);
  if (sp != Space::kGlobal)
    fail("%s of %zu bytes at %p in %s: not device or __shared__ memory", what, bytes, p,
         where_thread(m).c_str());
  // Acquire what earlier releases on this address published.
  const uintptr_t key = a / kGranule;
  auto it = m.released.find(key);
  if (it != m.released.end())
    for (const auto& [b, f] : it->second) {
      uint32_t& k = m.knowledge[b];
      k = std::max(k, f);
    }
  global_access(m, a, bytes, true, true, what);
  // A release: this thread fenced since its last atomic.
  Fiber& f = *m.cur;
  if (f.fenced) {
    f.fenced = false;
    auto& rel = m.released[key];
    uint32_t& own = rel[m.block_linear];
    own = std::max(own, m.fences);
    for (const auto& [b, k] : m.knowledge) {
      uint32_t& r = rel[b];
      r = std::max(r, k);
    }
  }
}

namespace {

// Runs op now, records it into the graph a capturing stream is building, or
// queues it on the stream.
void progress(const std::function<bool()>& done);
void drain_all() {
  Machine& m = M();
  progress([&m]() {
    for (CUstream_st* s : m.streams)
      if (!s->pending.empty()) return false;
    return true;
  });
}

void enqueue(cudaStream_t stream, Op op) {
  Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  if (stream != nullptr && stream->capturing) {
    stream->captured.push_back(std::move(op));
  } else if (stream == nullptr) {  // the legacy stream: after all work, synchronously
    drain_all();
    op();
  } else {
    stream->pending.push_back(QueuedOp{std::move(op), nullptr, 0});
    stream->enqueued += 1;
  }
}

// The device: runs one ready operation at a time, taking the streams with
// pending work in turn, until done() holds.
void progress(const std::function<bool()>& done) {
  Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  while (!done()) {
    bool ran = false;
    const size_t n = m.streams.size();
    for (size_t k = 0; k < n && !done(); ++k) {
      CUstream_st* s = m.streams[(m.next_stream + k) % n];
      if (s->pending.empty()) continue;
      QueuedOp& q = s->pending.front();
      if (q.wait_stream != nullptr && q.wait_stream->done < q.wait_until) continue;
      QueuedOp op = std::move(q);
      s->pending.pop_front();
      if (op.run) op.run();
      s->done += 1;
      ran = true;
      m.next_stream = (m.next_stream + k + 1) % std::max<size_t>(1, m.streams.size());
      break;
    }
    if (!ran && !done()) fail("streams wait on each other's events in a cycle: nothing can run");
  }
}

void drain(CUstream_st* s) {
  progress([s]() { return s->pending.empty(); });
}

// Every block of a (checked) grid, one after another.
void run_grid(dim3 grid, dim3 block, const char* name, const Body& body, bool cooperative) {
  Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const uint3 saved_bidx = m.bidx;
  m.traffic.kernels += 1;
  const Traffic before = m.traffic;
  m.bdim = block;
  m.gdim = grid;
  m.n = int(threads);
  m.kernel = name;
  m.body = &body;
  m.cooperative = cooperative;
  m.grid += 1;  // this grid's stores; earlier grids' are visible to it
  m.released.clear();
  // Blocks run in a scrambled order, a different one for every grid: CUDA
  // promises none, so a kernel that relies on one (block 0 first, the last
  // block to finish being the highest index) fails here, not only on a GPU.
  // Block j = (a·i + c) mod N for i = 0 .. N−1 with gcd(a, N) = 1 is a
  // permutation; LINALIGN_EMU_BLOCK_ORDER=linear runs them in index order.
  const uint64_t N = uint64_t(grid.x) * grid.y * grid.z;
  if (N > kMaxBlocks)
    fail("grid of %llu blocks: the emulator's limit is %u", (unsigned long long)N, kMaxBlocks);
  const char* order = std::getenv("LINALIGN_EMU_BLOCK_ORDER");
  const bool linear = order != nullptr && std::string(order) == "linear";
  uint64_t a = 1, c = 0;
  if (!linear && N > 1) {
    a = (0x9e3779b97f4a7c15ull + 2 * m.grids_run) % N;
    while (std::gcd(a, N) != 1) a = (a + 1) % N;
    c = (0x632be59bd9b4e019ull * (m.grids_run + 1)) % N;
  }
  ++m.grids_run;
  std::vector<uint32_t> sequence(N);
  for (uint64_t i = 0; i < N; ++i)
    sequence[i] = uint32_t(uint64_t((unsigned __int128)(a)*i % N + c) % N);
  if (cooperative) {
    run_resident(m, sequence);
  } else {
    for (const uint32_t j : sequence) {
      m.block_linear = j;
      m.bidx = uint3{j % grid.x, j / grid.x % grid.y, j / (grid.x * grid.y)};
      run_block(m);
    }
  }
  m.cooperative = false;
  if (const char* log = std::getenv("LINALIGN_EMU_TRAFFIC"); log != nullptr && *log == '1')
    std::fprintf(stderr,
                 "[emu traffic] %s grid (%u,%u,%u) x %llu threads: loads %llu B, stores %llu B, "
                 "atomics %llu B\n",
                 name, grid.x, grid.y, grid.z, (unsigned long long)threads,
                 (unsigned long long)(m.traffic.load_bytes - before.load_bytes),
                 (unsigned long long)(m.traffic.store_bytes - before.store_bytes),
                 (unsigned long long)(m.traffic.atomic_bytes - before.atomic_bytes));
  m.bidx = saved_bidx;
  m.cur = nullptr;
  m.body = nullptr;
  m.kernel = "";
}

}  // namespace

namespace {
// The kernel's __launch_bounds__ (threads per block), read back from the NOPs
// the emulated attribute put at its entry (simt.hpp); 1024 without one.
uint64_t launch_bound(const void* kernel) {
#if defined(__x86_64__)
  const unsigned char* c = static_cast<const unsigned char*>(kernel);
  if (c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa) c += 4;  // endbr64
  uint64_t nops = 0;
  while (c[nops] == 0x90 && nops < 32) ++nops;
  return nops > 0 ? nops * 32 : 1024;
#else
  (void)kernel;
  return 1024;
#endif
}
}  // namespace

void launch(dim3 grid, dim3 block, cudaStream_t stream, const void* kernel, const char* name,
            Body body, bool cooperative) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535u || grid.z > 65535u) {
    M().last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (threads > launch_bound(kernel)) {
    M().last_error = cudaErrorLaunchOutOfResources;
    return;
  }
  if (cooperative) {
    // Every block resident at once, or the launch fails (as on a GPU).
    int per_sm = 0, sms = 0;
    (void)cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, int(threads), 0);
    (void)cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    if (uint64_t(grid.x) * grid.y * grid.z > uint64_t(per_sm) * uint64_t(sms)) {
      M().last_error = cudaErrorCooperativeLaunchTooLarge;
      return;
    }
  }
  enqueue(stream, [grid, block, name, body, cooperative]() {
    run_grid(grid, block, name, body, cooperative);
  });
}

}  // namespace simt

// ----------------------------------------------- the access callbacks
// GCC's -fsanitize=thread instrumentation of the kernel translation units
// calls these for every load and store (see simt.hpp). Outside kernel code
// they return at once.
extern "C" {
void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
void __tsan_read_range(void* p, size_t n) {
  if (simt::t_armed && n > 0) simt::check_access(p, n, false, "load");
}
void __tsan_write_range(void* p, size_t n) {
  if (simt::t_armed && n > 0) simt::check_access(p, n, true, "store");
}
// clang's instrumentation (the fuzz build) turns memcpy / memmove / memset
// in kernel code into these (clang ≥ 16; clang 14 and 15 call memcpy /
// memmove / memset themselves, which the link wraps: below): a load of the
// source and a store of the destination, each checked like any other access,
// then the copy.
void* __tsan_memcpy(void* d, const void* s, size_t n) {
  __tsan_read_range(const_cast<void*>(s), n);
  __tsan_write_range(d, n);
  return std::memcpy(d, s, n);
}
void* __tsan_memmove(void* d, const void* s, size_t n) {
  __tsan_read_range(const_cast<void*>(s), n);
  __tsan_write_range(d, n);
  return std::memmove(d, s, n);
}
void* __tsan_memset(void* d, int c, size_t n) {
  __tsan_write_range(d, n);
  return std::memset(d, c, n);
}
#if defined(SIMT_WRAP_MEMINTRINSICS)
// clang 14 / 15 replace the memory intrinsics of instrumented code (an
// aggregate assignment such as a RowStats partial stored to device memory:
// a 64-byte llvm.memcpy) by plain calls to memcpy / memmove / memset, which
// a ThreadSanitizer runtime would intercept. The emulated build links with
// -Wl,--wrap=memcpy,... (tests/emu/CMakeLists.txt) so those calls land here
// and are checked as the instrumented accesses are; outside a kernel body
// (t_armed false) these are the libc calls with one thread-local test.
void* __real_memcpy(void* d, const void* s, size_t n);
void* __real_memmove(void* d, const void* s, size_t n);
void* __real_memset(void* d, int c, size_t n);
void* __wrap_memcpy(void* d, const void* s, size_t n) {
  __tsan_read_range(const_cast<void*>(s), n);
  __tsan_write_range(d, n);
  return __real_memcpy(d, s, n);
}
void* __wrap_memmove(void* d, const void* s, size_t n) {
  __tsan_read_range(const_cast<void*>(s), n);
  __tsan_write_range(d, n);
  return __real_memmove(d, s, n);
}
void* __wrap_memset(void* d, int c, size_t n) {
  __tsan_write_range(d, n);
  return __real_memset(d, c, n);
}
#endif
#define SIMT_TSAN_HOOKS(N)                                               \
  void __tsan_read##N(void* p) {                                         \
    if (simt::t_armed) simt::check_access(p, N, false, "load");          \
  }                                                                      \
  void __tsan_write##N(void* p) {                                        \
    if (simt::t_armed) simt::check_access(p, N, true, "store");          \
  }                                                                      \
  void __tsan_unaligned_read##N(void* p) {                               \
    if (simt::t_armed) simt::check_access(p, N, false, "load");          \
  }                                                                      \
  void __tsan_unaligned_write##N(void* p) {                              \
    if (simt::t_armed) simt::check_access(p, N, true, "store");          \
  }                                                                      \
  void __tsan_volatile_read##N(void* p) {                                \
    if (simt::t_armed) simt::check_access(p, N, false, "volatile load"); \
  }                                                                      \
  void __tsan_volatile_write##N(void* p) {                               \
    if (simt::t_armed) simt::check_access(p, N, true, "volatile store"); \
  }                                                                      \
  void __tsan_unaligned_volatile_read##N(void* p) {                      \
    if (simt::t_armed) simt::check_access(p, N, false, "volatile load"); \
  }                                                                      \
  void __tsan_unaligned_volatile_write##N(void* p) {                     \
    if (simt::t_armed) simt::check_access(p, N, true, "volatile store"); \
  }
// Atomics of host code in the instrumented translation units (reference
// counts of the standard library): performed as they are, unchecked.
#define SIMT_TSAN_ATOMICS(N, T)                                                             \
  T __tsan_atomic##N##_load(const volatile T* a, int mo) {                                  \
    return __atomic_load_n(a, mo);                                                          \
  }                                                                                         \
  void __tsan_atomic##N##_store(volatile T* a, T v, int mo) {                               \
    __atomic_store_n(a, v, mo);                                                             \
  }                                                                                         \
  T __tsan_atomic##N##_exchange(volatile T* a, T v, int mo) {                               \
    return __atomic_exchange_n(a, v, mo);                                                   \
  }                                                                                         \
  T __tsan_atomic##N##_fetch_add(volatile T* a, T v, int mo) {                              \
    return __atomic_fetch_add(a, v, mo);                                                    \
  }                                                                                         \
  T __tsan_atomic##N##_fetch_sub(volatile T* a, T v, int mo) {                              \
    return __atomic_fetch_sub(a, v, mo);                                                    \
  }                                                                                         \
  T __tsan_atomic##N##_fetch_and(volatile T* a, T v, int mo) {                              \
    return __atomic_fetch_and(a, v, mo);                                                    \
  }                                                                                         \
  T __tsan_atomic##N##_fetch_or(volatile T* a, T v, int mo) {                               \
    return __atomic_fetch_or(a, v, mo);                                                     \
  }                                                                                         \
  T __tsan_atomic##N##_fetch_xor(volatile T* a, T v, int mo) {                              \
    return __atomic_fetch_xor(a, v, mo);                                                    \
  }                                                                                         \
  T __tsan_atomic##N##_fetch_nand(volatile T* a, T v, int mo) {                             \
    return __atomic_fetch_nand(a, v, mo);                                                   \
  }                                                                                         \
  int __tsan_atomic##N##_compare_exchange_strong(volatile T* a, T* c, T v, int mo, int f) { \
    return __atomic_compare_exchange_n(a, c, v, false, mo, f);                              \
  }                                                                                         \
  int __tsan_atomic##N##_compare_exchange_weak(volatile T* a, T* c, T v, int mo, int f) {   \
    return __atomic_compare_exchange_n(a, c, v, true, mo, f);                               \
  }                                                                                         \
  T __tsan_atomic##N##_compare_exchange_val(volatile T* a, T c, T v, int mo, int f) {       \
    __atomic_compare_exchange_n(a, &c, v, false, mo, f);                                    \
    return c;                                                                               \
  }
SIMT_TSAN_ATOMICS(8, uint8_t)
SIMT_TSAN_ATOMICS(16, uint16_t)
SIMT_TSAN_ATOMICS(32, uint32_t)
SIMT_TSAN_ATOMICS(64, uint64_t)
#undef SIMT_TSAN_ATOMICS
void __tsan_atomic_thread_fence(int mo) {
  __atomic_thread_fence(mo);
}
void __tsan_atomic_signal_fence(int mo) {
  __atomic_signal_fence(mo);
}
SIMT_TSAN_HOOKS(1)
SIMT_TSAN_HOOKS(2)
SIMT_TSAN_HOOKS(4)
SIMT_TSAN_HOOKS(8)
SIMT_TSAN_HOOKS(16)
#undef SIMT_TSAN_HOOKS
}

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

bool in_arena(const void* p) {
  return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(M().arena) <
         simt::kArenaBytes;
}

// The live allocation holding [p, p + bytes), or false.
bool inside_allocation(const void* p, size_t bytes) {
  const auto& al = M().allocations;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = al.upper_bound(a);
  if (it == al.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + std::max<size_t>(it->second, 1);
}

// Sets the shadow of [p, p + bytes) to `state` (whole granules).
void set_shadow(const void* p, size_t bytes, uint32_t state) {
  simt::Machine& m = M();
  const size_t g0 =
      (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(m.arena)) / simt::kGranule;
  const size_t g1 = (reinterpret_cast<uintptr_t>(p) + bytes + simt::kGranule - 1 -
                     reinterpret_cast<uintptr_t>(m.arena)) /
                    simt::kGranule;
  for (size_t g = g0; g < g1; ++g) m.shadow[g] = simt::Shadow{state, 0, 0, 0};
}

// A host operation's device range: inside one live allocation (CUDA returns
// cudaErrorInvalidValue otherwise).
bool device_range_ok(const void* p, size_t bytes) {
  return !in_arena(p) || bytes == 0 || inside_allocation(p, bytes);
}

// Gives the pages of [p, p + bytes) back to the system (they read as 0).
void release_pages(void* p, size_t bytes) {
  const uintptr_t page = 4096;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  std::memset(p, 0, std::min<size_t>(bytes, lo - reinterpret_cast<uintptr_t>(p)));
  if (hi > lo) {
    madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
    std::memset(reinterpret_cast<void*>(hi), 0, reinterpret_cast<uintptr_t>(p) + bytes - hi);
  } else {
    std::memset(p, 0, bytes);
  }
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
    case cudaErrorStreamCaptureIsolation:
      return "cudaErrorStreamCaptureIsolation";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorLaunchOutOfResources:
      return "cudaErrorLaunchOutOfResources";
    case cudaErrorCooperativeLaunchTooLarge:
      return "cudaErrorCooperativeLaunchTooLarge";
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
// Resident blocks per multiprocessor: LINALIGN_EMU_BLOCKS_PER_SM (default
// 1: the emulator keeps every resident block's fibers, so a cooperative grid
// of B = 4 rows at V = 32000, 124 blocks, fits the 132 emulated SMs, and one
// of V = 151936's 148 slices per row does not: the launch policy's fallback
// path runs), at most 2048 threads.
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* func,
                                                          int block_size, size_t dynamic_smem) {
  if (blocks == nullptr || func == nullptr || block_size <= 0 || dynamic_smem != 0)
    return set(cudaErrorInvalidValue);
  if (uint64_t(block_size) > simt::launch_bound(func)) {
    *blocks = 0;
    return cudaSuccess;
  }
  *blocks = std::max(0, std::min(env_int("LINALIGN_EMU_BLOCKS_PER_SM", 1), 2048 / block_size));
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  simt::drain_all();
  return cudaSuccess;
}

// Next fit in the arena, 256-byte aligned, kGap unallocated bytes after each
// allocation; the memory starts as 0xff bytes (NaN floats, −1 integers) and
// "never written" for initcheck.
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  simt::Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  *ptr = nullptr;
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  const size_t span = (std::max<size_t>(bytes, 1) + 255) / 256 * 256 + simt::kGap;
  auto fits = [&m, span](uintptr_t off) {
    if (off + span > simt::kArenaBytes) return false;
    const uintptr_t a = reinterpret_cast<uintptr_t>(m.arena) + off;
    auto next = m.allocations.lower_bound(a);
    if (next != m.allocations.end() && next->first < a + span) return false;
    if (next != m.allocations.begin()) {
      --next;
      if (next->first + next->second + simt::kGap > a) return false;
    }
    return true;
  };
  uintptr_t off = m.cursor;
  if (!fits(off)) {  // first fit from the start of the arena
    off = 0;
    for (const auto& [base, size] : m.allocations) {
      if (fits(off)) break;
      off = (base + size + simt::kGap - reinterpret_cast<uintptr_t>(m.arena) + 255) / 256 * 256;
    }
    if (!fits(off)) return set(cudaErrorMemoryAllocation);
  }
  void* p = m.arena + off;
  m.cursor = off + span;
  std::memset(p, 0xff, bytes);
  set_shadow(p, bytes, simt::kUnwritten);
  m.allocations[reinterpret_cast<uintptr_t>(p)] = bytes;
  m.freed.erase(reinterpret_cast<uintptr_t>(p));
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr) {
  simt::Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  if (attributes == nullptr) return set(cudaErrorInvalidValue);
  *attributes = cudaPointerAttributes{cudaMemoryTypeUnregistered, -2, nullptr, nullptr};
  if (ptr != nullptr && inside_allocation(ptr, 1))
    *attributes = cudaPointerAttributes{cudaMemoryTypeDevice, 0, const_cast<void*>(ptr), nullptr};
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  auto it = m.pinned.upper_bound(a);
  if (ptr != nullptr && it != m.pinned.begin() && (--it, a < it->first + it->second)) {
    void* p = const_cast<void*>(ptr);
    *attributes = cudaPointerAttributes{cudaMemoryTypeHost, 0, p, p};  // mapped (UVA)
  }
  return cudaSuccess;
}
// Pinned host memory: plain host memory the runtime knows (cudaMemoryTypeHost).
// Copies to and from it behave as with pageable memory here (complete when
// their stream reaches them, or at once): the emulator has no copy engine.
cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  simt::Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  if (ptr == nullptr) return set(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  void* p = std::malloc(std::max<size_t>(bytes, 1));
  if (p == nullptr) return set(cudaErrorMemoryAllocation);
  m.pinned[reinterpret_cast<uintptr_t>(p)] = std::max<size_t>(bytes, 1);
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* ptr) {
  simt::Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  if (ptr == nullptr) return cudaSuccess;
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  simt::drain_all();  // like cudaFree, it waits for the device
  if (m.pinned.erase(reinterpret_cast<uintptr_t>(ptr)) == 0) return set(cudaErrorInvalidValue);
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaFree(void* ptr) {
  simt::Machine& m = M();
  std::lock_guard<std::recursive_mutex> lock(m.mutex);
  if (ptr == nullptr) return cudaSuccess;
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  simt::drain_all();  // cudaFree waits for the device
  const auto it = m.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == m.allocations.end()) return set(cudaErrorInvalidValue);
  const size_t bytes = it->second;
  m.allocations.erase(it);
  if (m.freed.size() > 4096) m.freed.erase(m.freed.begin());
  m.freed[reinterpret_cast<uintptr_t>(ptr)] = bytes;
  const size_t g0 =
      (reinterpret_cast<uintptr_t>(ptr) - reinterpret_cast<uintptr_t>(m.arena)) / simt::kGranule;
  const size_t granules = (bytes + simt::kGranule - 1) / simt::kGranule;
  release_pages(&m.shadow[g0], granules * sizeof(simt::Shadow));  // 0: not allocated
  release_pages(ptr, bytes);
  return cudaSuccess;
}

namespace {
// The copy or set itself, with the device side checked and marked written.
cudaError_t device_copy(void* dst, const void* src, size_t bytes) {
  if (!device_range_ok(dst, bytes) || !device_range_ok(src, bytes))
    return set(cudaErrorInvalidValue);
  if (bytes == 0) return cudaSuccess;
  std::memmove(dst, src, bytes);
  if (in_arena(dst)) set_shadow(dst, bytes, simt::kHostWritten);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  simt::drain_all();
  return device_copy(dst, src, bytes);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind,
                            cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (!device_range_ok(dst, bytes) || !device_range_ok(src, bytes))
    return set(cudaErrorInvalidValue);
  const bool capturing = stream != nullptr && stream->capturing;
  if (!capturing && !in_arena(dst)) {  // into pageable host memory: complete on return
    if (stream != nullptr) {
      simt::drain(stream);
    } else {
      simt::drain_all();
    }
    return device_copy(dst, src, bytes);
  }
  if (!capturing && !in_arena(src)) {  // from pageable host memory: read now
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src),
                                                      static_cast<const char*>(src) + bytes);
    simt::enqueue(stream, [=]() { (void)device_copy(dst, staged->data(), bytes); });
    return cudaSuccess;
  }
  simt::enqueue(stream, [=]() { (void)device_copy(dst, src, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (!in_arena(dst) || !device_range_ok(dst, bytes)) return set(cudaErrorInvalidValue);
  simt::enqueue(stream, [=]() {
    simt::M().traffic.memsets += 1;
    std::memset(dst, value, bytes);
    set_shadow(dst, bytes, simt::kHostWritten);
  });
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  *stream = new CUstream_st;
  M().streams.push_back(*stream);
  return cudaSuccess;
}
// The stream's work still completes; the object stays (events may name it).
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (stream == nullptr || stream->destroyed) return set(cudaErrorInvalidValue);
  simt::drain(stream);
  stream->destroyed = true;
  auto& s = M().streams;
  s.erase(std::remove(s.begin(), s.end(), stream), s.end());
  M().retired_streams.push_back(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  if (stream == nullptr) {
    simt::drain_all();
  } else {
    simt::drain(stream);
  }
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (event == nullptr) return set(cudaErrorInvalidValue);
  if (event->stream == nullptr || event->stream->done >= event->at) return cudaSuccess;
  if (stream != nullptr && stream->capturing) {
    // An event recorded outside the capture: CUDA refuses it and the capture
    // is lost.
    stream->invalidated = true;
    return set(cudaErrorStreamCaptureIsolation);
  }
  if (stream == nullptr) {
    CUstream_st* s = event->stream;
    const uint64_t at = event->at;
    simt::progress([s, at]() { return s->done >= at; });
    return cudaSuccess;
  }
  stream->pending.push_back(QueuedOp{nullptr, event->stream, event->at});
  stream->enqueued += 1;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  *status = stream == nullptr || !stream->capturing ? cudaStreamCaptureStatusNone
            : stream->invalidated                   ? cudaStreamCaptureStatusInvalidated
                                                    : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (stream == nullptr || stream->capturing) return set(cudaErrorInvalidValue);
  stream->capturing = true;
  stream->invalidated = false;
  stream->captured.clear();
  M().capturing += 1;
  M().capture_streams.push_back(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  *graph = nullptr;
  if (stream == nullptr || !stream->capturing) return set(cudaErrorInvalidValue);
  stream->capturing = false;
  M().capturing -= 1;
  auto& cs = M().capture_streams;
  cs.erase(std::remove(cs.begin(), cs.end(), stream), cs.end());
  if (stream->invalidated) return set(cudaErrorStreamCaptureInvalidated);
  *graph = new CUgraph_st{std::move(stream->captured)};
  stream->captured.clear();
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
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (event == nullptr) return set(cudaErrorInvalidValue);
  if (stream != nullptr && stream->capturing) {
    stream->invalidated = true;  // (linalign records no events in a capture)
    return set(cudaErrorStreamCaptureUnsupported);
  }
  if (stream == nullptr) {
    simt::drain_all();
    event->stream = nullptr;
    return cudaSuccess;
  }
  event->stream = stream;
  event->at = stream->enqueued;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  std::lock_guard<std::recursive_mutex> lock(M().mutex);
  if (event == nullptr) return set(cudaErrorInvalidValue);
  if (forbidden_in_capture()) return set(cudaErrorStreamCaptureUnsupported);
  CUstream_st* s = event->stream;
  if (s == nullptr) return cudaSuccess;
  const uint64_t at = event->at;
  simt::progress([s, at]() { return s->done >= at; });
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
