#!/usr/bin/env python3
"""The device check's decision table (bench/device_check.sh, step "decide";
issue 19): from the JSON of linalign_bench_gpu's decision rows — the default
(fused) run and, if given, the LINALIGN_CUDA_FUSED=0 (multi-kernel) run —
prints per row µs per call and the ratio to a copy of the same bytes
(copy_same_frac), then for align fp32 V = 128256 the per-row time fitted over
B ≥ 4 (least squares of µs = a + b·B: b is the marginal cost of a row, a the
fixed cost of a call), next to the cost model's prediction in bench/NOTES.md.

Usage: decide_summary.py FUSED.json [MULTI.json]   (standard library only)
"""
import json
import re
import sys

NAME = re.compile(r"^(?P<row>[a-z_0-9]+)/(?P<dtype>[a-z0-9]+)/B:(?P<B>\d+)/V:(?P<V>\d+)")


def load(path):
    """{(row, dtype, B, V): (us_call, copy_same_frac)} of the runs that succeeded."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print(f"decide: {path}: {e}")
        return {}
    rows = {}
    for b in data.get("benchmarks", []):
        m = NAME.match(b.get("name", ""))
        if not m or b.get("error_occurred") or b.get("run_type", "iteration") != "iteration":
            continue
        key = (m["row"], m["dtype"], int(m["B"]), int(m["V"]))
        rows[key] = (float(b.get("us_call", "nan")), float(b.get("copy_same_frac", "nan")))
    return rows


def fit(points):
    """Least-squares (a, b) of us = a + b·B over (B, us) points; None if < 2."""
    if len(points) < 2:
        return None
    n = len(points)
    sx = sum(x for x, _ in points)
    sy = sum(y for _, y in points)
    sxx = sum(x * x for x, _ in points)
    sxy = sum(x * y for x, y in points)
    den = n * sxx - sx * sx
    if den == 0:
        return None
    b = (n * sxy - sx * sy) / den
    return (sy - b * sx) / n, b


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    fused = load(argv[1])
    multi = load(argv[2]) if len(argv) > 2 else {}
    print("decide: µs per call and ratio to a copy of the same bytes (fused | multi-kernel)")
    print(f"  {'row':<44} {'fused µs':>9} {'÷copy':>6} {'multi µs':>9} {'÷copy':>6}")
    for key in sorted(fused, key=lambda k: (k[0], k[1], k[3], k[2])):
        us, frac = fused[key]
        mu, mfrac = multi.get(key, (float("nan"), float("nan")))
        label = f"{key[0]}/{key[1]}/B:{key[2]}/V:{key[3]}"
        print(f"  {label:<44} {us:9.1f} {frac:6.2f} {mu:9.1f} {mfrac:6.2f}")
    for name, rows in (("fused", fused), ("multi-kernel", multi)):
        pts = sorted((k[2], v[0]) for k, v in rows.items()
                     if k[0] == "align_linalign" and k[1] == "fp32" and k[3] == 128256
                     and k[2] >= 4)
        ab = fit(pts)
        if ab:
            a, b = ab
            print(f"decide: align fp32 V=128256 {name}: per-row {b:.2f} µs, per-call {a:.1f} µs "
                  f"(fit over B = {', '.join(str(p[0]) for p in pts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
