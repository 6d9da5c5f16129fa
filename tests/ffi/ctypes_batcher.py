#!/usr/bin/env python3
"""FFI smoke test of liblinalign_c.so through Python's ctypes, the way a Rust,
Go or Python engine would bind it: only the C header's types, mirrored here
(and their sizes checked against the library's own *_init functions), a
handle, a batcher, a request, an align step and two sample steps, and an error
read back from linalign_last_error(NULL).

usage: ctypes_batcher.py path/to/liblinalign_c.so
"""
import ctypes as C
import math
import sys

lib = C.CDLL(sys.argv[1])


class Diagnostics(C.Structure):
    _fields_ = [("eta", C.c_float), ("mu", C.c_float), ("sigma", C.c_float),
                ("kl_base", C.c_float), ("kl_principle", C.c_float), ("entropy", C.c_float),
                ("support", C.c_int32), ("status", C.c_uint32)]


Callback = C.CFUNCTYPE(None, C.c_void_p, C.c_void_p)


class Step(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("request", C.c_uint64), ("kind", C.c_int32),
                ("dtype", C.c_int32), ("vocab", C.c_int64), ("base", C.c_void_p),
                ("principle", C.c_void_p), ("aligned", C.POINTER(C.c_float)),
                ("target", C.c_int32), ("reserved", C.c_int32), ("timeout_us", C.c_int64),
                ("callback", Callback), ("user_data", C.c_void_p)]


class StepResult(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("status", C.c_int32), ("token", C.c_int32),
                ("ticket", C.c_uint64), ("offset", C.c_uint64), ("logprob", C.c_float),
                ("score_base", C.c_float), ("score_principle", C.c_float),
                ("diagnostics", Diagnostics)]


lib.linalign_last_error.restype = C.c_char_p
lib.linalign_step_init.argtypes = [C.POINTER(Step)]
lib.linalign_submit.argtypes = [C.c_void_p, C.POINTER(Step), C.c_int32, C.POINTER(C.c_uint64)]
lib.linalign_wait.argtypes = [C.c_void_p, C.c_uint64, C.POINTER(StepResult)]
lib.linalign_request_open.argtypes = [C.c_void_p, C.c_void_p, C.POINTER(C.c_uint64)]
lib.linalign_batcher_create.argtypes = [C.c_void_p, C.c_void_p, C.POINTER(C.c_void_p)]
lib.linalign_batcher_destroy.argtypes = [C.c_void_p]
lib.linalign_create.argtypes = [C.c_void_p, C.POINTER(C.c_void_p)]
lib.linalign_destroy.argtypes = [C.c_void_p]


def check(status, what):
    if status != 0:
        sys.exit(f"FAIL: {what}: status {status}: {lib.linalign_last_error(None).decode()}")


step = Step()
lib.linalign_step_init(C.byref(step))
if step.struct_size != C.sizeof(Step) or step.timeout_us != -1:
    sys.exit(f"FAIL: linalign_step_t mirror: library size {step.struct_size}, "
             f"ctypes size {C.sizeof(Step)}")

handle = C.c_void_p()
check(lib.linalign_create(None, C.byref(handle)), "linalign_create")
batcher = C.c_void_p()
check(lib.linalign_batcher_create(handle, None, C.byref(batcher)), "linalign_batcher_create")
request = C.c_uint64()
check(lib.linalign_request_open(batcher, None, C.byref(request)), "linalign_request_open")

V = 101
z = (C.c_float * V)(*[0.03 * ((i * 37) % V) for i in range(V)])
y = (C.c_float * V)(*[z[i] + (0.5 if i % 7 == 0 else 0.0) for i in range(V)])
out = (C.c_float * V)()


def run(kind):
    s = Step()
    lib.linalign_step_init(C.byref(s))
    s.request, s.kind, s.vocab = request.value, kind, V
    s.base, s.principle = C.cast(z, C.c_void_p), C.cast(y, C.c_void_p)
    s.aligned = out
    ticket = C.c_uint64()
    check(lib.linalign_submit(batcher, C.byref(s), 0, C.byref(ticket)), "linalign_submit")
    r = StepResult()
    r.struct_size = C.sizeof(StepResult)
    check(lib.linalign_wait(batcher, ticket.value, C.byref(r)), "linalign_wait")
    check(r.status, "the step's answer")
    return r


r = run(1)  # align
total = sum(math.exp(out[i]) for i in range(V))
if abs(total - 1.0) > 1e-4 or r.diagnostics.support != V or not r.diagnostics.eta > 0:
    sys.exit(f"FAIL: align: sum exp(l*) = {total}, support {r.diagnostics.support}")
offsets = []
for _ in range(2):
    r = run(0)  # sample
    if not 0 <= r.token < V:
        sys.exit(f"FAIL: sample: token {r.token}")
    offsets.append(r.offset)
if offsets != [0, 1]:
    sys.exit(f"FAIL: offsets {offsets}, expected [0, 1]")

ticket = C.c_uint64()
if lib.linalign_submit(batcher, None, 0, C.byref(ticket)) != 1:
    sys.exit("FAIL: a NULL step was accepted")
message = lib.linalign_last_error(None).decode()
if "step" not in message:
    sys.exit(f"FAIL: the message does not name the step: {message}")

lib.linalign_batcher_destroy(batcher)
lib.linalign_destroy(handle)
print(f"ctypes: align sum exp = {total:.6f}, sample offsets {offsets}, error: {message}")
