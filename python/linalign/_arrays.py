"""The input's library: outputs are allocated, and per-row parameters
converted, in the library and on the device of the logits (torch in, torch
out; NumPy in, NumPy out). docs/PYTHON.md."""
import sys

import numpy as np

_TYPES = {"float32", "int32", "int64", "bfloat16"}


def _torch():
    return sys.modules.get("torch")


def is_torch(x):
    t = _torch()
    return t is not None and isinstance(x, t.Tensor)


def check_array(x, name):
    """TypeError naming `name` unless x is an array (DLPack producer)."""
    if not hasattr(x, "__dlpack__") or not hasattr(x, "shape"):
        raise TypeError(f"{name}: expected a torch tensor or a NumPy array, got {type(x).__name__}")


_LOGIT_TYPES = ("float32", "float16", "bfloat16")


def check_logits(x, name):
    """TypeError naming `name` unless x is an array of a logits dtype — checked
    before DLPack sees it, whose own error (BufferError for bool) names nothing."""
    check_array(x, name)
    if not hasattr(x, "dtype"):
        return  # a bare DLPack producer: the extension checks the capsule's dtype
    dt = str(x.dtype).replace("torch.", "")
    if dt not in _LOGIT_TYPES:
        raise TypeError(f"{name}: dtype must be float32, float16 or bfloat16, got {dt}")


# The range of each integer type the library takes.
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1),
              "uint64": (0, 2**64 - 1)}


def _scalar(value):
    """A NumPy scalar or a 0-D array as the Python number it holds."""
    if isinstance(value, np.generic) or (hasattr(value, "shape") and len(value.shape) == 0
                                         and hasattr(value, "item")):
        return value.item()
    return value


def _checked_kind(kind, dtype, name):
    """TypeError unless values of NumPy kind `kind` convert to `dtype` without
    losing meaning: no bools, strings or objects; no floats where integers go."""
    if kind == "b" or kind not in "iuf":
        raise TypeError(f"{name}: expected numbers, got an array of {_KIND_NAMES.get(kind, kind)}")
    if dtype != "float32" and kind == "f":
        raise TypeError(f"{name}: expected integers, got floating-point values")


_KIND_NAMES = {"b": "bool", "U": "str", "S": "bytes", "O": "objects", "c": "complex",
               "M": "datetime", "m": "timedelta", "V": "void"}


def _check_range(lo_hi, dtype, name):
    lo, hi = lo_hi
    want_lo, want_hi = _INT_RANGE[dtype]
    if lo < want_lo or hi > want_hi:
        raise ValueError(f"{name}: values must be in [{want_lo}, {want_hi}] "
                         f"(got a value of {lo if lo < want_lo else hi})")


def exportable(x):
    """x as DLPack can take it: torch tensors detached; read-only NumPy
    arrays (which DLPack cannot mark read-only) copied."""
    if is_torch(x):
        return x.detach() if x.requires_grad else x
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        return np.array(x)
    return x


def empty(like, shape, dtype):
    assert dtype in _TYPES
    if is_torch(like):
        t = _torch()
        return t.empty(shape, dtype=getattr(t, dtype), device=like.device)
    if dtype == "bfloat16":
        raise TypeError("out_dtype: bfloat16 needs torch tensors (NumPy has no bfloat16)")
    return np.empty(shape, dtype=dtype)


def _as_library_array(like, value, dtype, name):
    """`value` (a sequence, a NumPy array or a torch tensor) as a contiguous
    array of `dtype` in like's library, on its device, with no value changed
    by the conversion: TypeError for bools, strings, objects and (for integer
    types) floats; ValueError for integers outside `dtype`'s range. A torch
    tensor of another integer type than `dtype` is range-checked, which for a
    CUDA tensor waits for it (pass the library's type to avoid that).
    torch has no uint64: an int64 tensor gives a uint64 parameter its 64 bits."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected a number or an array, got {type(value).__name__}")
    if is_torch(like):
        t = _torch()
        try:
            x = value if isinstance(value, t.Tensor) else t.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{name}: expected numbers ({e})") from None
        if x.dtype == t.bool or x.is_complex():
            raise TypeError(f"{name}: expected numbers, got {str(x.dtype)[6:]}")
        want = "int64" if dtype == "uint64" else dtype
        if dtype != "float32":
            if x.is_floating_point():
                raise TypeError(f"{name}: expected integers, got {str(x.dtype)[6:]}")
            if x.dtype != getattr(t, want) and x.numel() > 0 and dtype != "uint64":
                _check_range((int(x.min()), int(x.max())), dtype, name)
        return x.to(device=like.device, dtype=getattr(t, want)).contiguous()
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: expected numbers ({e})") from None
    _checked_kind(a.dtype.kind, dtype, name)
    if dtype != "float32" and a.size > 0:
        _check_range((int(a.min()), int(a.max())), dtype, name)
    return np.ascontiguousarray(a, dtype=dtype)


def param(like, value, dtype, name):
    """A per-row parameter: numbers (Python or NumPy scalars, 0-D arrays)
    stay numbers; anything else becomes a 1-D array of `dtype` in like's
    library, on its device (_as_library_array's checks)."""
    value = _scalar(value)
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a number or an array, got bool")
    if isinstance(value, (int, float)):
        return value
    return _as_library_array(like, value, dtype, name)


def index_array(like, value, dtype, name):
    """targets / seq_offsets: a 1-D integer array of `dtype`, in like's library."""
    return _as_library_array(like, value, dtype, name)


def option(value, name):
    """A per-call option (greedy, min_tokens_to_keep, ignore_index, ...): a
    NumPy scalar becomes the Python value it holds; the binding checks the type."""
    return _scalar(value)


def stream(like):
    """torch's current CUDA stream on like's device (an int), else None."""
    if is_torch(like) and like.is_cuda:
        return _torch().cuda.current_stream(like.device).cuda_stream
    return None


DIAGNOSTICS_DTYPE = np.dtype(
    [
        ("eta", np.float32),
        ("mu", np.float32),
        ("sigma", np.float32),
        ("kl_base", np.float32),
        ("kl_principle", np.float32),
        ("entropy", np.float32),
        ("support", np.int32),
        ("status", np.uint32),
    ]
)
_FIELDS = DIAGNOSTICS_DTYPE.names


def diagnostics_buffer(like, rows):
    """Where a call writes its RowDiagnostics: [rows, 8] int32 (32 bytes a row)."""
    return empty(like, (rows, 8), "int32")


def diagnostics_view(buf):
    """The diagnostics a call wrote into diagnostics_buffer(): a structured
    NumPy array, or a dict of torch tensors."""
    if is_torch(buf):
        t = _torch()
        f = buf.view(t.float32)
        d = {name: f[:, i] for i, name in enumerate(_FIELDS[:6])}
        d["support"] = buf[:, 6]
        d["status"] = buf[:, 7]
        return d
    return buf.view(DIAGNOSTICS_DTYPE).reshape(buf.shape[0])
