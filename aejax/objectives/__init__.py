"""Pure loss terms, per example ([B] out); the caller reduces."""

from aejax.objectives.reconstruction import (bernoulli_nll, continuous_bernoulli_log_norm, continuous_bernoulli_nll,
                                             gaussian_nll, num_features, per_feature_mean, squared_error)

__all__ = ["bernoulli_nll", "continuous_bernoulli_log_norm", "continuous_bernoulli_nll", "gaussian_nll",
           "num_features", "per_feature_mean", "squared_error"]
