"""Mixtures shared by several test modules."""

from __future__ import annotations

import numpy as np

from emcli.families.gaussian import GaussianParams, from_full_covariances


def narrow_far_mixture(kind: str) -> tuple[GaussianParams, np.ndarray]:
    """A component with sd 1e-3 (a collapsing one, held by reg_covar) among components
    spread over 1e6, and one row near each mean.  Expanding (x - m)^2 p as
    x^2 p - 2 x m p + m^2 p there cancels ~1e18 against 1e18."""
    means = np.array([[0.0, 0.0], [1e6, -1e6], [-2e6, 5e5]])
    if kind == "tied":
        full = np.repeat(np.array([[1e-6, 2e-7], [2e-7, 1e-6]])[None], 3, axis=0)
    else:
        full = np.stack([np.eye(2) * 1e-6, np.eye(2) * 1e11, np.diag([1e11, 4e11])])
        if kind == "full":
            full[0, 0, 1] = full[0, 1, 0] = 2e-7
    params = GaussianParams.from_covariances(
        kind, np.array([0.2, 0.4, 0.4]), means, from_full_covariances(kind, full)
    )
    x = means + np.array([[1e-3, -2e-3], [3e5, 1e5], [0.0, 0.0]])
    return params, x
