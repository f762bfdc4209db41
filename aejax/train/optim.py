"""Optimizers from optax, with the learning rate kept out of the trace.

The transformation built here returns the update *direction* times the schedule's
multiplier; the step (`aejax.models.updates.gradient_step`) scales it by `-hp["learning_rate"]`. The learning rate therefore
travels in the `hp` pytree, so one compiled step serves every value and a sweep can vmap
over learning rates (optax's own `scale_by_learning_rate` would bake it in as a constant).
"""

from __future__ import annotations

import optax

from aejax.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear")


def make_schedule(name: str, *, total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0):
    """A multiplier schedule in [0, 1] over steps (optax schedules with peak value 1)."""
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; choose one of {list(SCHEDULES)}.")
    if total_steps < 1:
        raise ConfigError(f"the schedule needs at least one step, got {total_steps}; raise train.epochs.")
    if not 0.0 <= final_fraction <= 1.0:
        raise ConfigError(f"optim.final_fraction must lie in [0, 1], got {final_fraction}.")
    if not 0 <= warmup_steps < total_steps and name == "warmup_cosine":
        raise ConfigError(f"optim.warmup_steps must lie in [0, {total_steps}), got {warmup_steps}.")
    if name == "constant":
        return optax.constant_schedule(1.0)
    if name == "cosine":
        return optax.cosine_decay_schedule(1.0, decay_steps=total_steps, alpha=final_fraction)
    if name == "linear":
        return optax.linear_schedule(1.0, final_fraction, transition_steps=total_steps)
    return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=warmup_steps, decay_steps=total_steps,
                                              end_value=final_fraction)


# Continuous optimizer values a sweep may vary inside one compiled program (injected as arrays).
INJECTABLE = ("grad_clip", "weight_decay", "b1", "b2", "eps", "momentum")


def optimizer_structure(name: str, *, grad_clip: float, weight_decay: float, momentum: float) -> tuple:
    """What fixes the chain's shape: the optimizer and which optional parts are present."""
    return name, grad_clip > 0, name == "adamw" and weight_decay > 0, name == "sgd" and momentum > 0


def make_optimizer(name: str, *, total_steps: int, schedule: str = "constant", warmup_steps: int = 0,
                   final_fraction: float = 0.0, grad_clip: float = 0.0, weight_decay: float = 0.0,
                   b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, momentum: float = 0.0,
                   inject: tuple[str, ...] = ()) -> optax.GradientTransformation:
    """Builds the optax chain: [clip] -> adam/adamw/sgd direction -> schedule multiplier.

    Args:
      name: "adam", "adamw" (decoupled weight decay, Loshchilov & Hutter 2019) or "sgd".
      total_steps: steps the schedule spans.
      grad_clip: clip by global norm when > 0.
      inject: names in `INJECTABLE` to carry as arrays in the optimizer state
        (`optax.inject_hyperparams`), so that runs differing in them share one compiled step
        and a sweep can vmap over them; the others stay Python constants.
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}.")
    if grad_clip < 0 or weight_decay < 0 or momentum < 0:
        raise ConfigError("optim.grad_clip, optim.weight_decay and optim.momentum must be >= 0.")
    if weight_decay > 0 and name != "adamw":
        raise ConfigError(f"optim.weight_decay={weight_decay} has no effect with optimizer {name!r}; "
                          "set optim.name=adamw (decoupled weight decay) or drop the weight decay.")
    if momentum > 0 and name != "sgd":
        raise ConfigError(f"optim.momentum={momentum} has no effect with optimizer {name!r}; set optim.name=sgd "
                          "or use optim.b1 for Adam's first-moment decay.")
    unknown = sorted(set(inject) - set(INJECTABLE))
    if unknown:
        raise ConfigError(f"cannot inject optimizer values {unknown}; injectable: {list(INJECTABLE)}.")
    schedule_fn = make_schedule(schedule, total_steps=total_steps, warmup_steps=warmup_steps,
                                final_fraction=final_fraction)
    _, clip_on, decay_on, trace_on = optimizer_structure(name, grad_clip=grad_clip, weight_decay=weight_decay,
                                                         momentum=momentum)

    def chain(grad_clip, weight_decay, b1, b2, eps, momentum):
        parts = []
        if clip_on:
            parts.append(optax.clip_by_global_norm(grad_clip))
        if name in ("adam", "adamw"):
            parts.append(optax.scale_by_adam(b1=b1, b2=b2, eps=eps))
            if decay_on:
                parts.append(optax.add_decayed_weights(weight_decay))
        elif trace_on:
            parts.append(optax.trace(decay=momentum))
        parts.append(optax.scale_by_schedule(schedule_fn))
        return optax.chain(*parts)

    values = {"grad_clip": grad_clip, "weight_decay": weight_decay, "b1": b1, "b2": b2, "eps": eps,
              "momentum": momentum}
    if not inject:
        return chain(**values)
    static = tuple(k for k in values if k not in inject)
    return optax.inject_hyperparams(chain, static_args=static)(**values)
