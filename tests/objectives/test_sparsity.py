"""Sparsity terms against numpy computations; top-k and AuxK selections; bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_fails_naming

from aejax.errors import ConfigError
from aejax.objectives import auxk_codes, bernoulli_kl, kl_sparsity, l0, l1_penalty, top_k, top_k_mask
from aejax.objectives.sparsity import check_k, check_rate


def test_l1_matches_numpy():
    z = np.random.default_rng(0).normal(size=(6, 10)).astype(np.float32)
    np.testing.assert_allclose(l1_penalty(jnp.asarray(z)), np.abs(z).sum(axis=1), rtol=1e-6)


def test_kl_sparsity_matches_hand_computation():
    rng = np.random.default_rng(1)
    h = rng.uniform(0.01, 0.99, size=(32, 7))
    rho = 0.05
    rho_hat = h.mean(axis=0)
    expected = np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    np.testing.assert_allclose(float(kl_sparsity(jnp.asarray(h, jnp.float32), jnp.float32(rho))), expected, rtol=1e-5)


def test_kl_sparsity_is_zero_at_target_and_its_gradient_points_to_it():
    h = jnp.full((4, 3), 0.2)
    assert abs(float(kl_sparsity(h, 0.2))) < 1e-6
    g = jax.grad(lambda h: kl_sparsity(h, 0.05))(h)
    assert bool(jnp.all(g > 0))  # activations above the target are pushed down


def test_bernoulli_kl_handles_saturated_rates():
    out = bernoulli_kl(0.1, jnp.array([0.0, 1.0]))
    assert bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize("k", [1, 3, 9])
def test_top_k_keeps_exactly_k_largest(k):
    z = jax.random.normal(jax.random.key(k), (50, 10))
    out = np.asarray(top_k(z, k))
    assert np.all((out != 0).sum(axis=1) == k)
    zs = np.asarray(z)
    kth = np.sort(zs, axis=1)[:, -k][:, None]
    np.testing.assert_array_equal(out, np.where(zs >= kth, zs, 0.0))
    np.testing.assert_array_equal(np.asarray(l0(out)), np.full(50, k))


def test_top_k_mask_exact_with_ties():
    z = jnp.zeros((3, 8))
    assert np.all(np.asarray(top_k_mask(z, 2)).sum(axis=1) == 2)


def test_top_k_gradient_flows_only_through_kept_entries():
    z = jnp.array([[3.0, -1.0, 2.0, 0.5]])
    g = jax.grad(lambda z: jnp.sum(top_k(z, 2)))(z)
    np.testing.assert_array_equal(np.asarray(g), [[1.0, 0.0, 1.0, 0.0]])


def test_auxk_selects_only_dead_units():
    z = jnp.array([[5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    dead = jnp.array([False, True, False, True, True])
    out = np.asarray(auxk_codes(z, dead, 2))
    np.testing.assert_array_equal(out, [[0.0, 4.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 4.0, 5.0]])
    none_dead = np.asarray(auxk_codes(z, jnp.zeros(5, bool), 2))
    assert np.all(none_dead == 0)
    one_dead = np.asarray(auxk_codes(z, jnp.array([False, False, True, False, False]), 3))
    np.testing.assert_array_equal((one_dead != 0).sum(axis=1), [1, 1])


@pytest.mark.parametrize("rho", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_rho_outside_open_unit_interval_is_an_error(rho):
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        check_rate(rho)


@pytest.mark.parametrize("k, width", [(8, 8), (9, 8), (0, 8)])
def test_bad_k_is_an_error(k, width):
    with pytest.raises(ConfigError, match="code width"):
        check_k(k, width)


# -- shapes checked at the entry points (chex), and every term with and without jit --------------------

def _a(*shape):
    return jnp.zeros(shape, jnp.float32)


@pytest.mark.parametrize("call, shapes", [
    (lambda: l1_penalty(_a(4, 8, 1)), ["(4, 8, 1)", "expected 2", "l1_penalty"]),
    (lambda: l1_penalty(_a(8)), ["(8,)", "[B, K]"]),
    (lambda: kl_sparsity(_a(8), 0.05), ["(8,)", "kl_sparsity"]),
    (lambda: kl_sparsity(_a(4, 8), jnp.full(3, 0.05)), ["(3,)", "(8,)", "rho"]),
    (lambda: bernoulli_kl(jnp.full(3, 0.05), _a(8)), ["(3,)", "(8,)", "bernoulli_kl"]),
    (lambda: top_k(_a(8), 2), ["(8,)", "top_k"]),
    (lambda: top_k_mask(_a(4, 3), 5), ["(4, 3)", "k=5"]),
    (lambda: auxk_codes(_a(4, 8), jnp.zeros(6, bool), 2), ["(6,)", "(8)", "dead_K"]),
    (lambda: l0(_a(4, 2, 2)), ["(4, 2, 2)", "l0"]),
])
def test_wrong_shapes_fail_naming_the_shapes(call, shapes):
    assert_fails_naming(call, shapes)


class JitAndEagerTest(chex.TestCase):
    """Every sparsity term equals its numpy formula, jitted and not."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_terms_match_numpy(self):
        rng = np.random.default_rng(3)
        z = rng.normal(size=(6, 5)).astype(np.float32)
        h = rng.uniform(0.05, 0.95, size=(6, 5)).astype(np.float32)
        dead = np.array([True, False, True, True, False])
        got = {
            "l1": self.variant(l1_penalty)(z),
            "kl": self.variant(kl_sparsity)(h, jnp.float32(0.1)),
            "top2": self.variant(top_k, static_argnums=1)(z, 2),
            "auxk": self.variant(auxk_codes, static_argnums=2)(z, dead, 2),
            "l0": self.variant(l0)(np.where(np.abs(z) > 0.5, z, 0.0)),
        }
        rho_hat = h.mean(axis=0)
        kth = np.sort(z, axis=1)[:, -2][:, None]
        z_dead = np.where(dead, z, -np.inf)
        kth_dead = np.sort(z_dead, axis=1)[:, -2][:, None]
        expected = {
            "l1": np.abs(z).sum(-1),
            "kl": np.sum(0.1 * np.log(0.1 / rho_hat) + 0.9 * np.log(0.9 / (1 - rho_hat))),
            "top2": np.where(z >= kth, z, 0.0),
            "auxk": np.where(dead & (z_dead >= kth_dead), z, 0.0),
            "l0": (np.abs(z) > 0.5).sum(-1),
        }
        chex.assert_trees_all_close(got, jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), expected),
                                    rtol=1e-5, atol=1e-6)
