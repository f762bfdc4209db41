"""Pure loss terms, per example ([B] out); the caller reduces.

Every public term checks the shapes of its arrays on entry (chex, at trace time under jit) and
raises `aejax.errors.DataError` naming the function and the shapes it got.
"""

from aejax.objectives.reconstruction import (bernoulli_nll, continuous_bernoulli_log_norm, continuous_bernoulli_nll,
                                             gaussian_nll, num_features, per_feature_mean, squared_error)
from aejax.objectives.adversarial import discriminator_loss, generator_loss
from aejax.objectives.kl import (cyclical_schedule, free_bits_kl, gaussian_kl, gaussian_kl_per_dim,
                                 gaussian_log_density, kl_weight_schedule, linear_warmup, reparameterize,
                                 standard_normal_log_density)
from aejax.objectives.contractive import (SigmoidLayer, contractive_penalty,
                                           contractive_penalty_sigmoid_layer)
from aejax.objectives.sparsity import auxk_codes, bernoulli_kl, kl_sparsity, l0, l1_penalty, top_k, top_k_mask

__all__ = ["SigmoidLayer", "auxk_codes", "bernoulli_kl", "contractive_penalty", "contractive_penalty_sigmoid_layer",
           "kl_sparsity", "l0", "l1_penalty", "top_k", "top_k_mask",
           "bernoulli_nll", "continuous_bernoulli_log_norm", "continuous_bernoulli_nll", "gaussian_nll",
           "num_features", "per_feature_mean", "squared_error",
           # issue 4: generative autoencoders
           "cyclical_schedule", "discriminator_loss", "free_bits_kl", "gaussian_kl", "gaussian_kl_per_dim",
           "gaussian_log_density", "generator_loss", "kl_weight_schedule", "linear_warmup", "reparameterize",
           "standard_normal_log_density"]
