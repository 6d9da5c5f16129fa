// linalign::Batcher (include/linalign/batcher.hpp): requests, a bounded
// queue, and one dispatch thread that turns queued steps into Context calls.
//
// Two threads, a pipeline. The dispatch thread, in phases:
//   1. wait for work: a step, or shutdown;
//   2. wait for company: until max_rows steps are queued, or every open
//      request has a step queued (no other step can come), or the oldest has
//      waited max_wait_us (or shutdown);
//   3. take a batch: from the oldest step, every queued step with the same
//      BatchKey, in acceptance order, up to max_rows; steps whose deadline has
//      passed are taken out and answered kDeadlineExceeded instead;
//   4. start it in a slot of the backend's BatchExecutor
//      (host/batch_executor.hpp): one call on the pointer-array layout with
//      per-row parameters (the rows stay where the callers put them); CUDA:
//      copy in, kernels and copy out enqueued on the slot's stream. (The
//      dispatch thread waits for a free slot before phase 1, so steps keep
//      joining the next batch while every slot is busy.)
// The completion thread takes the started batches in order, waits for each
// (BatchExecutor::finish), frees its slot and answers its steps (future or
// callback), outside the lock. With two or more slots the next batch is
// formed and started while the previous one runs.
// A step leaves the queue exactly once — taken into a batch, cancelled,
// expired or failed at shutdown — under the lock, and is answered by whoever
// took it out: no step is answered twice or lost.
#include "linalign/batcher.hpp"

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend.hpp"
#include "call.hpp"

namespace linalign {

namespace {

using Clock = std::chrono::steady_clock;

Op op_of(StepKind k) {
  switch (k) {
    case StepKind::kSample:
      return Op::kSample;
    case StepKind::kAlign:
      return Op::kAlign;
    case StepKind::kScore:
      return Op::kScore;
  }
  return Op::kSample;
}

bool valid_kind(StepKind k) {
  return k == StepKind::kSample || k == StepKind::kAlign || k == StepKind::kScore;
}

// What must be equal for two steps to share a Context call: the operation,
// the rows' type and width, and every call-level (not per-row) parameter.
struct BatchKey {
  StepKind kind;
  DType dtype;
  int64_t vocab;
  StepRule rule;
  UpdateForm update;
  bool greedy;
  NucleusSource nucleus_source;
  int32_t min_tokens_to_keep;
  int32_t ignore_index;

  static BatchKey of(const Step& s, const Params& p) {
    return BatchKey{s.kind,   s.rows.dtype,     s.rows.vocab,         p.rule,        p.update,
                    p.greedy, p.nucleus_source, p.min_tokens_to_keep, p.ignore_index};
  }
  bool operator==(const BatchKey& o) const {
    return kind == o.kind && dtype == o.dtype && vocab == o.vocab && rule == o.rule &&
           update == o.update && greedy == o.greedy && nucleus_source == o.nucleus_source &&
           min_tokens_to_keep == o.min_tokens_to_keep && ignore_index == o.ignore_index;
  }
};

// Whether any parameter is a per-row array (*which: its name); a request's are scalars.
bool has_per_row_arrays(const Params& p, const char** which) {
  const std::pair<const void*, const char*> arrays[] = {
      {p.temperature.values, "params.temperature"},
      {p.ratio.values, "params.ratio"},
      {p.epsilon.values, "params.epsilon"},
      {p.eta_max.values, "params.eta_max"},
      {p.top_p.values, "params.top_p"},
      {p.top_k.values, "params.top_k"},
      {p.min_p.values, "params.min_p"},
      {p.seed.values, "params.seed"},
      {p.offset.values, "params.offset"}};
  for (const auto& [ptr, name] : arrays) {
    if (ptr != nullptr) {
      *which = name;
      return true;
    }
  }
  return false;
}

void set_error(std::string* error, const std::string& message) {
  if (error != nullptr) *error = message;
}

}  // namespace

struct Batcher::Impl {
  struct Request {
    Params params;         // scalars
    uint64_t next_offset;  // the next sample step's Philox offset
    uint64_t queued = 0;   // its steps in the queue
  };

  struct Pending {
    uint64_t ticket = 0;
    Step step;
    Params params;  // the request's, with offset = this step's
    BatchKey key;
    Clock::time_point accepted;
    std::promise<StepResult> promise;
  };
  using Queue = std::list<std::unique_ptr<Pending>>;

  // A batch started in a slot (or refused by the executor's start).
  struct Started {
    int slot = 0;
    uint64_t number = 0;  // 1, 2, ... in start order
    Clock::time_point started_at;
    std::vector<std::unique_ptr<Pending>> steps;
    Status status = Status::kSuccess;  // of start(); finish() gives the rest
    std::string message;
  };

  Impl(host::BackendImpl& b, std::unique_ptr<host::BatchExecutor> e, const BatcherOptions& o)
      : backend(b),
        exec(std::move(e)),
        opt(o),
        io(size_t(exec->slots())),
        slot_free(size_t(exec->slots()), true) {}

  host::BackendImpl& backend;
  const std::unique_ptr<host::BatchExecutor> exec;
  const BatcherOptions opt;
  std::vector<host::BatchIo> io;  // one per slot, owned by whoever holds the slot

  mutable std::mutex mu;
  std::condition_variable work_cv;   // the dispatch thread: a step or shutdown
  std::condition_variable space_cv;  // blocked submitters: room or shutdown
  std::unordered_map<RequestId, Request> requests;
  RequestId next_request = 1;
  Queue queue;  // accepted, not yet taken, in acceptance order
  std::unordered_map<uint64_t, Queue::iterator> queued;  // ticket → its place in `queue`
  uint64_t next_ticket = 1;
  bool stopping = false;
  ShutdownMode stop_mode = ShutdownMode::kDrain;
  BatcherStats stats;
  // Open requests with no step queued: while there are none, no step can
  // arrive that is not already waiting (a request submits its next step
  // after this one's answer), so the dispatch thread stops waiting for
  // company (a lone request pays no max_wait).
  uint64_t idle_requests = 0;
  void leave_queue(const Pending& p);  // under mu: a step left the queue

  // The pipeline (under mu): free slots, started batches in order.
  std::vector<bool> slot_free;
  std::condition_variable slot_cv;  // the dispatch thread: a slot is free
  std::deque<Started> started;
  std::condition_variable started_cv;  // the completion thread: a batch, or the end
  bool dispatch_done = false;
  uint64_t batches_started = 0;  // the dispatch thread's

  std::mutex join_mu;
  std::thread dispatcher, completer;

  // ---- submission (under no lock: validation reads only the step)
  // check_memory = false: the parameters only (open()'s probe rows are host memory).
  Status validate_step(const Step& s, const Params& p, std::string* message,
                       bool check_memory = true) const;
  // ---- the dispatch thread
  void dispatch();
  bool wait_for_batch(std::unique_lock<std::mutex>& lk);
  void take_batch(std::vector<std::unique_ptr<Pending>>* batch,
                  std::vector<std::unique_ptr<Pending>>* expired);
  int free_slot() const;  // under mu; -1 when every slot is busy
  Started start(int slot, std::vector<std::unique_ptr<Pending>> batch);
  // ---- the completion thread
  void complete();
  std::vector<StepResult> finish(Started& b);
  // ---- answers (under no lock)
  static void answer(Pending& p, StepResult r);
  void answer_all(std::vector<std::unique_ptr<Pending>>& steps, Status s, const char* why);
};

// ------------------------------------------------------------ validation ---

// The step as a one-row direct call, checked by the library's own call-level
// validation (host/validate.cpp): the same status and message a direct call
// on these rows would give.
Status Batcher::Impl::validate_step(const Step& s, const Params& p, std::string* message,
                                    bool check_memory) const {
  if (!valid_kind(s.kind)) {
    *message = "submit: step.kind is not a StepKind";
    return Status::kInvalidArgument;
  }
  host::Call call;
  call.op = op_of(s.kind);
  call.name = host::op_name(call.op);
  call.logits = LogitsView::strided(s.rows.dtype, 1, s.rows.vocab, s.rows.base, s.rows.principle);
  call.params = &p;
  int32_t token = 0;
  float logprob = 0.f, base = 0.f, principle = 0.f;
  ScoreOutputs so;
  switch (s.kind) {
    case StepKind::kSample:
      call.tokens = &token;
      call.token_logprob = &logprob;
      break;
    case StepKind::kAlign:
      call.out = s.aligned;
      call.out_dtype = DType::kF32;
      break;
    case StepKind::kScore:
      so.aligned = &logprob;
      so.base = &base;
      so.principle = &principle;
      call.targets = &s.target;
      call.score = &so;
      break;
  }
  const Status st = host::validate_call(&call, backend.host_arrays(), message);
  if (st != Status::kSuccess || backend.host_arrays() || !check_memory) return st;
  // Device memory: the step's own pointers as the backend's calls check them
  // (a step's other outputs are the batcher's, not the caller's).
  host::Call memory;
  memory.op = call.op;
  memory.name = call.name;
  memory.logits = call.logits;
  memory.params = &p;
  if (s.kind == StepKind::kAlign) memory.out = s.aligned;
  return exec->check_step_memory(memory, message);
}

// ---------------------------------------------------------- dispatch loop ---

void Batcher::Impl::dispatch() {
  for (;;) {
    std::vector<std::unique_ptr<Pending>> batch, expired;
    bool fail_rest = false;
    int slot = -1;
    {
      std::unique_lock<std::mutex> lk(mu);
      // A free slot first: a batch formed while every slot is busy would
      // wait for one with fewer rows than could have joined it meanwhile.
      slot_cv.wait(lk, [&] { return free_slot() >= 0; });
      if (!wait_for_batch(lk)) break;  // stopped with nothing left
      if (stopping && stop_mode == ShutdownMode::kFail) {
        for (auto& p : queue) {
          leave_queue(*p);
          batch.push_back(std::move(p));
        }
        queue.clear();
        queued.clear();
        fail_rest = true;
      } else {
        take_batch(&batch, &expired);
        if (!batch.empty()) {
          slot = free_slot();
          slot_free[size_t(slot)] = false;
        }
      }
    }
    space_cv.notify_all();
    answer_all(expired, Status::kDeadlineExceeded, "the step's deadline passed before it ran");
    if (fail_rest) {
      answer_all(batch, Status::kShutdown, "the batcher shut down before the step ran");
      continue;
    }
    if (batch.empty()) continue;
    Started b = start(slot, std::move(batch));
    {
      std::lock_guard<std::mutex> lk(mu);
      started.push_back(std::move(b));
    }
    started_cv.notify_one();
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    dispatch_done = true;
  }
  started_cv.notify_one();
}

// Phases 1 and 2. False when the batcher has stopped and nothing is queued.
bool Batcher::Impl::wait_for_batch(std::unique_lock<std::mutex>& lk) {
  work_cv.wait(lk, [&] { return !queue.empty() || stopping; });
  if (queue.empty()) return false;
  const Clock::time_point until =
      queue.front()->accepted + std::chrono::microseconds(opt.max_wait_us);
  work_cv.wait_until(lk, until, [&] {
    return stopping || queue.empty() || queue.size() >= size_t(opt.max_rows) || idle_requests == 0;
  });
  return !queue.empty() || !stopping;
}

void Batcher::Impl::leave_queue(const Pending& p) {
  auto it = requests.find(p.step.request);
  if (it != requests.end() && --it->second.queued == 0) ++idle_requests;
}

// Phase 3 (under the lock).
void Batcher::Impl::take_batch(std::vector<std::unique_ptr<Pending>>* batch,
                               std::vector<std::unique_ptr<Pending>>* expired) {
  const Clock::time_point now = Clock::now();
  bool have_key = false;
  BatchKey key{};
  for (auto it = queue.begin(); it != queue.end() && batch->size() < size_t(opt.max_rows);) {
    Pending& p = **it;
    const bool late = p.step.deadline <= now;
    if (!late) {
      if (!have_key) {
        key = p.key;
        have_key = true;
      } else if (!(p.key == key)) {
        ++it;
        continue;
      }
    }
    queued.erase(p.ticket);
    leave_queue(p);
    (late ? expired : batch)->push_back(std::move(*it));
    it = queue.erase(it);
  }
  stats.deadline_exceeded += expired->size();
  stats.pending -= expired->size();
}

int Batcher::Impl::free_slot() const {
  const auto it = std::find(slot_free.begin(), slot_free.end(), true);
  return it == slot_free.end() ? -1 : int(it - slot_free.begin());
}

// Phase 4: the batch's arrays into its slot's BatchIo, start.
Batcher::Impl::Started Batcher::Impl::start(int slot, std::vector<std::unique_ptr<Pending>> batch) {
  Started b;
  b.slot = slot;
  b.steps = std::move(batch);
  host::BatchIo& x = io[size_t(b.slot)];
  const size_t B = b.steps.size();
  x.resize(B);
  for (size_t r = 0; r < B; ++r) {
    const Pending& p = *b.steps[r];
    x.base[r] = p.step.rows.base;
    x.principle[r] = p.step.rows.principle;
    x.temperature[r] = p.params.temperature.value;
    x.ratio[r] = p.params.ratio.value;
    x.epsilon[r] = p.params.epsilon.value;
    x.eta_max[r] = p.params.eta_max.value;
    x.top_p[r] = p.params.top_p.value;
    x.top_k[r] = p.params.top_k.value;
    x.min_p[r] = p.params.min_p.value;
    x.seed[r] = p.params.seed.value;
    x.offset[r] = p.params.offset.value;
    x.targets[r] = p.step.target;
    x.aligned[r] = p.step.aligned;
  }
  const Pending& head = *b.steps.front();
  host::BatchShape shape;
  shape.op = op_of(head.step.kind);
  shape.dtype = head.step.rows.dtype;
  shape.vocab = head.step.rows.vocab;
  shape.call_level = head.params;  // equal across the batch (BatchKey)
  b.number = ++batches_started;
  b.started_at = Clock::now();
  try {
    b.status = exec->start(b.slot, shape, x, &b.message);
  } catch (const std::bad_alloc&) {
    b.status = Status::kInternal;
    b.message = "batch: out of memory";
  }
  return b;
}

// The completion thread: the started batches in order.
void Batcher::Impl::complete() {
  for (;;) {
    Started b;
    {
      std::unique_lock<std::mutex> lk(mu);
      started_cv.wait(lk, [&] { return !started.empty() || dispatch_done; });
      if (started.empty()) return;
      b = std::move(started.front());
      started.pop_front();
    }
    std::vector<StepResult> results = finish(b);
    {
      std::lock_guard<std::mutex> lk(mu);
      slot_free[size_t(b.slot)] = true;
      ++stats.batches;
      stats.batched_rows += b.steps.size();
      for (const StepResult& r : results) {
        if (r.status == Status::kSuccess) {
          ++stats.completed;
        } else {
          ++stats.failed;
        }
      }
      stats.pending -= b.steps.size();
    }
    slot_cv.notify_one();
    for (size_t i = 0; i < b.steps.size(); ++i) answer(*b.steps[i], std::move(results[i]));
  }
}

// The batch's outcome and outputs, one StepResult per step.
std::vector<StepResult> Batcher::Impl::finish(Started& b) {
  host::BatchIo& x = io[size_t(b.slot)];
  Status s = b.status;
  std::string message = b.message;
  if (s == Status::kSuccess) {
    try {
      s = exec->finish(b.slot, x, &message);
    } catch (...) {
      s = Status::kInternal;
      message = "batch: unexpected exception";
    }
  }
  const Clock::time_point finished_at = Clock::now();
  std::vector<StepResult> results(b.steps.size());
  for (size_t r = 0; r < b.steps.size(); ++r) {
    StepResult& out = results[r];
    out.status = s;
    out.message = message;
    out.ticket = b.steps[r]->ticket;
    out.offset = x.offset[r];
    out.batch = b.number;
    out.batch_rows = int32_t(b.steps.size());
    out.slot = b.slot;
    out.batch_started = b.started_at;
    out.batch_finished = finished_at;
    if (s != Status::kSuccess) continue;
    out.diagnostics = x.diagnostics[r];
    out.token = x.tokens[r];
    out.logprob = x.logprob[r];
    out.score_base = x.score_base[r];
    out.score_principle = x.score_principle[r];
  }
  return results;
}

// ---------------------------------------------------------------- answers ---

void Batcher::Impl::answer(Pending& p, StepResult r) {
  r.ticket = p.ticket;
  if (p.step.callback) {
    try {
      p.step.callback(r);
    } catch (...) {
      // A callback must not throw (batcher.hpp); the dispatch thread carries on.
    }
    return;
  }
  p.promise.set_value(std::move(r));
}

void Batcher::Impl::answer_all(std::vector<std::unique_ptr<Pending>>& steps, Status s,
                               const char* why) {
  if (steps.empty()) return;
  if (s == Status::kShutdown) {
    std::lock_guard<std::mutex> lk(mu);
    stats.failed += steps.size();
    stats.pending -= steps.size();
  }
  for (auto& p : steps) {
    StepResult r;
    r.status = s;
    r.message = why;
    r.offset = p->params.offset.value;
    answer(*p, std::move(r));
  }
}

// ------------------------------------------------------------------- API ---

Batcher::Batcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Batcher::~Batcher() {
  shutdown(ShutdownMode::kDrain);
}

Status Batcher::create(Context& ctx, const BatcherOptions& o, std::unique_ptr<Batcher>* out,
                       std::string* error) {
  if (out == nullptr) {
    set_error(error, "Batcher::create: out is null");
    return Status::kInvalidArgument;
  }
  out->reset();
  if (o.max_rows < 1 || o.max_wait_us < 0 || o.queue_capacity < 1 || o.submit_timeout.count() < 0 ||
      o.streams < 1 || o.streams > 64) {
    set_error(error,
              "Batcher::create: options out of range (max_rows >= 1, max_wait_us >= 0, "
              "queue_capacity >= 1, submit_timeout >= 0, streams in [1, 64])");
    return Status::kInvalidArgument;
  }
  host::BackendImpl& backend = host::backend_of(*ctx.impl_);
  std::unique_ptr<host::BatchExecutor> exec;
  std::string message;
  const Status s = backend.make_batch_executor(o.streams, &exec, &message);
  if (s != Status::kSuccess) {
    set_error(error, message);
    return s;
  }
  std::unique_ptr<Impl> impl(new Impl(backend, std::move(exec), o));
  Impl* raw = impl.get();
  out->reset(new Batcher(std::move(impl)));
  raw->dispatcher = std::thread([raw] {
#if defined(__linux__)
    // max_wait_us is a latency promise: Linux's default 50 µs timer slack
    // would be added to every timed wait for company.
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
#endif
    raw->dispatch();
  });
  raw->completer = std::thread([raw] { raw->complete(); });
  return Status::kSuccess;
}

Status Batcher::open(const Params& params, RequestId* out, std::string* error) {
  if (out == nullptr) {
    set_error(error, "open: out is null");
    return Status::kInvalidArgument;
  }
  *out = 0;
  const char* which = nullptr;
  if (has_per_row_arrays(params, &which)) {
    set_error(error, std::string("open: ") + which +
                         ".values is set; a request's parameters are scalars (the batcher "
                         "builds the per-row arrays)");
    return Status::kInvalidArgument;
  }
  // The parameters as a sample call checks them (the widest: T = 0 is greedy
  // there); each step is checked again as its own kind.
  const float z = 0.f, y = 0.f;
  Step probe = Step::sample(0, StepRows{DType::kF32, 1, &z, &y});
  std::string message;
  const Status s = impl_->validate_step(probe, params, &message, /*check_memory=*/false);
  if (s != Status::kSuccess) {
    set_error(error, "open: " + message);
    return s;
  }
  std::lock_guard<std::mutex> lk(impl_->mu);
  if (impl_->stopping) {
    set_error(error, "open: the batcher has shut down");
    return Status::kShutdown;
  }
  const RequestId id = impl_->next_request++;
  impl_->requests.emplace(id, Impl::Request{params, params.offset.value, 0});
  ++impl_->idle_requests;
  *out = id;
  return Status::kSuccess;
}

Status Batcher::close(RequestId id, std::string* error) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  auto it = impl_->requests.find(id);
  if (it == impl_->requests.end()) {  // closed requests are erased
    set_error(error, "close: request " + std::to_string(id) + " is not open");
    return Status::kInvalidArgument;
  }
  if (it->second.queued == 0) --impl_->idle_requests;
  impl_->requests.erase(it);
  impl_->work_cv.notify_one();  // one idle request fewer: the dispatcher may stop waiting
  return Status::kSuccess;
}

Status Batcher::submit(Step step, Submission* out, std::string* error, SubmitMode mode) {
  Impl& m = *impl_;
  auto refuse = [&](Status s, const std::string& message) {
    set_error(error, message);
    std::lock_guard<std::mutex> lk(m.mu);
    ++m.stats.refused;
    return s;
  };
  if (out == nullptr) return refuse(Status::kInvalidArgument, "submit: out is null");
  *out = Submission{};
  if (mode != SubmitMode::kBlock && mode != SubmitMode::kTry && mode != SubmitMode::kTimeout)
    return refuse(Status::kInvalidArgument, "submit: mode is not a SubmitMode");
  Params params;
  bool open = false;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    auto it = m.requests.find(step.request);
    if (it != m.requests.end()) {
      open = true;
      params = it->second.params;
      params.offset = it->second.next_offset;  // the offset this step would take
    }
  }
  if (!open)
    return refuse(Status::kInvalidArgument,
                  "submit: request " + std::to_string(step.request) + " is not open");
  std::string message;
  const Status v = m.validate_step(step, params, &message);
  if (v != Status::kSuccess) return refuse(v, message);

  auto p = std::make_unique<Impl::Pending>();
  p->step = std::move(step);
  std::unique_lock<std::mutex> lk(m.mu);
  auto has_room = [&] { return m.stopping || m.queue.size() < size_t(m.opt.queue_capacity); };
  if (!has_room()) {
    if (mode == SubmitMode::kTry) {
      lk.unlock();
      return refuse(Status::kQueueFull, "submit: the queue is full");
    }
    if (mode == SubmitMode::kBlock) {
      m.space_cv.wait(lk, has_room);
    } else if (!m.space_cv.wait_for(lk, m.opt.submit_timeout, has_room)) {
      lk.unlock();
      return refuse(Status::kQueueFull, "submit: the queue stayed full for submit_timeout");
    }
  }
  if (m.stopping) {
    lk.unlock();
    return refuse(Status::kShutdown, "submit: the batcher has shut down");
  }
  auto it = m.requests.find(p->step.request);
  if (it == m.requests.end()) {  // closed while this thread waited for room
    lk.unlock();
    return refuse(Status::kInvalidArgument,
                  "submit: request " + std::to_string(p->step.request) + " is not open");
  }
  p->params = it->second.params;
  p->params.offset = it->second.next_offset;  // re-read: another step may have taken it
  if (p->step.kind == StepKind::kSample) ++it->second.next_offset;
  if (it->second.queued++ == 0) --m.idle_requests;
  p->key = BatchKey::of(p->step, p->params);
  p->ticket = m.next_ticket++;
  p->accepted = Clock::now();
  out->ticket = p->ticket;
  if (!p->step.callback) out->result = p->promise.get_future();
  const uint64_t ticket = p->ticket;
  m.queued.emplace(ticket, m.queue.insert(m.queue.end(), std::move(p)));
  ++m.stats.submitted;
  ++m.stats.pending;
  // The dispatch thread waits for the first step, then for max_rows of them
  // or for every open request to have a step queued.
  const bool wake =
      m.queue.size() == 1 || m.queue.size() >= size_t(m.opt.max_rows) || m.idle_requests == 0;
  lk.unlock();
  if (wake) m.work_cv.notify_one();
  return Status::kSuccess;
}

bool Batcher::cancel(uint64_t ticket) {
  std::unique_ptr<Impl::Pending> p;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    auto it = impl_->queued.find(ticket);
    if (it == impl_->queued.end()) return false;
    p = std::move(*it->second);
    impl_->leave_queue(*p);
    impl_->queue.erase(it->second);
    impl_->queued.erase(it);
    ++impl_->stats.cancelled;
    --impl_->stats.pending;
  }
  impl_->space_cv.notify_all();
  StepResult r;
  r.status = Status::kCancelled;
  r.message = "the step was cancelled before it ran";
  r.offset = p->params.offset.value;
  Impl::answer(*p, std::move(r));
  return true;
}

void Batcher::shutdown(ShutdownMode mode) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping = true;
    if (mode == ShutdownMode::kFail) impl_->stop_mode = ShutdownMode::kFail;
  }
  impl_->work_cv.notify_all();
  impl_->space_cv.notify_all();
  std::lock_guard<std::mutex> j(impl_->join_mu);
  if (impl_->dispatcher.joinable()) impl_->dispatcher.join();
  if (impl_->completer.joinable()) impl_->completer.join();
}

BatcherStats Batcher::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->stats;
}

}  // namespace linalign
