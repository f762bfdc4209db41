"""Pure loss terms, per example ([B] out); the caller reduces."""

from aejax.objectives.reconstruction import (bernoulli_nll, continuous_bernoulli_log_norm, continuous_bernoulli_nll,
                                             gaussian_nll, num_features, per_feature_mean, squared_error)

from aejax.objectives.contractive import (SigmoidLayer, contractive_penalty,
                                           contractive_penalty_sigmoid_layer)
from aejax.objectives.sparsity import auxk_codes, bernoulli_kl, kl_sparsity, l0, l1_penalty, top_k, top_k_mask

__all__ = ["SigmoidLayer", "auxk_codes", "bernoulli_kl", "contractive_penalty", "contractive_penalty_sigmoid_layer",
           "kl_sparsity", "l0", "l1_penalty", "top_k", "top_k_mask",
           "bernoulli_nll", "continuous_bernoulli_log_norm", "continuous_bernoulli_nll", "gaussian_nll",
           "num_features", "per_feature_mean", "squared_error"]
