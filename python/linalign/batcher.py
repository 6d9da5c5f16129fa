"""The host API (include/linalign/batcher.hpp, scoring_job.hpp) in Python:
requests whose steps are batched with other threads' steps, answered on
concurrent.futures.Future objects (asyncio: asyncio.wrap_future), and
resumable offline scoring jobs. The library works with the GIL released."""
import atexit
import concurrent.futures
import weakref

from . import _arrays, _core

_live = weakref.WeakSet()


@atexit.register
def _shutdown_all():
    # Answers take the GIL: stop the library's threads before the interpreter goes.
    for b in list(_live):
        b.shutdown(drain=False)


class Batcher:
    """Collects steps from many threads into batches of up to max_rows rows,
    after at most max_wait_us; one Context call per batch (SPEC §4: every
    request's tokens are those of a direct one-row call at its step counter).
    It runs on `context` (default: a CPU context of its own), which then takes
    no direct calls until the batcher is gone.
    """

    def __init__(self, context=None, *, max_rows=64, max_wait_us=200, queue_capacity=4096,
                 streams=2, submit_timeout=0.001):
        self.context = context if context is not None else _core.Context("cpu")
        self._b = _core.Batcher(self.context, max_rows, max_wait_us, queue_capacity, streams,
                                submit_timeout)
        _live.add(self)

    def open(self, **params):
        """A decoding request with its own parameters (numbers: temperature,
        rule, ratio, epsilon, eta_max, update, greedy, top_p, top_k, min_p,
        nucleus_source, min_tokens_to_keep, seed, offset, ignore_index)."""
        return Request(self, params)

    def shutdown(self, drain=True):
        """Stops: runs every pending step (drain) or fails them with
        linalign.Error(status "shutdown")."""
        self._b.shutdown(drain)

    def stats(self):
        return self._b.stats()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


class Request:
    """One decoding request: its Philox offset is its own step counter."""

    def __init__(self, batcher, params):
        self._batcher = batcher
        self._id = batcher._b.open(
            {k: _arrays.option(v, k) for k, v in params.items() if v is not None})

    def _submit(self, kind, base, principle, out, target, timeout, mode):
        _arrays.check_logits(base, "base")
        _arrays.check_logits(principle, "principle")
        target = _arrays.option(target, "target")
        if isinstance(target, bool) or not isinstance(target, int):
            raise TypeError(f"target: expected an integer, got {type(target).__name__}")
        if not -(2**31) <= target < 2**31:
            raise ValueError(f"target: {target} is outside the int32 range")
        fut = concurrent.futures.Future()
        b = self._batcher._b
        ticket = b.submit(kind, self._id, _arrays.exportable(base),
                          _arrays.exportable(principle), out, target, fut, timeout, mode)

        def on_done(f):
            if f.cancelled():
                b.cancel(ticket)

        fut.add_done_callback(on_done)
        return fut

    def sample(self, base, principle, *, timeout=None, mode="block"):
        """Future of a StepResult with .token and .logprob. base, principle:
        1-D rows [V]. timeout: seconds before the step's deadline; mode:
        "block", "try" or "timeout" when the queue is full."""
        return self._submit("sample", base, principle, None, 0, timeout, mode)

    def align(self, base, principle, out, *, timeout=None, mode="block"):
        """Writes ℓ* of the row into out (float32 [V]); future of the StepResult."""
        return self._submit("align", base, principle, out, 0, timeout, mode)

    def score(self, base, principle, target, *, timeout=None, mode="block"):
        """Future of a StepResult with .logprob = ℓ*_target, .score_base, .score_principle."""
        return self._submit("score", base, principle, None, target, timeout, mode)

    def close(self):
        self._batcher._b.close(self._id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def score_job(batcher, sequences, output, *, checkpoint="", fingerprint="", checkpoint_every=256,
              chunk=64, progress=None, progress_interval=0.5, total_rows=-1, **params):
    """Scores every sequence — (base [T, V], principle [T, V], targets [T])
    from the iterable `sequences` — through the batcher; one line per sequence
    in `output` (include/linalign/scoring_job.hpp gives the format), with a
    checkpoint: run again after any interruption, with the same sequences and
    parameters, it resumes and ends byte-identical to an uninterrupted run.
    progress(dict) gets sequences_done, rows_done, total_rows, rows_per_s,
    eta_s, finished. Returns the report (sequences, resumed_from, rows, seconds).
    """
    it = iter(sequences)

    def next_chunk():
        out = []
        for base, principle, targets in it:
            out.append((_arrays.exportable(base), _arrays.exportable(principle),
                        _arrays.index_array(None, targets, "int32", "targets")))
            if len(out) == chunk:
                break
        return out

    return _core.score_job(batcher._b, next_chunk, str(output), str(checkpoint), fingerprint,
                           checkpoint_every, progress, progress_interval, total_rows, params)
