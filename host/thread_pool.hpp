// A fixed pool of worker threads for the CPU backend. parallel_for(n, f)
// runs f(0..n-1) with dynamic scheduling on the workers and the calling
// thread, and allocates nothing per call.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace linalign {
namespace host {

class ThreadPool {
 public:
  // `threads` participants in all, the caller included (≥ 1).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Index of the calling participant inside parallel_for: 0 for the caller,
  // 1..size()-1 for the workers. Lets a task use per-thread scratch.
  static int thread_index();

  template <class F>
  void parallel_for(int64_t n, const F& f) {
    if (n <= 0) return;
    if (n == 1 || workers_.empty()) {
      for (int64_t i = 0; i < n; ++i) f(i);
      return;
    }
    run(
        n, [](const void* ctx, int64_t i) { (*static_cast<const F*>(ctx))(i); }, &f);
  }

 private:
  using Fn = void (*)(const void*, int64_t);
  void run(int64_t n, Fn fn, const void* ctx);
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  int busy_ = 0;
  std::atomic<int64_t> next_{0};
  int64_t n_ = 0;
  Fn fn_ = nullptr;
  const void* ctx_ = nullptr;
};

}  // namespace host
}  // namespace linalign
