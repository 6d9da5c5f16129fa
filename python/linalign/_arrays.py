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


def param(like, value, dtype, name):
    """A per-row parameter: numbers stay numbers; anything else becomes a
    1-D array of `dtype` in like's library, on its device."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a number or an array, got bool")
    if isinstance(value, (int, float)):
        return value
    if is_torch(like):
        t = _torch()
        if dtype == "uint64":
            dtype = "int64"  # torch has no uint64: the same 64 bits
        return t.as_tensor(value, device=like.device).to(getattr(t, dtype)).contiguous()
    return np.ascontiguousarray(np.asarray(value), dtype=dtype)


def index_array(like, value, dtype, name):
    """targets / seq_offsets: a 1-D integer array of `dtype`, in like's library."""
    if is_torch(like):
        t = _torch()
        return t.as_tensor(value, device=like.device).to(getattr(t, dtype)).contiguous()
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


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
