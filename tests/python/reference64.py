"""A plain float64 NumPy reference of linalign's contract (shared/SPEC.md).

Written from SPEC.md alone (no code of the library was read), so that this
reference and the library cannot share a mistake.  Every formula cites the
SPEC section it implements.  Everything is per row (SPEC §2: "rows never
interact"); the batch helpers just loop.

Public entry points
-------------------
- ``align_row(z, y, ...)``      -> ``Row`` (ℓ*, ℓ, ℓᵖ, η, μ, σ, KLs, H, |S|, status)
- ``align_batch(Z, Y, ...)``    -> (ℓ* [B, V], diagnostics dict of [B] arrays, rows)
- ``keep_mask(logq, ...)``      -> exact plausibility mask of SPEC §3
- ``keep_mask_bounds(logq, ...)`` -> (certainly kept, possibly kept) under a slack
- ``philox4x32_10``, ``uniforms``, ``gumbel``                 (SPEC §4)
- ``select_token(lstar, mask, g=None)``                      (SPEC §3.2)
- ``score_batch(Z, Y, targets, ...)``                        (SPEC §3.3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

NEG_INF = -np.inf

# Row status flags (SPEC §5 "Row-level errors"); the names match linalign.RowStatus.
NAN = "NAN"
POS_INF = "POS_INF"
EMPTY_SUPPORT = "EMPTY_SUPPORT"

DEFAULTS = dict(  # SPEC §2 "Defaults"
    temperature=1.0,
    rule="fixed",
    ratio=2.0,
    epsilon=0.1,
    eta_max=8.0,
    update="tilt",
    top_p=1.0,
    top_k=0,
    min_p=0.0,
    nucleus_source="principle",
    min_tokens_to_keep=1,
    ignore_index=-100,
)


# ---------------------------------------------------------------------------
# SPEC §2: one row
# ---------------------------------------------------------------------------


@dataclass
class Row:
    lstar: np.ndarray  # ℓ* over the vocabulary, -inf outside S (and clipped, linear)
    l: np.ndarray  # ℓ  (base log-softmax at T), -inf outside S
    lp: np.ndarray  # ℓᵖ (principle log-softmax at T), -inf outside S
    support_mask: np.ndarray  # bool [V], S
    delta: np.ndarray  # δ on S (0 outside, unused)
    eta: float
    mu: float
    sigma: float
    kl_base: float  # KL(π*‖π)
    kl_principle: float  # KL(π*‖πᵖ)
    entropy: float  # H(π*)
    support: int  # |S|
    status: set = field(default_factory=set)
    # linear update only: the factor 1 + η(δ_i − μ) (NaN outside S)
    linear_factor: np.ndarray | None = None

    @property
    def valid(self) -> bool:
        return not self.status


def row_status(z, y) -> set:
    """SPEC §5: a NaN or +inf logit in either row, or an empty S, is a row error."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    st = set()
    if np.isnan(z).any() or np.isnan(y).any():
        st.add(NAN)
    if np.isposinf(z).any() or np.isposinf(y).any():
        st.add(POS_INF)
    if not (np.isfinite(z) & np.isfinite(y)).any():
        st.add(EMPTY_SUPPORT)
    return st


def support(z, y) -> np.ndarray:
    """SPEC §2 Support: S = { i : z_i and y_i are both finite }."""
    return np.isfinite(z) & np.isfinite(y)


def log_softmax_on(x, S) -> np.ndarray:
    """SPEC §2 Log-softmax over S, after subtracting the maximum (never overflows)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, NEG_INF, dtype=np.float64)
    xs = x[S]
    m = xs.max()
    lse = m + math.log(np.exp(xs - m).sum())
    out[S] = xs - lse
    return out


def _lse(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return NEG_INF
    m = a.max()
    return m + math.log(np.exp(a - m).sum())


def tilt_lstar(l, delta, S, eta) -> np.ndarray:
    """SPEC §2 tilt: ℓ*_i = ℓ_i + η δ_i − log Σ_{j∈S} exp(ℓ_j + η δ_j); −inf outside S."""
    out = np.full(l.shape, NEG_INF, dtype=np.float64)
    a = l[S] + eta * delta[S]
    out[S] = a - _lse(a)
    return out


def linear_lstar(l, delta, mu, S, eta):
    """SPEC §2 linear: π*_i ∝ max(0, π_i (1 + η (δ_i − μ))), renormalised over S;
    clipped tokens (and tokens outside S) get ℓ* = −inf.  Returns (ℓ*, factor)."""
    out = np.full(l.shape, NEG_INF, dtype=np.float64)
    factor = np.full(l.shape, np.nan, dtype=np.float64)
    f = 1.0 + eta * (delta[S] - mu)  # 1 + η (δ_i − μ)
    factor[S] = f
    pos = f > 0
    lS = np.full(f.shape, NEG_INF)
    lS[pos] = l[S][pos] + np.log(f[pos])  # log(π_i (1 + η(δ_i − μ)))
    out[S] = lS - _lse(lS)  # renormalise over S
    return out, factor


def kl(lp_a, lp_b, S) -> float:
    """KL(a‖b) = Σ_{i∈S, a_i>0} a_i (log a_i − log b_i)."""
    a = lp_a[S]
    b = lp_b[S]
    m = np.isfinite(a)
    return float(np.sum(np.exp(a[m]) * (a[m] - b[m])))


def entropy(lstar, S) -> float:
    """H(π*) = −Σ π*_i ℓ*_i (0·log 0 = 0)."""
    a = lstar[S]
    m = np.isfinite(a)
    return float(-np.sum(np.exp(a[m]) * a[m]))


def tilt_kl(l, delta, S, eta) -> float:
    """KL(π_η‖π) of the tilted family π_η ∝ π·exp(η δ) (SPEC §2 exact_kl)."""
    return kl(tilt_lstar(l, delta, S, eta), l, S)


def mean_std(lS, dS):
    """SPEC §2: μ = Σ_i π_i δ_i and σ² = Σ_i π_i (δ_i − μ)² with π = exp(ℓ), over S.
    Evaluated so that tiny T loses nothing: μ is centred on the δ of the most
    probable token, and σ² is summed in the log domain (π_i may underflow
    float64 at T → 0 while σ is still > 0).  Returns (μ, σ, log σ); σ = 0
    (log σ = −inf) exactly when δ is constant on S."""
    pi = np.exp(lS)
    j = int(np.argmax(lS))
    mu = float(dS[j] + np.sum(pi * (dS - dS[j])))  # μ = Σ π_i δ_i
    if dS.max() == dS.min():
        return float(dS[0]), 0.0, NEG_INF
    dev = dS - mu
    nz = dev != 0.0
    log_s2 = _lse(lS[nz] + 2.0 * np.log(np.abs(dev[nz])))  # log Σ π_i (δ_i − μ)²
    if not np.isfinite(log_s2):  # only rounding separated δ from μ
        log_s2 = math.log(max(float(np.sum(pi * (dS - mu) ** 2)), 1e-320))
    return mu, math.exp(0.5 * log_s2), 0.5 * log_s2


def eta_trust_region_log(log_sigma, epsilon, eta_max) -> float:
    """eta_trust_region with σ given as log σ (no underflow at tiny T)."""
    if log_sigma == NEG_INF:
        return 0.0  # σ = 0
    return float(min(float(eta_max), math.exp(min(700.0, 0.5 * math.log(2.0 * float(epsilon)) - log_sigma))))


def eta_fixed(ratio) -> float:
    """SPEC §2 fixed: η = 1 + ratio."""
    return 1.0 + float(ratio)


def eta_trust_region(sigma, epsilon, eta_max) -> float:
    """SPEC §2 trust_region: η = min(η_max, sqrt(2ε)/σ); η = 0 when σ = 0."""
    if sigma == 0.0:
        return 0.0
    return min(float(eta_max), math.sqrt(2.0 * float(epsilon)) / sigma)


def eta_exact_kl(kl_of_eta, epsilon, eta_max, iters=200) -> float:
    """SPEC §2 exact_kl: the η ∈ [0, η_max] with KL(π_η‖π) = ε (KL increasing in η),
    by bisection in float64 (far tighter than the 1e-4·ε the library must reach);
    η_max when even KL(π_{η_max}‖π) < ε.

    ``kl_of_eta(η)`` is KL(π_η‖π) for the policy π_η that the row's update form
    produces at step η.  Reading of SPEC §2: exact_kl is the exact version of the
    trust region "KL(π*‖π) ≤ ε", so π_η is the aligned policy π* actually returned
    (the tilted family for ``tilt`` -- where SPEC's dKL/dη = η·Var_{π_η}[δ] holds --
    and the clipped first-order policy for ``linear``); the reported
    diagnostic KL(π*‖π) then equals ε."""
    eps = float(epsilon)
    hi = float(eta_max)
    if kl_of_eta(hi) < eps:
        return hi
    lo = 0.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if kl_of_eta(mid) < eps:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def linear_kl(l, delta, mu, S, eta) -> float:
    """KL(π_η‖π) of the linear update at step η."""
    return kl(linear_lstar(l, delta, mu, S, eta)[0], l, S)


def family_kl(update, l, delta, mu, S):
    """η ↦ KL(π_η‖π) for the update form (see eta_exact_kl)."""
    if update == "tilt":
        return lambda e: tilt_kl(l, delta, S, e)
    if update == "linear":
        return lambda e: linear_kl(l, delta, mu, S, e)
    raise ValueError(f"unknown update {update!r}")


def dkl_deta(update, l, delta, mu, S, eta) -> float:
    """dKL/dη of the update form's family at η (SPEC §2 gives η·Var_{π_η}[δ] for
    tilt; a central difference serves for both forms)."""
    if update == "tilt":
        ls = tilt_lstar(l, delta, S, eta)
        p = np.exp(ls[S])
        d = delta[S]
        m = np.sum(p * d)
        return float(eta * np.sum(p * (d - m) ** 2))
    f = family_kl(update, l, delta, mu, S)
    h = 1e-6 * max(1.0, abs(eta))
    return float((f(eta + h) - f(max(0.0, eta - h))) / (eta + h - max(0.0, eta - h)))


def align_row(
    z,
    y,
    temperature=DEFAULTS["temperature"],
    rule=DEFAULTS["rule"],
    ratio=DEFAULTS["ratio"],
    epsilon=DEFAULTS["epsilon"],
    eta_max=DEFAULTS["eta_max"],
    update=DEFAULTS["update"],
    eta=None,
) -> Row:
    """One row of SPEC §2.  ``eta`` overrides the step rule (used to evaluate
    ℓ* and the diagnostics at the η a library reports for exact_kl)."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    V = z.shape[0]
    T = float(temperature)
    status = row_status(z, y)
    S = support(z, y)
    nanrow = np.full(V, np.nan)
    if status:
        # SPEC §5: an invalid row's log-probs are NaN, its token −1, its score NaN.
        return Row(nanrow, nanrow.copy(), nanrow.copy(), S, np.zeros(V), np.nan,
                   np.nan, np.nan, np.nan, np.nan, np.nan, int(S.sum()), status)
    l = log_softmax_on(z / T, S)  # SPEC §2 Log-softmax: ℓ = z/T − lse_S(z/T)
    lp = log_softmax_on(y / T, S)  # ℓᵖ = y/T − lse_S(y/T)
    delta = np.zeros(V)
    delta[S] = lp[S] - l[S]  # SPEC §2: δ_i = ℓᵖ_i − ℓ_i
    mu, sigma, log_sigma = mean_std(l[S], delta[S])
    if eta is None:
        if rule == "fixed":
            eta = eta_fixed(ratio)
        elif rule == "trust_region":
            eta = eta_trust_region_log(log_sigma, epsilon, eta_max)
        elif rule == "exact_kl":
            eta = eta_exact_kl(family_kl(update, l, delta, mu, S), epsilon, eta_max)
        else:
            raise ValueError(f"unknown rule {rule!r}")
    eta = float(eta)
    factor = None
    if update == "tilt":
        lstar = tilt_lstar(l, delta, S, eta)
    elif update == "linear":
        lstar, factor = linear_lstar(l, delta, mu, S, eta)
    else:
        raise ValueError(f"unknown update {update!r}")
    return Row(
        lstar=lstar,
        l=l,
        lp=lp,
        support_mask=S,
        delta=delta,
        eta=eta,
        mu=mu,
        sigma=sigma,
        kl_base=kl(lstar, l, S),  # SPEC §2 diagnostics: KL(π*‖π)
        kl_principle=kl(lstar, lp, S),  # KL(π*‖πᵖ)
        entropy=entropy(lstar, S),  # H(π*)
        support=int(S.sum()),  # |S|
        status=status,
        linear_factor=factor,
    )


def _per_row(value, B):
    """A scalar for every row, or one value per row (SPEC §2 Defaults, §7)."""
    a = np.asarray(value)
    if a.ndim == 0:
        return [a.item()] * B
    assert a.shape == (B,), a.shape
    return [v.item() for v in a]


ALIGN_KEYS = ("temperature", "rule", "ratio", "epsilon", "eta_max", "update")


def align_batch(Z, Y, eta=None, **params):
    """SPEC §2 for a batch: returns (ℓ* [B,V], diag dict of [B] arrays, [Row])."""
    Z = np.asarray(Z, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    B, V = Z.shape
    p = {k: params.get(k, DEFAULTS[k]) for k in ALIGN_KEYS}
    unknown = set(params) - set(ALIGN_KEYS)
    assert not unknown, unknown
    cols = {k: (_per_row(v, B) if not isinstance(v, str) else [v] * B) for k, v in p.items()}
    etas = _per_row(eta, B) if eta is not None else [None] * B
    rows = []
    for r in range(B):
        rows.append(align_row(Z[r], Y[r], eta=etas[r], **{k: cols[k][r] for k in ALIGN_KEYS}))
    lstar = np.stack([rw.lstar for rw in rows]) if B else np.zeros((0, V))
    diag = {k: np.array([getattr(rw, k) for rw in rows], dtype=np.float64)
            for k in ("eta", "mu", "sigma", "kl_base", "kl_principle", "entropy")}
    diag["support"] = np.array([rw.support for rw in rows])
    diag["status"] = [rw.status for rw in rows]
    return lstar, diag, rows


# ---------------------------------------------------------------------------
# SPEC §3.2: plausibility masks and token selection
# ---------------------------------------------------------------------------


def rank_order(q) -> np.ndarray:
    """Rank of each token by probability, descending, ties broken by lower index
    (SPEC §3: "top-k keeps tokens whose rank (ties broken by lower index) is < k")."""
    order = np.lexsort((np.arange(q.size), -q))
    rank = np.empty(q.size, dtype=np.int64)
    rank[order] = np.arange(q.size)
    return rank


def keep_mask(logq, top_p=1.0, top_k=0, min_p=0.0, min_tokens_to_keep=1) -> np.ndarray:
    """The exact mask of SPEC §3.2 on the source distribution q = exp(logq)
    (−inf outside S).  Each active mask keeps a set; a token is kept when every
    active mask keeps it, or when it is among the ``min_tokens_to_keep`` most
    probable tokens (CLI: "the masks always keep the N most probable tokens").
    Tokens outside S are never kept."""
    must, may = keep_mask_bounds(logq, top_p, top_k, min_p, min_tokens_to_keep, rel=0.0, mass=0.0)
    assert np.array_equal(must, may)
    return must


def keep_mask_bounds(logq, top_p=1.0, top_k=0, min_p=0.0, min_tokens_to_keep=1,
                     rel=0.0, mass=0.0):
    """(certainly kept, possibly kept) when every probability may be off by a
    factor (1 ± rel) and every partial mass by ± mass.  With rel = mass = 0 both
    are the exact SPEC §3.2 mask.

    - top-p keeps i iff Σ_{j: q_j > q_i} q_j < p ("ties at the boundary are all
      kept; at least one token is always kept"); p = 1 is "off".
    - top-k keeps i iff rank(i) < k (ties by lower index); k = 0 is "off".
    - min-p keeps i iff q_i ≥ min_p · max q; min_p = 0 is "off".
    - min_tokens_to_keep N ≥ 1 keeps the N top-ranked tokens in any case.
    """
    logq = np.asarray(logq, dtype=np.float64)
    S = np.isfinite(logq)
    q = np.where(S, np.exp(np.where(S, logq, 0.0)), 0.0)
    up, dn = 1.0 + rel, 1.0 - rel

    # Sort once, descending; cumulative sums let us evaluate "mass of tokens with
    # q_j > threshold" for any threshold.
    desc = np.sort(q[S])[::-1]
    csum = np.concatenate([[0.0], np.cumsum(desc)])

    def mass_above(thr):  # Σ_{j∈S: q_j > thr}, elementwise over an array of thresholds
        n = np.searchsorted(-desc, -thr, side="left")  # count of desc > thr
        return csum[n]

    def count_above(thr):  # #{j∈S: q_j > thr}
        return np.searchsorted(-desc, -thr, side="left")

    def count_at_least(thr):  # #{j∈S: q_j >= thr}
        return np.searchsorted(-desc, -thr, side="right")

    must = S.copy()
    may = S.copy()

    if top_p < 1.0:
        # exact: mass strictly above q_i
        lo_mass = mass_above(q * up) - mass  # fewest tokens above
        hi_mass = mass_above(q * dn) - (q if rel > 0 else 0.0) + mass  # i itself not counted
        if rel == 0.0 and mass == 0.0:
            hi_mass = lo_mass
        must &= hi_mass < top_p
        may &= lo_mass < top_p
    if top_k > 0:
        if rel == 0.0:
            rk = rank_order(np.where(S, q, -1.0))
            must &= rk < top_k
            may &= rk < top_k
        else:
            rmin = count_above(q * up)
            rmax = count_at_least(q * dn) - 1  # all near-ties ahead
            must &= rmax < top_k
            may &= rmin < top_k
    if min_p > 0.0:
        qmax = q.max() if S.any() else 0.0
        must &= q >= min_p * qmax * up * up
        may &= q >= min_p * qmax * dn * dn
    n = int(min_tokens_to_keep)
    if n >= 1 and S.any():
        if rel == 0.0:
            rk = rank_order(np.where(S, q, -1.0))
            keep_must = keep_may = (rk < n) & S
        else:
            rmin = count_above(q * up)
            rmax = count_at_least(q * dn) - 1
            keep_must = (rmax < n) & S
            keep_may = (rmin < n) & S
        must |= keep_must
        may |= keep_may
    return must, may


def select_token(lstar, mask, g=None) -> int:
    """SPEC §3.2: greedy = argmax of ℓ* over the mask, ties to the lower index;
    sampling = argmax of ℓ* + g over the mask.  −1 when nothing is selectable."""
    s = np.asarray(lstar, dtype=np.float64).copy()
    if g is not None:
        s = s + g
    s[~mask] = NEG_INF
    if not np.isfinite(s).any():
        return -1
    return int(np.argmax(s))  # np.argmax returns the first (lowest) index of the max


def top_two_gap(lstar, mask, g=None) -> float:
    """Gap between the best and second best score over the mask (inf if < 2)."""
    s = np.asarray(lstar, dtype=np.float64).copy()
    if g is not None:
        s = s + g
    s = s[mask & np.isfinite(s)]
    if s.size < 2:
        return np.inf
    t = np.sort(s)[-2:]
    return float(t[1] - t[0])


# ---------------------------------------------------------------------------
# SPEC §4: Philox4x32-10 and the Gumbel noise
# ---------------------------------------------------------------------------

_M32 = np.uint64(0xFFFFFFFF)
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """SPEC §4: ten rounds of (hi0, lo0) = M0·c0, (hi1, lo1) = M1·c2,
    counter ← (hi1 ⊕ c1 ⊕ k0, lo1, hi0 ⊕ c3 ⊕ k1, lo0), key += (9e3779b9, bb67ae85).
    Arguments: 32-bit values (ints or arrays); returns four uint64 arrays of
    32-bit words."""
    c = [np.asarray(v, dtype=np.uint64) & _M32 for v in (c0, c1, c2, c3)]
    k0 = np.asarray(k0, dtype=np.uint64) & _M32
    k1 = np.asarray(k1, dtype=np.uint64) & _M32
    c0, c1, c2, c3 = np.broadcast_arrays(*c)
    for _ in range(10):
        p0 = _PHILOX_M0 * c0  # 64-bit product of two 32-bit values: no overflow
        p1 = _PHILOX_M1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & _M32
        hi1, lo1 = p1 >> np.uint64(32), p1 & _M32
        c0, c1, c2, c3 = (hi1 ^ c1 ^ k0), lo1, (hi0 ^ c3 ^ k1), lo0
        k0 = (k0 + _PHILOX_W0) & _M32
        k1 = (k1 + _PHILOX_W1) & _M32
    return c0, c1, c2, c3


def uniforms(seed, offset, sub, V) -> np.ndarray:
    """SPEC §4: for token i, key = (lo32(s), hi32(s)), counter =
    (i/4, sub_r, lo32(o), hi32(o)); lane i%4 gives x; u = ((x >> 8) + 0.5)·2⁻²⁴,
    evaluated exactly (float64), so that u is strictly inside (0, 1) as SPEC §4
    requires.  (SPEC calls the value "exact in fp32"; it needs 25 significant
    bits when x >> 8 ≥ 2²³, and for x >> 8 = 2²⁴ − 1 an fp32 evaluation rounds
    u to 1.0, i.e. g = +inf.)"""
    s = int(seed) & 0xFFFFFFFFFFFFFFFF
    o = int(offset) & 0xFFFFFFFFFFFFFFFF
    nblk = (V + 3) // 4
    blk = np.arange(nblk, dtype=np.uint64)
    out = philox4x32_10(blk, int(sub) & 0xFFFFFFFF, o & 0xFFFFFFFF, o >> 32,
                        s & 0xFFFFFFFF, s >> 32)
    lanes = np.stack(out, axis=1).reshape(-1)[:V]  # word (i/4, i%4)
    return ((lanes >> np.uint64(8)).astype(np.float64) + 0.5) * 2.0 ** -24


def gumbel(seed, offset, sub, V) -> np.ndarray:
    """SPEC §3.2: g_i = −log(−log(u_i))."""
    u = uniforms(seed, offset, sub, V)
    return -np.log(-np.log(u))


# ---------------------------------------------------------------------------
# SPEC §3.2: sample (reference tokens) and §3.3: score
# ---------------------------------------------------------------------------


def source_logq(row: Row, nucleus_source: str) -> np.ndarray:
    """SPEC §3.2: the masks are computed on πᵖ (principle) or on π* (aligned)."""
    if nucleus_source == "principle":
        return row.lp
    if nucleus_source == "aligned":
        return row.lstar
    raise ValueError(nucleus_source)


def sample_batch(Z, Y, *, greedy=False, top_p=1.0, top_k=0, min_p=0.0,
                 nucleus_source="principle", min_tokens_to_keep=1, seed=0, offset=0,
                 eta=None, **params):
    """Reference tokens of SPEC §3.2 with the exact mask (no slack).
    Per-row ``seed`` (an array) uses sub_r = 0, a scalar seed sub_r = r (SPEC §4)."""
    lstar, diag, rows = align_batch(Z, Y, eta=eta, **params)
    B, V = lstar.shape
    per_row_seed = np.ndim(seed) == 1
    seeds = _per_row(seed, B)
    offs = _per_row(offset, B)
    tp, tk, mp, mk = (_per_row(v, B) for v in (top_p, top_k, min_p, min_tokens_to_keep))
    toks = np.full(B, -1, dtype=np.int64)
    logp = np.full(B, np.nan)
    for r, row in enumerate(rows):
        if not row.valid:
            continue
        m = keep_mask(source_logq(row, nucleus_source), tp[r], tk[r], mp[r], mk[r])
        g = None if greedy else gumbel(seeds[r], offs[r], 0 if per_row_seed else r, V)
        t = select_token(row.lstar, m, g)
        toks[r] = t
        if t >= 0:
            logp[r] = row.lstar[t]  # SPEC §3.2: log-probability of the chosen token under π*
    return toks, logp, diag, rows


def score_batch(Z, Y, targets, seq_offsets=None, ignore_index=-100, eta=None, **params):
    """SPEC §3.3: ℓ*_t, ℓ_t, ℓᵖ_t per row; 0 for ignored rows (excluded from sums);
    NaN for invalid rows; per-sequence sums over rows [o[s], o[s+1])."""
    lstar, diag, rows = align_batch(Z, Y, eta=eta, **params)
    targets = np.asarray(targets).astype(np.int64)
    B = lstar.shape[0]
    out = {k: np.zeros(B) for k in ("aligned", "base", "principle")}
    for r, row in enumerate(rows):
        t = int(targets[r])
        if t == ignore_index:
            continue  # scores 0
        out["aligned"][r] = row.lstar[t]  # NaN for invalid rows (SPEC §5)
        out["base"][r] = row.l[t]
        out["principle"][r] = row.lp[t]
    seq = None
    if seq_offsets is not None:
        o = np.asarray(seq_offsets).astype(np.int64)
        seq = {}
        for k in ("aligned", "base", "principle"):
            sums = []
            for s in range(o.size - 1):
                rr = [r for r in range(o[s], o[s + 1]) if targets[r] != ignore_index]
                sums.append(float(np.sum(out[k][rr])) if rr else 0.0)
            seq[k] = np.array(sums)
    return out, seq, diag, rows


# ---------------------------------------------------------------------------
# SPEC §2, T = 0 (token selection only): the limit T → 0 of the fixed rule
# ---------------------------------------------------------------------------


def greedy_limit_T0(z, y, ratio=2.0):
    """SPEC §2: T = 0 means greedy, the limit T → 0.  For the fixed rule with
    the tilt update, ℓ* = log_softmax(((1−η) z + η y)/T) over S, so the limit
    token is argmax_S ((1−η) z + η y), ties to the lower index.  Returns
    (token, gap between the two best combined logits)."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    eta = eta_fixed(ratio)
    S = support(z, y)
    c = np.full(z.shape, NEG_INF)
    c[S] = (1.0 - eta) * z[S] + eta * y[S]
    t = int(np.argmax(c))
    srt = np.sort(c[S])
    gap = float(srt[-1] - srt[-2]) if srt.size >= 2 else np.inf
    return t, gap


# ---------------------------------------------------------------------------
# SPEC §6: tolerances
# ---------------------------------------------------------------------------


def magnitude_scale(z, y, temperature) -> float:
    """SPEC §6: the bounds hold for |z/T|, |y/T| ≤ 100; beyond that they scale
    with the magnitude."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a = np.concatenate([z[np.isfinite(z)], y[np.isfinite(y)]]) / float(temperature)
    m = float(np.abs(a).max()) if a.size else 0.0
    return max(1.0, m / 100.0)


def lstar_atol(eta, scale=1.0) -> float:
    """SPEC §6: ℓ* within 1e-4·max(1, |η|) absolute wherever ℓ*_i ≥ −20."""
    return 1e-4 * max(1.0, abs(float(eta))) * scale


def stat_tol(ref, scale=1.0) -> float:
    """SPEC §6: η, μ, σ, KL, H within 1e-4 relative plus 1e-5 absolute."""
    return (1e-4 * abs(float(ref)) + 1e-5) * scale


def linear_conditioning(row: Row, scale=1.0):
    """The linear update near its clip boundary (SPEC §2) is ill-conditioned in
    the fp32 arithmetic SPEC §6 prescribes: f_i = 1 + η(δ_i − μ) is formed from
    δ_i = ℓᵖ_i − ℓ_i and μ, each carrying an fp32 rounding of order
    2⁻²⁴·(|ℓ_i| + |ℓᵖ_i| + |μ|), so f_i carries an absolute error of about
    err_f = 2·2⁻²⁴·(1 + |η|(|ℓ_i| + |ℓᵖ_i| + |μ|)) and log f_i (a term of ℓ*_i) an
    error err_f / f_i, which exceeds SPEC §6's 1e-4·max(1,|η|) when f_i is small.
    Returns (extra absolute ℓ* tolerance per token, mask of tokens whose
    clipping (f_i ≤ 0) cannot be decided at that precision)."""
    V = row.lstar.shape[0]
    extra = np.zeros(V)
    amb = np.zeros(V, dtype=bool)
    if row.linear_factor is None or not row.valid:
        return extra, amb
    S = row.support_mask
    f = row.linear_factor[S]
    err_f = 2.0 * 2.0**-24 * (1.0 + abs(row.eta) * (np.abs(row.l[S]) + np.abs(row.lp[S])
                                                   + abs(row.mu))) * scale
    a = np.abs(f) <= 4.0 * err_f
    amb[S] = a
    e = np.zeros(f.shape)
    e[~a] = err_f[~a] / np.abs(f[~a])
    extra[S] = e
    return extra, amb
