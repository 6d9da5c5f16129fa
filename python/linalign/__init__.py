"""linalign: Linear Alignment (Gao et al., ICML 2024) over the full vocabulary.

Every SPEC output on torch tensors (CPU or CUDA, zero-copy, torch's current
stream) and NumPy arrays, results in the input's library; the host API's
requests and offline scoring jobs; a Hugging Face style logits processor.
docs/PYTHON.md is the reference; SPEC.md the mathematics.
"""
import collections
import enum

from . import _arrays
from ._arrays import DIAGNOSTICS_DTYPE
from ._core import Context, Error, StepResult, cuda_compiled, cuda_device_count

__version__ = "0.1.0"


class RowStatus(enum.IntFlag):
    """Row-level error flags (SPEC §5), in a row's diagnostics["status"]."""

    OK = 0
    NAN = 1  # a NaN logit in the base or principle row
    POS_INF = 2  # a +inf logit
    EMPTY_SUPPORT = 4  # no token finite in both rows
    BAD_PARAMETER = 8  # CUDA: a per-row parameter array held an out-of-range value
    OVERFLOW = 16  # finite logits, but z/T, eta*delta or a normaliser overflows fp32


Scores = collections.namedtuple(
    "Scores", "aligned base principle seq_aligned seq_base seq_principle diagnostics"
)

_contexts = {}


def default_context(like=None):
    """The context for arrays like `like`: one CPU context, one CUDA context
    per device."""
    key = ("cpu", -1)
    if like is not None and _arrays.is_torch(like) and like.is_cuda:
        key = ("cuda", like.device.index if like.device.index is not None else -1)
    if key not in _contexts:
        _contexts[key] = Context(backend=key[0], device=key[1])
    return _contexts[key]


# Parameter name -> the library's per-row type (SPEC §2–§4).
_PER_ROW = {
    "temperature": "float32",
    "ratio": "float32",
    "epsilon": "float32",
    "eta_max": "float32",
    "top_p": "float32",
    "top_k": "int32",
    "min_p": "float32",
    "seed": "uint64",
    "offset": "uint64",
}


def _prepare(base, principle, params, context):
    _arrays.check_logits(base, "base")
    _arrays.check_logits(principle, "principle")
    base, principle = _arrays.exportable(base), _arrays.exportable(principle)
    kw = {}
    for k, v in params.items():
        if v is None:
            continue
        kw[k] = _arrays.param(base, v, _PER_ROW[k], k) if k in _PER_ROW else _arrays.option(v, k)
    ctx = context if context is not None else default_context(base)
    return base, principle, kw, ctx, _arrays.stream(base)


def _rows(base):
    if len(base.shape) != 2:
        raise ValueError(f"base: expected 2 dimensions [B, V], got {len(base.shape)}")
    return base.shape[0]


def align(base, principle, *, temperature=1.0, rule="fixed", ratio=2.0, epsilon=0.1,
          eta_max=8.0, update="tilt", out_dtype="float32", diagnostics=False, context=None):
    """Aligned log-probs ℓ* [B, V] (SPEC §3); (ℓ*, diagnostics) when asked."""
    base, principle, kw, ctx, stream = _prepare(
        base, principle,
        dict(temperature=temperature, rule=rule, ratio=ratio, epsilon=epsilon, eta_max=eta_max,
             update=update), context)
    if out_dtype not in ("float32", "bfloat16"):
        raise ValueError(f'out_dtype: "{out_dtype}" is not one of "float32", "bfloat16"')
    B = _rows(base)
    out = _arrays.empty(base, tuple(base.shape), out_dtype)
    diag = _arrays.diagnostics_buffer(base, B) if diagnostics else None
    ctx.align(base, principle, out, diag, kw, stream)
    return (out, _arrays.diagnostics_view(diag)) if diagnostics else out


def sample(base, principle, *, temperature=1.0, rule="fixed", ratio=2.0, epsilon=0.1,
           eta_max=8.0, update="tilt", greedy=False, top_p=1.0, top_k=0, min_p=0.0,
           nucleus_source="principle", min_tokens_to_keep=1, seed=0, offset=0,
           diagnostics=False, context=None):
    """Next token per row and its ℓ* (SPEC §3–§4): (tokens int32 [B],
    token_logprob float32 [B]), and the diagnostics when asked."""
    base, principle, kw, ctx, stream = _prepare(
        base, principle,
        dict(temperature=temperature, rule=rule, ratio=ratio, epsilon=epsilon, eta_max=eta_max,
             update=update, greedy=greedy, top_p=top_p, top_k=top_k, min_p=min_p,
             nucleus_source=nucleus_source, min_tokens_to_keep=min_tokens_to_keep, seed=seed,
             offset=offset), context)
    B = _rows(base)
    tokens = _arrays.empty(base, (B,), "int32")
    logprob = _arrays.empty(base, (B,), "float32")
    diag = _arrays.diagnostics_buffer(base, B) if diagnostics else None
    ctx.sample(base, principle, tokens, logprob, diag, kw, stream)
    if diagnostics:
        return tokens, logprob, _arrays.diagnostics_view(diag)
    return tokens, logprob


def score(base, principle, targets, *, seq_offsets=None, ignore_index=-100, temperature=1.0,
          rule="fixed", ratio=2.0, epsilon=0.1, eta_max=8.0, update="tilt", diagnostics=False,
          context=None):
    """Scores of targets (SPEC §3): ℓ*_t, ℓ_t, ℓᵖ_t per row and, with
    seq_offsets ([S+1]), their per-sequence sums. Returns Scores."""
    base, principle, kw, ctx, stream = _prepare(
        base, principle,
        dict(temperature=temperature, rule=rule, ratio=ratio, epsilon=epsilon, eta_max=eta_max,
             update=update, ignore_index=ignore_index), context)
    B = _rows(base)
    targets = _arrays.index_array(base, targets, "int32", "targets")
    outs = [_arrays.empty(base, (B,), "float32") for _ in range(3)]
    if seq_offsets is not None:
        seq_offsets = _arrays.index_array(base, seq_offsets, "int64", "seq_offsets")
        S = max(int(seq_offsets.shape[0]) - 1, 0) if len(seq_offsets.shape) == 1 else 0
        outs += [_arrays.empty(base, (S,), "float32") for _ in range(3)]
    else:
        outs += [None, None, None]
    diag = _arrays.diagnostics_buffer(base, B) if diagnostics else None
    ctx.score(base, principle, targets, seq_offsets, tuple(outs), diag, kw, stream)
    return Scores(*outs, _arrays.diagnostics_view(diag) if diagnostics else None)


def shard_stats(base, principle, *, temperature=1.0, ratio=2.0, context=None):
    """Vocabulary-parallel use (SPEC §7): this shard's partial statistics,
    [B, 16] 32-bit records (64 bytes a row) to all-gather."""
    base, principle, kw, ctx, stream = _prepare(
        base, principle, dict(temperature=temperature, ratio=ratio), context)
    out = _arrays.empty(base, (_rows(base), 16), "int32")
    ctx.shard_stats(base, principle, out, kw, stream)
    return out


def align_shard(base, principle, shards, *, temperature=1.0, ratio=2.0, diagnostics=False,
                context=None):
    """ℓ* of this shard's columns from every shard's records ([G·B, 16],
    shard-major, the same order on every device) (SPEC §7)."""
    base, principle, kw, ctx, stream = _prepare(
        base, principle, dict(temperature=temperature, ratio=ratio), context)
    B = _rows(base)
    out = _arrays.empty(base, tuple(base.shape), "float32")
    diag = _arrays.diagnostics_buffer(base, B) if diagnostics else None
    ctx.align_shard(base, principle, _arrays.exportable(shards), out, diag, kw, stream)
    return (out, _arrays.diagnostics_view(diag)) if diagnostics else out


from .batcher import Batcher, Request, score_job  # noqa: E402
from .processor import LinearAlignmentLogitsProcessor  # noqa: E402

__all__ = [
    "Batcher", "Context", "DIAGNOSTICS_DTYPE", "Error", "LinearAlignmentLogitsProcessor",
    "Request", "RowStatus", "Scores", "StepResult", "align", "align_shard", "cuda_compiled",
    "cuda_device_count", "default_context", "sample", "score", "score_job", "shard_stats",
]
