"""The contractive penalty: squared Frobenius norm of the encoder's Jacobian, per example.

`contractive_penalty(encode, x, method=...)` returns [B] values ||d h(x_i) / d x_i||_F^2.
`encode` maps a batch [B, *input_shape] to codes [B, K] row by row (no batch statistics).
Methods:

  "jacfwd" / "jacrev"  exact, `jax.jacfwd` / `jax.jacrev` per example under `vmap`;
  "auto"               exact: forward mode when the input (D features) is narrower than the
                       code (K), else reverse mode (the usual case, K < D); the closed form when
                       `encode` is a `SigmoidLayer`;
  "hutchinson"         unbiased: E_v ||J v||^2 = ||J||_F^2 for Rademacher probes v, `num_probes`
                       per example, probing the narrower side (jvp when D <= K, else vjp); needs `key`;
  "closed_form"        exact for one sigmoid layer h = sigmoid(W x + b):
                       sum_j (h_j (1 - h_j))^2 ||W_:j||^2; `encode` must be a `SigmoidLayer`
                       (which carries W and b), or call `contractive_penalty_sigmoid_layer`.

Every method is differentiable with respect to whatever `encode` closes over (the
parameters), which is what training uses.

References: Rifai, Vincent, Muller, Glorot & Bengio 2011, "Contractive auto-encoders: explicit
invariance during feature extraction" (ICML); Hutchinson 1989, "A stochastic estimator of the
trace of the influence matrix for Laplacian smoothing splines".
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import chex
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.objectives._checks import says

METHODS = ("auto", "jacfwd", "jacrev", "hutchinson", "closed_form")


@dataclasses.dataclass(frozen=True)
class SigmoidLayer:
    """A single sigmoid layer as an `encode` function that carries its weights.

    h = sigmoid(flatten(x) @ W + b), with W [D, K] and b [K]. Being callable, it works with
    every method; "closed_form" (and "auto") use W directly.
    """

    W: Any
    b: Any

    def __call__(self, x_BxD):
        return jax.nn.sigmoid(x_BxD.reshape(x_BxD.shape[0], -1) @ self.W + self.b)


jax.tree_util.register_dataclass(SigmoidLayer, data_fields=["W", "b"], meta_fields=[])


def _batch(where, x):
    chex.assert_rank(x, {2, 3, 4, 5}, **says(f"{where}: x must be a batch [B, *input_shape]"))


def contractive_penalty_sigmoid_layer(W_DxK, b_K, x):
    """Closed form ||J||_F^2 for h = sigmoid(W^T x + b) -> [B]: sum_j (h_j (1 - h_j))^2 ||W_:j||^2.

    Args:
      W_DxK: weights [D, K] (flax Dense kernel layout); b_K: bias [K]; x: [B, *input_shape] with
        prod(input_shape) = D.
    Returns:
      [B] squared Frobenius norms of dh/dx.

    References: Rifai et al. 2011, "Contractive auto-encoders", eq. (5).
    """
    where = "contractive_penalty_sigmoid_layer(W_DxK, b_K, x)"
    chex.assert_rank(W_DxK, 2, **says(f"{where}: W must be [D, K]"))
    chex.assert_shape(b_K, jnp.shape(W_DxK)[1:], **says(f"{where}: b must be [K] for W [D, K]"))
    _batch(where, x)
    x_BxD = x.reshape(x.shape[0], -1)
    if x_BxD.shape[1] != W_DxK.shape[0]:
        raise ConfigError(f"the sigmoid layer has {W_DxK.shape[0]} inputs but x has {x_BxD.shape[1]} features "
                          "per example; pass W shaped [D, K] for inputs of D features.")
    h_BxK = jax.nn.sigmoid(x_BxD @ W_DxK + b_K)
    w_norm_K = jnp.sum(jnp.square(W_DxK), axis=0)
    return jnp.sum(jnp.square(h_BxK * (1.0 - h_BxK)) * w_norm_K, axis=-1)


def check_method(method: str, *, key=None, num_probes: int = 1, encode=None) -> None:
    """Raises ConfigError for an unknown method, a missing key or a closed form that does not apply."""
    if method not in METHODS:
        raise ConfigError(f"unknown contractive method {method!r}; choose one of {list(METHODS)}.")
    if method == "hutchinson":
        if key is None:
            raise ConfigError("the 'hutchinson' contractive estimate draws random probes and needs key=...; "
                              "pass a jax.random key or use an exact method.")
        if int(num_probes) < 1:
            raise ConfigError(f"num_probes must be a positive integer, got {num_probes}.")
    if method == "closed_form" and encode is not None and not isinstance(encode, SigmoidLayer):
        raise ConfigError("the 'closed_form' contractive penalty applies only to a single sigmoid layer; pass "
                          "encode=SigmoidLayer(W, b) (or call contractive_penalty_sigmoid_layer), or use "
                          "method='auto' for other encoders.")


def _per_example(encode: Callable, x_i):
    """One example [*input_shape] -> its code [K], through the batched `encode`."""
    return encode(x_i[None])[0]


def _exact(encode, x, mode):
    jac = jax.jacfwd if mode == "jacfwd" else jax.jacrev
    jac_B = jax.vmap(jac(lambda x_i: _per_example(encode, x_i)))(x)  # [B, K, *input_shape]
    return jnp.sum(jnp.square(jac_B.reshape(x.shape[0], -1)), axis=-1)


def _probes(key, shape, dtype):
    return jax.random.rademacher(key, shape, dtype=dtype)


def _hutchinson(encode, x, key, num_probes, code_width):
    input_width = math.prod(x.shape[1:])
    if input_width <= code_width:
        # J v through one linearization of the batched encoder, vmapped over probes.
        _, jvp_fn = jax.linearize(encode, x)
        v_PxBx = _probes(key, (num_probes, *x.shape), x.dtype)
        jv_PxBxK = jax.vmap(jvp_fn)(v_PxBx)
        sq_PxB = jnp.sum(jnp.square(jv_PxBxK), axis=-1)
    else:
        z_BxK, vjp_fn = jax.vjp(encode, x)
        u_PxBxK = _probes(key, (num_probes, *z_BxK.shape), z_BxK.dtype)
        (jtu_PxBx,) = jax.vmap(vjp_fn)(u_PxBxK)
        sq_PxB = jnp.sum(jnp.square(jtu_PxBx.reshape(num_probes, x.shape[0], -1)), axis=-1)
    return jnp.mean(sq_PxB, axis=0)


def contractive_penalty(encode: Callable, x, *, method: str = "auto", key=None, num_probes: int = 1):
    """Squared Frobenius norm of d encode(x)_i / d x_i for every example -> [B].

    Args:
      encode: maps [B, *input_shape] to codes [B, K] row by row; a `SigmoidLayer` also allows
        "closed_form".
      x: inputs [B, *input_shape].
      method: "auto", "jacfwd", "jacrev", "hutchinson" or "closed_form" (see the module docstring).
      key: jax.random key; required by "hutchinson", ignored otherwise.
      num_probes: random projections per example for "hutchinson".
    Returns:
      [B] penalties (estimates for "hutchinson", exact otherwise).

    References: Rifai et al. 2011, "Contractive auto-encoders"; Hutchinson 1989.
    """
    check_method(method, key=key, num_probes=num_probes, encode=encode)
    if method == "auto" and isinstance(encode, SigmoidLayer):
        method = "closed_form"
    if method == "closed_form":
        return contractive_penalty_sigmoid_layer(encode.W, encode.b, x)
    _batch("contractive_penalty(encode, x)", x)
    code_1xK = jax.eval_shape(encode, jax.ShapeDtypeStruct((1, *x.shape[1:]), x.dtype))
    chex.assert_rank(code_1xK, 2, **says("contractive_penalty: encode must map [B, *input_shape] to codes [B, K]"))
    code_width = code_1xK.shape[-1]
    if method == "auto":
        method = "jacfwd" if math.prod(x.shape[1:]) < code_width else "jacrev"
    if method in ("jacfwd", "jacrev"):
        return _exact(encode, x, method)
    return _hutchinson(encode, x, key, int(num_probes), code_width)
