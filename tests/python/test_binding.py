"""The Python binding (docs/PYTHON.md) against the C++ library, bit for bit:
the same inputs through `linalign` (pybind11, DLPack) and through the C++
command-line tool (Context on the CPU backend, .npy files) must give the same
bytes; torch and NumPy inputs the same results; the batcher the direct call's
(SPEC §4); errors named (SPEC §5)."""
import json
import os
import subprocess
import threading
import time

import numpy as np
import pytest

import linalign
from conftest import logits

torch = pytest.importorskip("torch")
CLI = os.environ.get("LINALIGN_CLI")
needs_cli = pytest.mark.skipif(not CLI, reason="LINALIGN_CLI (the C++ tool) not given")


def run_cli(tmp_path, op, z, y, *flags, extra=None):
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    for name, arr in (extra or {}).items():
        np.save(tmp_path / f"{name}.npy", arr)
    cmd = [CLI, op, "--backend", "cpu", "--base", str(tmp_path / "z.npy"), "--principle",
           str(tmp_path / "y.npy"), "--diagnostics", str(tmp_path / "d.jsonl"), *flags]
    subprocess.run(cmd, check=True, capture_output=True)
    with open(tmp_path / "d.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def check_diagnostics(diag, lines):
    assert len(diag) == len(lines)
    for d, line in zip(diag, lines):
        for key in ("eta", "mu", "sigma", "kl_base", "kl_principle", "entropy"):
            want = line[key]
            got = float(d[key])
            assert (np.isnan(got) and want is None) or np.float32(want) == np.float32(got), key
        assert int(d["support"]) == line["support"]


ALIGN_CASES = [
    dict(),
    dict(rule="trust_region", epsilon=0.2, temperature=0.7),
    dict(rule="exact_kl", epsilon=0.05, eta_max=4.0),
    dict(update="linear", ratio=0.5),
]


@needs_cli
@pytest.mark.parametrize("params", ALIGN_CASES)
def test_align_is_the_cli_bit_for_bit(tmp_path, rng, params):
    z, y = logits(rng, 5, 3001)
    got, diag = linalign.align(z, y, diagnostics=True, **params)
    flags = []
    for k, v in params.items():
        flags += ["--" + k.replace("_", "-"), str(v)]
    lines = run_cli(tmp_path, "align", z, y, "--out", str(tmp_path / "out.npy"), *flags)
    assert same_bits(got, np.load(tmp_path / "out.npy"))
    check_diagnostics(diag, lines)


@needs_cli
@pytest.mark.parametrize("params", [
    dict(seed=7, top_p=0.8),
    dict(seed=123456789012, offset=41, top_k=20, min_p=0.01, nucleus_source="aligned"),
    dict(greedy=True, rule="trust_region"),
])
def test_sample_is_the_cli_bit_for_bit(tmp_path, rng, params):
    z, y = logits(rng, 7, 2500)
    tokens, logprob = linalign.sample(z, y, **params)
    flags = []
    for k, v in params.items():
        flags += ["--" + k.replace("_", "-")] + ([] if v is True else [str(v)])
    run_cli(tmp_path, "sample", z, y, "--out", str(tmp_path / "t.npy"), "--out-logprob",
            str(tmp_path / "lp.npy"), *flags)
    assert same_bits(tokens, np.load(tmp_path / "t.npy"))
    assert same_bits(logprob, np.load(tmp_path / "lp.npy"))


@needs_cli
def test_score_is_the_cli_bit_for_bit(tmp_path, rng):
    z, y = logits(rng, 9, 1000)
    targets = rng.integers(0, 1000, 9).astype(np.int32)
    targets[4] = -100
    offsets = np.array([0, 2, 2, 9], dtype=np.int64)
    s = linalign.score(z, y, targets, seq_offsets=offsets, ratio=1.5)
    run_cli(tmp_path, "score", z, y, "--ratio", "1.5", "--targets", str(tmp_path / "tg.npy"),
            "--offsets", str(tmp_path / "off.npy"), "--out", str(tmp_path / "a.npy"),
            "--out-base", str(tmp_path / "b.npy"), "--out-principle", str(tmp_path / "p.npy"),
            "--out-seq", str(tmp_path / "sa.npy"), extra={"tg": targets, "off": offsets})
    assert same_bits(s.aligned, np.load(tmp_path / "a.npy"))
    assert same_bits(s.base, np.load(tmp_path / "b.npy"))
    assert same_bits(s.principle, np.load(tmp_path / "p.npy"))
    assert same_bits(s.seq_aligned, np.load(tmp_path / "sa.npy"))
    assert s.aligned[4] == 0 and s.seq_aligned[1] == 0


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_torch_and_numpy_give_the_same_bits(rng, dtype):
    z, y = logits(rng, 4, 777)
    tz = torch.from_numpy(z).to(getattr(torch, dtype))
    ty = torch.from_numpy(y).to(getattr(torch, dtype))
    lt, dt = linalign.align(tz, ty, diagnostics=True)
    assert isinstance(lt, torch.Tensor) and lt.dtype == torch.float32
    assert set(dt) == set(linalign.DIAGNOSTICS_DTYPE.names)
    if dtype != "bfloat16":  # NumPy has no bfloat16
        ln, dn = linalign.align(tz.numpy(), ty.numpy(), diagnostics=True)
        assert isinstance(ln, np.ndarray)
        assert same_bits(lt.numpy(), ln)
        assert same_bits(dt["eta"].numpy(), dn["eta"])
    tok_t, lp_t = linalign.sample(tz, ty, seed=3, top_p=0.9)
    assert tok_t.dtype == torch.int32 and lp_t.dtype == torch.float32


def test_rows_of_one_lm_head_output_without_a_copy(rng):
    # [2B, V]: row 2r is the plain context, 2r+1 the principle context.
    x = torch.from_numpy((rng.standard_normal((6, 500)) * 2).astype(np.float32))
    got = linalign.align(x[0::2], x[1::2], ratio=1.0)
    want = linalign.align(x[0::2].contiguous(), x[1::2].contiguous(), ratio=1.0)
    assert torch.equal(got, want)
    out16 = linalign.align(x[0::2], x[1::2], ratio=1.0, out_dtype="bfloat16")
    assert out16.dtype == torch.bfloat16
    assert torch.allclose(out16.float(), got, rtol=1e-2, atol=1e-2)


def test_per_row_parameters_are_the_one_row_calls(rng):
    z, y = logits(rng, 5, 400)
    ratio = np.array([0.0, 0.5, 1.0, 2.0, -1.0])
    temp = torch.tensor([0.5, 1.0, 1.5, 2.0, 1.0])
    top_k = [0, 1, 5, 10, 50]
    tok, lp = linalign.sample(torch.from_numpy(z), torch.from_numpy(y), ratio=ratio,
                              temperature=temp, top_k=top_k, seed=np.arange(5) + 10)
    for r in range(5):
        t1, l1 = linalign.sample(z[r:r + 1], y[r:r + 1], ratio=float(ratio[r]),
                                 temperature=float(temp[r]), top_k=top_k[r], seed=10 + r)
        assert t1[0] == tok[r].item() and same_bits(l1, lp[r:r + 1].numpy())


def test_row_status_flags_not_exceptions(rng):
    z, y = logits(rng, 3, 64)
    z[1, 5] = np.nan
    y[2, :] = -np.inf
    out, d = linalign.align(z, y, diagnostics=True)
    assert d["status"][0] == 0
    assert linalign.RowStatus(d["status"][1]) & linalign.RowStatus.NAN
    assert linalign.RowStatus(d["status"][2]) & linalign.RowStatus.EMPTY_SUPPORT
    assert np.all(np.isnan(out[1])) and np.isfinite(out[0]).all()
    tok, _ = linalign.sample(z, y)
    assert tok[1] == -1 and tok[2] == -1 and tok[0] >= 0


@pytest.mark.parametrize("call, exc, match", [
    (lambda z, y: linalign.align(z, y, temperature=0.0), ValueError, "temperature"),
    (lambda z, y: linalign.align(z, y[:1]), ValueError, "principle"),
    (lambda z, y: linalign.align(z[0], y[0]), ValueError, "base"),
    (lambda z, y: linalign.sample(z, y, top_p=1.5), ValueError, "top_p"),
    (lambda z, y: linalign.sample(z, y, top_k=[1, 2, 3]), ValueError, "top_k"),
    (lambda z, y: linalign.score(z, y, [0, 99]), ValueError, "targets"),
    (lambda z, y: linalign.align(z, y, rule="newton"), ValueError, "rule"),
    (lambda z, y: linalign.align(z.astype(np.float64), y), TypeError, "base"),
    (lambda z, y: linalign.align(z.tolist(), y), TypeError, "base"),
    (lambda z, y: linalign.sample(z, y, seed=True), TypeError, "seed"),
    (lambda z, y: linalign.align(z, y, out_dtype="float16"), ValueError, "out_dtype"),
    (lambda z, y: linalign.shard_stats(z, y, context=linalign.Context(threads=-1)), ValueError,
     "num_threads"),
])
def test_bad_arguments_are_named(rng, call, exc, match):
    z, y = logits(rng, 2, 50)
    with pytest.raises(exc, match=match):
        call(z, y)


def test_read_only_and_grad_inputs(rng):
    z, y = logits(rng, 2, 300)
    want = linalign.align(z, y)
    z.flags.writeable = False
    assert same_bits(linalign.align(z, y), want)
    tz = torch.from_numpy(y.copy()).requires_grad_()
    assert same_bits(linalign.align(torch.from_numpy(z.copy()), tz).numpy(), want)


def test_shards_merge_to_the_whole_row(rng):
    z, y = logits(rng, 3, 1200)
    whole = linalign.align(z, y, ratio=1.0)
    cuts = [0, 500, 1200]
    parts = [(z[:, a:b].copy(), y[:, a:b].copy()) for a, b in zip(cuts, cuts[1:])]
    records = np.concatenate([linalign.shard_stats(a, b, ratio=1.0) for a, b in parts])
    got = np.concatenate([linalign.align_shard(a, b, records, ratio=1.0) for a, b in parts], 1)
    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-5)


def test_the_library_runs_without_the_gil(rng):
    z, y = logits(rng, 64, 60000)
    done = threading.Event()

    def work():
        for _ in range(3):
            linalign.align(z, y, rule="exact_kl")
        done.set()

    t = threading.Thread(target=work)
    t.start()
    spins = 0
    while not done.is_set():
        spins += 1  # pure Python: runs only while the worker has let go of the GIL
    t.join()
    assert spins > 1000


# ------------------------------------------------------------- host API ---

def test_batcher_answers_are_the_direct_calls(rng):
    z, y = logits(rng, 12, 900)
    params = [dict(seed=100 + i, top_p=0.9, ratio=0.5 * (i % 3), offset=i) for i in range(12)]
    with linalign.Batcher(max_rows=8, max_wait_us=500) as b:
        reqs = [b.open(**p) for p in params]
        got = {i: [] for i in range(12)}

        def client(rows):
            for step in range(3):
                futs = [(i, reqs[i].sample(z[i], y[i])) for i in rows]
                for i, f in futs:
                    got[i].append(f.result(timeout=30))

        threads = [threading.Thread(target=client, args=(range(k, 12, 3),)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = b.stats()
    assert stats["completed"] == 36 and stats["pending"] == 0
    for i, p in enumerate(params):
        for step, r in enumerate(got[i]):
            q = dict(p, offset=p["offset"] + step)
            tok, lp = linalign.sample(z[i:i + 1], y[i:i + 1], **q)
            assert r.offset == q["offset"] and r.token == tok[0] and np.float32(r.logprob) == lp[0]


def test_batcher_align_score_cancel_deadline_shutdown(rng):
    z, y = logits(rng, 2, 300)
    b = linalign.Batcher(max_rows=4, max_wait_us=100000)
    req = b.open(ratio=1.0)  # the only request: its steps go at once
    out = np.empty(300, np.float32)
    f = req.align(z[0], y[0], out)
    s = req.score(z[1], y[1], 7)
    assert f.result(timeout=30).batch != s.result(timeout=30).batch  # two kinds, two batches
    assert same_bits(out, linalign.align(z[:1], y[:1], ratio=1.0)[0])
    want = linalign.score(z[1:2], y[1:2], [7], ratio=1.0)
    r = s.result(timeout=30)
    assert np.float32(r.logprob) == want.aligned[0] and np.float32(r.score_base) == want.base[0]
    late = req.sample(z[0], y[0], timeout=0.0)
    with pytest.raises(linalign.Error) as e:
        late.result(timeout=30)
    assert e.value.status == "deadline exceeded"
    b.shutdown()
    with pytest.raises(linalign.Error, match="shut down"):
        req.sample(z[0], y[0])
    # A second, idle request: a step waits (a minute at most) for its company.
    b = linalign.Batcher(max_wait_us=60_000_000)
    req, _idle = b.open(), b.open()
    pending = req.sample(z[0], y[0])
    assert pending.cancel() and pending.cancelled()
    queued = req.sample(z[0], y[0])
    b.shutdown(drain=False)
    with pytest.raises(linalign.Error, match="shut down"):
        queued.result(timeout=30)
    assert b.stats()["cancelled"] == 1 and b.stats()["failed"] == 1
    with pytest.raises(ValueError, match="out"):
        linalign.Batcher().open().align(z[0], y[0], np.empty(5, np.float32))


def test_score_job_resumes_byte_identical(rng, tmp_path):
    seqs = []
    for n in (3, 1, 4, 2, 5, 3):
        a, c = logits(rng, n, 200)
        seqs.append((a, c, rng.integers(0, 200, n)))
    b = linalign.Batcher(max_rows=16, max_wait_us=100)
    whole = tmp_path / "whole.tsv"
    report = linalign.score_job(b, seqs, whole, ratio=0.5)
    assert report["sequences"] == 6 and report["rows"] == 18

    class Boom(Exception):
        pass

    def failing():
        for i, s in enumerate(seqs):
            if i == 4:
                raise Boom()
            yield s

    part = tmp_path / "part.tsv"
    with pytest.raises(Boom):
        linalign.score_job(b, failing(), part, checkpoint_every=1, chunk=1, ratio=0.5)
    seen = []
    report = linalign.score_job(b, seqs, part, checkpoint_every=1, chunk=2, ratio=0.5,
                                progress=seen.append)
    assert report["resumed_from"] == 4 and report["sequences"] == 6
    assert part.read_bytes() == whole.read_bytes()
    assert seen and seen[-1]["finished"]


def test_logits_processor_follows_the_hf_convention(rng):
    z, y = logits(rng, 2, 128)
    vocab_bias = torch.from_numpy(y - z)

    def principle_scores(input_ids):
        return scores_of(input_ids) + vocab_bias

    def scores_of(input_ids):
        return torch.from_numpy(z) + 0.01 * input_ids.shape[1]

    proc = linalign.LinearAlignmentLogitsProcessor(principle_scores, ratio=1.0)
    ids = torch.zeros((2, 3), dtype=torch.long)
    for _ in range(4):  # a greedy decode loop, as generate() calls processors
        scores = scores_of(ids)
        out = proc(ids, scores)
        assert out.shape == scores.shape and out.dtype == scores.dtype
        assert torch.equal(out, linalign.align(scores, principle_scores(ids), ratio=1.0))
        ids = torch.cat([ids, out.argmax(-1, keepdim=True)], 1)
    assert proc.last_diagnostics["eta"].tolist() == [2.0, 2.0]
    half = linalign.LinearAlignmentLogitsProcessor(lambda i: principle_scores(i).half())
    assert half(ids, scores_of(ids).half()).dtype == torch.float16


def test_a_context_serves_one_call_at_a_time_and_not_beside_its_batcher(rng):
    z, y = logits(rng, 8, 20000)
    ctx = linalign.Context()
    want = linalign.align(z, y, context=ctx)
    results = []

    def work():
        for _ in range(5):
            results.append(linalign.align(z, y, context=ctx))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and all(same_bits(r, want) for r in results)
    b = linalign.Batcher(ctx)
    with pytest.raises(ValueError, match="context: a Batcher runs on this context"):
        linalign.align(z, y, context=ctx)
    b.shutdown()
    del b
    import gc

    gc.collect()
    assert same_bits(linalign.align(z, y, context=ctx), want)


needs_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and linalign.cuda_compiled()),
    reason="needs a CUDA device, torch with CUDA and the CUDA backend (bench/device_check.sh)")


@needs_cuda
def test_cuda_tensors_zero_copy_on_the_current_stream(rng):
    z, y = logits(rng, 6, 32000)
    cz, cy = torch.from_numpy(z).cuda(), torch.from_numpy(y).cuda()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        got, diag = linalign.align(cz, cy, rule="trust_region", diagnostics=True)
        tok, _ = linalign.sample(cz, cy, greedy=True)
    s.synchronize()
    assert got.is_cuda and diag["eta"].is_cuda and tok.is_cuda
    want, wdiag = linalign.align(z, y, rule="trust_region", diagnostics=True)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-4, atol=1e-4)  # SPEC §6
    np.testing.assert_allclose(diag["eta"].cpu().numpy(), wdiag["eta"], rtol=1e-4)
    assert tok.cpu().numpy().tolist() == linalign.sample(z, y, greedy=True)[0].tolist()
    with linalign.Batcher(linalign.Context("cuda")) as b:
        r = b.open(seed=3, top_p=0.9).sample(cz[0], cy[0]).result(timeout=60)
    assert r.token == linalign.sample(cz[:1], cy[:1], seed=3, top_p=0.9)[0].item()


class _FakeCudaArray:
    """A DLPack producer that claims CUDA memory at a bogus address: a CPU
    context must refuse it before anything reads it."""

    def __init__(self, shape):
        import ctypes as C

        class Device(C.Structure):
            _fields_ = [("device_type", C.c_int), ("device_id", C.c_int)]

        class DType(C.Structure):
            _fields_ = [("code", C.c_uint8), ("bits", C.c_uint8), ("lanes", C.c_uint16)]

        class Tensor(C.Structure):
            _fields_ = [("data", C.c_void_p), ("device", Device), ("ndim", C.c_int),
                        ("dtype", DType), ("shape", C.POINTER(C.c_int64)),
                        ("strides", C.POINTER(C.c_int64)), ("byte_offset", C.c_uint64)]

        class Managed(C.Structure):
            pass

        Deleter = C.CFUNCTYPE(None, C.POINTER(Managed))
        Managed._fields_ = [("dl_tensor", Tensor), ("manager_ctx", C.c_void_p),
                            ("deleter", Deleter)]
        self.shape = shape
        self._dims = (C.c_int64 * len(shape))(*shape)
        self._deleted = []
        self._deleter = Deleter(lambda m: self._deleted.append(1))
        self._m = Managed(Tensor(0xDEAD0000, Device(2, 0), len(shape), DType(2, 32, 1),
                                 self._dims, None, 0), None, self._deleter)
        self._C = C

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None):
        C = self._C
        new = C.pythonapi.PyCapsule_New
        new.restype, new.argtypes = C.py_object, [C.c_void_p, C.c_char_p, C.c_void_p]
        return new(C.addressof(self._m), b"dltensor", None)


def test_cuda_memory_is_refused_by_a_cpu_context(rng):
    z, y = logits(rng, 2, 16)
    fake = _FakeCudaArray((2, 16))
    with pytest.raises(ValueError, match="base: CUDA memory needs a CUDA context"):
        linalign.align(fake, y, context=linalign.Context("cpu"))
    assert fake._deleted == [1]  # the consumed capsule's deleter ran
    b = linalign.Batcher()
    with pytest.raises(ValueError, match="principle: CUDA memory needs a CUDA context"):
        b.open().sample(z[0], _FakeCudaArray((16,)))
    b.shutdown()
