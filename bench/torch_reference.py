#!/usr/bin/env python3
"""The public reference rule of Linear Alignment in PyTorch: the framework peer
of bench/gpu_bench.cu, eager and under torch.compile, on the same shapes.

The reference code (github: Wizardcoast/Linear_Alignment, model.py + utils.py)
computes, per decoding step, from base logits z and principle logits y:

    combined = (1 + r) * y - r * z                 fixed rule, r = ratio = 2
    align:   log_softmax(combined / T)             the aligned log-probs (B x V fp32)
    sample:  probs  = softmax(combined / T)
             nucleus of softmax(y / T): keep token i iff the mass of the tokens
             sorted before it is < top_p (0.8), the first token always kept
             probs * mask, then torch.multinomial       (B tokens)

This file is an independent restatement of that rule (not the reference's
code). Inputs are fp32 or bf16, upcast to fp32 as the reference does
(`.float()`), z ~ 3 N(0,1), y = z + N(0,1) as in gpu_bench.cu. Like
gpu_bench.cu, every call reads inputs that are not in L2: the inputs are
replicated over >= 2x the device's L2 and consecutive calls walk through them.
Timing: CUDA events around batches of back-to-back calls, median per call.
GB/s counts the bytes that must move: 2*B*V*sizeof(in) read, plus 4*B*V
written for align (the same accounting as gpu_bench.cu).

Prints one table (µs per call and GB/s, and for torch.compile the speed-up
over eager and the compile time). Without PyTorch or without a CUDA device it
prints one line and exits 0. --budget-s bounds the whole run: the shapes left
when it is spent are listed as skipped.
"""

import argparse
import math
import statistics
import sys
import time

RATIO = 2.0
TEMPERATURE = 1.0
TOP_P = 0.8
TARGET_BATCH_US = 200.0  # a timed batch lasts at least this long
MAX_CALLS_PER_BATCH = 256


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="1,8,64,256")
    ap.add_argument("--vocabs", default="32000,128256,151936,262144")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--ops", default="align,sample")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--batches-timed", type=int, default=10,
                    help="timed batches per row (the median is reported)")
    ap.add_argument("--budget-s", type=float, default=1e9,
                    help="stop starting new rows after this many seconds")
    return ap.parse_args()


def main():
    args = parse_args()
    try:
        import torch
    except ImportError:
        print("torch_reference: skipped: PyTorch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("torch_reference: skipped: PyTorch sees no CUDA device")
        return 0

    t_start = time.monotonic()
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    l2 = int(getattr(props, "L2_cache_size", 0) or 60 << 20)
    try:  # room for the recompiles: dtype x (B = 1, B > 1) per op
        import torch._dynamo
        for name in ("cache_size_limit", "recompile_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, 64)
    except Exception as e:  # torch.compile rows will say what is wrong
        print(f"torch_reference: torch._dynamo: {e}")
    print(f"torch_reference: torch {torch.__version__}, {props.name}, "
          f"{props.multi_processor_count} SMs, L2 {l2 / 2**20:.1f} MiB; "
          f"ratio {RATIO}, T {TEMPERATURE}, top_p {TOP_P}", flush=True)

    def align(z, y):
        combined = (1.0 + RATIO) * y.float() - RATIO * z.float()
        return torch.log_softmax(combined / TEMPERATURE, dim=-1)

    def sample(z, y):
        yf = y.float()
        combined = (1.0 + RATIO) * yf - RATIO * z.float()
        probs = torch.softmax(combined / TEMPERATURE, dim=-1)
        principle = torch.softmax(yf / TEMPERATURE, dim=-1)
        sorted_p, order = torch.sort(principle, dim=-1, descending=True)
        drop_sorted = (sorted_p.cumsum(dim=-1) - sorted_p) >= TOP_P
        drop_sorted[:, :1] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        return torch.multinomial(probs, 1)[:, 0]

    fns = {"align": align, "sample": sample}
    compiled = {name: torch.compile(fn, dynamic=True) for name, fn in fns.items()}
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}

    batches = [int(b) for b in args.batches.split(",")]
    vocabs = [int(v) for v in args.vocabs.split(",")]
    dtype_names = args.dtypes.split(",")
    ops = args.ops.split(",")
    modes = args.modes.split(",")

    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)

    def time_calls(fn, zs, ys, first, calls):
        sets = zs.shape[0]
        start.record()
        for k in range(calls):
            s = (first + k) % sets
            fn(zs[s], ys[s])
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop)  # ms

    def measure(fn, zs, ys):
        """Median µs per call, and seconds of the first call (compilation)."""
        t0 = time.monotonic()
        fn(zs[0], ys[0])
        torch.cuda.synchronize()
        first_s = time.monotonic() - t0
        for i in range(1, 3):
            time_calls(fn, zs, ys, i, 1)
        us = max(time_calls(fn, zs, ys, 3, 8) * 1e3 / 8, 0.5)
        k = int(min(MAX_CALLS_PER_BATCH, max(1, math.ceil(TARGET_BATCH_US / us))))
        samples = []
        for b in range(args.batches_timed):
            samples.append(time_calls(fn, zs, ys, 11 + b * k, k) * 1e3 / k)
        return statistics.median(samples), first_s

    rows = []  # (op, mode, dtype, B, V, us, GBps, speedup, compile_s, note)
    eager_us = {}
    skipped = 0
    # Eager rows first (cheap), then compiled ones (each new dtype / B = 1 recompiles).
    for mode in modes:
        for dname in dtype_names:
            for V in vocabs:
                for B in batches:
                    if time.monotonic() - t_start > args.budget_s:
                        skipped += len(ops)
                        continue
                    elem = 4 if dname == "fp32" else 2
                    pair = 2 * B * V * elem
                    sets = max(2, -(-2 * l2 // pair))
                    gen = torch.Generator(device=dev)
                    gen.manual_seed(20240611 + B * 1000003 + V)
                    zs = 3.0 * torch.randn(sets, B, V, device=dev, generator=gen)
                    ys = zs + torch.randn(sets, B, V, device=dev, generator=gen)
                    zs, ys = zs.to(dtypes[dname]), ys.to(dtypes[dname])
                    for op in ops:
                        fn = fns[op] if mode == "eager" else compiled[op]
                        nbytes = pair + (4 * B * V if op == "align" else 0)
                        try:
                            with torch.no_grad():
                                us, first_s = measure(fn, zs, ys)
                        except Exception as e:  # report and go on (e.g. a compile failure)
                            msg = str(e).strip().splitlines()
                            rows.append((op, mode, dname, B, V, float("nan"), float("nan"),
                                         float("nan"), float("nan"),
                                         f"{type(e).__name__}: {msg[0] if msg else ''}"[:120]))
                            torch.cuda.synchronize()
                            continue
                        key = (op, dname, B, V)
                        if mode == "eager":
                            eager_us[key] = us
                        speedup = eager_us[key] / us if mode != "eager" and key in eager_us \
                            else float("nan")
                        rows.append((op, mode, dname, B, V, us, nbytes / (us * 1e3), speedup,
                                     first_s if mode != "eager" else float("nan"),
                                     f"sets={sets}"))
                        print(f"  {op:6s} {mode:7s} {dname} B={B:<3d} V={V:<6d} "
                              f"{us:10.1f} us {nbytes / (us * 1e3):8.1f} GB/s", flush=True)
                    del zs, ys
                    torch.cuda.empty_cache()

    print()
    print(f"{'op':6s} {'mode':7s} {'dtype':5s} {'B':>4s} {'V':>7s} {'us/call':>10s} "
          f"{'GB/s':>8s} {'x eager':>8s} {'compile s':>9s}  note")
    for op, mode, dname, B, V, us, gbps, speedup, comp, note in rows:
        def f(x, spec):
            return format(x, spec) if x == x else "-".rjust(len(format(1.0, spec)))
        print(f"{op:6s} {mode:7s} {dname:5s} {B:4d} {V:7d} {f(us, '10.1f')} {f(gbps, '8.1f')} "
              f"{f(speedup, '8.2f')} {f(comp, '9.1f')}  {note}")
    if skipped:
        print(f"torch_reference: {skipped} rows skipped: --budget-s {args.budget_s:g} spent")
    print(f"torch_reference: done in {time.monotonic() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
