"""Sampled search spaces: a distribution per dotted config key, and points drawn from them.

A space maps dotted keys to distributions: `{"hp.learning_rate": "loguniform(1e-4,1e-1)",
"model.code_size": choice(8, 16, 32)}` (text, or the objects below). Five distributions:

  uniform(low, high)        a float, uniform on [low, high)
  loguniform(low, high)     a float whose log is uniform on [log low, log high); 0 < low
  intuniform(low, high)     an int in {low, ..., high}, each equally likely (high included)
  intloguniform(low, high)  an int in {low, ..., high}, floor of a log-uniform on [low, high + 1)
  choice(v1, v2, ...)       one of the literals, each equally likely (numbers, strings, tuples, ...)

`sample_points(space, n, sampler=..., seed=...)` draws n points in the unit cube, one dimension
per key (keys in sorted order, so the order a space was written in does not matter), with numpy's
PCG64 ("random") or scipy.stats.qmc's scrambled Sobol or Halton sequences, and maps each
coordinate u through its distribution's inverse CDF. Values are plain Python floats, ints or the
choice's literals, so run ids and config coercion see what a hand-written sweep point holds.

References: Bergstra & Bengio 2012, "Random Search for Hyper-Parameter Optimization" (JMLR);
Sobol' 1967; Halton 1960; Owen 1998, "Scrambling Sobol' and Niederreiter-Xing points".
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import difflib
import inspect
import math
import numbers
import warnings
from typing import Any, Iterable, Mapping, Union

import numpy as np

from aejax.errors import ConfigError

SAMPLERS = ("random", "sobol", "halton")
EXAMPLES = "loguniform(1e-4,1e-1), uniform(0,1), intuniform(1,8), intloguniform(8,256) or choice(8,16,32)"


def _number(name: str, value: Any, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name}: {what} must be a finite number, got {value!r}.")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _integer(name: str, value: Any, what: str) -> int:
    value = _number(name, value, what)
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"{name}: {what} must be an integer, got {value!r}; use uniform/loguniform for floats.")
        value = int(value)
    return value


def _bounds(name: str, low: Any, high: Any, *, integer: bool, log: bool):
    check = _integer if integer else _number
    low, high = check(name, low, "low"), check(name, high, "high")
    if not low < high:
        raise ConfigError(f"{name}({low!r}, {high!r}): low must be below high.")
    if log and low <= 0:
        raise ConfigError(f"{name}({low!r}, {high!r}): a log distribution needs 0 < low, got low={low!r}.")
    return (low, high) if integer else (float(low), float(high))


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A float uniform on [low, high)."""

    low: float
    high: float
    name = "uniform"
    continuous = True

    def __post_init__(self):
        low, high = _bounds(self.name, self.low, self.high, integer=False, log=False)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def ppf(self, u: np.ndarray) -> list[float]:
        """The inverse CDF at unit values u in [0, 1) -> plain floats in [low, high]."""
        values = self.low + np.asarray(u, np.float64) * (self.high - self.low)
        return [float(v) for v in np.clip(values, self.low, self.high)]

    def __str__(self):
        return f"{self.name}({self.low!r}, {self.high!r})"


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """A float whose log is uniform on [log low, log high); 0 < low < high."""

    low: float
    high: float
    name = "loguniform"
    continuous = True

    def __post_init__(self):
        low, high = _bounds(self.name, self.low, self.high, integer=False, log=True)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def ppf(self, u: np.ndarray) -> list[float]:
        """exp of a uniform on [log low, log high) -> plain floats in [low, high]."""
        log_low, log_high = math.log(self.low), math.log(self.high)
        values = np.exp(log_low + np.asarray(u, np.float64) * (log_high - log_low))
        return [float(v) for v in np.clip(values, self.low, self.high)]

    def __str__(self):
        return f"{self.name}({self.low!r}, {self.high!r})"


@dataclasses.dataclass(frozen=True)
class IntUniform:
    """An int in {low, ..., high} (both included), each equally likely."""

    low: int
    high: int
    name = "intuniform"
    continuous = False

    def __post_init__(self):
        low, high = _bounds(self.name, self.low, self.high, integer=True, log=False)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def ppf(self, u: np.ndarray) -> list[int]:
        """floor(low + u (high - low + 1)) -> plain ints in [low, high]."""
        values = np.floor(self.low + np.asarray(u, np.float64) * (self.high - self.low + 1))
        return [int(v) for v in np.clip(values, self.low, self.high)]

    def __str__(self):
        return f"{self.name}({self.low!r}, {self.high!r})"


@dataclasses.dataclass(frozen=True)
class IntLogUniform:
    """An int in {low, ..., high} (both included): the floor of a log-uniform on [low, high + 1).

    P(k) = log((k + 1) / k) / log((high + 1) / low), so each octave is about equally likely.
    """

    low: int
    high: int
    name = "intloguniform"
    continuous = False

    def __post_init__(self):
        low, high = _bounds(self.name, self.low, self.high, integer=True, log=True)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def ppf(self, u: np.ndarray) -> list[int]:
        log_low, log_end = math.log(self.low), math.log(self.high + 1)
        values = np.floor(np.exp(log_low + np.asarray(u, np.float64) * (log_end - log_low)))
        return [int(v) for v in np.clip(values, self.low, self.high)]

    def __str__(self):
        return f"{self.name}({self.low!r}, {self.high!r})"


@dataclasses.dataclass(frozen=True, init=False)
class Choice:
    """One of `values` (any literals), each equally likely: Choice(8, 16, 32)."""

    values: tuple
    name = "choice"
    continuous = False

    def __init__(self, *values: Any):
        if not values:
            raise ConfigError("choice() needs at least one value; write e.g. choice(8,16,32).")
        object.__setattr__(self, "values", tuple(values))

    def ppf(self, u: np.ndarray) -> list[Any]:
        """values[floor(u * len(values))] (a copy of the literal, so no two points share a list)."""
        index = np.clip(np.floor(np.asarray(u, np.float64) * len(self.values)), 0, len(self.values) - 1)
        return [copy.deepcopy(self.values[int(i)]) for i in index]

    def __str__(self):
        return f"{self.name}({', '.join(repr(v) for v in self.values)})"


Distribution = Union[Uniform, LogUniform, IntUniform, IntLogUniform, Choice]
DISTRIBUTIONS = {cls.name: cls for cls in (Uniform, LogUniform, IntUniform, IntLogUniform, Choice)}
_PARAMETERS = {name: ("low", "high") for name in DISTRIBUTIONS if name != "choice"}


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else f"; choose one of {list(choices)}."


def _literal(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Name):  # a bare word, choice(mlp, conv): the string, as --set reads it
        return node.id
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ConfigError(f"{text!r}: arguments must be literals (numbers, strings, tuples), "
                          f"got {ast.unparse(node)!r}.") from None


def parse_distribution(text: str) -> Distribution:
    """'loguniform(1e-4,1e-1)' -> LogUniform(0.0001, 0.1); one-line ConfigError for anything else.

    Arguments are Python literals (bare words are strings: choice(mlp,conv)); the two-bound
    distributions also take low=/high= by name.
    """
    source = str(text).strip()
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        node = None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ConfigError(f"{source!r} is not a distribution; write {EXAMPLES}.")
    name = node.func.id
    if name not in DISTRIBUTIONS:
        raise ConfigError(f"unknown distribution {name!r} in {source!r}" + _did_you_mean(name, DISTRIBUTIONS))
    if any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ConfigError(f"{source!r}: arguments must be literals, not *unpacking.")
    args = [_literal(arg, source) for arg in node.args]
    if name == "choice":
        if node.keywords:
            raise ConfigError(f"{source!r}: choice takes values only, no names (choice(8,16,32)).")
        return Choice(*args)
    params = _PARAMETERS[name]
    kwargs = {}
    for keyword in node.keywords:
        if keyword.arg not in params:
            raise ConfigError(f"{source!r}: {name} takes {', '.join(params)}, not {keyword.arg!r}.")
        kwargs[keyword.arg] = _literal(keyword.value, source)
    if len(args) + len(kwargs) != len(params) or any(p in kwargs for p in params[:len(args)]):
        given = len(args) + len(kwargs)
        raise ConfigError(f"{source!r}: {name} takes {len(params)} arguments ({', '.join(params)}), got {given}.")
    return DISTRIBUTIONS[name](*args, **kwargs)


def as_distribution(value: Any, key: str = "") -> Distribution:
    """A distribution object as is; text parsed; anything else a ConfigError naming `key`."""
    if isinstance(value, tuple(DISTRIBUTIONS.values())):
        return value
    if isinstance(value, str):
        try:
            return parse_distribution(value)
        except ConfigError as error:
            raise ConfigError(f"{key}: {error}" if key else str(error)) from None
    where = f"{key}: " if key else ""
    raise ConfigError(f"{where}{value!r} is not a distribution; write {EXAMPLES} "
                      "(text, or aejax.sweep.space.LogUniform(...) and the like).")


def parse_space(spec: Mapping[str, Any] | Iterable[str]) -> dict[str, Distribution]:
    """A space from an experiment file's `space()` dict ({key: distribution or text}) or from
    command-line items ["hp.learning_rate=loguniform(1e-4,1e-1)", ...] -> {key: distribution}."""
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = []
        for item in spec:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f"search space item {item!r} is not KEY=DIST; write e.g. "
                                  "--space 'hp.learning_rate=loguniform(1e-4,1e-1)'.")
            key, text = item.split("=", 1)
            items.append((key.strip(), text))
    space: dict[str, Distribution] = {}
    for key, value in items:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"search space keys are dotted config keys such as 'hp.learning_rate', got {key!r}.")
        if key in space:
            raise ConfigError(f"search space key {key!r} is given twice; give each key one distribution.")
        space[key] = as_distribution(value, key)
    return space


def _unit_points(n: int, d: int, sampler: str, seed: int) -> np.ndarray:
    """[n, d] points in [0, 1)^d, deterministic from `seed`."""
    if sampler == "random":
        return np.random.Generator(np.random.PCG64(seed)).random((n, d))
    from scipy.stats import qmc  # imported here: only the quasi-random samplers need scipy

    engine_cls = qmc.Sobol if sampler == "sobol" else qmc.Halton
    # scipy >= 1.15 calls the seed `rng` (and deprecates `seed`); older versions know only `seed`
    seed_arg = "rng" if "rng" in inspect.signature(engine_cls).parameters else "seed"
    engine = engine_cls(d, scramble=True, **{seed_arg: np.random.default_rng(seed)})
    if sampler == "sobol":
        with warnings.catch_warnings():  # n not a power of 2: the first n points of the next power
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            return engine.random_base2(max(0, math.ceil(math.log2(n))))[:n]
    return engine.random(n)


def sample_points(space: Mapping[str, Any], n: int, *, sampler: str = "random", seed: int = 0) -> list[dict]:
    """n points {key: value} of `space`, deterministic from `seed`.

    Args:
      space: {dotted key: distribution object or text}.
      n: number of points (any n >= 1; Sobol draws the next power of 2 and keeps the first n).
      sampler: "random" (numpy PCG64), "sobol" (scrambled, scipy.stats.qmc) or "halton" (scrambled).
      seed: the seed of the generator and of the scrambling.
    Returns:
      A list of n dicts holding plain Python values, keys in sorted order.
    """
    space = parse_space(space)
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}" + _did_you_mean(str(sampler), SAMPLERS))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"the number of sampled points must be a positive integer, got {n!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"the sampling seed must be a non-negative integer, got {seed!r}.")
    if not space:
        raise ConfigError("the search space is empty; give --space KEY=DIST or define space() in the experiment file.")
    keys = sorted(space)
    u_NxD = _unit_points(int(n), len(keys), sampler, int(seed))
    columns = {key: space[key].ppf(u_NxD[:, j]) for j, key in enumerate(keys)}
    return [{key: columns[key][i] for key in keys} for i in range(int(n))]


def describe(space: Mapping[str, Any]) -> str:
    """One line for logs: 'hp.learning_rate ~ loguniform(0.0001, 0.1); model.code_size ~ choice(8, 16)'."""
    space = parse_space(space)
    return "; ".join(f"{key} ~ {space[key]}" for key in sorted(space)) or "(empty space)"


def continuous_keys(space: Mapping[str, Any]) -> list[str]:
    """The keys with a uniform or log-uniform distribution (what PBT's explore step perturbs), sorted."""
    space = parse_space(space)
    return sorted(key for key, dist in space.items() if dist.continuous)


__all__ = ["Choice", "DISTRIBUTIONS", "Distribution", "IntLogUniform", "IntUniform", "LogUniform", "SAMPLERS",
           "Uniform", "as_distribution", "continuous_keys", "describe", "parse_distribution", "parse_space",
           "sample_points"]
