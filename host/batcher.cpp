// linalign::Batcher (include/linalign/batcher.hpp): requests, a bounded
// queue, and one dispatch thread that turns queued steps into Context calls.
//
// The dispatch loop, in phases:
//   1. wait for work: a step, or shutdown;
//   2. wait for company: until max_rows steps are queued or the oldest has
//      waited max_wait_us (or shutdown);
//   3. take a batch: from the oldest step, every queued step with the same
//      BatchKey, in acceptance order, up to max_rows; steps whose deadline has
//      passed are taken out and answered kDeadlineExceeded instead;
//   4. run it: one Context call on the pointer-array layout with per-row
//      parameter arrays (the rows stay where the caller put them);
//   5. answer each step (future or callback), outside the lock.
// A step leaves the queue exactly once — taken into a batch, cancelled,
// expired or failed at shutdown — under the lock, and is answered by whoever
// took it out: no step is answered twice or lost.
#include "linalign/batcher.hpp"

#include <algorithm>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

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

const char* name_of(StepKind k) {
  switch (k) {
    case StepKind::kSample:
      return "sample";
    case StepKind::kAlign:
      return "align";
    case StepKind::kScore:
      return "score";
  }
  return "?";
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
    bool open = true;
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

  Impl(Context& c, const BatcherOptions& o) : ctx(c), opt(o) {}

  Context& ctx;
  const BatcherOptions opt;

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

  std::mutex join_mu;
  std::thread dispatcher;

  // ---- submission (under no lock: validation reads only the step)
  Status validate_step(const Step& s, const Params& p, std::string* message) const;
  // ---- the dispatch loop
  void run();
  bool wait_for_batch(std::unique_lock<std::mutex>& lk);
  void take_batch(std::vector<std::unique_ptr<Pending>>* batch,
                  std::vector<std::unique_ptr<Pending>>* expired);
  void execute(std::vector<std::unique_ptr<Pending>>& batch, std::vector<StepResult>* results);
  // ---- answers (under no lock)
  static void answer(Pending& p, StepResult r);
  void answer_all(std::vector<std::unique_ptr<Pending>>& steps, Status s, const char* why);
};

// ------------------------------------------------------------ validation ---

// The step as a one-row direct call, checked by the library's own call-level
// validation (host/validate.cpp): the same status and message a direct call
// on these rows would give.
Status Batcher::Impl::validate_step(const Step& s, const Params& p, std::string* message) const {
  if (!valid_kind(s.kind)) {
    *message = "submit: step.kind is not a StepKind";
    return Status::kInvalidArgument;
  }
  host::Call call;
  call.op = op_of(s.kind);
  call.name = name_of(s.kind);
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
  const bool host_arrays = ctx.backend() == Backend::kCpu;
  return host::validate_call(&call, host_arrays, message);
}

// ---------------------------------------------------------- dispatch loop ---

void Batcher::Impl::run() {
  for (;;) {
    std::vector<std::unique_ptr<Pending>> batch, expired;
    bool fail_rest = false;
    {
      std::unique_lock<std::mutex> lk(mu);
      if (!wait_for_batch(lk)) return;  // stopped with nothing left
      if (stopping && stop_mode == ShutdownMode::kFail) {
        for (auto& p : queue) batch.push_back(std::move(p));
        queue.clear();
        queued.clear();
        fail_rest = true;
      } else {
        take_batch(&batch, &expired);
      }
    }
    space_cv.notify_all();
    answer_all(expired, Status::kDeadlineExceeded, "the step's deadline passed before it ran");
    if (fail_rest) {
      answer_all(batch, Status::kShutdown, "the batcher shut down before the step ran");
      continue;
    }
    if (batch.empty()) continue;
    std::vector<StepResult> results;
    execute(batch, &results);
    {
      std::lock_guard<std::mutex> lk(mu);
      ++stats.batches;
      stats.batched_rows += batch.size();
      for (const StepResult& r : results) {
        if (r.status == Status::kSuccess) {
          ++stats.completed;
        } else {
          ++stats.failed;
        }
      }
      stats.pending -= batch.size();
    }
    for (size_t i = 0; i < batch.size(); ++i) answer(*batch[i], std::move(results[i]));
  }
}

// Phases 1 and 2. False when the batcher has stopped and nothing is queued.
bool Batcher::Impl::wait_for_batch(std::unique_lock<std::mutex>& lk) {
  work_cv.wait(lk, [&] { return !queue.empty() || stopping; });
  if (queue.empty()) return false;
  const Clock::time_point until =
      queue.front()->accepted + std::chrono::microseconds(opt.max_wait_us);
  work_cv.wait_until(
      lk, until, [&] { return stopping || queue.empty() || queue.size() >= size_t(opt.max_rows); });
  return !queue.empty() || !stopping;
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
    (late ? expired : batch)->push_back(std::move(*it));
    it = queue.erase(it);
  }
  stats.deadline_exceeded += expired->size();
  stats.pending -= expired->size();
}

// Phase 4: one Context call for the batch; results[i] answers batch[i].
void Batcher::Impl::execute(std::vector<std::unique_ptr<Pending>>& batch,
                            std::vector<StepResult>* results) {
  const size_t B = batch.size();
  const Pending& head = *batch.front();
  std::vector<const void*> base(B), principle(B);
  std::vector<float> temperature(B), ratio(B), epsilon(B), eta_max(B), top_p(B), min_p(B);
  std::vector<int32_t> top_k(B);
  std::vector<uint64_t> seed(B), offset(B);
  for (size_t r = 0; r < B; ++r) {
    const Pending& p = *batch[r];
    base[r] = p.step.rows.base;
    principle[r] = p.step.rows.principle;
    temperature[r] = p.params.temperature.value;
    ratio[r] = p.params.ratio.value;
    epsilon[r] = p.params.epsilon.value;
    eta_max[r] = p.params.eta_max.value;
    top_p[r] = p.params.top_p.value;
    top_k[r] = p.params.top_k.value;
    min_p[r] = p.params.min_p.value;
    seed[r] = p.params.seed.value;
    offset[r] = p.params.offset.value;
  }
  Params bp = head.params;  // the call-level fields (equal across the batch: BatchKey)
  bp.temperature = PerRow<float>::array(temperature.data());
  bp.ratio = PerRow<float>::array(ratio.data());
  bp.epsilon = PerRow<float>::array(epsilon.data());
  bp.eta_max = PerRow<float>::array(eta_max.data());
  bp.top_p = PerRow<float>::array(top_p.data());
  bp.top_k = PerRow<int32_t>::array(top_k.data());
  bp.min_p = PerRow<float>::array(min_p.data());
  bp.seed = PerRow<uint64_t>::array(seed.data());  // per-row seeds: sub-stream 0 (SPEC §4)
  bp.offset = PerRow<uint64_t>::array(offset.data());
  const StepRows& rows = head.step.rows;
  const LogitsView v =
      LogitsView::pointers(rows.dtype, int64_t(B), rows.vocab, base.data(), principle.data());

  std::vector<RowDiagnostics> diags(B);
  std::vector<int32_t> tokens(B, -1), targets(B);
  std::vector<float> a(B), sb(B), sp(B), aligned;
  Status s = Status::kSuccess;
  switch (head.step.kind) {
    case StepKind::kSample:
      s = ctx.sample(v, bp, tokens.data(), a.data(), diags.data());
      break;
    case StepKind::kAlign:
      aligned.resize(B * size_t(rows.vocab));
      s = ctx.align(v, bp, aligned.data(), rows.vocab, diags.data());
      break;
    case StepKind::kScore: {
      for (size_t r = 0; r < B; ++r) targets[r] = batch[r]->step.target;
      ScoreOutputs so;
      so.aligned = a.data();
      so.base = sb.data();
      so.principle = sp.data();
      s = ctx.score(v, bp, targets.data(), so, diags.data());
      break;
    }
  }
  const std::string message = s == Status::kSuccess ? std::string() : ctx.last_error();
  results->assign(B, StepResult{});
  for (size_t r = 0; r < B; ++r) {
    StepResult& out = (*results)[r];
    out.status = s;
    out.message = message;
    out.ticket = batch[r]->ticket;
    out.offset = offset[r];
    if (s != Status::kSuccess) continue;
    out.diagnostics = diags[r];
    out.token = tokens[r];
    out.logprob = a[r];
    out.score_base = sb[r];
    out.score_principle = sp[r];
    if (head.step.kind == StepKind::kAlign)
      std::copy_n(aligned.data() + r * size_t(rows.vocab), size_t(rows.vocab),
                  batch[r]->step.aligned);
  }
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
  if (o.max_rows < 1 || o.max_wait_us < 0 || o.queue_capacity < 1 || o.submit_timeout.count() < 0) {
    set_error(error,
              "Batcher::create: options out of range (max_rows >= 1, max_wait_us >= 0, "
              "queue_capacity >= 1, submit_timeout >= 0)");
    return Status::kInvalidArgument;
  }
  if (ctx.backend() != Backend::kCpu) {
    set_error(error, "Batcher::create: the CUDA backend is not supported yet (CPU backend only)");
    return Status::kNotSupported;
  }
  std::unique_ptr<Impl> impl(new Impl(ctx, o));
  Impl* raw = impl.get();
  out->reset(new Batcher(std::move(impl)));
  raw->dispatcher = std::thread([raw] { raw->run(); });
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
  const Status s = impl_->validate_step(probe, params, &message);
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
  impl_->requests.emplace(id, Impl::Request{params, params.offset.value, true});
  *out = id;
  return Status::kSuccess;
}

Status Batcher::close(RequestId id, std::string* error) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  auto it = impl_->requests.find(id);
  if (it == impl_->requests.end() || !it->second.open) {
    set_error(error, "close: request " + std::to_string(id) + " is not open");
    return Status::kInvalidArgument;
  }
  impl_->requests.erase(it);
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
  p->key = BatchKey::of(p->step, p->params);
  p->ticket = m.next_ticket++;
  p->accepted = Clock::now();
  out->ticket = p->ticket;
  if (!p->step.callback) out->result = p->promise.get_future();
  const uint64_t ticket = p->ticket;
  m.queued.emplace(ticket, m.queue.insert(m.queue.end(), std::move(p)));
  ++m.stats.submitted;
  ++m.stats.pending;
  // The dispatch thread waits for the first step, then for max_rows of them.
  const bool wake = m.queue.size() == 1 || m.queue.size() >= size_t(m.opt.max_rows);
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
}

BatcherStats Batcher::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->stats;
}

}  // namespace linalign
