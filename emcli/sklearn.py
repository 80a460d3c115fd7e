"""scikit-learn estimators over emcli: ``GaussianMixture`` (a drop-in for
``sklearn.mixture.GaussianMixture``) and ``MixtureModel`` (any emcli family).

Example::

    from emcli.sklearn import GaussianMixture
    gm = GaussianMixture(n_components=3, covariance_type="diag", random_state=0)
    gm.fit(X, sample_weight=w)          # X may hold NaN cells (missing="em")
    gm.predict(X), gm.score(X), gm.bic(X)
    gm.model_.save("model.json")        # the emcli model behind the estimator

The estimators are a thin adapter: parameters and arrays are checked the scikit-learn way
(``validate_data``, ``NotFittedError``, ``ConvergenceWarning``), the fit is ``emcli.fit``
(every start, the EM loop, the tolerance test and the math are the library's), and the
fitted model's parameters are shown as scikit-learn's attributes.  Differences from
scikit-learn's class are listed in docs/python-api.md.

scikit-learn is optional: ``pip install 'emcli-mixture[sklearn]'``; ``import emcli`` never
imports this module.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, DensityMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as _exc:  # scikit-learn missing, or older than 1.6 (no validate_data)
    raise ImportError(
        "emcli.sklearn needs scikit-learn >= 1.6; install it with "
        "pip install 'emcli-mixture[sklearn]'"
    ) from _exc

from . import api
from .errors import EmcliError
from .families import get_family

__all__ = ["GaussianMixture", "MixtureModel"]

# scikit-learn's init_params -> emcli's start method (None: random responsibilities).
_INIT_PARAMS: dict[str, str | None] = {
    "kmeans": "kmeans",
    "k-means++": "kmeans++",
    "random_from_data": "random",
    "random": None,
}
_MISSING = ("em", "drop", "error")
NOT_CONVERGED = (
    "Best performing initialization did not converge. Try different init parameters, "
    "or increase max_iter, tol, or check for degenerate data."
)


class MixtureModel(DensityMixin, BaseEstimator):
    """A mixture of any emcli family (``emcli.families.FAMILIES``) as a scikit-learn
    density estimator.

    Parameters:
        n_components: number of mixture components.
        family: the emcli family ("gaussian"; others as they are registered).
        covariance_type: the family's covariance model (Gaussian: full, tied, diag,
            spherical, or mclust's names); None for the family's default.
        tol: stop when the mean log-likelihood per row (per unit of ``sample_weight``)
            changes by less than this (scikit-learn's meaning).
        reg_covar: the covariance floor, added to every diagonal.
        max_iter: most EM iterations (M-steps) per start; 0 keeps the starting parameters.
        n_init: number of starts; the best log-likelihood wins.
        init_params: "kmeans" (k-means++ seeded Lloyd), "k-means++", "random_from_data"
            (random rows as centres), "random" (random responsibilities).
        random_state: None, an int (emcli's ``seed``) or a ``numpy.random.RandomState``.
        warm_start: fit again from the fitted parameters (one start).
        missing: NaN cells: "em" fits every row by its observed cells, "drop" fits the
            complete rows, "error" refuses them (scikit-learn's behaviour).
        verbose, verbose_interval: progress on stderr every ``verbose_interval``
            iterations (1: iterations, 2: also time and log-likelihood change).

    Attributes (after ``fit``):
        model_: the fitted ``emcli.model.MixtureModel`` (save, load, describe, impute).
        weights_: mixing weights, shape (n_components,).
        converged_, n_iter_, lower_bound_, lower_bounds_: the winning start's record; the
            lower bound is the mean log-likelihood per row of the fitted parameters (each
            iteration's in ``lower_bounds_``).
        n_features_in_, feature_names_in_: as every scikit-learn estimator.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        family: str = "gaussian",
        covariance_type: str | None = None,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: Any = None,
        warm_start: bool = False,
        missing: str = "em",
        verbose: int = 0,
        verbose_interval: int = 10,
    ) -> None:
        self.n_components = n_components
        self.family = family
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.missing = missing
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ------------------------------------------------------------------ hooks
    def _family_name(self) -> str:
        return str(self.family)

    def _given_init(self, n_features: int) -> dict[str, Any]:
        """Starting parameters the user fixed (validated); none for a generic family."""
        return {}

    def _with_given(self, base: Any, given: dict[str, Any], family: Any) -> Any:
        return base

    def _set_family_attributes(self, dtype: Any) -> None:
        params = self.model_.params
        if hasattr(params, "means"):
            self.means_ = np.asarray(params.means, dtype=dtype)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MixtureModel:
        """Fit by EM (``n_init`` starts, the best kept; from the fitted parameters when
        ``warm_start`` and fitted).

        Args:
            X: array-like of shape (n_samples, n_features); NaN cells allowed unless
                ``missing="error"``.
            y: ignored.
            sample_weight: frequency weights of shape (n_samples,) (a row of weight 3
                counts as three rows), or None.
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit, then the most likely component of each row of ``X`` (as ``predict``)."""
        x = self._fit(X, sample_weight)
        return self.model_.predict(x)

    def _fit(self, X: Any, sample_weight: Any) -> Any:
        self._check_params()
        x = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
            ensure_all_finite="allow-nan" if self.missing != "error" else True,
        )
        n, d = x.shape
        if n < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {n}"
            )
        seed = _seed(self.random_state)
        total = float(n)
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.size and not np.any(w):
                raise ValueError(
                    "every sample_weight is zero; give at least one row a positive weight"
                )
            total = float(np.sum(w))
        monitor = _Verbose(self.verbose, self.verbose_interval, total) if self.verbose else None
        names = getattr(self, "feature_names_in_", None)
        try:
            if self.warm_start and hasattr(self, "model_"):
                init: Any = self.model_
                n_restarts = 1
            else:
                init, n_restarts = self._start(d)
            model = api.fit(
                x,
                int(self.n_components),
                columns=None if names is None else [str(c) for c in names],
                family=self._family_name(),
                covariance_type=self.covariance_type,
                init=init,
                n_restarts=n_restarts,
                max_iter=int(self.max_iter),
                tol=float(self.tol),
                reg_covar=float(self.reg_covar),
                seed=seed,
                missing=self.missing,
                sample_weight=sample_weight,
                monitor=monitor,
                reorder=False,
            )
        except EmcliError as exc:
            raise ValueError(str(exc)) from exc
        # A collapsed best start is not warned about (scikit-learn's class says nothing
        # there either): it is in ``model_.collapsed`` and ``model_.warnings``.
        if not model.converged and self.max_iter > 0:
            warnings.warn(NOT_CONVERGED, ConvergenceWarning, stacklevel=3)
        self._set_fitted(model, x.dtype)
        return x

    def _start(self, n_features: int) -> tuple[Any, int]:
        """(emcli's ``init``: a method name or a start function, number of starts)."""
        method = _INIT_PARAMS[self.init_params]
        given = self._given_init(n_features)
        if method is not None and not given:
            return method, int(self.n_init)
        family = get_family(
            self._family_name(),
            **({} if self.covariance_type is None else {"covariance_type": self.covariance_type}),
            reg_covar=float(self.reg_covar),
        )
        complete = len(given) == 3  # every parameter given: every start is the same

        def start(x: Any, k: int, rng: np.random.Generator, weights: Any) -> Any:
            base = None
            if not complete:
                if method is None:
                    base = _random_responsibilities(family, x, k, rng, weights)
                else:
                    base = family.start(x, k, method, rng, weights)
            return self._with_given(base, given, family)

        return start, 1 if complete else int(self.n_init)

    def _set_fitted(self, model: Any, dtype: Any) -> None:
        self.model_ = model
        n = max(float(model.n_samples), 1e-300)
        self.weights_ = np.asarray(model.weights, dtype=dtype)
        self.converged_ = bool(model.converged)
        self.n_iter_ = int(model.n_iter)
        self.lower_bound_ = float(model.log_likelihood) / n
        self.lower_bounds_ = [float(h) / n for h in model.history[1:]]
        self._dtype = np.dtype(dtype)
        self._set_family_attributes(self._dtype)

    def _check_params(self) -> None:
        def whole(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        def real(v: Any) -> bool:
            return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)

        checks = [
            (whole(self.n_components) and self.n_components >= 1, "n_components", ">= 1"),
            (real(self.tol) and self.tol >= 0, "tol", "a finite number >= 0"),
            (real(self.reg_covar) and self.reg_covar >= 0, "reg_covar", "a finite number >= 0"),
            (whole(self.max_iter) and self.max_iter >= 0, "max_iter", "an int >= 0"),
            (whole(self.n_init) and self.n_init >= 1, "n_init", "an int >= 1"),
            (self.init_params in _INIT_PARAMS, "init_params", f"one of {sorted(_INIT_PARAMS)}"),
            (self.missing in _MISSING, "missing", f"one of {list(_MISSING)}"),
            (isinstance(self.warm_start, (bool, np.bool_)), "warm_start", "a bool"),
            (whole(self.verbose) and self.verbose >= 0, "verbose", "an int >= 0"),
            (
                whole(self.verbose_interval) and self.verbose_interval >= 1,
                "verbose_interval",
                "an int >= 1",
            ),
        ]
        for ok, name, what in checks:
            if not ok:
                value = getattr(self, name)
                raise ValueError(
                    f"The '{name}' parameter of {type(self).__name__} must be {what}. "
                    f"Got {value!r} instead."
                )

    # ------------------------------------------------------------------ applying
    def _rows(self, X: Any) -> Any:
        check_is_fitted(self)
        x = validate_data(
            self,
            X,
            reset=False,
            dtype=np.float64,
            ensure_all_finite="allow-nan" if self.missing != "error" else True,
        )
        return x

    def predict(self, X: Any) -> Any:
        """The most likely component of each row, shape (n_samples,)."""
        x = self._rows(X)
        return self.model_.predict(x)

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities, shape (n_samples, n_components); rows sum to 1."""
        x = self._rows(X)
        return self.model_.predict_proba(x).astype(self._dtype, copy=False)

    def score_samples(self, X: Any) -> Any:
        """Log-density of each row under the mixture, shape (n_samples,) (rows with NaN:
        the marginal density of their observed cells)."""
        x = self._rows(X)
        return self.model_.score_samples(x).astype(self._dtype, copy=False)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean log-likelihood per row of ``X`` (weighted by ``sample_weight`` if given)."""
        logp = self.score_samples(X).astype(np.float64)
        if sample_weight is None:
            return float(np.mean(logp))
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != logp.shape:
            raise ValueError(f"sample_weight has shape {w.shape}; expected {logp.shape}")
        return float(np.average(logp, weights=w))

    def _n_parameters(self) -> int:
        """Free parameters of the fitted mixture (for BIC and AIC)."""
        check_is_fitted(self)
        return int(self.model_.n_parameters)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion of ``X`` under the model (lower is better)."""
        n = self._rows(X).shape[0]
        return -2.0 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion of ``X`` under the model (lower is better)."""
        n = self._rows(X).shape[0]
        return -2.0 * self.score(X) * n + 2.0 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """``n_samples`` rows drawn from the fitted mixture, and the component of each
        (seeded by ``random_state``: an int gives the same rows every call)."""
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at "
                "least one sample."
            )
        rng = np.random.default_rng(_seed(self.random_state))
        x, y = self.model_.sample(int(n_samples), rng)
        return x, np.asarray(y, dtype=np.int64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing != "error"
        return tags


class GaussianMixture(MixtureModel):
    """A Gaussian mixture fitted by emcli, with scikit-learn's ``GaussianMixture`` API.

    The parameters, attributes and methods are scikit-learn's (``sklearn.mixture.
    GaussianMixture``), plus ``fit(X, sample_weight=...)``, NaN cells (``missing``) and
    ``model_`` (the emcli model).  ``covariance_type`` is any emcli covariance model:
    full, tied, diag, spherical, or mclust's names (VVV, EEE, VVI, VII, ...);
    ``covariances_`` has scikit-learn's shape for the model's form: full (k, d, d), tied
    (d, d), diag (k, d), spherical (k,).

    ``weights_init``, ``means_init``, ``precisions_init`` replace the corresponding
    parameters of every start (the others come from ``init_params``), as in scikit-learn.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        missing: str = "em",
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.missing = missing

    def _family_name(self) -> str:
        return "gaussian"

    def _form(self) -> str:
        from .families.gaussian.models import covariance_model

        try:
            return covariance_model(str(self.covariance_type)).form
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    def _given_init(self, n_features: int) -> dict[str, Any]:
        from .families.gaussian.models import native_shape

        k, given = int(self.n_components), {}
        if self.weights_init is not None:
            given["weights"] = _check_weights(self.weights_init, k)
        if self.means_init is not None:
            given["means"] = _check_shape(
                np.asarray(self.means_init, dtype=np.float64), (k, n_features), "means"
            )
        if self.precisions_init is not None:
            form = self._form()
            prec = _check_shape(
                np.asarray(self.precisions_init, dtype=np.float64),
                native_shape(form, k, n_features),
                f"{self.covariance_type} precision",
            )
            _check_positive(prec, form, f"{self.covariance_type} precision")
            given["precisions"] = prec
        return given

    def _with_given(self, base: Any, given: dict[str, Any], family: Any) -> Any:
        from .families.gaussian.params import GaussianParams

        weights = given["weights"] if "weights" in given else base.weights
        means = given["means"] if "means" in given else base.means
        if "precisions" in given:
            return GaussianParams.from_precisions(family.model, weights, means, given["precisions"])
        return GaussianParams(
            family.model, weights, means, base.covariances, base.precisions_cholesky
        )

    def _set_family_attributes(self, dtype: Any) -> None:
        params = self.model_.params
        self.means_ = np.asarray(params.means, dtype=dtype)
        self.covariances_ = np.asarray(params.covariances, dtype=dtype)
        self.precisions_cholesky_ = np.asarray(params.precisions_cholesky, dtype=dtype)
        self.precisions_ = np.asarray(params.precisions(), dtype=dtype)


# ---------------------------------------------------------------------------- helpers
def _seed(random_state: Any) -> int:
    """emcli's seed for scikit-learn's ``random_state``: an int is the seed itself; None or
    a ``RandomState`` draws one (so successive fits with one ``RandomState`` differ)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        check_random_state(random_state)  # the same range check as scikit-learn
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _random_responsibilities(
    family: Any, x: Any, k: int, rng: np.random.Generator, weights: Any
) -> Any:
    """Parameters of one M-step from uniform random responsibilities (``init_params=
    "random"``), on the complete rows of the initialisation sample."""
    rows = ~np.isnan(x).any(axis=1)
    if rows.sum() < k:
        raise ValueError(
            "init_params='random' needs at least n_components rows without missing values; "
            "use init_params='kmeans'"
        )
    resp = rng.uniform(size=(int(rows.sum()), k))
    resp /= resp.sum(axis=1, keepdims=True)
    w = None if weights is None else weights[rows]
    return family.from_responsibilities(x[rows], resp, w)


def _check_shape(value: Any, shape: tuple[int, ...], name: str) -> Any:
    if value.shape != tuple(shape):
        raise ValueError(
            f"The parameter '{name}' should have the shape of {tuple(shape)}, but got {value.shape}"
        )
    if not np.all(np.isfinite(value)):
        raise ValueError(f"The parameter '{name}' should be finite")
    return value


def _check_weights(weights: Any, k: int) -> Any:
    w = _check_shape(np.asarray(weights, dtype=np.float64), (k,), "weights")
    if w.min() < 0.0 or w.max() > 1.0:
        raise ValueError(
            f"The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{w.max():.5f}, min value {w.min():.5f}"
        )
    if not np.isclose(w.sum(), 1.0, rtol=0.0, atol=1e-6):
        raise ValueError(
            f"The parameter 'weights' should be normalized, but got sum(weights) = {w.sum():.5f}"
        )
    return w / w.sum()


def _check_positive(prec: Any, form: str, name: str) -> None:
    if form in ("diag", "spherical"):
        if np.any(prec <= 0.0):
            raise ValueError(f"'{name}' should be positive")
        return
    for p in np.reshape(prec, (-1, *prec.shape[-2:])):
        if not (np.allclose(p, p.T) and np.all(np.linalg.eigvalsh(p) > 0.0)):
            raise ValueError(f"'{name}' should be symmetric, positive-definite")


class _Verbose:
    """scikit-learn's verbose messages, on stderr (emcli keeps stdout for data)."""

    def __init__(self, verbose: int, interval: int, total_weight: float) -> None:
        self.verbose, self.interval = int(verbose), int(interval)
        self.total = max(total_weight, 1e-300)
        self.started: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def _print(self, text: str) -> None:
        print(text, file=sys.stderr)

    def start(self, start: int, n_starts: int) -> None:
        self.started[start] = self.last[start] = time.perf_counter()
        self._print(f"Initialization {start}")

    def iteration(self, start: int, n_iter: int, log_likelihood: float, delta: float) -> None:
        if n_iter < 1 or n_iter % self.interval:
            return
        if self.verbose == 1:
            self._print(f"  Iteration {n_iter}")
            return
        now = time.perf_counter()
        lapse, self.last[start] = now - self.last.get(start, now), now
        self._print(
            f"  Iteration {n_iter}\t time lapse {lapse:.5f}s\t ll change {delta / self.total:.5f}"
        )

    def end(self, result: Any) -> None:
        status = "converged" if result.converged else "did not converge"
        if self.verbose == 1 or not result.usable:
            self._print(f"Initialization {status}.")
            return
        lapse = time.perf_counter() - self.started.get(result.start, time.perf_counter())
        self._print(
            f"Initialization {status}. time lapse {lapse:.5f}s\t lower bound "
            f"{result.log_likelihood / self.total:.5f}."
        )
