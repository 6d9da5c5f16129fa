"""Property test of the binding under hypothesis (issue 18): logits of any
dtype (float32/16, bfloat16 via torch, float64, int32, bool), 0-D to 3-D,
zero sizes, strided views; per-row parameters as scalars, lists, arrays of
the wrong length or dtype, NaN. Each call either raises ValueError/TypeError
whose message starts with the name of an argument, or returns results with
the properties of SPEC §3/§5:
  * a call predicted valid succeeds, one predicted invalid raises;
  * a row whose status is OK has finite outputs: ℓ* normalised
    (logsumexp 0), a token in [0, V) with a log-prob ≤ 0, a score ≤ 0;
  * a flagged row has NaN log-probs, token −1, NaN scores; a row holding a
    NaN / +inf logit is flagged NAN / POS_INF;
  * a strided view gives the bits of its contiguous copy.
The validity prediction is written from SPEC §5 and param_ranges.hpp, not
from the binding's code."""
import math
import os
import re

import numpy as np
import pytest

import linalign

hypothesis = pytest.importorskip("hypothesis")
torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=int(os.environ.get("LINALIGN_HYPOTHESIS_EXAMPLES", "400")),
                    deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

ARG_NAMES = ("base", "principle", "targets", "seq_offsets", "temperature", "ratio", "epsilon",
             "eta_max", "top_p", "top_k", "min_p", "seed", "offset", "greedy", "rule", "update",
             "out_dtype", "ignore_index", "min_tokens_to_keep", "nucleus_source", "logits")
LOGIT_DTYPES = ("float32", "float16", "bfloat16")
OK, NAN, POS_INF = 0, int(linalign.RowStatus.NAN), int(linalign.RowStatus.POS_INF)


def assert_names_an_argument(e):
    msg = str(e)
    assert any(re.search(rf"(?<![A-Za-z]){n}(?![A-Za-z])", msg) for n in ARG_NAMES), \
        f"error names no argument: {msg!r}"


@st.composite
def logits_case(draw):
    """(z, y, B, V, valid, poison): the two logit arrays as the caller passes
    them, whether their dtype/shape is valid, and per row the flag expected
    from poisoned logits."""
    lib = draw(st.sampled_from(["numpy", "torch"]))
    # Mostly valid calls, so that the results' properties are exercised too.
    dtypes = ["float32"] * 4 + ["float16"] * 2 + ["float64", "int32", "bool"] + (
        ["bfloat16"] * 2 if lib == "torch" else [])
    dtype = draw(st.sampled_from(dtypes))
    ndim = draw(st.sampled_from([2] * 12 + [0, 1, 3]))
    B = draw(st.integers(0, 5))
    V = draw(st.integers(0, 40))
    shape = {0: (), 1: (V,), 2: (B, V), 3: (1, B, V)}[ndim]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 3.0, 30.0, 1e3]))
    z = np.asarray(rng.standard_normal(shape) * scale)
    y = np.asarray(z + rng.standard_normal(shape))
    poison = np.zeros(B, np.int64)
    if ndim == 2 and B > 0 and V > 0:
        for b in range(B):
            kind = draw(st.sampled_from(["none"] * 6 + ["nan", "inf", "-inf"]))
            row = draw(st.sampled_from([z, y]))
            col = draw(st.integers(0, V - 1))
            if kind == "nan":
                row[b, col] = np.nan
                poison[b] = NAN
            elif kind == "inf":
                row[b, col] = np.inf
                poison[b] = POS_INF
            elif kind == "-inf":
                row[b, col] = -np.inf  # a masked token: not an error
    # A strided view: rows (a row stride > V) or columns (a column stride 2).
    view = draw(st.sampled_from(["contiguous"] * 3 + ["rows", "columns"]))
    valid_shape = ndim == 2 and V > 0
    mismatch = draw(st.sampled_from([False] * 19 + [True]))

    def build(a, flip):
        if dtype == "bool":
            a = a > 0
        elif dtype == "int32":
            a = np.asarray(np.nan_to_num(a, posinf=0, neginf=0)).astype(np.int32)
        elif dtype != "bfloat16":
            a = a.astype(dtype)
        else:
            a = a.astype(np.float32)
        if flip and ndim == 2:
            a = a[:, : max(V - 1, 0)]  # one column short of the other
            a = np.ascontiguousarray(a)
        if view == "rows" and ndim == 2:
            big = np.zeros((2 * B, a.shape[1]), a.dtype)
            big[::2] = a
            a = big[::2]
        elif view == "columns" and ndim == 2:
            big = np.zeros((B, 2 * a.shape[1]), a.dtype)
            big[:, ::2] = a
            a = big[:, ::2]
        if lib == "torch":
            t = torch.from_numpy(np.ascontiguousarray(a) if view == "contiguous" else a)
            if view != "contiguous" and ndim == 2:
                # torch.from_numpy keeps numpy's strides.
                assert t.stride() == tuple(s // a.itemsize for s in a.strides)
            a = t.to(torch.bfloat16) if dtype == "bfloat16" else t
        return a

    zb, yb = build(z, False), build(y, mismatch)
    valid = dtype in LOGIT_DTYPES and valid_shape and not (mismatch and ndim == 2)
    return dict(z=zb, y=yb, B=B, V=V, valid=valid, poison=poison, view=view)


def param_case(name, good, bad, B, draw):
    """(value, values, structural_ok): a per-row parameter as a scalar, a
    list or an array (right or wrong length, numbers or strings), the numbers
    it holds (judged later against the call's rule), and whether its form is
    valid."""
    form = draw(st.sampled_from(["default"] * 3 + ["scalar"] * 3 + ["list", "array"] * 2 +
                                ["wrong_length", "wrong_dtype"]))
    if form == "default":
        return None, [], True
    pool = good + bad if draw(st.sampled_from([False] * 5 + [True])) else good
    if form == "scalar":
        v = draw(st.sampled_from(pool))
        return v, [v], True
    values = [draw(st.sampled_from(pool)) for _ in range(B)]
    if form == "list":
        return values, values, True
    if form == "array":
        return np.array(values, dtype=np.float64 if name != "top_k" else np.int64), values, True
    if form == "wrong_length":
        return np.array(values + [good[0]]), values, False
    return np.array([str(v) for v in values] or ["x"]), values, False  # strings


def finite(v):
    return math.isfinite(v)


def value_ok(name, v, rule, op):
    """SPEC §5 / param_ranges.hpp, per parameter: a parameter the rule does
    not use is only refused when NaN."""
    uses = {"ratio": rule == "fixed", "epsilon": rule != "fixed", "eta_max": rule != "fixed"}
    if name in uses and not uses[name]:
        return not math.isnan(v)
    return {
        "temperature": lambda: finite(v) and (v >= 0 if op == "sample" else v > 0),
        "ratio": lambda: finite(v),
        "epsilon": lambda: finite(v) and v > 0,
        "eta_max": lambda: finite(v) and v >= 0,
        "top_p": lambda: 0 < v <= 1,
        "top_k": lambda: v >= 0,
        "min_p": lambda: 0 <= v <= 1,
    }[name]()


FLOAT_PARAMS = {
    "temperature": ([0.5, 1.0, 2.0], [0.0, -1.0, math.nan, math.inf]),
    "ratio": ([0.0, 0.5, 2.0, -0.5], [math.nan, math.inf]),
    "epsilon": ([0.05, 0.5], [0.0, -0.1, math.nan]),
    "eta_max": ([0.0, 4.0, 8.0], [-1.0, math.nan]),
}
SAMPLE_PARAMS = {
    "top_p": ([0.5, 1.0], [0.0, 1.5, math.nan]),
    "top_k": ([0, 1, 3], [-1]),
    "min_p": ([0.0, 0.2], [-0.1, 1.5]),
}


def numpy_of(x):
    if isinstance(x, torch.Tensor):
        return x.float().numpy() if x.dtype == torch.bfloat16 else x.numpy()
    return np.asarray(x)


def contiguous(x):
    return x.contiguous() if isinstance(x, torch.Tensor) else np.ascontiguousarray(x)


def call(op, case, params, targets=None):
    z, y = case["z"], case["y"]
    if op == "align":
        out, d = linalign.align(z, y, diagnostics=True, **params)
        return dict(out=numpy_of(out), status=numpy_of(d["status"]))
    if op == "sample":
        tok, lp, d = linalign.sample(z, y, diagnostics=True, **params)
        return dict(tok=numpy_of(tok), lp=numpy_of(lp), status=numpy_of(d["status"]))
    s = linalign.score(z, y, targets, diagnostics=True, **params)
    return dict(score=numpy_of(s.aligned), base=numpy_of(s.base),
                status=numpy_of(s.diagnostics["status"]))


def check_rows(op, r, case):
    st_ = r["status"].astype(np.int64)
    B = case["B"]
    assert st_.shape == (B,)
    # A poisoned row carries its flag (other flags may join it).
    for b in range(B):
        if case["poison"][b]:
            assert st_[b] & case["poison"][b], (b, st_[b])
    ok = st_ == OK
    if op == "align":
        out = r["out"].astype(np.float64)
        assert np.isnan(out[~ok]).all()
        for row in out[ok]:
            assert not np.isnan(row).any() and not np.isposinf(row).any()
            m = row.max()
            assert np.isfinite(m)
            lse = m + math.log(np.exp(row - m).sum())
            assert abs(lse) < 1e-3, lse
    elif op == "sample":
        tok, lp = r["tok"], r["lp"]
        assert (tok[~ok] == -1).all() and np.isnan(lp[~ok]).all()
        assert ((tok[ok] >= 0) & (tok[ok] < case["V"])).all()
        assert np.isfinite(lp[ok]).all() and (lp[ok] <= 1e-5).all()
    else:
        sc = r["score"]
        assert np.isnan(sc[~ok]).all()
        assert (sc[ok] <= 1e-5).all() and not np.isnan(sc[ok]).any()


def run_case(op, case, params, params_valid, targets=None, targets_valid=True):
    want_ok = case["valid"] and params_valid and targets_valid
    # docs/SEMANTICS.md item 17: a call with B = 0 checks nothing (beyond the
    # shapes), so its parameters may be refused or not.
    lenient = case["B"] == 0 and case["valid"]
    try:
        r = call(op, case, params, targets)
    except (ValueError, TypeError) as e:
        hypothesis.event("refused: " + str(e).split(" ")[0])  # the argument named
        assert_names_an_argument(e)
        if case["view"] == "columns" and case["valid"] and params_valid and targets_valid:
            return  # a column stride ≠ 1 may be refused (named) by the binding
        assert not want_ok or lenient, f"a valid call raised: {e!r}"
        return
    assert want_ok or lenient, "an invalid call returned"
    hypothesis.event("computed, a flagged row" if (r["status"] != OK).any() else "computed")
    check_rows(op, r, case)
    if case["view"] != "contiguous":
        c = dict(case, z=contiguous(case["z"]), y=contiguous(case["y"]))
        rc = call(op, c, params, targets)
        for k in r:
            assert r[k].tobytes() == rc[k].tobytes(), k


def draw_params(draw, B, table, rule, op):
    params, valid = {}, True
    for name, (good, bad) in table.items():
        v, values, form_ok = param_case(name, good, bad, B, draw)
        if v is not None:
            params[name] = v
            valid &= form_ok and all(value_ok(name, x, rule, op) for x in values)
    return params, valid


def rule_params(draw, B, op):
    rule = draw(st.sampled_from(["fixed", "trust_region", "exact_kl"]))
    update = draw(st.sampled_from(["tilt", "linear"]))
    params, valid = draw_params(draw, B, FLOAT_PARAMS, rule, op)
    params.update(rule=rule, update=update)
    return params, valid


@SETTINGS
@given(st.data())
def test_align_properties(data):
    case = data.draw(logits_case())
    params, valid = rule_params(data.draw, case["B"], "align")
    run_case("align", case, params, valid)


@SETTINGS
@given(st.data())
def test_sample_properties(data):
    case = data.draw(logits_case())
    params, valid = rule_params(data.draw, case["B"], "sample")
    extra, extra_valid = draw_params(data.draw, case["B"], SAMPLE_PARAMS, params["rule"], "sample")
    params.update(extra)
    params["greedy"] = data.draw(st.booleans())
    params["seed"] = data.draw(st.sampled_from([0, 7, 2**64 - 1, -1, 2**64]))
    seed_valid = 0 <= params["seed"] < 2**64
    run_case("sample", case, params, valid and extra_valid and seed_valid)


@SETTINGS
@given(st.data())
def test_score_properties(data):
    case = data.draw(logits_case())
    params, valid = rule_params(data.draw, case["B"], "score")
    B, V = case["B"], max(case["V"], 1)
    kind = data.draw(st.sampled_from(["good"] * 4 + ["out_of_range", "float", "wrong_length",
                                                     "2**32"]))
    t = np.array([data.draw(st.integers(0, V - 1)) for _ in range(B)], np.int64)
    t_valid = True
    if kind == "out_of_range" and B > 0:
        t[0] = V if data.draw(st.booleans()) else -5
        t_valid = False
    elif kind == "float":
        t = t.astype(np.float64) + 0.5
        t_valid = False
    elif kind == "wrong_length":
        t = np.append(t, 0)
        t_valid = False
    elif kind == "2**32" and B > 0:
        t[0] = 2**32
        t_valid = False
    if isinstance(case["z"], torch.Tensor):
        t = torch.from_numpy(t)
    run_case("score", case, params, valid, t, t_valid)
