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
(Celeux & Govaert 1995; for the common orientation of EVE and VVE the majorise-minimise steps
of Browne & McNicholas 2014), starting from the previous iteration's parameters so that no
M-step lowers the expected complete-data log-likelihood, until its relative change is below
``INNER_TOL`` (sqrt(machine epsilon), mclust's default) or ``INNER_MAX_ITER`` rounds; the
orientation of EVE and VVE, when it starts from the previous iteration's, for at most
``WARM_ORIENTATION_ROUNDS`` rounds (a generalised EM step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
INNER_TOL = float(np.sqrt(np.finfo(np.float64).eps))
INNER_MAX_ITER = 1000
# Rounds of the orientation iteration of EVE and VVE in an M-step that starts from the
# previous iteration's orientation (a generalised EM step: each round raises the expected
# complete-data log-likelihood, and at EM's convergence the orientation has converged too).
# Run to INNER_TOL instead, the orientation took about 40 rounds per M-step, 80% of a model
# selection's time on banknote; with 5 rounds the selection took 3x less and single fits end
# at the same log-likelihoods to about 1e-6 (their EM tolerance).
WARM_ORIENTATION_ROUNDS = 5
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
def _regularised_full(s: Scatter, reg: float) -> Array:
    w = 0.5 * (s.w + np.swapaxes(s.w, -1, -2))
    d = w.shape[-1]
    idx = np.arange(d)
    if w.ndim == 2:
        w[idx, idx] += s.n_k.sum() * reg
    else:
        w[:, idx, idx] += s.n_k[:, None] * reg
    return w


def _regularised_diag(s: Scatter, reg: float) -> Array:
    return np.maximum(s.w, 0.0) + s.n_k[:, None] * reg


def _geometric_mean(v: Array) -> Array:
    """det^(1/d) of diagonal matrices given as rows (k, d) or one (d,)."""
    return np.exp(np.mean(np.log(np.maximum(v, _TINY)), axis=-1))


def _det_root(m: Array) -> Array:
    """det^(1/d) of symmetric positive definite matrices (..., d, d)."""
    sign, logdet = np.linalg.slogdet(m)
    return np.exp(logdet / m.shape[-1]) * (sign > 0)


def _sym_eig_desc(w: Array) -> tuple[Array, Array]:
    """Eigenvalues (descending, >= 0) and eigenvectors of symmetric matrices (k, d, d)."""
    values, vectors = np.linalg.eigh(w)
    return np.maximum(values[..., ::-1], 0.0), vectors[..., ::-1]


def _polar(g: Array) -> Array:
    """The orthogonal matrix nearest to g (the maximiser of tr(g^T D) over orthogonal D)."""
    u, _, vt = np.linalg.svd(g)
    return u @ vt


def _converged(old: float, new: float) -> bool:
    return abs(new - old) <= INNER_TOL * max(1.0, abs(new))


def _previous_volumes(previous: Array | None, k: int, diagonal: bool) -> Array | None:
    if previous is None or previous.shape[0] != k:
        return None
    vol = _geometric_mean(previous) if diagonal else _det_root(previous)
    return vol if np.all(np.isfinite(vol)) and np.all(vol > 0) else None


# ---------------------------------------------------------------------------- closed forms
def _vvv(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    return _regularised_full(s, reg) / s.n_k[:, None, None]


def _eee(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    return _regularised_full(s, reg) / s.n_k.sum()


def _vvi(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    return _regularised_diag(s, reg) / s.n_k[:, None]


def _vii(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    return _regularised_diag(s, reg).mean(axis=1) / s.n_k


def _eii(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    w = _regularised_diag(s, reg)
    return np.full(w.shape[0], w.sum() / (s.n_k.sum() * w.shape[1]))


def _eei(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    w = _regularised_diag(s, reg)
    return np.repeat((w.sum(axis=0) / s.n_k.sum())[None], w.shape[0], axis=0)


def _evi(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda A_k: A_k = W_k / det(W_k)^(1/d), lambda = sum_k det(W_k)^(1/d) / n.
    w = _regularised_diag(s, reg)
    g = _geometric_mean(w)
    return (g.sum() / s.n_k.sum()) * w / g[:, None]


def _evv(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda C_k: C_k = W_k / det(W_k)^(1/d), lambda = sum_k det(W_k)^(1/d) / n.
    w = _regularised_full(s, reg)
    g = _det_root(w)
    return (g.sum() / s.n_k.sum()) * w / g[:, None, None]


def _eev(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda D_k A D_k^T: D_k the eigenvectors of W_k, A from the summed
    # eigenvalues (largest with largest), lambda = det(sum_k Omega_k)^(1/d) / n.
    w = _regularised_full(s, reg)
    omega, vectors = _sym_eig_desc(w)
    total = omega.sum(axis=0)
    g = float(_geometric_mean(total))
    shape = total / g
    return (g / s.n_k.sum()) * (vectors * shape[None, None, :]) @ np.swapaxes(vectors, 1, 2)


# ---------------------------------------------------------------------------- iterative
def _vei(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda_k B (B diagonal, det 1): alternate B | lambda and lambda | B.
    w = _regularised_diag(s, reg)
    k, d = w.shape
    lam = _previous_volumes(previous, k, diagonal=True)
    if lam is None:
        lam = w.sum(axis=1) / (d * s.n_k)
    old = np.inf
    for _ in range(INNER_MAX_ITER):
        b = (w / lam[:, None]).sum(axis=0)
        b /= _geometric_mean(b)
        lam = (w / b[None, :]).sum(axis=1) / (d * s.n_k)
        new = float(np.sum(s.n_k * d * np.log(lam)) + d * s.n_k.sum())
        if _converged(old, new):
            break
        old = new
    return lam[:, None] * b[None, :]


def _vee(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda_k C (det C = 1): alternate C | lambda and lambda | C.
    w = _regularised_full(s, reg)
    k, d, _ = w.shape
    lam = _previous_volumes(previous, k, diagonal=False)
    if lam is None:
        lam = np.trace(w, axis1=1, axis2=2) / (d * s.n_k)
    old = np.inf
    for _ in range(INNER_MAX_ITER):
        c = (w / lam[:, None, None]).sum(axis=0)
        c /= float(_det_root(c))
        c_inv = np.linalg.inv(c)
        c_inv = 0.5 * (c_inv + c_inv.T)
        lam = np.einsum("kij,ji->k", w, c_inv) / (d * s.n_k)
        new = float(np.sum(s.n_k * d * np.log(lam)) + d * s.n_k.sum())
        if _converged(old, new):
            break
        old = new
    return lam[:, None, None] * c[None]


def _vev(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda_k D_k A D_k^T: D_k the eigenvectors of W_k (largest eigenvalue with
    # the largest shape value, whatever A), then alternate A | lambda and lambda | A.
    w = _regularised_full(s, reg)
    k, d, _ = w.shape
    omega, vectors = _sym_eig_desc(w)
    lam = _previous_volumes(previous, k, diagonal=False)
    if lam is None:
        lam = omega.sum(axis=1) / (d * s.n_k)
    old = np.inf
    for _ in range(INNER_MAX_ITER):
        a = (omega / lam[:, None]).sum(axis=0)
        a /= _geometric_mean(a)
        lam = (omega / a[None, :]).sum(axis=1) / (d * s.n_k)
        new = float(np.sum(s.n_k * d * np.log(lam)) + d * s.n_k.sum())
        if _converged(old, new):
            break
        old = new
    return lam[:, None, None] * (vectors * a[None, None, :]) @ np.swapaxes(vectors, 1, 2)


def _common_orientation(w: Array, previous: Array | None) -> tuple[Array, bool]:
    """A start for the shared orientation D of EVE and VVE, and whether it is warm (from the
    previous covariances): the eigenvectors of a generic combination of the previous
    covariances (when they share D it diagonalises each; ``NEAR_ORIENTATION``), or of the
    summed scatter when there are none (or they are far from sharing one)."""
    k = w.shape[0]
    if previous is not None and previous.shape == w.shape and np.all(np.isfinite(previous)):
        mix = 1.0 + 0.4142135623730951 * np.arange(k)  # distinct weights: no tied eigenvalues
        scaled = previous / np.trace(previous, axis1=1, axis2=2)[:, None, None]
        d_prev = np.linalg.eigh(np.tensordot(mix, scaled, axes=1))[1]
        rotated = np.swapaxes(d_prev, 0, 1)[None] @ previous @ d_prev[None]
        off = rotated - rotated * np.eye(w.shape[1])[None]
        if np.max(np.abs(off)) <= NEAR_ORIENTATION * np.max(np.abs(rotated)):
            return d_prev, True
    return np.linalg.eigh(w.sum(axis=0))[1], False


def _orientation_steps(w: Array, omega_max: Array, d0: Array, b: Array) -> Array:
    """Two majorise-minimise steps (Browne & McNicholas 2014) that lower
    f(D) = sum_k tr(W_k D diag(b_k) D^T) over orthogonal D, from D = d0."""
    eye = np.eye(w.shape[1])
    g = np.einsum("k,ij,kj->ij", omega_max, d0, b) - np.einsum("kil,lj,kj->ij", w, d0, b)
    d1 = _polar(g)
    beta = b.max(axis=1)
    g2 = np.einsum("kil,lj,kj->ij", w, d1, beta[:, None] * np.ones_like(b) - b)
    return _polar(g2) if np.all(np.isfinite(g2)) else d1 + 0.0 * eye


def _orientation_fit(
    s: Scatter, reg: float, previous: Array | None, shapes: Callable[[Array], Array]
) -> tuple[Array, Array]:
    """(D, the diagonal covariances in D's basis (k, d)) for EVE and VVE: alternate the
    diagonals given D (``shapes``: diag(D^T W_k D) -> the diagonal covariances) and the MM
    steps for D given them."""
    w = _regularised_full(s, reg)
    omega_max: Array = np.linalg.eigvalsh(w)[:, -1].astype(np.float64)
    orient, warm = _common_orientation(w, previous)
    old = np.inf
    for _ in range(WARM_ORIENTATION_ROUNDS + 1 if warm else INNER_MAX_ITER):
        m = np.einsum("ji,kjl,li->ki", orient, w, orient)
        diag = shapes(m)
        new = float(np.sum(s.n_k[:, None] * np.log(diag)) + np.sum(m / diag))
        if _converged(old, new):
            break
        old = new
        orient = _orientation_steps(w, omega_max, orient, 1.0 / diag)
    return orient, diag


def start_guess(model: CovarianceModel, s: Scatter, reg: float) -> Array | None:
    """Covariances to start the M-step from a hard partition (a start) with, or None: for
    EVE and VVE, whose orientation iteration then takes at most ``WARM_ORIENTATION_ROUNDS``
    rounds from the eigenvectors of the summed scatter, as every later M-step does from
    the previous orientation (a generalised M-step; measured on mclust's seven data sets
    the cold iteration to ``INNER_TOL``, about 120 rounds a start, was 80% of the starts'
    time on banknote, and two more cells reached mclust's log-likelihood without it)."""
    if model.mclust not in ORIENTATION_MODELS:
        return None
    w = _regularised_full(s, reg)
    orient = np.linalg.eigh(w.sum(axis=0))[1]
    m = np.maximum(np.einsum("ji,kjl,li->ki", orient, w, orient), _TINY)
    if model.mclust == "EVE":  # the best diagonals given the orientation, as ``_eve``
        g = _geometric_mean(m)
        diag = (g.sum() / s.n_k.sum()) * m / g[:, None]
    else:
        diag = m / s.n_k[:, None]
    return np.asarray((orient[None] * diag[:, None, :]) @ orient.T[None], dtype=np.float64)


def _eve(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = lambda D A_k D^T: given D, A_k = diag(D^T W_k D) / det^(1/d) and
    # lambda = sum_k det(diag(D^T W_k D))^(1/d) / n; then D by MM steps.
    n = s.n_k.sum()

    def shapes(m: Array) -> Array:
        g = _geometric_mean(m)
        return (g.sum() / n) * m / g[:, None]

    orient, diag = _orientation_fit(s, reg, previous, shapes)
    return (orient[None] * diag[:, None, :]) @ orient.T[None]


def _vve(s: Scatter, reg: float, previous: Array | None = None) -> Array:
    # Sigma_k = D C_k D^T with C_k = lambda_k A_k diagonal: C_k = diag(D^T W_k D) / n_k.
    orient, diag = _orientation_fit(s, reg, previous, lambda m: m / s.n_k[:, None])
    return (orient[None] * diag[:, None, :]) @ orient.T[None]


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
    diag = np.diagonal(full, axis1=1, axis2=2).copy()
    return diag if form == "diag" else diag[:, 0].copy()


def has_form(form: str, full: Array) -> bool:
    """Whether k full matrices have the structure of ``form`` (exactly)."""
    d = full.shape[-1]
    diagonal = np.diagonal(full, axis1=1, axis2=2)
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
