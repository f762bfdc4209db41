"""The adversarial autoencoder: an autoencoder whose codes a discriminator pushes toward a prior.

One training step is three updates, all inside the one jitted step (the `update` hook),
each with its own optax state: (1) reconstruction, on encoder and decoder; (2) the
discriminator, telling prior samples from codes; (3) the generator, on the encoder, with
the non-saturating loss -log D(code). The reconstruction update uses hp.learning_rate,
the discriminator update hp.disc_learning_rate and the generator update hp.gen_learning_rate
(all arrays in `hp`, so a sweep can vmap over them). hp.disc_r1 > 0 adds the R1 gradient
penalty on prior samples to the discriminator's loss (Mescheder et al. 2018).

Priors: a standard Gaussian in K dimensions, or (K = 2) a mixture of 10 Gaussians with
means evenly spaced on a circle. With `label_prior` (Makhzani et al. section 2.3, all
labels known) a code of class c is matched to component c and the discriminator also sees
the one-hot label, which makes the classes form separate clusters.

References: Makhzani et al. 2015, "Adversarial Autoencoders"; Goodfellow et al. 2014,
"Generative Adversarial Nets".
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax.errors import ConfigError, DataError
from aejax.models import common
from aejax.models.vae import check_labels
from aejax.models.updates import gradient_step
from aejax.nets import ACTIVATIONS
from aejax.nets.discriminator import MLPDiscriminator
from aejax.objectives import adversarial as adv
from aejax.objectives import kl as klo

PRIORS = ("gaussian", "mixture")
ENCODER_KINDS = ("deterministic", "gaussian")


def mixture_means(num_components: int, radius: float):
    """Means [C, 2] of a circular mixture: evenly spaced angles 2 pi c / C at `radius`."""
    angles = 2.0 * jnp.pi * jnp.arange(num_components) / num_components
    return radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)


def sample_mixture(num: int, *, key, num_components: int, radius: float, std: float, labels=None):
    """Samples [num, 2] from the circular mixture; `labels` [num] pick components (uniform when None)."""
    k_c, k_n = jax.random.split(key)
    if labels is None:
        labels = jax.random.randint(k_c, (num,), 0, num_components)
    means = mixture_means(num_components, radius)[labels]
    return means + std * jax.random.normal(k_n, (num, 2))


@dataclasses.dataclass(frozen=True)
class AAE:
    """x -> encoder -> z -> decoder; a discriminator on z against prior samples.

    Attributes:
      encoder, decoder: linen modules (the encoder outputs 2K values when Gaussian).
      discriminator: a module from codes [B, K] (and a condition) to logits [B].
      input_shape: shape of one example.
      code_size: K (2 for the mixture prior).
      likelihood: reconstruction term, "bernoulli" (cross-entropy) or "mse", per pixel.
      encoder_kind: "deterministic" (z = f(x)) or "gaussian" (z = mean + sigma * eps).
      prior: "gaussian" (N(0, I)) or "mixture" (10 Gaussians on a circle, K = 2).
      label_prior: match class-c codes to mixture component c (needs labels).
      num_classes: the dataset's class count (used with `label_prior`).
      mixture_components, mixture_radius, mixture_std: the mixture's shape.
      disc_hidden, disc_activation: the discriminator MLP's widths and activation.
    """

    encoder: nn.Module
    decoder: nn.Module
    discriminator: nn.Module
    input_shape: tuple[int, ...]
    code_size: int
    likelihood: str = "bernoulli"
    encoder_kind: str = "deterministic"
    prior: str = "gaussian"
    label_prior: bool = False
    num_classes: int = 0
    mixture_components: int = 10
    mixture_radius: float = 4.0
    mixture_std: float = 0.5
    disc_hidden: tuple[int, ...] = (256, 256)
    disc_activation: str = "relu"
    name = "aae"

    def __post_init__(self):
        common.check_likelihood(self.likelihood)
        if self.encoder_kind not in ENCODER_KINDS:
            raise ConfigError(f"unknown encoder kind {self.encoder_kind!r}; choose one of {list(ENCODER_KINDS)}.")
        if self.prior not in PRIORS:
            raise ConfigError(f"unknown prior {self.prior!r}; choose one of {list(PRIORS)}.")
        if self.prior == "mixture" and self.code_size != 2:
            raise ConfigError(f"the mixture prior lives in 2 dimensions, got model.code_size={self.code_size}; "
                              "set model.code_size=2 or use prior='gaussian'.")
        if self.label_prior and self.prior != "mixture":
            raise ConfigError("model.label_prior needs prior='mixture' (one component per class).")
        if self.label_prior and self.num_classes != self.mixture_components:
            raise ConfigError(f"model.label_prior needs one mixture component per class: the data has "
                              f"{self.num_classes} classes but the mixture has {self.mixture_components}.")
        if self.mixture_components < 1 or self.mixture_std <= 0 or self.mixture_radius < 0:
            raise ConfigError("the mixture needs >= 1 component, a std > 0 and a radius >= 0.")

    @staticmethod
    def inactive_options(options: Mapping[str, Any]) -> dict[str, tuple[str, tuple]]:
        """The mixture's shape and the label prior serve the mixture prior only."""
        names = ("label_prior", "mixture_components", "mixture_radius", "mixture_std")
        return {} if options["prior"] == "mixture" else dict.fromkeys(names, ("prior", ("mixture",)))

    @classmethod
    def build(cls, net, *, input_shape, num_classes: int, code_size: int, encoder_kind: str = "deterministic",
              disc_hidden=(256, 256), disc_activation: str = "relu", **options):
        """An AAE from a NetSpec; the discriminator is an MLP with `disc_hidden` widths."""
        if encoder_kind not in ENCODER_KINDS:
            raise ConfigError(f"unknown encoder kind {encoder_kind!r}; choose one of {list(ENCODER_KINDS)}.")
        if disc_activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {disc_activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        if any(int(w) < 1 for w in disc_hidden):
            raise ConfigError("model.disc_hidden widths must be positive integers.")
        disc_hidden = tuple(int(w) for w in disc_hidden)
        width = 2 * int(code_size) if encoder_kind == "gaussian" else int(code_size)
        encoder, decoder = net.encoder_decoder(input_shape, int(code_size), encoder_width=width)
        return cls(encoder, decoder, MLPDiscriminator(disc_hidden, disc_activation), tuple(input_shape),
                   int(code_size), encoder_kind=encoder_kind, num_classes=int(num_classes), disc_hidden=disc_hidden,
                   disc_activation=disc_activation, **options)

    @property
    def label_conditional(self) -> bool:
        """True when `sample` takes class labels (the label prior picks component c for class c)."""
        return self.label_prior

    # --- prior ---------------------------------------------------------------------------

    def sample_prior(self, num: int, *, key, labels=None):
        """Codes [num, K] from the prior (mixture components picked by `labels` with label_prior)."""
        if self.prior == "gaussian":
            return jax.random.normal(key, (num, self.code_size))
        return sample_mixture(num, key=key, num_components=self.mixture_components, radius=self.mixture_radius,
                              std=self.mixture_std, labels=labels if self.label_prior else None)

    def prior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The prior's mean [K] and covariance [K, K] (of the marginal, uniform over components)."""
        if self.prior == "gaussian":
            return np.zeros(self.code_size), np.eye(self.code_size)
        means = np.asarray(mixture_means(self.mixture_components, self.mixture_radius), np.float64)
        mu = means.mean(axis=0)
        centred = means - mu
        cov = centred.T @ centred / len(means) + self.mixture_std ** 2 * np.eye(2)
        return mu, cov

    def prior_centres(self):
        """The mixture's component means [C, 2], or None for the Gaussian prior."""
        if self.prior != "mixture":
            return None
        return np.asarray(mixture_means(self.mixture_components, self.mixture_radius))

    # --- nets ----------------------------------------------------------------------------

    def _disc_condition(self, batch):
        if not self.label_prior:
            return None
        y = batch.get("y")
        if y is None:
            raise DataError("an AAE with label_prior needs labels (batch['y']); pass the class labels.")
        return jax.nn.one_hot(y, self.num_classes)

    def init(self, key, batch):
        k_enc, k_dec, k_disc = jax.random.split(key, 3)
        x = batch["x"][:1]
        z = jnp.zeros((1, self.code_size), x.dtype)
        cond = jax.nn.one_hot(jnp.zeros((1,), jnp.int32), self.num_classes) if self.label_prior else None
        return {"encoder": self.encoder.init(k_enc, x)["params"],
                "decoder": self.decoder.init(k_dec, z)["params"],
                "discriminator": self.discriminator.init(k_disc, z, cond)["params"]}

    def _encoder_out(self, enc_params, x):
        h = self.encoder.apply({"params": enc_params}, x)
        if self.encoder_kind == "gaussian":
            return h[:, : self.code_size], h[:, self.code_size:]
        return h, None

    def encode(self, params, batch):
        """Codes [B, K]: the encoder output (the mean for a Gaussian encoder)."""
        return self._encoder_out(params["encoder"], batch["x"])[0]

    def sample_codes(self, params, batch, *, key):
        """The codes the discriminator sees: encoder outputs, or samples of a Gaussian encoder -> [B, K]."""
        return self._sample_code(params["encoder"], batch["x"], key)

    def _sample_code(self, enc_params, x, key):
        mean, logvar = self._encoder_out(enc_params, x)
        return mean if logvar is None else klo.reparameterize(mean, logvar, key=key)

    def decode(self, params, z_BxK, labels=None):
        """Decoder mean in data space (sigmoid of the logits) [B, *input_shape]."""
        del labels
        return jax.nn.sigmoid(self.decoder.apply({"params": params["decoder"]}, z_BxK))

    def reconstruct(self, params, batch):
        return self.decode(params, self.encode(params, batch))

    def sample(self, params, num: int, *, key, labels=None):
        """Decoder means of `num` prior samples (labels [num] pick mixture components with label_prior)."""
        return self.decode(params, self.sample_prior(num, key=key, labels=labels))

    def _recon(self, ae_params, x, key):
        z = self._sample_code(ae_params["encoder"], x, key)
        logits = self.decoder.apply({"params": ae_params["decoder"]}, z)
        return jnp.mean(common.reconstruction_per_pixel(self.likelihood, logits, x))

    def _disc_logits(self, disc_params, z, cond):
        return self.discriminator.apply({"params": disc_params}, z, cond)

    # --- objective -----------------------------------------------------------------------

    def loss(self, params, batch, key, hp, *, step=None):
        """The reconstruction term, with the adversarial terms (not optimized here) in aux."""
        del step
        k_rec, k_code, k_prior = jax.random.split(key, 3)
        x = batch["x"]
        cond = self._disc_condition(batch)
        recon = self._recon(params, x, k_rec)
        z_fake = self._sample_code(params["encoder"], x, k_code)
        z_real = self.sample_prior(x.shape[0], key=k_prior, labels=batch.get("y"))
        real, fake = self._disc_logits(params["discriminator"], z_real, cond), self._disc_logits(
            params["discriminator"], z_fake, cond)
        r1 = jnp.mean(adv.r1_penalty(lambda z: self._disc_logits(params["discriminator"], z, cond), z_real))
        return recon, {"recon": recon, "disc_loss": jnp.mean(adv.discriminator_loss(real, fake)) + hp["disc_r1"] * r1,
                       "gen_loss": jnp.mean(adv.generator_loss(fake)),
                       "disc_acc": 0.5 * (jnp.mean(real > 0) + jnp.mean(fake < 0)), "disc_r1": r1}

    def init_opt_state(self, tx, params):
        return {"ae": tx.init({"encoder": params["encoder"], "decoder": params["decoder"]}),
                "disc": tx.init(params["discriminator"]),
                "gen": tx.init(params["encoder"])}

    def update(self, tx, params, opt_state, batch, key, hp, *, step):
        """Reconstruction, discriminator and generator updates, in that order, each with its own optax state."""
        del step
        k_rec, k_code, k_prior, k_gen = jax.random.split(key, 4)
        x = batch["x"]
        cond = self._disc_condition(batch)

        def recon_loss(ae):
            return self._recon(ae, x, k_rec), ()

        ae = {"encoder": params["encoder"], "decoder": params["decoder"]}
        ae, ae_state, recon, _, g_ae = gradient_step(recon_loss, tx, ae, opt_state["ae"], hp["learning_rate"])

        z_fake = jax.lax.stop_gradient(self._sample_code(ae["encoder"], x, k_code))
        z_real = self.sample_prior(x.shape[0], key=k_prior, labels=batch.get("y"))

        def disc_loss(d):
            real, fake = self._disc_logits(d, z_real, cond), self._disc_logits(d, z_fake, cond)
            r1 = jnp.mean(adv.r1_penalty(lambda z: self._disc_logits(d, z, cond), z_real))
            loss = jnp.mean(adv.discriminator_loss(real, fake)) + hp["disc_r1"] * r1
            return loss, (0.5 * (jnp.mean(real > 0) + jnp.mean(fake < 0)), r1)

        disc, disc_state, d_loss, (d_acc, r1), g_disc = gradient_step(
            disc_loss, tx, params["discriminator"], opt_state["disc"], hp["disc_learning_rate"])

        def gen_loss(enc):
            return jnp.mean(adv.generator_loss(self._disc_logits(disc, self._sample_code(enc, x, k_gen), cond))), ()

        encoder, gen_state, g_loss, _, g_enc = gradient_step(
            gen_loss, tx, ae["encoder"], opt_state["gen"], hp["gen_learning_rate"])

        grad_norm = optax.tree.norm((g_ae, g_disc, g_enc))
        new_params = {"encoder": encoder, "decoder": ae["decoder"], "discriminator": disc}
        new_state = {"ae": ae_state, "disc": disc_state, "gen": gen_state}
        aux = {"recon": recon, "disc_loss": d_loss, "gen_loss": g_loss, "disc_acc": d_acc, "disc_r1": r1}
        return new_params, new_state, recon, aux, grad_norm

    # --- checks --------------------------------------------------------------------------

    default_hp = common.default_hp

    @staticmethod
    def hp_defaults(options):
        del options
        return {"disc_learning_rate": 1e-3, "gen_learning_rate": 1e-3, "disc_r1": 0.0}

    def check_hp(self, hp):
        common.check_hp_keys(hp, ("disc_learning_rate", "gen_learning_rate", "disc_r1"))
        common.check_nonnegative(hp, "disc_r1")
        for name in ("disc_learning_rate", "gen_learning_rate"):
            value = np.asarray(hp[name])
            if not np.all(np.isfinite(value)) or np.any(value <= 0):
                raise ConfigError(f"hp.{name} must be a positive number, got {value}.")

    def check_data(self, x, y=None):
        common.check_data_for_likelihood(self.likelihood, x, y)
        if self.label_prior:
            check_labels(y, int(np.asarray(x).shape[0]), self.num_classes)

