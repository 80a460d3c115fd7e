"""The family contract: what a mixture family gives the EM driver, the engines and the model.

One EM iteration is a map-reduce (``docs/architecture.md``)::

    plan = family.prepare(params)                       # once per E-step
    E-step on a block:   family.e_step(x, plan, w)  -> stats (+ the block's log-likelihood)
    reduce:              stats + stats              -> stats
    M-step:              family.m_step(stats, plan) -> params

The engines only run the middle two lines over their blocks (memory, stream, dask); the
driver (``emcli.em.driver``) only calls these methods.  A family object carries its own
settings (the Gaussian family: its covariance model and ``reg_covar``), so ``m_step`` needs
nothing else.  Frequency weights ``w`` multiply the responsibilities inside the statistics:
a row of weight 3 counts as three identical rows.

A new family is one module with a class that has these methods, and one line in the
registry (``emcli.families.FAMILIES``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


class Stats(Protocol):
    """Additive sufficient statistics of a block of rows (``a + b`` sums them)."""

    log_likelihood: float
    n_samples: float  # total weight of the rows

    def __add__(self, other: Any) -> Any: ...


class Family(Protocol):
    """A mixture family (see the module docstring)."""

    name: str

    # ---------------------------------------------------------------- one iteration
    def prepare(self, params: Any, dtype: Any = np.float64, n_rows: int | None = None) -> Any:
        """What every block of one E-step needs (picklable: Dask ships it to workers)."""
        ...

    def block_rows(self, plan: Any) -> int:
        """Rows per block that suit this plan (engines may use smaller or larger blocks)."""
        ...

    def e_step(
        self, x: Array, plan: Any, weights: Array | None = None, gaps: bool | None = None
    ) -> Stats:
        """Statistics of a block of rows (b, d); ``gaps=False`` promises no missing cell,
        None lets the family look."""
        ...

    def refine(self, stats: Stats, plan: Any) -> Any | None:
        """A plan for a second pass when ``stats`` lost precision (else None)."""
        ...

    def m_step(self, stats: Stats, plan: Any) -> Any:
        """New parameters from the summed statistics of the E-step that used ``plan``."""
        ...

    # ---------------------------------------------------------------- applying
    def log_resp_and_norm(self, x: Array, params: Any) -> tuple[Array, Array]:
        """Log-responsibilities (b, k) and each row's log-density (b,), any rows."""
        ...

    def log_prob(self, x: Array, params: Any) -> Array:
        """log p(x_i | component j), shape (b, k) (missing cells marginalised)."""
        ...

    def sample(
        self, params: Any, n_samples: int, rng: np.random.Generator
    ) -> tuple[Array, NDArray[np.int64]]:
        """Rows drawn from the mixture, and the component of each."""
        ...

    # ---------------------------------------------------------------- starts, checks
    def start(
        self,
        x: Array,
        n_components: int,
        method: str,
        rng: np.random.Generator,
        weights: Array | None = None,
    ) -> Any:
        """Starting parameters from the initialisation sample ``x`` (labels by ``method``)."""
        ...

    def from_responsibilities(self, x: Array, resp: Array, weights: Array | None = None) -> Any:
        """Parameters of one M-step from responsibilities (n, k)."""
        ...

    def reference_scale(self, x: Array) -> Any:
        """What ``collapsed`` compares against, computed once from the sample."""
        ...

    def collapsed(self, params: Any, scale: Any, total_weight: float) -> list[int]:
        """Components that collapsed (held up only by a floor, or empty)."""
        ...

    def canonical_order(self, params: Any) -> NDArray[np.intp]:
        """The order in which a fitted model lists its components."""
        ...

    def permute(self, params: Any, order: NDArray[np.intp]) -> Any:
        """The same mixture, components in ``order``."""
        ...

    def n_parameters(self, params: Any) -> int:
        """Free parameters (for BIC/AIC)."""
        ...

    def n_components(self, params: Any) -> int: ...

    def mixing_weights(self, params: Any) -> Array: ...

    # ---------------------------------------------------------------- vectors (SQUAREM)
    def to_vector(self, params: Any) -> Array: ...

    def from_vector(self, theta: Array, like: Any) -> Any | None:
        """Parameters from a vector, or None when they are not a valid mixture."""
        ...

    # ---------------------------------------------------------------- model file
    def settings(self) -> dict[str, Any]:
        """The family's settings as the model file records them."""
        ...

    def params_to_dict(self, params: Any) -> dict[str, Any]: ...

    def params_from_dict(self, data: dict[str, Any], schema_version: int) -> Any:
        """Parameters from a model file's fields (ValueError when malformed)."""
        ...

    def describe(self, params: Any, columns: Sequence[str]) -> list[dict[str, Any]]:
        """One row per component for ``emcli describe``."""
        ...
