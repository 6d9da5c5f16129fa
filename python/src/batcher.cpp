// linalign._core's host API (include/linalign/batcher.hpp,
// include/linalign/scoring_job.hpp): a Batcher whose steps answer
// concurrent.futures.Future objects, and scoring jobs over a Python source.
//
// The GIL: the library's threads call back into Python (a step's answer,
// a job's source and progress) holding the GIL only for that; every call
// that may wait for the library (submit when the queue is full, shutdown, a
// job) runs with the GIL released, so those callbacks can run meanwhile.
// Python objects a step holds (its rows, its future) are released under the
// GIL by whichever thread lets go of them last.
#include "linalign/batcher.hpp"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "dlpack_array.hpp"
#include "linalign/scoring_job.hpp"

namespace linalign_py {

namespace {

using linalign::Batcher;
using linalign::Context;
using linalign::Status;
using linalign::StepResult;

// What a step keeps alive until it is answered: its arrays and its future.
struct Held {
  Array base, principle, out;
  py::object future;
  ~Held() {
    if (base.empty() && principle.empty() && out.empty() && !future) return;
    py::gil_scoped_acquire gil;  // the batcher's threads drop steps without it
    release();
  }
  void release() {
    base = Array();
    principle = Array();
    out = Array();
    future = py::object();
  }
};

// A step's two rows, 1-D [V], held until it is answered.
linalign::StepRows step_rows(const PyContext& pc, Held& h, py::handle base, py::handle principle) {
  h.base = Array::from(base, "base");
  h.principle = Array::from(principle, "principle");
  const linalign::DType t = logits_pair(pc, h.base, h.principle, 1);
  return linalign::StepRows{t, h.base.dim(0), h.base.data(), h.principle.data()};
}

void answer(Held& h, const StepResult& r) {
  py::gil_scoped_acquire gil;
  try {
    py::object fut = std::move(h.future);
    if (fut && !fut.attr("done")().cast<bool>()) {
      if (r.status == Status::kSuccess) {
        fut.attr("set_result")(py::cast(r));
      } else {
        fut.attr("set_exception")(library_exception(r.status, r.message));
      }
    }
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("linalign: answering a step's future");
  }
  h.release();
}

class PyBatcher {
 public:
  PyBatcher(PyContext& ctx, int32_t max_rows, int64_t max_wait_us, int64_t queue_capacity,
            int32_t streams, double submit_timeout_s) {
    linalign::BatcherOptions o;
    o.max_rows = max_rows;
    o.max_wait_us = max_wait_us;
    o.queue_capacity = queue_capacity;
    o.streams = streams;
    o.submit_timeout = std::chrono::microseconds(int64_t(submit_timeout_s * 1e6));
    std::string err;
    {
      std::lock_guard<std::mutex> lock(ctx.mu);  // not while a direct call runs
      const Status s = Batcher::create(*ctx.ctx, o, &b_, &err);
      if (s != Status::kSuccess) throw LibraryError{s, err};
      ++ctx.batchers;
    }
    ctx_ = &ctx;
  }
  // Draining runs answers that need the GIL: let go of it meanwhile.
  ~PyBatcher() {
    py::gil_scoped_release nogil;
    b_.reset();
    --ctx_->batchers;  // keep_alive: the context outlives its batchers
  }

  uint64_t open(const py::dict& kw) {
    std::vector<Array> keep;
    const linalign::Params p = make_params(kw, &keep, 1, Array());
    if (!keep.empty()) invalid("open: a request's parameters are numbers, not arrays");
    linalign::RequestId id = 0;
    std::string err;
    const Status s = batcher().open(p, &id, &err);
    if (s != Status::kSuccess) throw LibraryError{s, err};
    return id;
  }
  void close(uint64_t id) {
    std::string err;
    const Status s = batcher().close(id, &err);
    if (s != Status::kSuccess) throw LibraryError{s, err};
  }

  // kind: "sample" | "align" | "score". Returns the ticket; the future gets
  // the StepResult (or the exception of its status).
  uint64_t submit(const std::string& kind, uint64_t request, py::handle base, py::handle principle,
                  py::handle out, int32_t target, py::object future, py::object timeout_s,
                  const std::string& mode) {
    auto held = std::make_shared<Held>();
    const linalign::StepRows rows = step_rows(*ctx_, *held, base, principle);
    linalign::Step step;
    if (kind == "sample") {
      step = linalign::Step::sample(request, rows);
    } else if (kind == "score") {
      step = linalign::Step::score(request, rows, target);
    } else if (kind == "align") {
      held->out = Array::from(out, "out");
      held->out.expect_type("out", kDLFloat, 32, "float32");
      held->out.expect("out", {rows.vocab});
      expect_reachable(*ctx_, held->out, "out");
      step = linalign::Step::align(request, rows, static_cast<float*>(held->out.data()));
    } else {
      invalid("kind: \"" + kind + "\" is not one of \"sample\", \"align\", \"score\"");
    }
    if (!timeout_s.is_none())
      step.deadline = std::chrono::steady_clock::now() +
                      std::chrono::microseconds(int64_t(timeout_s.cast<double>() * 1e6));
    linalign::SubmitMode m = linalign::SubmitMode::kBlock;
    if (mode == "try") {
      m = linalign::SubmitMode::kTry;
    } else if (mode == "timeout") {
      m = linalign::SubmitMode::kTimeout;
    } else if (mode != "block") {
      invalid("mode: \"" + mode + "\" is not one of \"block\", \"try\", \"timeout\"");
    }
    held->future = std::move(future);
    step.callback = [held](const StepResult& r) { answer(*held, r); };
    linalign::Submission sub;
    std::string err;
    Status s;
    {
      py::gil_scoped_release nogil;  // a full queue blocks; answers need the GIL
      s = batcher().submit(std::move(step), &sub, &err, m);
    }
    if (s != Status::kSuccess) throw LibraryError{s, err};
    return sub.ticket;
  }

  bool cancel(uint64_t ticket) {
    py::gil_scoped_release nogil;  // the answer runs here, and takes the GIL
    return batcher().cancel(ticket);
  }
  void shutdown(bool drain) {
    py::gil_scoped_release nogil;
    batcher().shutdown(drain ? linalign::ShutdownMode::kDrain : linalign::ShutdownMode::kFail);
  }
  py::dict stats() const {
    const linalign::BatcherStats s = b_->stats();
    py::dict d;
    d["submitted"] = s.submitted;
    d["completed"] = s.completed;
    d["cancelled"] = s.cancelled;
    d["deadline_exceeded"] = s.deadline_exceeded;
    d["failed"] = s.failed;
    d["pending"] = s.pending;
    d["refused"] = s.refused;
    d["batches"] = s.batches;
    d["batched_rows"] = s.batched_rows;
    return d;
  }
  Batcher& batcher() { return *b_; }
  const PyContext& context() const { return *ctx_; }

 private:
  std::unique_ptr<Batcher> b_;
  PyContext* ctx_ = nullptr;
};

// A ScoreSource over a Python callable: next_chunk() returns a list of
// (base [T, V], principle [T, V], targets [T] int32) or an empty list at the
// end. Its arrays are held until the next call.
class PySource final : public linalign::ScoreSource {
 public:
  PySource(const PyContext& pc, py::object next_chunk, int64_t total_rows)
      : pc_(pc), next_chunk_(std::move(next_chunk)), total_rows_(total_rows) {}
  ~PySource() override { held_.clear(); }  // destroyed where the GIL is held

  linalign::Status next(std::vector<linalign::ScoreSequence>* chunk, std::string* error) override {
    py::gil_scoped_acquire gil;
    chunk->clear();
    held_.clear();
    try {
      const py::list items = next_chunk_();
      for (py::handle item : items) {
        const py::tuple t = py::reinterpret_borrow<py::object>(item).cast<py::tuple>();
        if (t.size() != 3) invalid("source: each sequence is (base, principle, targets)");
        held_.emplace_back();
        auto& a = held_.back();
        a[0] = Array::from(t[0], "base");
        a[1] = Array::from(t[1], "principle");
        a[2] = Array::from(t[2], "targets");
        linalign::ScoreSequence s;
        s.dtype = logits_pair(pc_, a[0], a[1], 2);
        s.rows = a[0].dim(0);
        s.vocab = a[0].dim(1);
        if (s.rows > 1 && (a[0].stride(0) != s.vocab || a[1].stride(0) != s.vocab))
          invalid("source: base and principle must be contiguous [T, V] arrays");
        a[2].expect_type("targets", kDLInt, 32, "int32");
        a[2].expect("targets", {s.rows});
        if (a[2].where() != Where::kHost) invalid("targets: must be in host memory");
        s.base = a[0].data();
        s.principle = a[1].data();
        s.targets = static_cast<const int32_t*>(a[2].data());
        chunk->push_back(s);
      }
    } catch (py::error_already_set& e) {
      failure_ = std::move(e);
      *error = "source: the Python source raised an exception";
      return Status::kInvalidArgument;
    } catch (const LibraryError& e) {
      *error = e.message;
      return e.status;
    } catch (const TypeMismatch& e) {
      *error = e.message;
      return Status::kInvalidArgument;
    } catch (const std::exception& e) {  // e.g. pybind11's cast_error: nothing crosses the job
      *error = std::string("source: ") + e.what();
      return Status::kInvalidArgument;
    }
    return Status::kSuccess;
  }
  int64_t total_rows() const override { return total_rows_; }
  // The source's own exception, if it raised one: rethrown as it was.
  void rethrow() {
    if (failure_) {
      py::error_already_set e = std::move(*failure_);
      failure_.reset();
      throw e;
    }
  }

 private:
  const PyContext& pc_;
  py::object next_chunk_;
  int64_t total_rows_;
  std::vector<std::array<Array, 3>> held_;
  std::optional<py::error_already_set> failure_;
};

py::dict score_job(PyBatcher& b, py::object next_chunk, const std::string& output,
                   const std::string& checkpoint, const std::string& fingerprint,
                   uint64_t checkpoint_every, py::object progress, double progress_interval_s,
                   int64_t total_rows, const py::dict& kw) {
  linalign::JobOptions o;
  std::vector<Array> keep;
  o.params = make_params(kw, &keep, 1, Array());
  if (!keep.empty()) invalid("score_job: the parameters are numbers, not arrays");
  o.output_path = output;
  o.checkpoint_path = checkpoint;
  o.fingerprint = fingerprint;
  o.checkpoint_every = checkpoint_every;
  o.progress_interval_s = progress_interval_s;
  if (!progress.is_none()) {
    o.progress = [progress](const linalign::JobProgress& p) {
      py::gil_scoped_acquire gil;
      try {
        py::dict d;
        d["sequences_done"] = p.sequences_done;
        d["rows_done"] = p.rows_done;
        d["total_rows"] = p.total_rows;
        d["rows_per_s"] = p.rows_per_s;
        d["eta_s"] = p.eta_s;
        d["finished"] = p.finished;
        progress(d);
      } catch (py::error_already_set& e) {
        e.discard_as_unraisable("linalign: a score job's progress callback");
      }
    };
  }
  PySource source(b.context(), std::move(next_chunk), total_rows);
  linalign::JobReport report;
  std::string err;
  Status s;
  {
    py::gil_scoped_release nogil;
    s = linalign::run_score_job(b.batcher(), source, o, &report, &err);
  }
  o.progress = nullptr;  // its Python callable, released here with the GIL held
  source.rethrow();
  if (s != Status::kSuccess) throw LibraryError{s, err};
  py::dict d;
  d["sequences"] = report.sequences;
  d["resumed_from"] = report.resumed_from;
  d["rows"] = report.rows;
  d["seconds"] = report.seconds;
  return d;
}

}  // namespace

void bind_batcher(py::module_& m) {
  py::class_<StepResult>(m, "StepResult")
      .def_readonly("ticket", &StepResult::ticket)
      .def_readonly("offset", &StepResult::offset)
      .def_readonly("token", &StepResult::token)
      .def_readonly("logprob", &StepResult::logprob)
      .def_readonly("score_base", &StepResult::score_base)
      .def_readonly("score_principle", &StepResult::score_principle)
      .def_readonly("batch", &StepResult::batch)
      .def_readonly("batch_rows", &StepResult::batch_rows)
      .def_readonly("slot", &StepResult::slot)
      .def_property_readonly("diagnostics",
                             [](const StepResult& r) { return diagnostics_dict(r.diagnostics); })
      .def("__repr__", [](const StepResult& r) {
        return "StepResult(token=" + std::to_string(r.token) +
               ", logprob=" + std::to_string(r.logprob) + ", offset=" + std::to_string(r.offset) +
               ", batch=" + std::to_string(r.batch) + ")";
      });

  py::class_<PyBatcher>(m, "Batcher")
      .def(py::init<PyContext&, int32_t, int64_t, int64_t, int32_t, double>(), py::arg("context"),
           py::arg("max_rows"), py::arg("max_wait_us"), py::arg("queue_capacity"),
           py::arg("streams"), py::arg("submit_timeout_s"), py::keep_alive<1, 2>())
      .def("open", &PyBatcher::open)
      .def("close", &PyBatcher::close)
      .def("submit", &PyBatcher::submit)
      .def("cancel", &PyBatcher::cancel)
      .def("shutdown", &PyBatcher::shutdown)
      .def("stats", &PyBatcher::stats);

  m.def("score_job", &score_job);
}

}  // namespace linalign_py
