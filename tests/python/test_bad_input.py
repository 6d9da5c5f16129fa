"""Regressions for the binding's bad-input defects that the first black-box
fuzzing run found (issue 18): each bad argument is a ValueError or TypeError
that names it (SPEC §5), never a bare RuntimeError, a lossy cast or a row
computed from a value the caller did not give; a row whose parameters
overflow float32 once applied is flagged OVERFLOW, not returned as NaN with
status OK."""
import math

import numpy as np
import pytest

import linalign
from conftest import logits

torch = pytest.importorskip("torch")

B, V = 4, 13


@pytest.fixture
def zy(rng):
    return logits(rng, B, V)


def raises_naming(exc, name):
    """pytest.raises for `exc` whose message names the argument (the
    library's own messages say e.g. "align: params.ratio must ...")."""
    return pytest.raises(exc, match=rf"(?<![A-Za-z]){name}(?![A-Za-z])")


# --- integers: range-checked, never wrapped or truncated -------------------


def test_target_beyond_int32_is_refused_not_wrapped_to_token_0(zy):
    z, y = zy
    with raises_naming(ValueError, "targets"):
        linalign.score(z, y, np.array([2**32] * B))


def test_negative_seed_in_an_array_is_refused_like_the_scalar(zy):
    z, y = zy
    with raises_naming(ValueError, "seed"):
        linalign.sample(z, y, seed=-1)
    with raises_naming(ValueError, "seed"):
        linalign.sample(z, y, seed=np.array([-1] * B))


@pytest.mark.parametrize("name", ["seed", "offset"])
def test_seed_and_offset_beyond_uint64_are_named(zy, name):
    z, y = zy
    with raises_naming(ValueError, name):
        linalign.sample(z, y, **{name: 2**64})


def test_min_tokens_to_keep_beyond_int32_is_named(zy):
    z, y = zy
    with raises_naming(ValueError, "min_tokens_to_keep"):
        linalign.sample(z, y, min_tokens_to_keep=2**31)


def test_float_targets_are_refused_from_torch_as_from_numpy(zy):
    z, y = zy
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    with raises_naming(TypeError, "targets"):
        linalign.score(zt, yt, torch.tensor([3.5] * B))
    with raises_naming(TypeError, "targets"):
        linalign.score(z, y, np.array([3.5] * B))


@pytest.mark.parametrize("kw", [dict(top_k=2.5), dict(top_k=True), dict(top_k=np.array([1.5] * B))])
def test_fractional_or_bool_top_k_is_a_type_error(zy, kw):
    z, y = zy
    with raises_naming(TypeError, "top_k"):
        linalign.sample(z, y, **kw)


def test_fractional_ignore_index_is_a_type_error(zy):
    z, y = zy
    with raises_naming(TypeError, "ignore_index"):
        linalign.score(z, y, np.zeros(B, np.int32), ignore_index=1.5)


def test_greedy_is_one_bool_per_call(zy):
    z, y = zy
    with raises_naming(TypeError, "greedy"):
        linalign.sample(z, y, greedy=np.array([True] * B))


# --- floats and logits: named type errors ----------------------------------


def test_string_temperature_is_named(zy):
    z, y = zy
    with raises_naming(TypeError, "temperature"):
        linalign.align(z, y, temperature="hot")


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_bool_logits_are_named_before_dlpack_sees_them(zy, lib):
    z, y = zy
    zb = z > 0
    if lib == "torch":
        zb, y = torch.from_numpy(zb), torch.from_numpy(y)
    with raises_naming(TypeError, "base"):
        linalign.align(zb, y)


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_other_logit_dtypes_are_named(zy, dtype):
    z, y = zy
    with raises_naming(TypeError, "principle"):
        linalign.align(z, y.astype(dtype))


@pytest.mark.parametrize("rule,name", [("trust_region", "ratio"), ("fixed", "epsilon"),
                                       ("fixed", "eta_max")])
def test_nan_in_a_parameter_the_rule_ignores_is_still_refused(zy, rule, name):
    # SPEC §5: a NaN parameter is a call-level error whichever rule is chosen.
    z, y = zy
    with raises_naming(ValueError, name):
        linalign.align(z, y, rule=rule, **{name: math.nan})


def test_numpy_scalar_temperature_is_the_python_number_for_every_row(zy):
    z, y = zy
    want = linalign.align(z, y, temperature=0.7)
    got = linalign.align(z, y, temperature=np.float32(0.7))
    assert np.array_equal(want, got)
    got0d = linalign.align(z, y, temperature=np.array(0.7, np.float32))
    assert np.array_equal(want, got0d)


def test_per_row_array_of_the_wrong_length_is_named(zy):
    z, y = zy
    with raises_naming(ValueError, "temperature"):
        linalign.align(z, y, temperature=np.ones(B + 1, np.float32))


def test_threads_beyond_the_bound_are_named():
    with raises_naming(ValueError, "threads"):
        linalign.Context("cpu", threads=10**6)
    with raises_naming(ValueError, "threads"):
        linalign.Context("cpu", threads=2**40)


# --- overflow: flagged, never NaN with status OK (SPEC §5) -----------------


@pytest.mark.parametrize("kw", [dict(temperature=1e-38), dict(ratio=3e38),
                                dict(temperature=1e-30, ratio=1e30),
                                dict(temperature=1e-6, ratio=17.2, update="linear")])
def test_overflowing_parameters_flag_the_row(rng, kw):
    z, y = logits(rng, B, V, scale=1.0)
    out, d = linalign.align(z, y, diagnostics=True, **kw)
    flagged = (d["status"] & int(linalign.RowStatus.OVERFLOW)) != 0
    # Every row is either flagged or finite, and these parameters overflow
    # for rows of this scale, so at least one row is flagged.
    assert flagged.any()
    assert np.isfinite(out[~flagged]).all()
    assert np.isnan(out[flagged]).all()
    tokens, lp, ds = linalign.sample(z, y, diagnostics=True, **kw)
    sflag = (ds["status"] & int(linalign.RowStatus.OVERFLOW)) != 0
    assert np.array_equal(flagged, sflag)
    assert (tokens[sflag] == -1).all() and np.isnan(lp[sflag]).all()
    assert (tokens[~sflag] >= 0).all() and np.isfinite(lp[~sflag]).all()
    s = linalign.score(z, y, np.zeros(B, np.int32), diagnostics=True, **kw)
    assert not np.isinf(s.aligned).any()
    assert np.isnan(s.aligned[flagged]).all()
