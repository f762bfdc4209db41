"""KL, free bits, reparameterization, densities, KL schedules and the adversarial terms."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aejax.errors import ConfigError, DataError
from aejax.objectives import adversarial, kl


def test_analytic_kl_matches_monte_carlo_within_standard_error():
    key = jax.random.key(0)
    k_m, k_v, k_z = jax.random.split(key, 3)
    mean = jax.random.normal(k_m, (5, 3)) * 1.5
    logvar = jax.random.normal(k_v, (5, 3))
    analytic = np.asarray(kl.gaussian_kl(mean, logvar))
    n = 200_000
    eps = jax.random.normal(k_z, (n, 5, 3))
    z = mean + jnp.exp(0.5 * logvar) * eps
    log_ratio = np.asarray(kl.gaussian_log_density(z, mean, logvar) - kl.standard_normal_log_density(z))
    mc, se = log_ratio.mean(axis=0), log_ratio.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(mc - analytic) < 4 * se), (mc, analytic, se)
    assert analytic.shape == (5,)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    assert np.allclose(kl.gaussian_kl(jnp.zeros((2, 4)), jnp.zeros((2, 4))), 0.0)
    assert np.all(np.asarray(kl.gaussian_kl(jnp.ones((2, 4)) * 0.1, jnp.zeros((2, 4)))) > 0)
    # closed form in one dimension: 0.5 (mu^2 + s^2 - log s^2 - 1)
    assert np.isclose(float(kl.gaussian_kl(jnp.array([[2.0]]), jnp.log(jnp.array([[0.25]])))[0]),
                      0.5 * (4 + 0.25 - np.log(0.25) - 1), rtol=1e-6)


def test_gaussian_log_density_matches_scipy():
    z, m, lv = np.random.default_rng(0).normal(size=(3, 4, 6))
    ref = stats.norm.logpdf(z, m, np.exp(0.5 * lv)).sum(-1)
    assert np.allclose(kl.gaussian_log_density(z, m, lv), ref, atol=1e-4)
    assert np.allclose(kl.standard_normal_log_density(z), stats.norm.logpdf(z).sum(-1), atol=1e-4)


def test_free_bits_clamps_the_batch_mean_per_dimension():
    kl_BxK = jnp.array([[0.0, 1.0, 3.0], [0.2, 1.0, 1.0]])
    fb = kl.free_bits_kl(kl_BxK, 0.5)
    assert fb.shape == (2,)
    assert np.isclose(float(jnp.mean(fb)), 0.5 + 1.0 + 2.0)
    assert np.allclose(kl.free_bits_kl(kl_BxK, 0.0), kl_BxK.sum(-1))
    grad = jax.grad(lambda k: jnp.mean(kl.free_bits_kl(k, 0.5)))(kl_BxK)
    assert np.allclose(grad[:, 0], 0.0) and np.all(np.asarray(grad[:, 1:]) > 0)


def test_free_bits_uses_the_batch_mean_not_each_example():
    # dim 0: batch mean 0.45 < 0.5 although example 0 is above; dim 1: mean 0.8 > 0.5 although
    # example 0 is below; dim 2: both examples above. Clamping each example would give other values.
    kl_BxK = np.array([[0.9, 0.1, 2.0], [0.0, 1.5, 0.7]])
    fb = np.asarray(kl.free_bits_kl(jnp.asarray(kl_BxK, jnp.float32), 0.5))
    # independently: per-dimension batch means, then the constant replaces each inactive dimension
    active = kl_BxK.mean(axis=0) > 0.5
    expected = np.where(active[None, :], kl_BxK, 0.5).sum(axis=-1)
    np.testing.assert_allclose(fb, expected, rtol=1e-6)
    np.testing.assert_allclose(fb, [0.5 + 0.1 + 2.0, 0.5 + 1.5 + 0.7], rtol=1e-6)
    assert not np.allclose(fb, np.maximum(kl_BxK, 0.5).sum(-1))  # the per-example clamp
    grad = np.asarray(jax.grad(lambda k: jnp.mean(kl.free_bits_kl(k, 0.5)))(jnp.asarray(kl_BxK, jnp.float32)))
    np.testing.assert_allclose(grad, [[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])


def test_reparameterization_is_deterministic_in_the_key_and_differentiable():
    mean, logvar = jnp.array([[0.5, -1.0]]), jnp.array([[0.2, -0.4]])
    z1 = kl.reparameterize(mean, logvar, key=jax.random.key(1))
    z2 = kl.reparameterize(mean, logvar, key=jax.random.key(1))
    z3 = kl.reparameterize(mean, logvar, key=jax.random.key(2))
    assert np.array_equal(z1, z2) and not np.allclose(z1, z3)
    eps = (z1 - mean) / jnp.exp(0.5 * logvar)
    g_mean, g_logvar = jax.grad(lambda m, v: jnp.sum(kl.reparameterize(m, v, key=jax.random.key(1))),
                                argnums=(0, 1))(mean, logvar)
    # dz/dmean = 1 and dz/dlogvar = eps * sigma / 2 with eps held fixed: the noise is a constant.
    assert np.allclose(g_mean, 1.0)
    assert np.allclose(g_logvar, 0.5 * jnp.exp(0.5 * logvar) * eps, atol=1e-6)
    with pytest.raises(TypeError):
        kl.reparameterize(mean, logvar, jax.random.key(1))  # key is keyword-only


def test_kl_schedules():
    steps = jnp.array([0, 50, 100, 200])
    assert np.allclose(kl.linear_warmup(steps, 100), [0.0, 0.5, 1.0, 1.0])
    assert np.allclose(kl.cyclical_schedule(jnp.array([0, 25, 50, 99, 100, 125]), 100, 0.5),
                       [0.0, 0.5, 1.0, 1.0, 0.0, 0.5])
    assert np.allclose(kl.kl_weight_schedule("constant", steps), 1.0)


def test_linear_kl_warmup_by_value_through_the_dispatcher():
    # 0 at the start, step / warmup on the ramp, 1 at the end and after; swapped endpoints fail.
    steps = jnp.array([0, 1, 30, 60, 119, 120, 121, 10_000])
    got = np.asarray(kl.kl_weight_schedule("linear", steps, warmup_steps=120))
    np.testing.assert_allclose(got, [0.0, 1 / 120, 0.25, 0.5, 119 / 120, 1.0, 1.0, 1.0], rtol=1e-6, atol=1e-7)
    cyc = np.asarray(kl.kl_weight_schedule("cyclical", jnp.array([0, 10, 20, 39, 40, 50]), cycle_steps=40,
                                           ramp_fraction=0.5))
    np.testing.assert_allclose(cyc, [0.0, 0.5, 1.0, 1.0, 0.0, 0.5], atol=1e-7)


def test_unknown_kl_schedule_is_a_config_error_naming_the_choices():
    for name in ("linaer", "Linear", "cosine", ""):
        with pytest.raises(ConfigError, match=r"unknown KL schedule .*'constant', 'linear', 'cyclical'"):
            kl.kl_weight_schedule(name, jnp.array(3), warmup_steps=10, cycle_steps=10)


def test_adversarial_losses_match_their_formulas():
    real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
    s = lambda v: 1 / (1 + np.exp(-np.asarray(v)))
    assert np.allclose(adversarial.discriminator_loss(real, fake), -np.log(s(real)) - np.log(1 - s(fake)), atol=1e-6)
    assert np.allclose(adversarial.generator_loss(fake), -np.log(s(fake)), atol=1e-6)
    # non-saturating: the generator's gradient stays large when the discriminator rejects the codes
    g = jax.grad(lambda f: jnp.sum(adversarial.generator_loss(f)))(jnp.array([-8.0]))
    assert float(g[0]) < -0.99


def test_r1_penalty_is_half_the_squared_gradient_norm():
    w = jnp.array([1.0, -2.0, 0.5])
    z = jnp.ones((4, 3))
    assert np.allclose(adversarial.r1_penalty(lambda v: v @ w, z), 0.5 * float(w @ w))
    quad = adversarial.r1_penalty(lambda v: jnp.sum(v ** 2, axis=-1), z)  # grad = 2 z
    assert np.allclose(quad, 0.5 * 4 * 3)


# -- shapes checked at the entry points (chex), and every term with and without jit --------------------

def _a(*shape):
    return jnp.zeros(shape, jnp.float32)


@pytest.mark.parametrize("call, shapes", [
    (lambda: kl.gaussian_kl(_a(4, 3), _a(4, 2)), ["(4, 3)", "(4, 2)", "gaussian_kl"]),
    (lambda: kl.gaussian_kl_per_dim(_a(4, 3), _a(3, 4)), ["(4, 3)", "(3, 4)", "gaussian_kl_per_dim"]),
    (lambda: kl.gaussian_kl(_a(12), _a(12)), ["(12,)", "expected 2", "[B, K]"]),
    (lambda: kl.free_bits_kl(_a(4), 0.5), ["(4,)", "free_bits_kl"]),
    (lambda: kl.free_bits_kl(_a(4, 3), jnp.zeros(2)), ["(2,)", "(3,)", "free_bits"]),
    (lambda: kl.reparameterize(_a(4, 3), _a(4, 1), key=jax.random.key(0)), ["(4, 3)", "(4, 1)", "reparameterize"]),
    (lambda: kl.gaussian_log_density(_a(5, 4, 3), _a(4, 2), _a(4, 2)), ["(4, 2)", "(5, 4, 3)", "broadcast"]),
    (lambda: kl.gaussian_log_density(_a(4, 3), _a(4, 3), _a(3,)), ["(4, 3)", "(3,)", "gaussian_log_density"]),
    (lambda: adversarial.discriminator_loss(_a(4), _a(5)), ["(4,)", "(5,)", "discriminator_loss"]),
    (lambda: adversarial.discriminator_loss(_a(4, 1), _a(4, 1)), ["(4, 1)", "expected 1", "[B]"]),
    (lambda: adversarial.generator_loss(_a(4, 1)), ["(4, 1)", "generator_loss"]),
    (lambda: adversarial.r1_penalty(lambda z: z, _a(4, 3)), ["(4, 3)", "(4)", "logits [B]"]),
    (lambda: adversarial.r1_penalty(lambda z: z.sum(-1), _a(4)), ["(4,)", "r1_penalty"]),
])
def test_wrong_shapes_fail_naming_the_shapes(call, shapes):
    with pytest.raises(DataError) as info:
        call()
    for text in shapes:
        assert text in str(info.value), (text, str(info.value))


def test_wrong_shapes_fail_while_tracing_before_any_compile():
    with pytest.raises(DataError, match=r"\(4, 3\).*\(4, 2\)"):
        jax.jit(kl.gaussian_kl).lower(jax.ShapeDtypeStruct((4, 3), jnp.float32),
                                      jax.ShapeDtypeStruct((4, 2), jnp.float32))


class JitAndEagerTest(chex.TestCase):
    """Every term of kl.py and adversarial.py equals its numpy formula, jitted and not."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_terms_match_numpy(self):
        rng = np.random.default_rng(0)
        mean, logvar, z = (rng.normal(size=(5, 3)).astype(np.float32) for _ in range(3))
        got = {
            "kl_per_dim": self.variant(kl.gaussian_kl_per_dim)(mean, logvar),
            "kl": self.variant(kl.gaussian_kl)(mean, logvar),
            "free_bits": self.variant(kl.free_bits_kl)(np.abs(mean), 0.5),
            "log_q": self.variant(kl.gaussian_log_density)(z, mean, logvar),
            "log_p": self.variant(kl.standard_normal_log_density)(z),
            "disc": self.variant(adversarial.discriminator_loss)(mean[:, 0], mean[:, 1]),
            "gen": self.variant(adversarial.generator_loss)(mean[:, 0]),
            "r1": self.variant(lambda z: adversarial.r1_penalty(lambda v: jnp.sum(v ** 2, axis=-1), z))(z),
        }
        kl_per_dim = 0.5 * (mean ** 2 + np.exp(logvar) - logvar - 1)
        active = np.abs(mean).mean(axis=0) > 0.5
        softplus = lambda v: np.log1p(np.exp(v))
        expected = {
            "kl_per_dim": kl_per_dim, "kl": kl_per_dim.sum(-1),
            "free_bits": np.where(active[None], np.abs(mean), 0.5).sum(-1),
            "log_q": stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1),
            "log_p": stats.norm.logpdf(z).sum(-1),
            "disc": softplus(-mean[:, 0]) + softplus(mean[:, 1]), "gen": softplus(-mean[:, 0]),
            "r1": 0.5 * (4 * z ** 2).sum(-1),
        }
        chex.assert_trees_all_close(got, expected, rtol=1e-5, atol=1e-5)
        eps_key = jax.random.key(3)
        sample = self.variant(lambda m, v, k: kl.reparameterize(m, v, key=k))(mean, logvar, eps_key)
        eps = np.asarray(jax.random.normal(eps_key, mean.shape))
        chex.assert_trees_all_close(sample, mean + np.exp(0.5 * logvar) * eps, rtol=1e-5, atol=1e-6)
        schedule = self.variant(lambda s: kl.kl_weight_schedule("linear", s, warmup_steps=10))(jnp.arange(0, 15, 5))
        chex.assert_trees_all_close(schedule, np.array([0.0, 0.5, 1.0], np.float32))
