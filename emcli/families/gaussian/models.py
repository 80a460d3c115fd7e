"""Covariance models as values: one row of a table per model, no strings compared elsewhere.

A model says how the k covariance matrices are constrained.  mclust's 14 models (Celeux &
Govaert 1995; Fraley & Raftery 2002) write each covariance as

    Sigma_k = lambda_k D_k A_k D_k^T

with volume lambda_k (det(Sigma_k)^(1/d)), shape A_k (diagonal, det 1) and orientation D_k
(orthogonal), each Equal across components, Variable, or the Identity: EII, VII, EEI, VEI,
EVI, VVI, EEE, VEE, EVE, VVE, EEV, VEV, EVV, VVV, and E, V for one column.  scikit-learn's
four types are rows too, as aliases of mclust's: full = VVV, tied = EEE, diag = VVI,
spherical = VII.

Each row names

* ``form``: how the covariances are stored and how densities are computed (the kernels'
  kind): ``full`` (k, d, d), ``tied`` (one (d, d) for all), ``diag`` (k, d) or
  ``spherical`` (k,) -- the model file's shapes too (EII and EEI repeat their shared value
  per component);
* ``stats``: which second moments the M-step needs: ``full`` (k, d, d), ``pooled`` (d, d,
  summed over the components) or ``diag`` (k, d);
* the number of free covariance parameters (mclust's ``nVarParams``) and the covariance
  M-step from the scatter matrices W_k = sum_i r_ik (x_i - m_k)(x_i - m_k)^T.

The M-step maximises sum_k [n_k log det Sigma_k^-1 - tr(W_k Sigma_k^-1)] under the
model's constraint.  ``reg_covar`` enters as n_k * reg_covar added to the diagonal of each
W_k, which for the unconstrained models is exactly scikit-learn's floor (reg_covar on the
diagonal of each covariance) and keeps every constrained model in its own family.  VEI, VEE,
EVE, VVE and VEV have no closed form: their M-steps alternate conditional maximisations
(Celeux & Govaert 1995; for the common orientation of EVE and VVE, sweeps of plane
rotations each of which minimises the objective over its plane in closed form, the pairwise
scheme of Flury & Gautschi's common principal components), starting from the previous
iteration's parameters so that no M-step lowers the expected complete-data log-likelihood,
until its relative change is below ``INNER_TOL`` (sqrt(machine epsilon), mclust's default)
or ``INNER_MAX_ITER`` rounds; from the previous iteration's parameters, the orientation of
EVE and VVE for ``WARM_ORIENTATION_SWEEPS`` sweep and the volumes of VEI, VEE and VEV for at
most ``WARM_VOLUME_ROUNDS`` rounds (generalised EM steps).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]
INNER_TOL = float(np.sqrt(np.finfo(np.float64).eps))
INNER_MAX_ITER = 1000
# Sweeps of the orientation iteration of EVE and VVE in an M-step that starts from the
# previous iteration's orientation (a generalised EM step: each sweep raises the expected
# complete-data log-likelihood, and at EM's convergence the orientation has converged too).
# A sweep rotates every pair of axes once by the angle that is best for that pair, so one
# sweep does more than the 6 majorise-minimise rounds (Browne & McNicholas 2014, two SVDs a
# round) it replaced: over mclust's seven data sets a selection took 15-23% less time, and
# every cell but one (diabetes VVE,8, another local optimum) stayed at least at mclust's.
WARM_ORIENTATION_SWEEPS = 1
# Rounds of the alternation of VEI, VEE and VEV (shape | volumes, volumes | shape) in an
# M-step that starts from the previous iteration's volumes: each round is a conditional
# maximisation, so any number is a generalised EM step.  Run to INNER_TOL they took about 3.4
# rounds an M-step; capped at 3 a selection over mclust's seven data sets took 6% less time
# with the same cells at least mclust's (capped at 1: 9% less, three cells fewer).
WARM_VOLUME_ROUNDS = 3
# Previous covariances nearly sharing an orientation (off-diagonal within this fraction of
# the largest entry in the basis of their combination's eigenvectors) start the orientation
# there, warm: SQUAREM's extrapolated points (``emcli.em.squarem``, stepped back into the
# model by one M-step) are such, and a cold start from each took 140 rounds, 40% of a
# selection's time on thyroid.  A previous point of the model shares one to rounding.
NEAR_ORIENTATION = 0.1
# The models whose M-step iterates for a shared orientation (``start_guess``).
ORIENTATION_MODELS = ("EVE", "VVE")
_TINY = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class Scatter:
    """Second moments about the new means, as the covariance M-step needs them.

    Attributes:
        n_k: responsibility mass of each component, shape (k,) (guarded against 0).
        w: scatter sum_i r_ij (x_i - m_j)(x_i - m_j)^T: (k, d, d) for ``stats == "full"``,
            (d, d) summed over components for ``pooled``, the diagonals (k, d) for ``diag``.
    """

    n_k: Array
    w: Array


MStep = Callable[[Scatter, float, "Array | None"], Array]


@dataclass(frozen=True)
class CovarianceModel:
    """One covariance model (a row of ``MODELS``).

    ``linear``: the constraint survives linear combinations of parameters (SQUAREM may
    extrapolate them); ``iterative``: the M-step has no closed form (``INNER_TOL``).
    """

    name: str
    mclust: str
    form: str
    stats: str
    n_free: Callable[[int, int], int]
    m_step: MStep
    description: str
    linear: bool = True
    iterative: bool = False

    def n_parameters(self, k: int, d: int) -> int:
        """Free covariance parameters for k components in d dimensions (mclust's)."""
        return int(self.n_free(k, d))

    def same(self, other: CovarianceModel) -> bool:
        """Whether two rows are the same model (``full`` and ``VVV`` are)."""
        return self.mclust == other.mclust

    def nested_in(self, other: CovarianceModel) -> bool:
        """``nested_in(self, other)``: every covariance set of this model is one of
        ``other``'s."""
        return _nested(self.mclust, other.mclust)

    @property
    def univariate(self) -> bool:
        """mclust's one-column models E and V (only for d == 1)."""
        return len(self.mclust) == 1

    def __str__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[Callable[[str], CovarianceModel], tuple[str]]:
        # Pickled by name (the rows hold lambdas; model selection ships fitted models
        # between processes), and unpickled as the same row of ``MODELS``.
        return covariance_model, (self.name,)


# ---------------------------------------------------------------------------- helpers
# Every M-step takes a Scatter with leading axes of starts (the batched loop of
# ``emcli.families.gaussian.small`` fits several starts at once) or none: n_k (..., k) and
# w (..., k, d, d), (..., d, d) pooled or (..., k, d) diagonal; ``previous`` has the same
# leading axes.  An iterative M-step runs until each start's own iteration has converged,
# and a start that converged keeps what it had then: each start gets what it gets alone.
def _regularised_full(s: Scatter, reg: float) -> Array:
    w = s.w + s.w.swapaxes(-1, -2)
    w *= 0.5
    d = w.shape[-1]
    diagonal = w.reshape(*w.shape[:-2], d * d)[..., :: d + 1]  # a view of the diagonals
    if w.ndim == s.n_k.ndim + 1:  # pooled: one (d, d) per start
        diagonal += s.n_k.sum(axis=-1)[..., None] * reg
    else:
        diagonal += s.n_k[..., None] * reg
    return w


def _regularised_diag(s: Scatter, reg: float) -> Array:
    return np.maximum(s.w, 0.0) + s.n_k[..., None] * reg


def _geometric_mean(v: Array) -> Array:
    """det^(1/d) of diagonal matrices given as rows (..., d)."""
    return np.exp(np.log(np.maximum(v, _TINY)).sum(axis=-1) / v.shape[-1])


def _det_root(m: Array) -> Array:
    """det^(1/d) of symmetric positive definite matrices (..., d, d)."""
    sign, logdet = np.linalg.slogdet(m)
    return np.exp(logdet / m.shape[-1]) * (sign > 0)


def _sym_eig_desc(w: Array) -> tuple[Array, Array]:
    """Eigenvalues (descending, >= 0) and eigenvectors of symmetric matrices (..., d, d)."""
    values, vectors = np.linalg.eigh(w)
    return np.maximum(values[..., ::-1], 0.0), vectors[..., ::-1]


def _converged(old: Array, new: Array) -> Mask:
    """Whether each start's objective changed by at most ``INNER_TOL`` (relative)."""
    return np.asarray(np.abs(new - old) <= INNER_TOL * np.maximum(1.0, np.abs(new)))


def _n(s: Scatter) -> Array:
    """The total mass of each start (...,)."""
    return np.asarray(s.n_k.sum(axis=-1), dtype=np.float64)


def _previous_volumes(
    previous: Array | None, w: Array, start: Array, diagonal: bool
) -> tuple[Array, Array]:
    """Volumes (..., k) to start VEI, VEE and VEV from: the previous covariances' where they
    are usable (the same shape, finite, positive), ``start`` elsewhere; and how many rounds
    each start's alternation takes (...,): ``WARM_VOLUME_ROUNDS`` from the previous
    volumes, else ``INNER_MAX_ITER``."""
    cold = np.full(w.shape[:-3] if not diagonal else w.shape[:-2], INNER_MAX_ITER)
    if previous is None or previous.shape != w.shape:
        return start, cold
    kept = _remembered(previous, "volumes")
    if kept is not None:  # the volumes the M-step that made ``previous`` ended with
        return kept, np.full(cold.shape, WARM_VOLUME_ROUNDS)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        vol = _geometric_mean(previous) if diagonal else _det_root(previous)
    ok = np.all(np.isfinite(vol) & (vol > 0), axis=-1, keepdims=True)
    return np.where(ok, vol, start), np.where(ok[..., 0], WARM_VOLUME_ROUNDS, cold)


def _iterate(step: Callable[[Any], tuple[Any, Array]], state: Any, limit: Array | int) -> Any:
    """Run ``step(state) -> (state, objective (...,))`` until each start's objective has
    converged (``_converged``) or it has taken ``limit`` rounds (its own, (...,) or one for
    all); a start that stopped keeps the state of its last round.  The state is a tuple of
    arrays with the starts' leading axes."""
    old: Array = np.asarray(np.inf)
    done: Mask | None = None
    out = state
    limit = np.asarray(limit)
    for round_ in range(int(limit.max())):
        state, new = step(state)
        if done is None:  # the first round: nothing to compare with yet
            out, done = state, np.asarray(limit <= 1)
        else:
            stop = _converged(old, new) | (round_ + 1 >= limit)
            fresh = stop & ~done
            out = tuple(_keep(fresh, s, o) for s, o in zip(state, out, strict=True))
            done = done | stop
        if done.all():
            return out
        old = new
    return out


def _keep(take: Mask, new: Array, old: Array) -> Array:
    """``new`` where ``take`` (the leading axes), ``old`` elsewhere."""
    if take.ndim == 0:
        return new if bool(take) else old
    return np.where(take.reshape(take.shape + (1,) * (new.ndim - take.ndim)), new, old)


# ---------------------------------------------------------------------------- closed forms
def _vvv(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    return _regularised_full(s, reg) / s.n_k[..., None, None]


def _eee(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    return _regularised_full(s, reg) / _n(s)[..., None, None]


def _vvi(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    return _regularised_diag(s, reg) / s.n_k[..., None]


def _vii(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    return _regularised_diag(s, reg).mean(axis=-1) / s.n_k


def _eii(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    w = _regularised_diag(s, reg)
    value = w.sum(axis=(-2, -1)) / (_n(s) * w.shape[-1])
    return np.repeat(value[..., None], w.shape[-2], axis=-1)


def _eei(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    w = _regularised_diag(s, reg)
    shared = w.sum(axis=-2) / _n(s)[..., None]
    return np.repeat(shared[..., None, :], w.shape[-2], axis=-2)


def _evi(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda A_k: A_k = W_k / det(W_k)^(1/d), lambda = sum_k det(W_k)^(1/d) / n.
    w = _regularised_diag(s, reg)
    g = _geometric_mean(w)
    return (g.sum(axis=-1) / _n(s))[..., None, None] * w / g[..., None]


def _evv(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda C_k: C_k = W_k / det(W_k)^(1/d), lambda = sum_k det(W_k)^(1/d) / n.
    w = _regularised_full(s, reg)
    g = _det_root(w)
    return (g.sum(axis=-1) / _n(s))[..., None, None, None] * w / g[..., None, None]


def _eev(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda D_k A D_k^T: D_k the eigenvectors of W_k, A from the summed
    # eigenvalues (largest with largest), lambda = det(sum_k Omega_k)^(1/d) / n.
    w = _regularised_full(s, reg)
    omega, vectors = _sym_eig_desc(w)
    total = omega.sum(axis=-2)
    g = _geometric_mean(total)
    shape = total / g[..., None]
    scale = (g / _n(s))[..., None, None, None]
    return scale * (vectors * shape[..., None, None, :]) @ vectors.swapaxes(-1, -2)


# ---------------------------------------------------------------------------- iterative
def _volumes_and_shape(
    omega: Array, n_k: Array, lam: Array, limit: Array | int = INNER_MAX_ITER
) -> tuple[Array, Array]:
    """(lambda (..., k), A (..., d), det 1) maximising sum_k [-n_k d log lambda_k -
    sum_j omega_kj / (lambda_k a_j)] by alternating A | lambda and lambda | A from ``lam``:
    VEI (omega: the scatter's diagonals) and VEV (the eigenvalues of each W_k)."""
    d = omega.shape[-1]
    total = n_k.sum(axis=-1) * d

    def step(state: tuple[Array, Array]) -> tuple[tuple[Array, Array], Array]:
        a = (omega / state[0][..., None]).sum(axis=-2)
        a = a / _geometric_mean(a)[..., None]
        lam = (omega / a[..., None, :]).sum(axis=-1) / (d * n_k)
        return (lam, a), (n_k * d * np.log(lam)).sum(axis=-1) + total

    lam_out, a_out = _iterate(step, (lam, np.ones(omega.shape[:-2] + (d,))), limit)
    return lam_out, a_out


def _vei(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda_k B (B diagonal, det 1): alternate B | lambda and lambda | B.
    w = _regularised_diag(s, reg)
    d = w.shape[-1]
    lam, limit = _previous_volumes(previous, w, w.sum(axis=-1) / (d * s.n_k), diagonal=True)
    lam, b = _volumes_and_shape(w, s.n_k, lam, limit)
    out = lam[..., None] * b[..., None, :]
    _remember(out, "volumes", lam)
    return out


def _vee(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda_k C (det C = 1): alternate C | lambda and lambda | C.
    w = _regularised_full(s, reg)
    d = w.shape[-1]
    start = w.trace(axis1=-2, axis2=-1) / (d * s.n_k)
    lam, limit = _previous_volumes(previous, w, start, diagonal=False)
    total = _n(s) * d

    def step(state: tuple[Array, Array]) -> tuple[tuple[Array, Array], Array]:
        c = (w / state[0][..., None, None]).sum(axis=-3)
        c = c / _det_root(c)[..., None, None]
        c_inv = np.linalg.inv(c)
        c_inv = 0.5 * (c_inv + c_inv.swapaxes(-1, -2))
        lam = np.einsum("...kij,...ji->...k", w, c_inv) / (d * s.n_k)
        return (lam, c), (s.n_k * d * np.log(lam)).sum(axis=-1) + total

    lam, c = _iterate(step, (lam, np.zeros(w.shape[:-3] + (d, d))), limit)
    out = lam[..., None, None] * c[..., None, :, :]
    _remember(out, "volumes", lam)
    return out


def _vev(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda_k D_k A D_k^T: D_k the eigenvectors of W_k (largest eigenvalue with
    # the largest shape value, whatever A), then alternate A | lambda and lambda | A.
    w = _regularised_full(s, reg)
    d = w.shape[-1]
    omega, vectors = _sym_eig_desc(w)
    lam, limit = _previous_volumes(previous, w, omega.sum(axis=-1) / (d * s.n_k), diagonal=False)
    lam, a = _volumes_and_shape(omega, s.n_k, lam, limit)
    out = lam[..., None, None] * (vectors * a[..., None, None, :]) @ vectors.swapaxes(-1, -2)
    _remember(out, "volumes", lam)
    return out


def _common_orientation(w: Array, previous: Array | None) -> tuple[Array, Array]:
    """A start for the shared orientation D of EVE and VVE (..., d, d), and whether it is
    warm (...,): from the previous covariances, the eigenvectors of a generic combination
    of them (when they share D it diagonalises each; ``NEAR_ORIENTATION``), or else of the
    summed scatter (no previous covariances, or far from sharing one)."""
    if previous is None or previous.shape != w.shape:
        return np.linalg.eigh(w.sum(axis=-3))[1], np.zeros(w.shape[:-3], dtype=bool)
    k, d = w.shape[-3], w.shape[-1]
    finite = np.all(np.isfinite(previous), axis=(-3, -2, -1))
    prev = (
        previous if np.all(finite) else _keep(finite, previous, np.broadcast_to(np.eye(d), w.shape))
    )
    mix = 1.0 + 0.4142135623730951 * np.arange(k)  # distinct weights: no tied eigenvalues
    scaled = prev / prev.trace(axis1=-2, axis2=-1)[..., None, None]
    d_prev = np.linalg.eigh(np.einsum("k,...kij->...ij", mix, scaled))[1]
    rotated = d_prev.swapaxes(-1, -2)[..., None, :, :] @ prev @ d_prev[..., None, :, :]
    off = np.abs(rotated - rotated * np.eye(d)).max(axis=(-3, -2, -1))
    warm = finite & (off <= NEAR_ORIENTATION * np.abs(rotated).max(axis=(-3, -2, -1)))
    if np.all(warm):
        return d_prev, warm
    return _keep(warm, d_prev, np.linalg.eigh(w.sum(axis=-3))[1]), warm


@functools.cache
def _pair_rounds(d: int) -> tuple[tuple[NDArray[np.intp], NDArray[np.intp]], ...]:
    """Every pair (i < j) of d axes once, as rounds of disjoint pairs (the circle method:
    d - 1 rounds for d even, d for d odd)."""
    seats: list[int | None] = [*range(d), *([None] if d % 2 else [])]
    rounds = []
    for _ in range(len(seats) - 1):
        pairs = [
            (min(a, b), max(a, b))
            for a, b in zip(seats[: len(seats) // 2], seats[::-1][: len(seats) // 2], strict=True)
            if a is not None and b is not None
        ]
        if pairs:  # one column has none
            rounds.append(
                (
                    np.array([a for a, _ in pairs], dtype=np.intp),
                    np.array([b for _, b in pairs], dtype=np.intp),
                )
            )
        seats = [seats[0], seats[-1], *seats[1:-1]]
    return tuple(rounds)


@functools.cache
def _pair_entries(d: int) -> tuple[tuple[NDArray[np.intp], ...], ...]:
    """``_pair_rounds`` with, for each round, the flat positions in a d x d matrix of its
    pairs' (i, i), (j, j) and (i, j) entries, and of the rotation's four entries ((i, i),
    (j, j), (j, i), (i, j)) in that order."""
    out = []
    for i, j in _pair_rounds(d):
        ii, jj, ij, ji = i * d + i, j * d + j, i * d + j, j * d + i
        out.append((i, j, ii, jj, ij, np.concatenate((ii, jj, ji, ij))))
    return tuple(out)


def _orientation_fit(
    s: Scatter, reg: float, previous: Array | None, shapes: Callable[[Array], Array]
) -> Array:
    """The covariances of EVE and VVE (..., k, d, d): alternate the diagonal covariances in
    D's basis given D (``shapes``: diag(D^T W_k D) -> them) and a sweep of plane rotations
    of D that lowers f(D) = sum_k tr(W_k D diag(b_k) D^T), b_k = 1 / the diagonals.
    Rotating axes i and j of D by t changes f by C cos 2t + S sin 2t (plus a constant), with
    C = sum_k (b_ki - b_kj)(M_kii - M_kjj) / 2, S = sum_k (b_ki - b_kj) M_kij and
    M_k = D^T W_k D, so each rotation is the best for its plane; the pairs of a round are
    disjoint and turn at once.  The result is D after the last sweep with the diagonals it
    was taken for: each sweep raises the expected complete-data log-likelihood."""
    w = _regularised_full(s, reg)
    n_k = s.n_k[..., None]
    orient, warm = _remembered_orientation(w, previous)
    limit = np.where(warm, WARM_ORIENTATION_SWEEPS, INNER_MAX_ITER)
    d = w.shape[-1]
    rounds = _pair_entries(d)
    eye = np.broadcast_to(np.eye(d), orient.shape).copy()  # (..., d, d)

    def sweep(state: tuple[Array, Array, Array]) -> tuple[tuple[Array, Array, Array], Array]:
        d0, _, m = state  # D and M_k = D^T W_k D, (..., k, d, d)
        m_diag = m.diagonal(axis1=-2, axis2=-1)  # diag(D^T W_k D), (..., k, d)
        diag = shapes(m_diag)
        b = 1.0 / diag
        new = (n_k * np.log(diag) + m_diag * b).sum(axis=(-2, -1))
        for i, j, ii, jj, ij, entries in rounds:  # a round's pairs (i, j), flat (i,i) ...
            flat = m.reshape(*m.shape[:-2], d * d)
            db = b[..., i] - b[..., j]  # (..., k, pairs)
            c = 0.5 * (db * (flat[..., ii] - flat[..., jj])).sum(axis=-2)
            sn = (db * flat[..., ij]).sum(axis=-2)
            turn = np.isfinite(c) & np.isfinite(sn) & ((c != 0.0) | (sn != 0.0))
            t = 0.5 * np.arctan2(np.where(turn, -sn, 0.0), np.where(turn, -c, 1.0))
            cos, sin = np.cos(t), np.sin(t)
            g = eye.copy()  # the rotation: (i,i), (j,j) cos, (j,i) sin, (i,j) -sin
            g.reshape(*g.shape[:-2], d * d)[..., entries] = np.concatenate(
                (cos, cos, sin, -sin), axis=-1
            )
            d0 = d0 @ g
            m = g.swapaxes(-1, -2)[..., None, :, :] @ m @ g[..., None, :, :]
        return (d0, diag, m), new

    m0 = orient.swapaxes(-1, -2)[..., None, :, :] @ w @ orient[..., None, :, :]
    orient, diag, _ = _iterate(sweep, (orient, np.ones(w.shape[:-1]), m0), limit)
    out = _rotated(orient, diag)
    _remember(out, "orientation", orient)
    return out


# What an iterative M-step ends with that the next one starts from, kept by the covariances
# it made (the array object, held weakly: the entry goes when the array does): the
# orientation D of EVE and VVE, and the volumes of VEI, VEE and VEV.  The next M-step, from
# those covariances, starts from them instead of recovering them (an eigendecomposition and a
# check, 5% of a selection, for D; a determinant a component for the volumes).  Covariances
# made otherwise (a start, a SQUAREM jump, a subset of starts, a copy) are not found here
# and the values are recovered from them.  Whether an M-step finds them depends only on
# where its covariances came from, never on other fits or threads: results stay
# reproducible.
REMEMBER = True
_KEPT: dict[tuple[str, int], tuple[Any, Array]] = {}


def _remember(cov: Array, what: str, value: Array) -> None:
    if REMEMBER:
        key = (what, id(cov))
        _KEPT[key] = (weakref.ref(cov, functools.partial(_forget, key)), value)


def _forget(key: tuple[str, int], _: Any) -> None:
    _KEPT.pop(key, None)


def _remembered(previous: Array | None, what: str) -> Array | None:
    """What the M-step that made ``previous`` kept as ``what`` (``_remember``), or None."""
    if previous is None:
        return None
    found = _KEPT.get((what, id(previous)))
    return found[1] if found is not None and found[0]() is previous else None


def _remembered_orientation(w: Array, previous: Array | None) -> tuple[Array, Array]:
    """``_common_orientation``, or the orientation the M-step that made ``previous`` ended
    with (warm for every start)."""
    orient = _remembered(previous, "orientation")
    if orient is not None and previous is not None and previous.shape == w.shape:
        return orient, np.ones(w.shape[:-3], dtype=bool)
    return _common_orientation(w, previous)


def _rotated(orient: Array, diag: Array) -> Array:
    """The covariances D diag(c_k) D^T (..., k, d, d) from a shared orientation D (..., d, d)
    and the diagonals c_k (..., k, d)."""
    return np.asarray(
        (orient[..., None, :, :] * diag[..., :, None, :])
        @ orient.swapaxes(-1, -2)[..., None, :, :],
        dtype=np.float64,
    )


def start_guess(model: CovarianceModel, s: Scatter, reg: float) -> Array | None:
    """Covariances to start the M-step from a hard partition (a start) with, or None: for
    EVE and VVE, whose orientation iteration then takes ``WARM_ORIENTATION_SWEEPS`` from
    the eigenvectors of the summed scatter, as every later M-step does from the previous
    orientation (a generalised M-step; measured on mclust's seven data sets the cold
    iteration to ``INNER_TOL``, then about 120 majorise-minimise rounds a start, was 80% of
    the starts' time on banknote, and two more cells reached mclust's log-likelihood
    without it)."""
    if model.mclust not in ORIENTATION_MODELS:
        return None
    w = _regularised_full(s, reg)
    orient = np.linalg.eigh(w.sum(axis=-3))[1]
    wd = w @ orient[..., None, :, :]
    m = np.maximum((orient[..., None, :, :] * wd).sum(axis=-2), _TINY)
    diag = _eve_shapes(s)(m) if model.mclust == "EVE" else m / s.n_k[..., None]
    return _rotated(orient, diag)


def _eve_shapes(s: Scatter) -> Callable[[Array], Array]:
    """EVE's diagonals given D: A_k = diag(D^T W_k D) / its det^(1/d), lambda = sum_k
    det(diag(D^T W_k D))^(1/d) / n."""
    n = _n(s)

    def shapes(m: Array) -> Array:
        g = _geometric_mean(m)
        return (g.sum(axis=-1) / n)[..., None, None] * m / g[..., None]

    return shapes


def _eve(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda D A_k D^T: the diagonals given D (``_eve_shapes``), then D by MM steps.
    return _orientation_fit(s, reg, previous, _eve_shapes(s))


def _vve(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = D C_k D^T with C_k = lambda_k A_k diagonal: C_k = diag(D^T W_k D) / n_k.
    return _orientation_fit(s, reg, previous, lambda m: m / s.n_k[..., None])


# ---------------------------------------------------------------------------- the table
def _rows() -> list[CovarianceModel]:
    def t(d: int) -> int:
        return d * (d - 1) // 2

    m = CovarianceModel
    return [
        m("EII", "EII", "spherical", "diag", lambda k, d: 1, _eii,
          "spherical, equal volume"),
        m("VII", "VII", "spherical", "diag", lambda k, d: k, _vii,
          "spherical, variable volume"),
        m("EEI", "EEI", "diag", "diag", lambda k, d: d, _eei,
          "diagonal, equal volume and shape"),
        m("VEI", "VEI", "diag", "diag", lambda k, d: k + d - 1, _vei,
          "diagonal, variable volume, equal shape", linear=False, iterative=True),
        m("EVI", "EVI", "diag", "diag", lambda k, d: 1 + k * (d - 1), _evi,
          "diagonal, equal volume, variable shape", linear=False),
        m("VVI", "VVI", "diag", "diag", lambda k, d: k * d, _vvi,
          "diagonal, variable volume and shape"),
        m("EEE", "EEE", "tied", "pooled", lambda k, d: d * (d + 1) // 2, _eee,
          "ellipsoidal, equal volume, shape and orientation"),
        m("VEE", "VEE", "full", "full", lambda k, d: k + (d - 1) + t(d), _vee,
          "ellipsoidal, equal shape and orientation", linear=False, iterative=True),
        m("EVE", "EVE", "full", "full", lambda k, d: 1 + k * (d - 1) + t(d), _eve,
          "ellipsoidal, equal volume and orientation", linear=False, iterative=True),
        m("VVE", "VVE", "full", "full", lambda k, d: k + k * (d - 1) + t(d), _vve,
          "ellipsoidal, equal orientation", linear=False, iterative=True),
        m("EEV", "EEV", "full", "full", lambda k, d: 1 + (d - 1) + k * t(d), _eev,
          "ellipsoidal, equal volume and shape", linear=False),
        m("VEV", "VEV", "full", "full", lambda k, d: k + (d - 1) + k * t(d), _vev,
          "ellipsoidal, equal shape", linear=False, iterative=True),
        m("EVV", "EVV", "full", "full", lambda k, d: 1 - k + k * d * (d + 1) // 2, _evv,
          "ellipsoidal, equal volume", linear=False),
        m("VVV", "VVV", "full", "full", lambda k, d: k * d * (d + 1) // 2, _vvv,
          "ellipsoidal, variable volume, shape and orientation"),
        m("E", "E", "spherical", "diag", lambda k, d: 1, _eii,
          "one column, equal variance"),
        m("V", "V", "spherical", "diag", lambda k, d: k, _vii,
          "one column, variable variance"),
    ]  # fmt: skip


_MCLUST = {row.mclust: row for row in _rows()}
# scikit-learn's names, kept as rows of their own so that a model remembers how the user
# spelled it (the model file's ``covariance_type``).
_SKLEARN = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
_SKLEARN_TEXT = {
    "full": "one unconstrained covariance matrix per component",
    "tied": "one covariance matrix shared by all components",
    "diag": "one diagonal covariance per component (axis-aligned)",
    "spherical": "one variance per component (round clusters)",
}
MODELS: dict[str, CovarianceModel] = {
    **{
        name: replace(_MCLUST[mc], name=name, description=_SKLEARN_TEXT[name])
        for name, mc in _SKLEARN.items()
    },
    **_MCLUST,
}
COVARIANCE_TYPES: tuple[str, ...] = tuple(_SKLEARN)
# mclust's 14 multivariate models, in mclust's order, and its two for one column.
MCLUST_MODELS: tuple[str, ...] = tuple(m for m in _MCLUST if len(m) == 3)
UNIVARIATE_MODELS: tuple[str, ...] = ("E", "V")
_BY_KEY = {name.lower(): row for name, row in MODELS.items()}


def covariance_model(name: str | CovarianceModel) -> CovarianceModel:
    """The model called ``name`` (scikit-learn's or mclust's name, any case).

    Raises:
        ValueError: no such model.
    """
    if isinstance(name, CovarianceModel):
        return name
    row = _BY_KEY.get(str(name).strip().lower())
    if row is None:
        raise ValueError(
            f"unknown covariance type {name!r}; choose from {', '.join(COVARIANCE_TYPES)} or "
            f"mclust's {', '.join(MCLUST_MODELS)} (E, V for one column)"
        )
    return row


def parse_covariances(spec: str) -> list[str]:
    """'full' -> ['full']; 'diag,VEV' -> both; 'all' -> ['all'] (resolved against the
    number of columns by ``resolve_covariances``)."""
    names = [v.strip() for v in spec.split(",") if v.strip()]
    if [v.lower() for v in names] == ["all"]:
        return ["all"]
    known = []
    bad = []
    for v in names:
        try:
            known.append(covariance_model(v).name)
        except ValueError:
            bad.append(v)
    if bad or not known:
        raise ValueError(
            f"unknown covariance type '{', '.join(bad) or spec}'; choose from "
            f"{', '.join(COVARIANCE_TYPES)}, mclust's {', '.join(MCLUST_MODELS)} (E, V for "
            "one column), a comma list, or all"
        )
    return list(dict.fromkeys(known))


def resolve_covariances(names: list[str], n_features: int) -> list[str]:
    """The models to fit for ``names`` on data with ``n_features`` columns: ``all`` is
    mclust's 14 (E and V for one column); for one column every model is E or V (the others
    are the same model), named as the user named them.

    Raises:
        ValueError: E or V asked for on more than one column.
    """
    if names == ["all"]:
        return list(UNIVARIATE_MODELS if n_features == 1 else MCLUST_MODELS)
    if n_features > 1:
        bad = [n for n in names if covariance_model(n).univariate]
        if bad:
            raise ValueError(
                f"covariance type {bad[0]} is for one column; the data has {n_features}: "
                "use EII/VII (spherical) or another multivariate model"
            )
    return names


def estimable(model: CovarianceModel, n_rows: int, n_features: int) -> bool:
    """Whether a covariance model can be estimated at all: with at least as many columns as
    rows every non-diagonal covariance is singular (mclust fits only the diagonal and
    spherical models then)."""
    return n_features < n_rows or model.form in ("diag", "spherical")


def covariance_grid(names: list[str], n_rows: int, n_features: int) -> tuple[list[str], list[str]]:
    """(the models of a selection, those of them that d >= n cannot estimate) for ``names``
    (``all`` resolved by ``resolve_covariances``; ValueError as it)."""
    kinds = resolve_covariances(names, n_features)
    skipped = [k for k in kinds if not estimable(covariance_model(k), n_rows, n_features)]
    return kinds, skipped


# ---------------------------------------------------------------------------- nesting
# The order of mclust's letters: the axes (I) are a special case of one shared orientation
# or shape (E), which is a special case of a free one (V).
_LETTER_ORDER = {"I": 0, "E": 1, "V": 2}


def nested_in(inner: CovarianceModel | str, outer: CovarianceModel | str) -> bool:
    """Whether every covariance set of ``inner`` is one of ``outer`` too (and they differ):
    each of volume, shape and orientation at most as free (I before E before V), the
    orientation of a spherical model (shape I) being no constraint.  Then a fit of
    ``inner`` is a point of ``outer``, and EM for ``outer`` started there ends at least as
    high: the maximum likelihood of ``outer`` is at least that of ``inner`` (E is nested in
    V on one column; EEI in EEE; VII in every V.. model)."""
    return _nested(covariance_model(inner).mclust, covariance_model(outer).mclust)


@functools.cache
def _nested(a: str, b: str) -> bool:
    if a == b or len(a) != len(b):
        return False
    if len(a) == 1:
        return (a, b) == ("E", "V")
    if any(_LETTER_ORDER[x] > _LETTER_ORDER[y] for x, y in zip(a[:2], b[:2], strict=True)):
        return False
    return a[1] == "I" or _LETTER_ORDER[a[2]] <= _LETTER_ORDER[b[2]]


# ---------------------------------------------------------------------------- shapes
def native_shape(form: str, k: int, d: int) -> tuple[int, ...]:
    """Shape of the stored covariances of a model of this form."""
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[form]


def to_full(form: str, covariances: Array, k: int, d: int) -> Array:
    """Native covariances -> array of shape (k, d, d)."""
    cov = np.asarray(covariances, dtype=np.float64)
    if form == "full":
        return np.array(cov)
    if form == "tied":
        return np.repeat(cov[None, :, :], k, axis=0)
    if form == "diag":
        return cov[:, :, None] * np.eye(d)[None]
    return cov[:, None, None] * np.eye(d)[None]


def from_full(form: str, full: Array) -> Array:
    """Array of k full (d x d) matrices -> native covariances for the form."""
    full = np.asarray(full, dtype=np.float64)
    if form == "full":
        return full
    if form == "tied":
        return full[0].copy()
    diag = full.diagonal(axis1=1, axis2=2).copy()
    return diag if form == "diag" else diag[:, 0].copy()


def has_form(form: str, full: Array) -> bool:
    """Whether k full matrices have the structure of ``form`` (exactly)."""
    d = full.shape[-1]
    diagonal = full.diagonal(axis1=1, axis2=2)
    if form == "tied":
        return bool(np.all(full == full[:1]))
    if form == "diag":
        return bool(np.all(full == diagonal[:, :, None] * np.eye(d)))
    if form == "spherical":
        return bool(np.all(full == diagonal[:, :1, None] * np.eye(d)))
    return True


# ---------------------------------------------------------------------------- checks
# Relative tolerance of ``constraint_violation``: the M-steps meet their constraints to
# rounding (about 1e-15); a model file edited by hand or written by another tool may not.
CONSTRAINT_RTOL = 1e-6


def constraint_violation(model: CovarianceModel, native: Array) -> str | None:
    """What of ``model``'s constraint the covariances (native shape) break, or None.

    The letters of mclust's name say which of volume, shape and orientation are equal
    across components (E), free (V) or the axes (I); a tied (EEE) or one-component model
    meets them by construction, and on one column only the volume letter applies.
    """
    name = model.mclust
    if model.form == "tied" or native.shape[0] < 2:
        return None

    def equal(v: Array) -> bool:
        v = np.asarray(v, dtype=np.float64)
        return bool(np.max(np.abs(v - v[:1])) <= CONSTRAINT_RTOL * np.max(np.abs(v)))

    if model.form == "spherical":
        values = native
        if name[0] == "E" and not equal(values):
            return "the components' variances differ, but the model's volume is equal (E)"
        return None
    eig = np.asarray(
        native if model.form == "diag" else np.linalg.eigvalsh(native)[:, ::-1], np.float64
    )
    if eig.shape[1] == 1 or len(name) == 1:
        if name[0] == "E" and not equal(eig[:, 0]):
            return "the components' variances differ, but the model's volume is equal (E)"
        return None
    volume = _geometric_mean(eig)
    if name[0] == "E" and not equal(volume):
        return "the components' volumes differ, but the model's volume is equal (E..)"
    if name[1] == "E" and not equal(eig / volume[:, None]):
        return "the components' shapes differ, but the model's shape is equal (.E.)"
    if model.form == "full" and name[2] == "E":
        scale = float(np.max(np.abs(native))) ** 2
        for a in range(native.shape[0]):
            for b in range(a + 1, native.shape[0]):
                gap = native[a] @ native[b] - native[b] @ native[a]
                if np.max(np.abs(gap)) > CONSTRAINT_RTOL * scale:
                    return (
                        "the components' orientations differ, but the model's orientation "
                        "is shared (..E)"
                    )
    return None
