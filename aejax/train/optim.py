"""Optimizers from optax, with the learning rate kept out of the trace.

The transformation built here returns the update *direction* times the schedule's multiplier; the step
(`aejax.models.updates.gradient_step`) scales it by `-hp["learning_rate"]`. The learning rate therefore travels
in the `hp` pytree, so one compiled step serves every value and a sweep can vmap over learning rates (optax's
own `scale_by_learning_rate` would bake it in as a constant).
"""

from __future__ import annotations

import dataclasses
import sys

import jax.numpy as jnp
import optax

from aejax.config import OptimOptions, duration
from aejax.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear")


def make_schedule(name: str, *, warmup_steps: int, decay_steps: int, final_fraction: float):
    """A multiplier schedule in [0, 1] over steps (optax schedules with peak value 1): it rises over
    `warmup_steps` ("warmup_cosine"), falls to `final_fraction` by step `decay_steps` and stays there."""
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; choose one of {list(SCHEDULES)}.")
    if decay_steps < 1:
        raise ConfigError(f"the schedule needs at least one step, got {decay_steps}; raise train.epochs or optim.decay.")
    if not 0.0 <= final_fraction <= 1.0:
        raise ConfigError(f"optim.final_fraction must lie in [0, 1], got {final_fraction}.")
    if not 0 <= warmup_steps < decay_steps and name == "warmup_cosine":
        raise ConfigError(f"optim.warmup must lie in [0, {decay_steps}) steps (the decay), got {warmup_steps}.")
    if name == "constant":
        return optax.constant_schedule(1.0)
    if name == "cosine":
        return optax.cosine_decay_schedule(1.0, decay_steps=decay_steps, alpha=final_fraction)
    if name == "linear":
        return optax.linear_schedule(1.0, final_fraction, transition_steps=decay_steps)
    return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=warmup_steps, decay_steps=decay_steps,
                                              end_value=final_fraction)


def array_schedule(name: str, *, warmup_steps, decay_steps, final_fraction: float):
    """`make_schedule`'s multiplier with the warm-up and decay lengths as arrays (members of one program that
    differ in their own step counts, e.g. training-set sizes: they travel in the optimizer state)."""
    def schedule(count):
        step, decay = jnp.asarray(count, jnp.float32), jnp.maximum(jnp.asarray(decay_steps, jnp.float32), 1.0)
        if name == "constant":
            return jnp.ones_like(step)
        if name == "linear":
            return (1.0 - final_fraction) * (1.0 - jnp.clip(step, 0.0, decay) / decay) + final_fraction
        warm = jnp.asarray(warmup_steps, jnp.float32) if name == "warmup_cosine" else jnp.zeros(())
        span = jnp.maximum(decay - warm, 1.0)
        cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.clip(step - warm, 0.0, span) / span))
        decayed = (1.0 - final_fraction) * cosine + final_fraction
        return jnp.where(step < warm, step / jnp.maximum(warm, 1.0), decayed)

    return schedule


# Continuous optimizer values a sweep may vary inside one compiled program (injected as arrays).
INJECTABLE = ("grad_clip", "weight_decay", "b1", "b2", "eps", "momentum")


def optimizer_structure(name: str, *, grad_clip: float, weight_decay: float, momentum: float) -> tuple:
    """What fixes the chain's shape: the optimizer and which optional parts are present."""
    return name, grad_clip > 0, name == "adamw" and weight_decay > 0, name == "sgd" and momentum > 0


def schedule_steps(options: OptimOptions, *, steps_per_epoch: int, total_steps: int) -> tuple[int, int]:
    """(warm-up, decay) of `options` in steps: decay at most the run, a warm-up shorter than the decay
    (clipped with one line on stderr, so that a shortened run always trains)."""
    steps = {key: duration(f"optim.{key}", getattr(options, key)).steps(steps_per_epoch=steps_per_epoch,
                                                                        total_steps=total_steps)
             for key in ("warmup", "decay")}
    decay = min(max(steps["decay"], 1), max(total_steps, 1))
    warmup = steps["warmup"] if options.schedule == "warmup_cosine" else 0
    if warmup >= decay:
        print(f"aejax: optim.warmup ({warmup} steps) is not shorter than the schedule's {decay} steps; clipped to "
              f"{decay - 1} steps.", file=sys.stderr, flush=True)
        warmup = decay - 1
    return warmup, decay


def make_optimizer(name: str = OptimOptions.name, *, total_steps: int, steps_per_epoch: int = 1,
                   inject: tuple[str, ...] = (), schedule_arrays: bool = False, **options) -> optax.GradientTransformation:
    """Builds the optax chain: [clip] -> adam/adamw/sgd direction -> schedule multiplier.

    Args:
      name: "adam", "adamw" (decoupled weight decay, Loshchilov & Hutter 2019) or "sgd".
      total_steps, steps_per_epoch: the run's length (durations such as warmup="2 epochs" or decay="50%"
        become steps with them).
      inject: names in `INJECTABLE` to carry as arrays in the optimizer state
        (`optax.inject_hyperparams`), so that runs differing in them share one compiled step
        and a population can vmap over them; the others stay Python constants.
      schedule_arrays: the schedule's warm-up and decay lengths in steps carried as arrays in the optimizer
        state too (`array_schedule`), so that runs of different lengths (members that see training sets of
        different sizes) share one compiled step.
      **options: any other field of `aejax.config.OptimOptions` (schedule, warmup, decay,
        final_fraction, grad_clip, weight_decay, b1, b2, eps, momentum), defaults from there.
    """
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(OptimOptions)})
    if unknown:
        raise ConfigError(f"make_optimizer got unknown option(s) {unknown}; see aejax.config.OptimOptions.")
    o = OptimOptions(name=name, **options)
    warmup_steps, decay_steps = schedule_steps(o, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    grad_clip, weight_decay, momentum = o.grad_clip, o.weight_decay, o.momentum
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
    schedule_fn = make_schedule(o.schedule, warmup_steps=warmup_steps, decay_steps=decay_steps,
                                final_fraction=o.final_fraction)
    _, clip_on, decay_on, trace_on = optimizer_structure(name, grad_clip=grad_clip, weight_decay=weight_decay,
                                                         momentum=momentum)

    def chain(grad_clip, weight_decay, b1, b2, eps, momentum, warmup_steps=None, decay_steps=None):
        parts = []
        if clip_on:
            parts.append(optax.clip_by_global_norm(grad_clip))
        if name in ("adam", "adamw"):
            parts.append(optax.scale_by_adam(b1=b1, b2=b2, eps=eps))
            if decay_on:
                parts.append(optax.add_decayed_weights(weight_decay))
        elif trace_on:
            parts.append(optax.trace(decay=momentum))
        parts.append(optax.scale_by_schedule(schedule_fn if decay_steps is None else array_schedule(
            o.schedule, warmup_steps=warmup_steps, decay_steps=decay_steps, final_fraction=o.final_fraction)))
        return optax.chain(*parts)

    values = {k: getattr(o, k) for k in INJECTABLE}
    if schedule_arrays:
        values.update(warmup_steps=float(warmup_steps), decay_steps=float(decay_steps))
        inject = (*inject, "warmup_steps", "decay_steps")
    if not inject:
        return chain(**values)
    static = tuple(k for k in values if k not in inject)
    return optax.inject_hyperparams(chain, static_args=static)(**values)
