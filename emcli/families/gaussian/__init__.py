"""The Gaussian family: parameters, covariance models, kernels, missing values, model file."""

from .family import GaussianFamily, GaussianPlan, GaussianStats, collapsed_components
from .models import COVARIANCE_TYPES, MODELS, CovarianceModel, covariance_model
from .params import (
    GaussianParams,
    from_full_covariances,
    log_gaussian,
    log_resp_and_norm,
    to_full_covariances,
)
from .stats import SufficientStats, block_stats, m_step

__all__ = [
    "COVARIANCE_TYPES",
    "MODELS",
    "CovarianceModel",
    "GaussianFamily",
    "GaussianParams",
    "GaussianPlan",
    "GaussianStats",
    "SufficientStats",
    "block_stats",
    "collapsed_components",
    "covariance_model",
    "from_full_covariances",
    "log_gaussian",
    "log_resp_and_norm",
    "m_step",
    "to_full_covariances",
]
