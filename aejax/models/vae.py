"""The variational autoencoder, its beta-weighted form, and the conditional VAE.

One `VAE` object serves three kinds: "vae" (beta = 1 by default), beta-VAE (set hp.beta,
a KL warm-up schedule and free bits) and "cvae" (built with conditional=True: one-hot
labels of the dataset's classes are concatenated to the encoder's and the decoder's features).

The KL multiplier of a warm-up or cyclical schedule is a function of the trainer's global
step, which the trainer passes to `loss(..., step=step)`. Outside training (`step=None`)
the loss uses the full weight, so the numbers reported for validation and test are the
true (beta-weighted) objective.

References: Kingma & Welling 2013, "Auto-Encoding Variational Bayes"; Higgins et al. 2017,
"beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework"; Sohn et
al. 2015, "Learning Structured Output Representation using Deep Conditional Generative Models".
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError, DataError
from aejax.models import common
from aejax.objectives import kl as klo
from aejax.objectives import reconstruction as rec

VAE_LIKELIHOODS = ("bernoulli", "gaussian", "gaussian_learned", "continuous_bernoulli")
UNIT_RANGE_LIKELIHOODS = ("bernoulli", "continuous_bernoulli")


def continuous_bernoulli_mean(logits):
    """Mean of the continuous Bernoulli with lambda = sigmoid(logits) (1/2 at lambda = 1/2).

    E[x] = lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda)); near 1/2 the Taylor form
    1/2 + (lambda - 1/2) / 3 avoids 0/0.

    References: Loaiza-Ganem & Cunningham 2019, "The continuous Bernoulli".
    """
    lam = jax.nn.sigmoid(logits)
    d = lam - 0.5
    near = jnp.abs(d) < 1e-2
    safe_logits = jnp.where(near, 1.0, logits)
    safe_lam = jax.nn.sigmoid(safe_logits)
    # 2 artanh(1 - 2 lam) = -logits
    exact = safe_lam / (2.0 * safe_lam - 1.0) - 1.0 / safe_logits
    return jnp.where(near, 0.5 + d / 3.0, exact)


def check_labels(y, num_examples: int, num_classes: int, *, what: str = "labels") -> None:
    """Labels for a conditional model: present, [N] integers in [0, num_classes)."""
    if y is None:
        raise DataError(f"this conditional model needs {what} (batch['y']) for its {num_examples} examples, "
                        "got none; pass the class labels.")
    y = np.asarray(y)
    if y.shape != (num_examples,):
        raise DataError(f"{what} must have shape [{num_examples}] (one per example), got {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what} must be integers in [0, {num_classes}), got dtype {y.dtype}.")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{what} must lie in [0, {num_classes}) for a model built with {num_classes} classes, "
                        f"got values in [{y.min()}, {y.max()}]; fix the labels (the class count is the dataset's).")


@dataclasses.dataclass(frozen=True)
class VAE:
    """x -> Gaussian q(z|x) -> z = mu + sigma * eps -> p(x|z); loss = -ELBO (beta-weighted KL).

    Attributes:
      encoder: module mapping x (and a condition) to [B, 2K]: mean and log-variance.
      decoder: module mapping z [B, K] (and a condition) to logits or means [B, *input_shape].
      input_shape: shape of one example.
      code_size: K.
      likelihood: "bernoulli" (logits), "gaussian" (mean, fixed sigma = hp.sigma),
        "gaussian_learned" (mean, one learned sigma per feature, bounded below by
        exp(min_log_sigma)) or "continuous_bernoulli" (logits).
      num_classes: 0 for an unconditional VAE; C > 0 for a conditional VAE on one-hot labels.
      kl_schedule: "constant", "linear" (warm-up over kl_warmup) or "cyclical"
        (cycles of kl_cycle, rising over kl_ramp_fraction of each).
      dynamic_binarization: resample x ~ Bernoulli(x) in every training loss (for the
        Bernoulli likelihood on grey-level images, as in the NLL literature).
    """

    encoder: nn.Module
    decoder: nn.Module
    input_shape: tuple[int, ...]
    code_size: int
    likelihood: str = "bernoulli"
    num_classes: int = 0
    kl_schedule: str = "constant"
    kl_warmup: int = dataclasses.field(default=0, metadata={"unit": "steps"})
    kl_cycle: int = dataclasses.field(default=0, metadata={"unit": "steps"})
    kl_ramp_fraction: float = 0.5
    dynamic_binarization: bool = False
    min_log_sigma: float = math.log(1e-2)

    def __post_init__(self):
        common.check_likelihood(self.likelihood, VAE_LIKELIHOODS)
        if self.code_size < 1:
            raise ConfigError(f"code size must be a positive integer, got {self.code_size}; set model.code_size >= 1.")
        if self.num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0, got {self.num_classes}.")
        if self.kl_schedule not in klo.KL_SCHEDULES:
            raise ConfigError(f"unknown KL schedule {self.kl_schedule!r}; choose one of {list(klo.KL_SCHEDULES)}.")
        if self.kl_schedule == "linear" and self.kl_warmup < 1:
            raise ConfigError(f"a linear KL warm-up needs model.kl_warmup >= 1, got {self.kl_warmup}.")
        if self.kl_schedule == "cyclical" and self.kl_cycle < 1:
            raise ConfigError(f"a cyclical KL schedule needs model.kl_cycle >= 1, got {self.kl_cycle}.")
        if not 0.0 < self.kl_ramp_fraction <= 1.0:
            raise ConfigError(f"model.kl_ramp_fraction must lie in (0, 1], got {self.kl_ramp_fraction}.")
        if self.dynamic_binarization and self.likelihood != "bernoulli":
            raise ConfigError("dynamic binarization only makes sense with the 'bernoulli' likelihood; "
                              f"got likelihood {self.likelihood!r}.")

    @staticmethod
    def inactive_options(options: Mapping[str, Any]) -> dict[str, tuple[str, tuple]]:
        """Options these `options` leave unused: {option: (the option it depends on, the values that use it)}."""
        out = {}
        if options["kl_schedule"] != "linear":
            out["kl_warmup"] = ("kl_schedule", ("linear",))
        if options["kl_schedule"] != "cyclical":
            out.update(dict.fromkeys(("kl_cycle", "kl_ramp_fraction"), ("kl_schedule", ("cyclical",))))
        if options["likelihood"] != "gaussian_learned":
            out["min_log_sigma"] = ("likelihood", ("gaussian_learned",))
        if options["likelihood"] != "bernoulli":
            out["dynamic_binarization"] = ("likelihood", ("bernoulli",))
        return out

    @property
    def name(self) -> str:
        return "cvae" if self.conditional else "vae"

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def label_conditional(self) -> bool:
        """True when `sample` and `decode` take class labels (a CVAE)."""
        return self.conditional

    @classmethod
    def build(cls, net, *, input_shape, num_classes: int, code_size: int, conditional: bool = False, **options):
        """A VAE from a NetSpec; `conditional` conditions on the dataset's `num_classes` one-hot labels."""
        if conditional and int(num_classes) < 2:
            raise ConfigError(f"a conditional VAE needs at least 2 classes, got num_classes={num_classes}.")
        encoder, decoder = net.encoder_decoder(input_shape, int(code_size), encoder_width=2 * int(code_size))
        return cls(encoder, decoder, tuple(input_shape), int(code_size),
                   num_classes=int(num_classes) if conditional else 0, **options)

    # --- nets ----------------------------------------------------------------------------

    def _condition(self, y, num: int):
        """One-hot labels [num, C] for a conditional model; None otherwise."""
        if not self.conditional:
            return None
        if y is None:
            raise DataError(f"this conditional VAE needs labels (batch['y']) for its {num} examples, got none; "
                            "pass the class labels.")
        if tuple(jnp.shape(y)) != (num,):
            raise DataError(f"labels must have shape [{num}] (one per example), got {tuple(jnp.shape(y))}.")
        return jax.nn.one_hot(y, self.num_classes)

    def init(self, key, batch):
        k_enc, k_dec = jax.random.split(key)
        x = batch["x"][:1]
        cond = jax.nn.one_hot(jnp.zeros((1,), jnp.int32), self.num_classes) if self.conditional else None
        enc = self.encoder.init(k_enc, x, cond)["params"]
        dec = self.decoder.init(k_dec, jnp.zeros((1, self.code_size), x.dtype), cond)["params"]
        params = {"encoder": enc, "decoder": dec}
        if self.likelihood == "gaussian_learned":
            params["log_sigma"] = jnp.zeros(self.input_shape, jnp.float32)
        return params

    def posterior(self, params, batch):
        """Mean and log-variance of q(z|x) -> ([B, K], [B, K])."""
        x = batch["x"]
        cond = self._condition(batch.get("y"), x.shape[0])
        h = self.encoder.apply({"params": params["encoder"]}, x, cond)
        return h[:, : self.code_size], h[:, self.code_size:]

    def encode(self, params, batch):
        """The posterior mean [B, K] (deterministic)."""
        return self.posterior(params, batch)[0]

    def sample_codes(self, params, batch, *, key):
        """z ~ q(z|x) by reparameterization -> [B, K] (the codes the aggregate posterior is made of)."""
        mean, logvar = self.posterior(params, batch)
        return klo.reparameterize(mean, logvar, key=key)

    def decoder_output(self, params, z_BxK, labels=None):
        """Raw decoder output [B, *input_shape]: logits (Bernoulli kinds) or the Gaussian mean."""
        cond = self._condition(labels, z_BxK.shape[0])
        return self.decoder.apply({"params": params["decoder"]}, z_BxK, cond)

    def log_sigma(self, params):
        """The per-feature log standard deviation of a learned-variance Gaussian decoder."""
        return self.min_log_sigma + jax.nn.softplus(params["log_sigma"] - self.min_log_sigma)

    def nll(self, params, out, x, hp):
        """-log p(x | z) per example -> [B], summed over features."""
        if self.likelihood == "bernoulli":
            return rec.bernoulli_nll(out, x)
        if self.likelihood == "continuous_bernoulli":
            return rec.continuous_bernoulli_nll(out, x)
        if self.likelihood == "gaussian":
            return rec.gaussian_nll(out, x, jnp.log(hp["sigma"]))
        return rec.gaussian_nll(out, x, self.log_sigma(params))

    def mean_from_output(self, out):
        """The decoder distribution's mean in data space."""
        if self.likelihood == "bernoulli":
            return jax.nn.sigmoid(out)
        if self.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_mean(out)
        return out

    def decode(self, params, z_BxK, labels=None):
        """Decoder mean in data space [B, *input_shape]."""
        return self.mean_from_output(self.decoder_output(params, z_BxK, labels))

    def reconstruct(self, params, batch):
        """Decoder mean at the posterior mean (deterministic)."""
        return self.decode(params, self.encode(params, batch), batch.get("y"))

    def sample_prior(self, num: int, *, key, labels=None):
        """z ~ N(0, I) -> [num, K] (labels do not change a VAE's prior)."""
        del labels
        return jax.random.normal(key, (num, self.code_size))

    def sample(self, params, num: int, *, key, labels=None):
        """Decoder means of `num` codes drawn from the prior; a conditional model needs `labels` [num]."""
        if not self.conditional and labels is not None:
            raise ConfigError("this VAE is unconditional; sample without labels or build a 'cvae'.")
        return self.decode(params, self.sample_prior(num, key=key), labels)

    def prior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The prior's mean [K] and covariance [K, K]: N(0, I)."""
        return np.zeros(self.code_size), np.eye(self.code_size)

    def prior_centres(self):
        """A unimodal prior has no mixture components."""
        return None

    # --- objective ---------------------------------------------------------------------

    def _binarize(self, x, key):
        return jax.random.bernoulli(key, x).astype(x.dtype)

    def loss_terms(self, params, batch, key, hp, kl_weight):
        """Returns (scalar loss, aux); the KL term is multiplied by hp.beta * kl_weight."""
        k_bin, k_z = jax.random.split(key)
        x = self._binarize(batch["x"], k_bin) if self.dynamic_binarization else batch["x"]
        batch = {**batch, "x": x}
        mean, logvar = self.posterior(params, batch)
        z = klo.reparameterize(mean, logvar, key=k_z)
        nll_B = self.nll(params, self.decoder_output(params, z, batch.get("y")), x, hp)
        kl_BxK = klo.gaussian_kl_per_dim(mean, logvar)
        kl_B = jnp.sum(kl_BxK, axis=-1)
        penalized_kl_B = klo.free_bits_kl(kl_BxK, hp["free_bits"])
        loss = jnp.mean(nll_B + hp["beta"] * kl_weight * penalized_kl_B)
        recon, kl = jnp.mean(nll_B), jnp.mean(kl_B)
        aux = {"recon": recon, "kl": kl, "elbo": -(recon + kl), "kl_weight": jnp.asarray(kl_weight, jnp.float32),
               "active_dims": jnp.sum(jnp.mean(kl_BxK, axis=0) > 0.01).astype(jnp.float32)}
        return loss, aux

    def loss(self, params, batch, key, hp, *, step=None):
        """Negative beta-ELBO averaged over the batch (nats per example); the KL weight follows the
        schedule at the training `step`, and is full when `step` is None."""
        kl_weight = 1.0 if step is None else self.kl_weight_at(step)
        return self.loss_terms(params, batch, key, hp, kl_weight)

    def elbo(self, params, batch, *, key, hp=None):
        """Per-example ELBO [B] with one posterior sample and the analytic KL (beta = 1)."""
        hp = hp if hp is not None else common.as_hp(self.default_hp())
        mean, logvar = self.posterior(params, batch)
        z = klo.reparameterize(mean, logvar, key=key)
        nll_B = self.nll(params, self.decoder_output(params, z, batch.get("y")), batch["x"], hp)
        return -(nll_B + klo.gaussian_kl(mean, logvar))

    def log_importance_weights(self, params, batch, *, key, num_samples: int, hp=None):
        """log p(x, z_s) - log q(z_s | x) for z_s ~ q(z|x), s = 1..S -> [S, B].

        References: Burda et al. 2015, "Importance Weighted Autoencoders".
        """
        hp = hp if hp is not None else common.as_hp(self.default_hp())
        x = batch["x"]
        b = x.shape[0]
        mean, logvar = self.posterior(params, batch)
        eps = jax.random.normal(key, (num_samples, *mean.shape), mean.dtype)
        z_SxBxK = mean + jnp.exp(0.5 * logvar) * eps
        labels = None if batch.get("y") is None else jnp.tile(batch["y"], num_samples)
        out = self.decoder_output(params, z_SxBxK.reshape(num_samples * b, -1), labels if self.conditional else None)
        x_rep = jnp.broadcast_to(x, (num_samples, *x.shape)).reshape(num_samples * b, *x.shape[1:])
        log_px_z = -self.nll(params, out, x_rep, hp).reshape(num_samples, b)
        return log_px_z + klo.standard_normal_log_density(z_SxBxK) - klo.gaussian_log_density(z_SxBxK, mean, logvar)

    def kl_weight_at(self, step):
        """The KL schedule's multiplier at a global training step."""
        return klo.kl_weight_schedule(self.kl_schedule, step, warmup_steps=self.kl_warmup,
                                      cycle_steps=self.kl_cycle, ramp_fraction=self.kl_ramp_fraction)

    # --- checks -------------------------------------------------------------------------

    default_hp = common.default_hp

    @staticmethod
    def hp_defaults(options):
        """beta (KL weight), free_bits (nats per dimension), sigma (the fixed std of the
        "gaussian" likelihood; unused by the others)."""
        del options
        return {"beta": 1.0, "free_bits": 0.0, "sigma": 0.1}

    def check_hp(self, hp):
        common.check_hp_keys(hp, tuple(self.default_hp()))
        common.check_nonnegative(hp, "beta", "free_bits")
        if self.likelihood == "gaussian":
            sigma = np.asarray(hp["sigma"])
            if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
                raise ConfigError(f"hp.sigma (the Gaussian decoder's standard deviation) must be > 0, got {sigma}.")

    def check_data(self, x, y=None):
        unit = self.likelihood in UNIT_RANGE_LIKELIHOODS
        common.check_data_for_likelihood("bernoulli" if unit else "mse", x, y)
        if self.conditional:
            check_labels(y, int(np.asarray(x).shape[0]), self.num_classes)
        if tuple(np.asarray(x).shape[1:]) != tuple(self.input_shape):
            raise DataError(f"images must have shape [N, {', '.join(map(str, self.input_shape))}] for this model, "
                            f"got {np.asarray(x).shape}.")

