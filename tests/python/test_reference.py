"""linalign's Python binding against an independent float64 reference.

The reference (reference64.py) is written from shared/SPEC.md alone; these
tests compare ``linalign.align / sample / score`` with it within the
tolerances of SPEC §6, and check the row- and call-level error handling of
SPEC §5 and docs/PYTHON.md.

Run:  PYTHONPATH=build-emu/python /usr/bin/python3 -m pytest tests/python/test_reference.py
The ``test_ref_*`` tests check the reference itself and need no library.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference64 as R  # noqa: E402

RULES = ["fixed", "trust_region", "exact_kl"]
UPDATES = ["tilt", "linear"]
FLOAT_PARAMS = ("temperature", "ratio", "epsilon", "eta_max", "top_p", "min_p")


@pytest.fixture(scope="module")
def la():
    return pytest.importorskip("linalign")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def logits(seed, B, V, scale=3.0, partial=True):
    """float32 base/principle logits; with ``partial`` some rows get −inf
    entries (in z, in y, in both) so that S is a strict subset of the vocabulary."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(0.0, scale, (B, V)).astype(np.float32)
    Y = (0.6 * Z + rng.normal(0.0, scale, (B, V))).astype(np.float32)
    if partial and V >= 8:
        if B > 1:
            Z[1, rng.choice(V, V // 5, replace=False)] = -np.inf
        if B > 2:
            Y[2, rng.choice(V, V // 4, replace=False)] = -np.inf
        if B > 3:
            cols = rng.choice(V, V // 3, replace=False)
            Z[3, cols[: len(cols) // 2]] = -np.inf
            Y[3, cols[len(cols) // 2:]] = -np.inf
    return Z, Y


def f32(v):
    """Parameters cross into the library as float32 (docs/PYTHON.md); the reference
    is computed on the same, upcast values (SPEC §6)."""
    return np.asarray(v, dtype=np.float32).astype(np.float64)


def ref_params(params):
    out = {}
    for k, v in params.items():
        if k in FLOAT_PARAMS:
            v = np.asarray(v)
            out[k] = f32(v) if v.ndim else float(f32(v))
        else:
            out[k] = v
    return out


def align_only(params):
    return {k: v for k, v in params.items() if k in R.ALIGN_KEYS}


def to_np(x):
    if x is None or isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch
        import torch

        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def diag_dict(d):
    if d is None:
        return None
    if isinstance(d, dict):
        return {k: to_np(v) for k, v in d.items()}
    return {k: d[k] for k in d.dtype.names}


def status_bits(la):
    return {R.NAN: int(la.RowStatus.NAN), R.POS_INF: int(la.RowStatus.POS_INF),
            R.EMPTY_SUPPORT: int(la.RowStatus.EMPTY_SUPPORT)}


def reference_rows(Z, Y, params, lib_diag=None):
    """Reference rows for the (f32-rounded) parameters.  For exact_kl the
    library's η (from its diagnostics) is first checked against the reference's
    root, then ℓ* and the η-dependent diagnostics are evaluated at the library's
    η: the root only has to reach |KL − ε| ≤ 1e-4·ε (SPEC §2), which moves η by
    more than ℓ*'s own tolerance allows."""
    p = ref_params(align_only(params))
    Z64 = np.asarray(Z, dtype=np.float64)
    Y64 = np.asarray(Y, dtype=np.float64)
    _, _, rows = R.align_batch(Z64, Y64, **p)
    if p.get("rule") != "exact_kl":
        return rows
    assert lib_diag is not None, "exact_kl checks need the library's diagnostics"
    B = Z64.shape[0]
    eps = R._per_row(p.get("epsilon", 0.1), B)
    emax = R._per_row(p.get("eta_max", 8.0), B)
    upd = p.get("update", "tilt")
    lib_eta = np.asarray(lib_diag["eta"], dtype=np.float64)
    etas = []
    for r, row in enumerate(rows):
        if not row.valid:
            etas.append(None)
            continue
        e = lib_eta[r]
        S = row.support_mask
        slope = R.dkl_deta(upd, row.l, row.delta, row.mu, S, row.eta)
        sc = row_scale(Z, Y, params, r)
        tol = R.stat_tol(row.eta, sc)
        if slope > 1e-12:  # |KL − ε| ≤ 1e-4·ε plus the library's fp32 KL
            tol += (1e-4 * eps[r] + R.stat_tol(eps[r], sc)) / slope
        assert abs(e - row.eta) <= tol, (
            f"row {r}: exact_kl eta {e} vs reference {row.eta} (tol {tol}), eps={eps[r]}")
        assert 0.0 <= e <= emax[r] * (1 + 1e-6)
        etas.append(e)
    p2 = dict(p)
    out = []
    for r, row in enumerate(rows):
        if etas[r] is None:
            out.append(row)
            continue
        pr = {k: (v[r] if isinstance(v, np.ndarray) and v.ndim else v) for k, v in p2.items()}
        out.append(R.align_row(Z64[r], Y64[r], eta=etas[r], **pr))
    return out


def row_scale(Z, Y, params, r):
    T = ref_params(align_only(params)).get("temperature", 1.0)
    T = T[r] if isinstance(T, np.ndarray) else T
    return R.magnitude_scale(Z[r], Y[r], T)


def check_lstar_row(lib, row, scale=1.0, update="tilt", bf16=False, where=""):
    """SPEC §6: ℓ* within 1e-4·max(1,|η|) where ℓ*_i ≥ −20; −inf exactly outside S
    (and where the linear update clips, SPEC §2); finite on S for tilt."""
    lib = np.asarray(lib, dtype=np.float64)
    ref = row.lstar
    tol = R.lstar_atol(row.eta, scale)
    S = row.support_mask
    assert np.all(np.isneginf(lib[~S])), f"{where}: tokens outside S must be -inf"
    check = S.copy()
    extra, amb = R.linear_conditioning(row, scale)  # zeros for tilt
    if update == "linear":
        check &= ~amb  # clip boundary undecidable in fp32: either answer
        clipped = check & np.isneginf(ref)
        assert np.all(np.isneginf(lib[clipped])), f"{where}: linear clipped tokens must be -inf"
        check &= ~clipped
    else:
        assert np.all(np.isfinite(lib[S])), f"{where}: tilt ℓ* must be finite on S"
    near = check & (ref >= -20.0)
    tolv = tol + extra[near]  # + the fp32 conditioning of the linear update near its clip
    if bf16:  # bfloat16 output: add the rounding of the stored value (8-bit mantissa)
        tolv = tolv + np.abs(ref[near]) * 2.0 ** -8
    err = np.abs(lib[near] - ref[near])
    assert np.all(err <= tolv), (
        f"{where}: max |Δℓ*| = {err.max():.3g} > tol {np.max(tolv):.3g} "
        f"at token {np.flatnonzero(near)[np.argmax(err - tolv)]}, eta={row.eta}")
    far = check & (ref < -20.0)
    assert not np.any(np.isnan(lib[far])), f"{where}: NaN in ℓ*"
    assert np.all(lib[far] < -19.0), f"{where}: ℓ* far off where the reference is < -20"


def check_diag_row(la, d, r, row, scale=1.0, rule="fixed", eps=None, emax=8.0, where=""):
    st = int(d["status"][r])
    if not row.valid:
        return check_bad_status(la, st, row.status, where)
    assert st == 0, f"{where}: status {st:#x} for a valid row"
    for k in ("eta", "mu", "sigma", "kl_base", "kl_principle", "entropy"):
        ref = getattr(row, k)
        got = float(d[k][r])
        tol = R.stat_tol(ref, scale)
        assert abs(got - ref) <= tol, f"{where}: {k} = {got} vs reference {ref} (tol {tol})"
    assert int(d["support"][r]) == row.support, f"{where}: support"
    if rule == "exact_kl" and eps is not None and float(d["eta"][r]) < emax * (1 - 1e-6):
        # SPEC §2: |KL − ε| ≤ 1e-4·ε unless η reached η_max (plus the fp32 KL itself)
        got = float(d["kl_base"][r])
        assert abs(got - eps) <= 1e-4 * eps + R.stat_tol(eps, scale), f"{where}: KL {got} != eps {eps}"


def check_bad_status(la, st, ref_status, where=""):
    """SPEC §5 row errors: NaN and +inf flagged; empty S flagged when it is the
    only problem."""
    bits = status_bits(la)
    assert st != 0, f"{where}: invalid row with status 0"
    if R.NAN in ref_status:
        assert st & bits[R.NAN], f"{where}: NaN not flagged ({st:#x})"
    if R.POS_INF in ref_status:
        assert st & bits[R.POS_INF], f"{where}: +inf not flagged ({st:#x})"
    if ref_status == {R.EMPTY_SUPPORT}:
        assert st & bits[R.EMPTY_SUPPORT], f"{where}: empty S not flagged ({st:#x})"
        assert not st & (bits[R.NAN] | bits[R.POS_INF]), f"{where}: ({st:#x})"
    if R.NAN not in ref_status:
        assert not st & bits[R.NAN], f"{where}: spurious NaN flag ({st:#x})"
    if R.POS_INF not in ref_status:
        assert not st & bits[R.POS_INF], f"{where}: spurious +inf flag ({st:#x})"


def check_align_result(la, lstar, diag, Z, Y, params, rows=None):
    lstar = to_np(lstar)
    d = diag_dict(diag)
    rows = rows if rows is not None else reference_rows(Z, Y, params, d)
    upd = params.get("update", "tilt")
    rule = params.get("rule", "fixed")
    B = lstar.shape[0]
    assert lstar.shape == np.shape(Z)
    for r in range(B):
        where = f"row {r} {params}"
        row = rows[r]
        if not row.valid:
            assert np.all(np.isnan(lstar[r])), f"{where}: invalid row ℓ* must be NaN"
        else:
            check_lstar_row(lstar[r], row, row_scale(Z, Y, params, r), upd, where=where)
        if d is not None:
            rp = ref_params(params)
            eps = R._per_row(rp.get("epsilon", 0.1), B)[r]
            emax = R._per_row(rp.get("eta_max", 8.0), B)[r]
            check_diag_row(la, d, r, row, row_scale(Z, Y, params, r), rule, eps, emax, where)
    return rows


# ---------------------------------------------------------------------------
# the reference against itself (no library needed)
# ---------------------------------------------------------------------------


def test_ref_philox_known_answers():
    F = 0xFFFFFFFF
    kat = [((0, 0, 0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
           ((F, F, F, F, F, F), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
           ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for args, want in kat:
        assert tuple(int(x) for x in R.philox4x32_10(*args)) == want
    u = R.uniforms(0xDEADBEEFCAFEBABE, 2**33 + 5, 3, 1001)
    assert np.all((u > 0) & (u < 1))
    k = u * 2.0**25  # u = (2(x >> 8) + 1)·2⁻²⁵: an odd multiple of 2⁻²⁵
    assert np.all((k == np.round(k)) & (np.round(k) % 2 == 1))


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("update", UPDATES)
def test_ref_properties(rule, update):
    Z, Y = logits(11, 4, 301)
    for r in range(4):
        row = R.align_row(Z[r], Y[r], 0.7, rule, 2.0, 0.1, 8.0, update)
        S = row.support_mask
        assert abs(np.exp(row.lstar[S]).sum() - 1) < 1e-12  # π* sums to 1 over S
        assert np.all(np.isneginf(row.lstar[~S]))
        assert row.kl_base >= -1e-15 and row.kl_principle >= -1e-15
        kl_pi_pp = R.kl(row.l, row.lp, S)
        assert abs(row.mu + kl_pi_pp) < 1e-9  # SPEC §2: μ = −KL(π‖πᵖ)
        assert row.sigma >= 0
        if rule == "exact_kl" and row.eta < 8.0:
            assert abs(row.kl_base - 0.1) < 1e-9
        if rule == "trust_region":
            assert abs(row.eta - min(8.0, np.sqrt(0.2) / row.sigma)) < 1e-12
        if update == "tilt":  # ℓ* = log_softmax((1−η)z/T + ηy/T) over S
            c = (1 - row.eta) * Z[r].astype(np.float64) / 0.7 + row.eta * Y[r].astype(np.float64) / 0.7
            ls = R.log_softmax_on(np.where(S, c, 0.0), S)
            assert np.allclose(ls[S], row.lstar[S], atol=1e-9)


def test_ref_fixed_endpoints():
    Z, Y = logits(12, 3, 97)
    for r in range(3):
        S = R.support(Z[r], Y[r])
        base = R.align_row(Z[r], Y[r], 0.5, "fixed", -1.0)  # η = 0
        prin = R.align_row(Z[r], Y[r], 0.5, "fixed", 0.0)  # η = 1
        assert base.eta == 0.0 and prin.eta == 1.0
        assert np.allclose(base.lstar[S], R.log_softmax_on(Z[r] / 0.5, S)[S], atol=1e-12)
        assert np.allclose(prin.lstar[S], R.log_softmax_on(Y[r] / 0.5, S)[S], atol=1e-12)
        for upd in UPDATES:
            z0 = R.align_row(Z[r], Y[r], 1.0, "fixed", -1.0, update=upd)
            assert np.allclose(z0.lstar[S], z0.l[S], atol=1e-12) and z0.kl_base < 1e-12


def test_ref_degenerate_rows():
    z = np.array([1.0, 2.0, -np.inf, 0.5], dtype=np.float32)
    for rule in RULES:
        row = R.align_row(z, z, 1.0, rule)  # y = z: σ = 0
        assert row.sigma == 0.0
        assert row.eta == {"fixed": 3.0, "trust_region": 0.0, "exact_kl": 8.0}[rule]
        assert np.allclose(row.lstar[:2], row.l[:2])
    one = R.align_row(np.float32([3.0]), np.float32([-2.0]), 1.0)
    assert one.lstar[0] == 0.0 and one.support == 1
    assert R.row_status([np.nan, 1], [0, 1]) == {R.NAN}
    assert R.row_status([np.inf, 1], [0, 1]) == {R.POS_INF}
    assert R.row_status([-np.inf, 1], [0, -np.inf]) == {R.EMPTY_SUPPORT}


def test_ref_masks():
    lq = np.log(np.array([0.4, 0.2, 0.2, 0.1, 0.05, 0.05]))
    km = R.keep_mask
    assert km(lq, top_p=0.4).tolist() == [1, 0, 0, 0, 0, 0]
    assert km(lq, top_p=0.41).tolist() == [1, 1, 1, 0, 0, 0]  # ties at the boundary kept
    assert km(lq, top_p=0.01).sum() == 1  # at least one token
    assert km(lq, top_k=2).tolist() == [1, 1, 0, 0, 0, 0]  # tie broken by lower index
    assert km(lq, min_p=0.5).tolist() == [1, 1, 1, 0, 0, 0]
    assert km(lq, top_p=0.01, min_tokens_to_keep=3).tolist() == [1, 1, 1, 0, 0, 0]
    assert km(lq, top_k=100).all()
    must, may = R.keep_mask_bounds(lq, top_p=0.65, rel=1e-3, mass=1e-4)
    assert must.tolist() == [1, 1, 1, 0, 0, 0] and may.tolist() == must.tolist()
    must, may = R.keep_mask_bounds(lq, top_p=0.8, rel=1e-3, mass=1e-4)  # 0.8 is on a boundary
    assert must.sum() == 3 and may.sum() == 4


# ---------------------------------------------------------------------------
# align
# ---------------------------------------------------------------------------

SHAPES_T = [(1, 1, 1.0), (1, 7, 0.5), (3, 33, 1.7), (4, 1000, 0.7), (9, 257, 1.0),
            (2, 5003, 0.5), (5, 4096, 1.0)]


@pytest.mark.parametrize("B,V,T", SHAPES_T)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("update", UPDATES)
def test_align_matches_reference(la, B, V, T, rule, update):
    Z, Y = logits(1000 * B + V, B, V)
    params = dict(temperature=T, rule=rule, update=update)
    lstar, diag = la.align(Z, Y, diagnostics=True, **params)
    assert isinstance(lstar, np.ndarray) and lstar.dtype == np.float32
    check_align_result(la, lstar, diag, Z, Y, params)
    if rule != "exact_kl":  # without diagnostics: the same ℓ*
        l2 = la.align(Z, Y, **params)
        check_align_result(la, l2, None, Z, Y, params)


@pytest.mark.parametrize("ratio", [-1.0, 0.0, 0.5, 3.0, -0.3])
@pytest.mark.parametrize("update", UPDATES)
def test_align_fixed_ratio(la, ratio, update):
    Z, Y = logits(7, 4, 129)
    params = dict(temperature=0.7, ratio=ratio, update=update)
    lstar, diag = la.align(Z, Y, diagnostics=True, **params)
    check_align_result(la, lstar, diag, Z, Y, params)
    d = diag_dict(diag)
    assert np.allclose(d["eta"], 1 + f32(ratio), rtol=1e-6)
    if ratio == -1.0 or (ratio == 0.0 and update == "tilt"):
        # SPEC §2: ratio −1 is the base policy; ratio 0 the principle policy (tilt:
        # the linear update at η = 1 is only its first-order approximation)
        src = Z if ratio == -1.0 else Y
        for r in range(4):
            S = R.support(Z[r], Y[r])
            want = R.log_softmax_on(src[r].astype(np.float64) / f32(0.7), S)
            assert np.all(np.abs(lstar[r][S] - want[S]) <= 1e-4)


@pytest.mark.parametrize("rule,extra", [("trust_region", dict(epsilon=0.02)),
                                        ("trust_region", dict(epsilon=0.5, eta_max=0.25)),
                                        ("exact_kl", dict(epsilon=0.02)),
                                        ("exact_kl", dict(epsilon=3.0, eta_max=0.5)),
                                        ("exact_kl", dict(epsilon=1e-3))])
@pytest.mark.parametrize("update", UPDATES)
def test_align_rule_parameters(la, rule, extra, update):
    Z, Y = logits(8, 5, 400)
    params = dict(temperature=1.0, rule=rule, update=update, **extra)
    lstar, diag = la.align(Z, Y, diagnostics=True, **params)
    check_align_result(la, lstar, diag, Z, Y, params)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("update", UPDATES)
def test_align_per_row_parameters(la, rule, update):
    B, V = 6, 300
    Z, Y = logits(9, B, V)
    params = dict(rule=rule, update=update,
                  temperature=np.array([0.5, 0.7, 1.0, 1.3, 2.0, 0.9], dtype=np.float32),
                  ratio=np.array([2.0, 3.0, -1.0, 0.0, 0.5, 1.0], dtype=np.float32),
                  epsilon=np.array([0.1, 0.05, 0.2, 0.01, 1.0, 0.3], dtype=np.float32),
                  eta_max=np.array([8.0, 1.0, 4.0, 8.0, 0.5, 2.0], dtype=np.float32))
    lstar, diag = la.align(Z, Y, diagnostics=True, **params)
    check_align_result(la, lstar, diag, Z, Y, params)
    # scalars per row give the same rows
    for r in (0, 4):
        one = {k: (v if isinstance(v, str) else float(v[r])) for k, v in params.items()}
        l1, d1 = la.align(Z[r:r + 1], Y[r:r + 1], diagnostics=True, **one)
        check_align_result(la, l1, d1, Z[r:r + 1], Y[r:r + 1], one)
        tol = R.lstar_atol(float(diag_dict(diag)["eta"][r]))
        fin = np.isfinite(lstar[r])
        assert np.array_equal(fin, np.isfinite(l1[0]))
        assert np.all(np.abs(lstar[r][fin] - l1[0][fin]) <= tol)
    # float64 per-row arrays are converted (docs/PYTHON.md)
    p64 = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v) for k, v in params.items()}
    l3, d3 = la.align(Z, Y, diagnostics=True, **p64)
    check_align_result(la, l3, d3, Z, Y, params)


def test_align_row_strides(la):
    """Two halves of one [2B, V] output (row stride 2V) and a column slice of a
    wider buffer (row stride > V) are taken as they are (docs/PYTHON.md)."""
    B, V = 5, 301
    rng = np.random.default_rng(21)
    X = rng.normal(0, 3, (2 * B, V + 19)).astype(np.float32)
    Zs, Ys = X[0::2, :V], X[1::2, :V]
    assert not Zs.flags.c_contiguous
    params = dict(temperature=0.8, rule="trust_region")
    lstar, diag = la.align(Zs, Ys, diagnostics=True, **params)
    check_align_result(la, lstar, diag, np.ascontiguousarray(Zs), np.ascontiguousarray(Ys), params)
    l2 = la.align(np.ascontiguousarray(Zs), np.ascontiguousarray(Ys), **params)
    fin = np.isfinite(l2)
    assert np.allclose(lstar[fin], l2[fin], atol=1e-6, rtol=0)


def test_align_non_unit_column_stride(la):
    """A non-unit stride along V is not taken as it is (docs/PYTHON.md): either
    a ValueError naming the argument, or (if the binding copies) correct values."""
    Z, Y = logits(22, 3, 64)
    Zs = Z[:, ::2]
    Ys = Y[:, ::2]
    try:
        out = la.align(Zs, Ys)
    except ValueError as e:
        assert "base" in str(e) or "principle" in str(e) or "stride" in str(e)
        return
    check_align_result(la, out, None, np.ascontiguousarray(Zs), np.ascontiguousarray(Ys), {})


def test_align_context_single_thread(la):
    Z, Y = logits(23, 7, 2049)
    params = dict(temperature=0.6, rule="exact_kl", update="tilt")
    ctx = la.Context(backend="cpu", threads=1)
    lstar, diag = la.align(Z, Y, diagnostics=True, context=ctx, **params)
    check_align_result(la, lstar, diag, Z, Y, params)


def test_align_numpy_float16(la):
    Z, Y = logits(24, 3, 257, scale=2.0)
    Zh, Yh = Z.astype(np.float16), Y.astype(np.float16)
    params = dict(temperature=1.0)
    lstar, diag = la.align(Zh, Yh, diagnostics=True, **params)
    assert lstar.dtype == np.float32
    # SPEC §6: against the reference on the same (upcast) inputs
    check_align_result(la, lstar, diag, Zh.astype(np.float32), Yh.astype(np.float32), params)


@pytest.mark.parametrize("T", [1e-3, 0.02])
@pytest.mark.parametrize("rule", RULES)
def test_align_tiny_temperature(la, T, rule):
    """SPEC §2: tiny T never overflows; SPEC §6: bounds scale with |z/T|."""
    Z, Y = logits(25, 4, 500)
    params = dict(temperature=T, rule=rule)
    lstar, diag = la.align(Z, Y, diagnostics=True, **params)
    assert not np.isnan(lstar).any()
    check_align_result(la, lstar, diag, Z, Y, params)


@pytest.mark.parametrize("a", [50.0, 100.0, 250.0, 400.0])
@pytest.mark.parametrize("pattern", ["base", "principle"])
def test_align_kl_wide_logit_range(la, a, pattern):
    """KL(π*‖π) = Σ π*_i (ℓ*_i − ℓ_i) (SPEC §2 diagnostics) for a row whose
    aligned policy sits on a token the base policy gives log-prob ≈ −a.  For
    a > 100 SPEC §6's bounds scale with a/100, which still leaves them at about
    1e-4·KL·a/100."""
    if pattern == "base":  # π* on token 1: KL(π*‖π) ≈ a
        Z = np.array([[0.0, -a, -1.0]], dtype=np.float32)
        Y = np.array([[-a / 3, 0.0, -a]], dtype=np.float32)
    else:  # fixed η = 3: π* on token 1, KL(π*‖π) ≈ a, KL(π*‖πᵖ) ≈ a/2
        Z = np.array([[0.0, -a]], dtype=np.float32)
        Y = np.array([[0.0, -a / 2]], dtype=np.float32)
    lstar, diag = la.align(Z, Y, diagnostics=True)
    check_align_result(la, lstar, diag, Z, Y, {})


# ---------------------------------------------------------------------------
# row-level errors (SPEC §5)
# ---------------------------------------------------------------------------


def bad_batch():
    rng = np.random.default_rng(31)
    B, V = 9, 37
    Z = rng.normal(0, 2, (B, V)).astype(np.float32)
    Y = rng.normal(0, 2, (B, V)).astype(np.float32)
    Z[1, 5] = np.nan  # NaN in z
    Y[2, 0] = np.inf  # +inf in y
    Z[3, :] = -np.inf  # empty support
    Z[4, 7], Y[4, 7] = np.nan, -np.inf  # NaN where the other row masks the token
    Z[5, 3], Y[5, 3] = -np.inf, np.inf  # +inf where the other row masks the token
    Z[6, :] = -np.inf  # a single token in S
    Z[6, 11] = 0.5
    Y[7, ::2] = -np.inf  # partial support
    Z[7, 1::4] = -np.inf
    Y[8, :] = np.nan  # all NaN
    return Z, Y


GOOD_ROWS = [0, 6, 7]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("update", UPDATES)
def test_bad_rows_align(la, rule, update):
    Z, Y = bad_batch()
    params = dict(rule=rule, update=update, temperature=0.9)
    lstar, diag = la.align(Z, Y, diagnostics=True, **params)
    rows = check_align_result(la, lstar, diag, Z, Y, params)
    assert [r for r in range(9) if rows[r].valid] == GOOD_ROWS
    d = diag_dict(diag)
    assert int(d["support"][6]) == 1 and abs(lstar[6, 11]) <= 1e-6
    assert int(d["support"][3]) == 0
    # every other row is computed exactly as if it were alone (SPEC §5)
    good = np.array(GOOD_ROWS)
    l2, d2 = la.align(Z[good], Y[good], diagnostics=True, **params)
    np.testing.assert_array_equal(lstar[good], l2)
    for r in GOOD_ROWS[:2]:
        l1 = la.align(Z[r:r + 1], Y[r:r + 1], **params)
        np.testing.assert_array_equal(lstar[r:r + 1], l1)


def test_bad_rows_sample_and_score(la):
    Z, Y = bad_batch()
    bad = [r for r in range(9) if r not in GOOD_ROWS]
    for greedy in (True, False):
        tok, lp, diag = la.sample(Z, Y, greedy=greedy, seed=5, top_p=0.9, diagnostics=True)
        assert tok.dtype == np.int32 and lp.dtype == np.float32
        assert np.all(tok[bad] == -1), tok
        assert np.all(np.isnan(lp[bad]))
        assert np.all(tok[GOOD_ROWS] >= 0)
        assert tok[6] == 11  # the only token of S
        d = diag_dict(diag)
        for r in bad:
            check_bad_status(la, int(d["status"][r]), R.row_status(Z[r], Y[r]), f"row {r}")
    targets = np.zeros(9, dtype=np.int64) + 11
    offs = np.array([0, 3, 6, 9], dtype=np.int64)
    sc = la.score(Z, Y, targets, seq_offsets=offs, diagnostics=True)
    for arr in (sc.aligned, sc.base, sc.principle):
        assert np.all(np.isnan(arr[bad])), arr
        assert np.all(np.isfinite(arr[GOOD_ROWS]) | np.isneginf(arr[GOOD_ROWS]))
    # every sequence holds an invalid row: NaN sums
    assert np.all(np.isnan(sc.seq_aligned))


# ---------------------------------------------------------------------------
# sample: greedy, Gumbel-max, masks (SPEC §3.2, §4)
# ---------------------------------------------------------------------------


def check_tokens(la, tok, lp, diag, Z, Y, params, *, greedy, seed=0, offset=0,
                 masks=None, nucleus_source="principle"):
    """Every token inside the reference's possibly-kept set; equal to the reference
    token wherever neither the mask boundary nor a near-tie of the two best
    (Gumbel) scores makes the answer ambiguous at SPEC §6's tolerance.  The
    returned log-prob is ℓ*[token]."""
    masks = masks or {}
    tok = to_np(tok).astype(np.int64)
    lp = to_np(lp)
    d = diag_dict(diag)
    rows = reference_rows(Z, Y, params, d)
    B, V = np.shape(Z)
    per_row_seed = np.ndim(seed) == 1
    seeds, offs = R._per_row(seed, B), R._per_row(offset, B)
    mp = {k: R._per_row(masks.get(k, R.DEFAULTS[k]), B)
          for k in ("top_p", "top_k", "min_p", "min_tokens_to_keep")}
    mp["top_p"] = [float(f32(v)) for v in mp["top_p"]]
    mp["min_p"] = [float(f32(v)) for v in mp["min_p"]]
    n_exact = 0
    for r, row in enumerate(rows):
        where = f"row {r} {params} {masks} greedy={greedy}"
        if not row.valid:
            assert tok[r] == -1 and np.isnan(lp[r]), where
            continue
        assert 0 <= tok[r] < V, where
        tol = R.lstar_atol(row.eta, row_scale(Z, Y, params, r))
        src = R.source_logq(row, nucleus_source)
        kw = dict(top_p=mp["top_p"][r], top_k=int(mp["top_k"][r]), min_p=mp["min_p"][r],
                  min_tokens_to_keep=int(mp["min_tokens_to_keep"][r]))
        rel = 3 * tol + 1e-6
        must, may = R.keep_mask_bounds(src, rel=rel, mass=rel, **kw)
        exact = R.keep_mask(src, **kw)
        assert np.all(must <= exact) and np.all(exact <= may)
        g = None if greedy else R.gumbel(seeds[r], offs[r], 0 if per_row_seed else r, V)
        t_ref = R.select_token(row.lstar, exact, g)
        t_must = R.select_token(row.lstar, must, g)
        t_may = R.select_token(row.lstar, may, g)
        if t_must < 0 or t_may < 0:
            continue  # nothing selectable in the mask (linear update): unspecified
        assert may[tok[r]], f"{where}: token {tok[r]} outside the kept set"
        assert np.isfinite(row.lstar[tok[r]]), f"{where}: token {tok[r]} has π* = 0"
        gap = R.top_two_gap(row.lstar, may, g)
        if t_must == t_may == t_ref and gap > 2 * tol + 1e-5:
            assert tok[r] == t_ref, f"{where}: token {tok[r]} != reference {t_ref} (gap {gap})"
            n_exact += 1
        extra, _ = R.linear_conditioning(row, row_scale(Z, Y, params, r))
        assert abs(lp[r] - row.lstar[tok[r]]) <= tol + extra[tok[r]] or row.lstar[tok[r]] < -20, (
            f"{where}: token log-prob {lp[r]} != ℓ*[{tok[r]}] = {row.lstar[tok[r]]}")
    return n_exact


@pytest.mark.parametrize("B,V,T", SHAPES_T)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("update", UPDATES)
def test_sample_greedy(la, B, V, T, rule, update):
    Z, Y = logits(2000 * B + V, B, V)
    params = dict(temperature=T, rule=rule, update=update)
    tok, lp, diag = la.sample(Z, Y, greedy=True, diagnostics=True, **params)
    assert tok.shape == (B,) and tok.dtype == np.int32
    n = check_tokens(la, tok, lp, diag, Z, Y, params, greedy=True)
    assert n >= B - 1


@pytest.mark.parametrize("seed,offset", [(0, 0), (7, 3), (0xDEADBEEFCAFEBABE, 2**33 + 5),
                                         (2**32 + 1, 2**32 - 1)])
@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("rule", ["fixed", "exact_kl"])
def test_sample_gumbel_matches_philox(la, seed, offset, update, rule):
    """SPEC §3.2/§4: the sampled token is argmax(ℓ* + g) with g from Philox4x32-10,
    key (lo32 s, hi32 s), counter (i/4, r, lo32 o, hi32 o) for one seed per call."""
    B, V = 9, 1003
    Z, Y = logits(3000 + seed % 97, B, V, scale=1.5)
    params = dict(temperature=1.0, rule=rule, update=update)
    tok, lp, diag = la.sample(Z, Y, seed=seed, offset=offset, diagnostics=True, **params)
    n = check_tokens(la, tok, lp, diag, Z, Y, params, greedy=False, seed=seed, offset=offset)
    assert n >= B - 1


def test_sample_per_row_seeds_and_offsets(la):
    """SPEC §4: with one seed per row, sub_r = 0, so a row draws the same token
    wherever it sits in the batch."""
    B, V = 7, 777
    Z, Y = logits(41, B, V, scale=1.5)
    seeds = np.array([1, 2, 3, 2**40 + 7, 0xFFFFFFFFFFFFFFFF, 9, 1], dtype=np.uint64)
    offs = np.array([0, 5, 2**32 + 3, 1, 7, 0, 100], dtype=np.uint64)
    params = dict(temperature=0.9)
    tok, lp = la.sample(Z, Y, seed=seeds, offset=offs, **params)
    n = check_tokens(la, tok, lp, None, Z, Y, params, greedy=False, seed=seeds, offset=offs)
    assert n >= B - 1
    perm = np.array([3, 0, 6, 1, 5, 2, 4])
    tok2, _ = la.sample(Z[perm], Y[perm], seed=seeds[perm], offset=offs[perm], **params)
    np.testing.assert_array_equal(tok2, tok[perm])
    t1, _ = la.sample(Z[3:4], Y[3:4], seed=seeds[3:4], offset=offs[3:4], **params)
    assert t1[0] == tok[3]
    # scalar seed: offsets per row
    tok3, lp3 = la.sample(Z, Y, seed=11, offset=offs, **params)
    check_tokens(la, tok3, lp3, None, Z, Y, params, greedy=False, seed=11, offset=offs)


def test_sample_deterministic(la):
    B, V = 9, 2001
    Z, Y = logits(42, B, V, scale=1.0)
    a = la.sample(Z, Y, seed=123, offset=4)[0]
    b = la.sample(Z, Y, seed=123, offset=4)[0]
    np.testing.assert_array_equal(a, b)
    c = la.sample(Z, Y, seed=123, offset=5)[0]
    e = la.sample(Z, Y, seed=124, offset=4)[0]
    assert not np.array_equal(a, c) and not np.array_equal(a, e)


MASKS = [dict(top_p=0.8), dict(top_p=0.3), dict(top_p=0.02), dict(top_k=1), dict(top_k=5),
         dict(top_k=50), dict(top_k=100000), dict(min_p=0.1), dict(min_p=0.6), dict(min_p=1.0),
         dict(top_p=0.9, top_k=20, min_p=0.05), dict(top_p=0.01, min_tokens_to_keep=4),
         dict(top_k=2, min_p=0.9, min_tokens_to_keep=3)]


@pytest.mark.parametrize("masks", MASKS, ids=lambda m: ",".join(f"{k}={v}" for k, v in m.items()))
@pytest.mark.parametrize("nucleus_source", ["principle", "aligned"])
@pytest.mark.parametrize("greedy", [True, False])
def test_sample_masks(la, masks, nucleus_source, greedy):
    B, V = 8, 613
    Z, Y = logits(51, B, V, scale=2.0)
    params = dict(temperature=0.7, update="tilt", rule="fixed")
    tok, lp = la.sample(Z, Y, greedy=greedy, seed=99, offset=1,
                        nucleus_source=nucleus_source, **masks, **params)
    check_tokens(la, tok, lp, None, Z, Y, params, greedy=greedy, seed=99, offset=1,
                 masks=masks, nucleus_source=nucleus_source)


@pytest.mark.parametrize("nucleus_source", ["principle", "aligned"])
@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("rule", RULES)
def test_sample_masks_rules(la, nucleus_source, update, rule):
    B, V = 6, 400
    Z, Y = logits(52, B, V, scale=2.0)
    masks = dict(top_p=0.8, top_k=40)
    params = dict(temperature=0.5, rule=rule, update=update)
    for greedy in (True, False):
        tok, lp, diag = la.sample(Z, Y, greedy=greedy, seed=3, nucleus_source=nucleus_source,
                                  diagnostics=True, **masks, **params)
        check_tokens(la, tok, lp, diag, Z, Y, params, greedy=greedy, seed=3, masks=masks,
                     nucleus_source=nucleus_source)


def test_sample_per_row_masks(la):
    B, V = 6, 500
    Z, Y = logits(53, B, V, scale=2.0)
    masks = dict(top_p=np.array([1.0, 0.5, 0.9, 0.1, 1.0, 0.7], dtype=np.float32),
                 top_k=np.array([0, 3, 0, 0, 10, 1], dtype=np.int32),
                 min_p=np.array([0.0, 0.0, 0.2, 0.0, 0.5, 0.0], dtype=np.float32))
    params = dict(temperature=0.8, ratio=np.array([2, 3, 2, 0, -1, 1], dtype=np.float32))
    for greedy in (True, False):
        tok, lp = la.sample(Z, Y, greedy=greedy, seed=17, offset=2, **masks, **params)
        check_tokens(la, tok, lp, None, Z, Y, params, greedy=greedy, seed=17, offset=2,
                     masks=masks)


@pytest.mark.parametrize("ratio", [2.0, 0.0, -1.0, 0.5])
@pytest.mark.parametrize("greedy", [True, False])
def test_sample_temperature_zero(la, ratio, greedy):
    """SPEC §2: T = 0 is allowed for token selection and means greedy: the limit
    T → 0, i.e. argmax over S of (1−η)z + ηy for the fixed rule and tilt update."""
    B, V = 9, 1001
    Z, Y = logits(61, B, V)
    tok, _ = la.sample(Z, Y, temperature=0.0, ratio=ratio, greedy=greedy, seed=4)
    for r in range(B):
        t, gap = R.greedy_limit_T0(Z[r], Y[r], float(f32(ratio)))
        if gap > 1e-4 * (1 + abs(ratio)) * 10:
            assert tok[r] == t, f"row {r}: {tok[r]} != {t}"


def test_sample_temperature_zero_per_row(la):
    """Per-row temperatures mixing 0 (greedy limit) and > 0 (Gumbel-max)."""
    B, V = 6, 700
    Z, Y = logits(63, B, V, scale=1.5)
    T = np.array([0.7, 0.0, 1.0, 0.0, 0.5, 0.0], dtype=np.float32)
    tok, lp = la.sample(Z, Y, temperature=T, seed=21, offset=9)
    hot = T > 0
    for r in np.flatnonzero(~hot):
        t, gap = R.greedy_limit_T0(Z[r], Y[r])
        if gap > 1e-3:
            assert tok[r] == t, f"row {r}"
    idx = np.flatnonzero(hot)
    # rows with T > 0 use sub-stream r of the whole call (one scalar seed)
    rows = reference_rows(Z[idx], Y[idx], dict(temperature=T[idx]))
    for k, r in enumerate(idx):
        g = R.gumbel(21, 9, r, V)
        want = R.select_token(rows[k].lstar, rows[k].support_mask, g)
        if R.top_two_gap(rows[k].lstar, rows[k].support_mask, g) > 1e-3:
            assert tok[r] == want, f"row {r}"


def test_sample_tiny_temperature(la):
    B, V = 5, 999
    Z, Y = logits(62, B, V)
    params = dict(temperature=1e-3)
    tok, lp = la.sample(Z, Y, greedy=False, seed=1, **params)
    assert np.all(tok >= 0) and not np.isnan(lp).any()
    check_tokens(la, tok, lp, None, Z, Y, params, greedy=False, seed=1)


# ---------------------------------------------------------------------------
# score (SPEC §3.3)
# ---------------------------------------------------------------------------


def check_scores(la, sc, Z, Y, targets, params, offsets=None, ignore_index=-100):
    d = diag_dict(sc.diagnostics)
    rows = reference_rows(Z, Y, params, d)
    B = len(rows)
    aligned, base, prin = to_np(sc.aligned), to_np(sc.base), to_np(sc.principle)
    assert aligned.shape == base.shape == prin.shape == (B,)
    tol_rows = []
    for r, row in enumerate(rows):
        t = int(targets[r])
        where = f"row {r} target {t} {params}"
        tol = R.lstar_atol(row.eta, row_scale(Z, Y, params, r))
        tol0 = R.lstar_atol(0.0, row_scale(Z, Y, params, r))
        tol_rows.append(tol)
        if t == ignore_index:
            assert aligned[r] == 0 and base[r] == 0 and prin[r] == 0, where
            continue
        if not row.valid:
            assert np.isnan(aligned[r]), where
            continue
        for name, got, ref, tl in (("aligned", aligned[r], row.lstar[t], tol),
                                   ("base", base[r], row.l[t], tol0),
                                   ("principle", prin[r], row.lp[t], tol0)):
            if name == "aligned":
                extra, amb = R.linear_conditioning(row, row_scale(Z, Y, params, r))
                if amb[t]:
                    continue  # on the linear update's clip boundary: either answer
                tl = tl + extra[t]
            if np.isneginf(ref):
                assert np.isneginf(got), f"{where}: {got} should be -inf"
            elif ref >= -20:
                assert abs(got - ref) <= tl, f"{where}: {name} {got} vs {ref} (tol {tl})"
            else:
                assert got < -19, f"{where}: {got} vs {ref}"
    if offsets is None:
        assert sc.seq_aligned is None and sc.seq_base is None and sc.seq_principle is None
        return
    o = np.asarray(offsets, dtype=np.int64)
    for name, got_all, vals in (("aligned", sc.seq_aligned, aligned), ("base", sc.seq_base, base),
                                ("principle", sc.seq_principle, prin)):
        got_all = to_np(got_all)
        assert got_all.shape == (o.size - 1,)
        for s in range(o.size - 1):
            rr = [r for r in range(o[s], o[s + 1]) if int(targets[r]) != ignore_index]
            refs = []
            for r in rr:
                row, t = rows[r], int(targets[r])
                refs.append({"aligned": row.lstar, "base": row.l, "principle": row.lp}[name][t])
            want = float(np.sum(refs)) if rr else 0.0
            if np.isnan(want):
                assert np.isnan(got_all[s]), f"seq {s} {name}"
            elif np.isneginf(want):
                assert np.isneginf(got_all[s]), f"seq {s} {name}"
            else:
                tol = sum(tol_rows[r] for r in rr) + 1e-6 * abs(want) + 1e-6
                assert abs(got_all[s] - want) <= tol, f"seq {s} {name}: {got_all[s]} vs {want}"


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("tdtype", [np.int32, np.int64])
def test_score(la, rule, update, tdtype):
    B, V = 9, 513
    Z, Y = logits(71, B, V, scale=1.5)
    rng = np.random.default_rng(72)
    targets = rng.integers(0, V, B).astype(tdtype)
    targets[[2, 6]] = -100
    Z[4, targets[4]] = -np.inf  # a masked target scores −inf
    offsets = np.array([0, 2, 2, 5, 9], dtype=np.int64)  # includes an empty sequence
    params = dict(temperature=0.8, rule=rule, update=update)
    sc = la.score(Z, Y, targets, seq_offsets=offsets, diagnostics=True, **params)
    assert isinstance(sc, la.Scores)
    assert sc.aligned.dtype == np.float32 and sc.aligned.shape == (B,)
    check_scores(la, sc, Z, Y, targets, params, offsets)
    assert np.isneginf(sc.aligned[4]) and np.isneginf(sc.seq_aligned[2])
    assert sc.seq_aligned[1] == 0
    # without offsets: no sums, same scores
    sc2 = la.score(Z, Y, targets, diagnostics=True, **params)
    check_scores(la, sc2, Z, Y, targets, params, None)
    np.testing.assert_array_equal(sc2.aligned, sc.aligned)


def test_score_matches_align(la):
    """ℓ*_t from score is ℓ*[t] from align (one contract, SPEC §3)."""
    B, V = 6, 1500
    Z, Y = logits(73, B, V)
    targets = np.arange(B, dtype=np.int64) * 97
    for params in (dict(), dict(rule="trust_region", update="linear", temperature=0.6)):
        lstar = la.align(Z, Y, **params)
        sc = la.score(Z, Y, targets, **params)
        rows = reference_rows(Z, Y, params)
        for r in range(B):
            tol = R.lstar_atol(rows[r].eta)
            assert abs(sc.aligned[r] - lstar[r, targets[r]]) <= tol or \
                (np.isneginf(sc.aligned[r]) and np.isneginf(lstar[r, targets[r]]))


def test_score_ignore_index_and_partial_offsets(la):
    B, V = 8, 100
    Z, Y = logits(74, B, V, partial=False)
    targets = np.array([1, -1, 99, 0, -1, 50, 3, -100], dtype=np.int64)
    offsets = np.array([1, 4, 4, 6], dtype=np.int64)  # sequences need not cover every row
    params = dict(ratio=np.linspace(-1, 3, B).astype(np.float32))
    # −100 is an out-of-range target when it is not the ignore_index (SPEC §5)
    with pytest.raises(ValueError, match="target"):
        la.score(Z, Y, targets, seq_offsets=offsets, ignore_index=-1, **params)
    targets2 = np.where(targets == -100, 5, targets)
    sc = la.score(Z, Y, targets2, seq_offsets=offsets, ignore_index=-1, **params)
    check_scores(la, sc, Z, Y, targets2, params, offsets, ignore_index=-1)


# ---------------------------------------------------------------------------
# torch tensors in, torch tensors out
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("rule", RULES)
def test_torch_align(la, torch, dtype, rule):
    B, V = 6, 777
    Z, Y = logits(81, B, V, scale=2.0)
    tdt = getattr(torch, dtype)
    Zt, Yt = torch.from_numpy(Z).to(tdt), torch.from_numpy(Y).to(tdt)
    params = dict(rule=rule, update="tilt", temperature=0.8)
    lstar, diag = la.align(Zt, Yt, diagnostics=True, **params)
    assert isinstance(lstar, torch.Tensor) and lstar.dtype == torch.float32
    assert isinstance(diag, dict)
    assert set(diag) >= {"eta", "mu", "sigma", "kl_base", "kl_principle", "entropy",
                         "support", "status"}
    assert diag["status"].dtype == torch.int32 and diag["eta"].dtype == torch.float32
    Zu, Yu = Zt.float().numpy(), Yt.float().numpy()  # SPEC §6: the same (upcast) inputs
    check_align_result(la, lstar, diag, Zu, Yu, params)


def test_torch_bf16_output_and_views(la, torch):
    B, V = 4, 1001
    X = torch.from_numpy(np.random.default_rng(82).normal(0, 2, (2 * B, V)).astype(np.float32))
    Zt, Yt = X[0::2], X[1::2]  # two halves of one [2B, V] output, no copy
    params = dict(temperature=1.0)
    lstar = la.align(Zt, Yt, out_dtype="bfloat16", **params)
    assert lstar.dtype == torch.bfloat16 and tuple(lstar.shape) == (B, V)
    rows = reference_rows(Zt.numpy(), Yt.numpy(), params)
    for r in range(B):
        check_lstar_row(to_np(lstar)[r], rows[r], bf16=True, where=f"bf16 row {r}")


def test_torch_sample_and_score(la, torch):
    B, V = 5, 333
    Z, Y = logits(83, B, V, scale=1.5)
    Zt, Yt = torch.from_numpy(Z), torch.from_numpy(Y)
    params = dict(temperature=torch.tensor([0.5, 0.7, 1.0, 1.2, 0.9]), rule="exact_kl",
                  epsilon=torch.tensor([0.1, 0.2, 0.05, 0.1, 0.3]))
    np_params = {k: (to_np(v) if hasattr(v, "numpy") else v) for k, v in params.items()}
    tok, lp, diag = la.sample(Zt, Yt, seed=8, offset=2, top_p=0.9, diagnostics=True, **params)
    assert isinstance(tok, torch.Tensor) and tok.dtype == torch.int32
    assert isinstance(lp, torch.Tensor) and lp.dtype == torch.float32
    check_tokens(la, tok, lp, diag, Z, Y, np_params, greedy=False, seed=8, offset=2,
                 masks=dict(top_p=0.9))
    tg, lpg = la.sample(Zt, Yt, greedy=True, diagnostics=False, **{**params, "rule": "fixed"})
    check_tokens(la, tg, lpg, None, Z, Y, {**np_params, "rule": "fixed"}, greedy=True)
    targets = torch.tensor([0, 5, -100, 332, 17])
    offsets = torch.tensor([0, 2, 5])
    sc = la.score(Zt, Yt, targets, seq_offsets=offsets, diagnostics=True, **params)
    assert isinstance(sc.aligned, torch.Tensor) and isinstance(sc.seq_aligned, torch.Tensor)
    check_scores(la, sc, Z, Y, targets.numpy(), np_params, offsets.numpy())


# ---------------------------------------------------------------------------
# call-level errors (SPEC §5, docs/PYTHON.md)
# ---------------------------------------------------------------------------

_Z, _Y = logits(91, 3, 10, partial=False)


@pytest.mark.parametrize("fn,kwargs,match", [
    ("align", dict(temperature=0.0), "temperature"),
    ("align", dict(temperature=-1.0), "temperature"),
    ("align", dict(temperature=float("nan")), "temperature"),
    ("score", dict(temperature=0.0), "temperature"),
    ("sample", dict(temperature=-0.5), "temperature"),
    ("align", dict(ratio=float("nan")), "ratio"),
    ("align", dict(rule="trust_region", epsilon=float("nan")), "epsilon"),
    ("align", dict(rule="exact_kl", epsilon=float("nan")), "epsilon"),
    ("sample", dict(top_p=0.0), "top_p"),
    ("sample", dict(top_p=1.5), "top_p"),
    ("sample", dict(top_p=-0.1), "top_p"),
    ("sample", dict(top_p=float("nan")), "top_p"),
    ("sample", dict(min_p=1.5), "min_p"),
    ("sample", dict(min_p=-0.1), "min_p"),
    ("sample", dict(min_tokens_to_keep=0), "min_tokens_to_keep"),
    ("align", dict(rule="nope"), "rule"),
    ("align", dict(update="quadratic"), "update"),
    ("sample", dict(nucleus_source="base"), "nucleus_source"),
    ("align", dict(temperature=np.ones(4, dtype=np.float32)), "temperature"),
    ("align", dict(ratio=np.ones(2, dtype=np.float32)), "ratio"),
    ("sample", dict(top_p=np.full(5, 0.5, dtype=np.float32)), "top_p"),
    ("sample", dict(seed=np.ones(2, dtype=np.uint64)), "seed"),
    ("sample", dict(offset=np.ones(4, dtype=np.uint64)), "offset"),
    ("score", dict(temperature=np.ones(2, dtype=np.float32)), "temperature"),
])
def test_bad_parameters(la, fn, kwargs, match):
    args = (_Z, _Y) + ((np.zeros(3, dtype=np.int64),) if fn == "score" else ())
    with pytest.raises(ValueError, match=match):
        getattr(la, fn)(*args, **kwargs)


@pytest.mark.parametrize("fn,name,value", [
    ("align", "temperature", [1.0, 0.0, 1.0]),
    ("align", "temperature", [1.0, np.nan, 1.0]),
    ("sample", "temperature", [1.0, -1.0, 1.0]),
    ("align", "ratio", [1.0, np.nan, 1.0]),
    ("sample", "top_p", [1.0, 0.0, 0.5]),
    ("sample", "top_p", [1.0, 1.5, 0.5]),
    ("sample", "min_p", [0.0, 2.0, 0.0]),
])
def test_bad_per_row_parameter(la, fn, name, value):
    """A bad value inside a per-row array: a ValueError naming the argument
    (SPEC §5 call-level error), or -- the other reading -- that row flagged
    BAD_PARAMETER with NaN outputs while the other rows are computed."""
    arr = np.array(value, dtype=np.float32)
    try:
        out = getattr(la, fn)(_Z, _Y, diagnostics=True, **{name: arr})
    except ValueError as e:
        assert name in str(e)
        return
    d = diag_dict(out[-1])
    assert int(d["status"][1]) & int(la.RowStatus.BAD_PARAMETER)
    if fn == "align":
        assert np.all(np.isnan(out[0][1]))
    else:
        assert out[0][1] == -1


@pytest.mark.parametrize("targets,match", [
    (np.array([0, 10, 1]), "target"),  # == V
    (np.array([0, -1, 1]), "target"),  # negative, not ignore_index
    (np.array([0, 1, -99]), "target"),
    (np.array([0, 1]), "target"),  # wrong B
    (np.array([[0, 1, 2]]), "target"),  # not 1-D
])
def test_bad_targets(la, targets, match):
    with pytest.raises(ValueError, match=match):
        la.score(_Z, _Y, targets)


@pytest.mark.parametrize("offsets", [np.array([0, 2, 1, 3]), np.array([0, 4]),
                                     np.array([-1, 3])])
def test_bad_seq_offsets(la, offsets):
    with pytest.raises(ValueError, match="offsets"):
        la.score(_Z, _Y, np.zeros(3, dtype=np.int64), seq_offsets=offsets.astype(np.int64))


@pytest.mark.parametrize("fn", ["align", "sample", "score"])
@pytest.mark.parametrize("case", ["cols", "rows", "1d_vs_2d"])
def test_mismatched_shapes(la, fn, case):
    Z = _Z
    Y = {"cols": _Y[:, :9].copy(), "rows": _Y[:2].copy(), "1d_vs_2d": _Y[0].copy()}[case]
    args = (Z, Y) + ((np.zeros(3, dtype=np.int64),) if fn == "score" else ())
    with pytest.raises(ValueError, match="base|principle"):
        getattr(la, fn)(*args)


def test_empty_vocabulary(la):
    Z = np.zeros((2, 0), dtype=np.float32)
    with pytest.raises(ValueError, match="base|principle|V|vocab"):
        la.align(Z, Z)


@pytest.mark.parametrize("bad", [object(), "logits", 3.0, None])
@pytest.mark.parametrize("fn", ["align", "sample"])
def test_not_an_array(la, fn, bad):
    with pytest.raises(TypeError):
        getattr(la, fn)(bad, _Y)
    with pytest.raises(TypeError):
        getattr(la, fn)(_Z, bad)


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_unsupported_dtype(la, dtype):
    with pytest.raises(TypeError):
        la.align(_Z.astype(dtype), _Y.astype(dtype))


def test_errors_write_nothing_and_library_still_works(la):
    """SPEC §5: an error aborts nothing; the next call works."""
    with pytest.raises(ValueError):
        la.align(_Z, _Y, temperature=0.0)
    out = la.align(_Z, _Y)
    check_align_result(la, out, None, _Z, _Y, {})


def test_sample_uniform_never_one(la):
    """SPEC §4: u = ((x >> 8) + 0.5)·2⁻²⁴ is strictly inside (0, 1).  For seed
    12345, offset 4116, sub-stream 0, token 3634 draws x >> 8 = 2²⁴ − 1, so
    u = 1 − 2⁻²⁵ and g ≈ 17.33 (finite); an fp32 evaluation that rounds u to 1.0
    would give g = +inf and pick that token however improbable it is."""
    V = 4096
    assert R.uniforms(12345, 4116, 0, V)[3634] == 1 - 2.0**-25
    Z = np.zeros((2, V), dtype=np.float32)
    Z[:, 3634] = -40.0
    for seed in (12345, np.array([12345, 12345], dtype=np.uint64)):
        tok, lp = la.sample(Z, Z.copy(), seed=seed, offset=4116)
        assert tok[0] != 3634
        check_tokens(la, tok, lp, None, Z, Z, {}, greedy=False, seed=seed, offset=4116)
