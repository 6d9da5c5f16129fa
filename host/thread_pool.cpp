#include "thread_pool.hpp"

namespace linalign {
namespace host {
namespace {
thread_local int tls_index = 0;
}  // namespace

int ThreadPool::thread_index() {
  return tls_index;
}

ThreadPool::ThreadPool(int threads) {
  for (int t = 1; t < threads; ++t) {
    workers_.emplace_back([this, t] {
      tls_index = t;
      worker_loop();
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::drain() {
  for (int64_t i = next_.fetch_add(1, std::memory_order_relaxed); i < n_;
       i = next_.fetch_add(1, std::memory_order_relaxed)) {
    fn_(ctx_, i);
  }
}

void ThreadPool::run(int64_t n, Fn fn, const void* ctx) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    n_ = n;
    fn_ = fn;
    ctx_ = ctx;
    next_.store(0, std::memory_order_relaxed);
    busy_ = int(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  drain();
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [this] { return busy_ == 0; });
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    drain();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
}

}  // namespace host
}  // namespace linalign
