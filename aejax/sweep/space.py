"""Sampled search spaces: a distribution per dotted config key, and points drawn from them.

A space maps dotted keys to distributions: `{"hp.learning_rate": "loguniform(1e-4,1e-1)",
"model.code_size": choice(8, 16, 32)}` (text, or the objects below). Five distributions:

  uniform(low, high)        a float, uniform on [low, high)
  loguniform(low, high)     a float whose log is uniform on [log low, log high); 0 < low
  intuniform(low, high)     an int in {low, ..., high}, each equally likely (high included)
  intloguniform(low, high)  an int in {low, ..., high}, floor of a log-uniform on [low, high + 1)
  choice(v1, v2, ...)       one of the literals, each equally likely (numbers, strings, tuples, ...)

The four ranges are one `Range(low, high, log=..., integer=...)`; the names above build it.

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
import functools
import inspect
import math
import numbers
import warnings
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

from aejax.errors import ConfigError

SAMPLERS = ("random", "sobol", "halton")
EXAMPLES = "loguniform(1e-4,1e-1), uniform(0,1), intuniform(1,8), intloguniform(8,256) or choice(8,16,32)"


@dataclasses.dataclass(frozen=True)
class Range:
    """A number between `low` and `high`: uniform, or with `log` log-uniform (0 < low); with `integer` an int in
    {low, ..., high} (both included), the floor of the (log-)uniform on [low, high + 1), so each int (log:
    P(k) = log((k + 1) / k) / log((high + 1) / low), each octave about equally likely) has its share."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self):
        low, high = self._bound(self.low, "low"), self._bound(self.high, "high")
        if not low < high:
            raise ConfigError(f"{self.name}({low!r}, {high!r}): low must be below high.")
        if self.log and low <= 0:
            raise ConfigError(f"{self.name}({low!r}, {high!r}): a log distribution needs 0 < low, got low={low!r}.")
        object.__setattr__(self, "low", low if self.integer else float(low))
        object.__setattr__(self, "high", high if self.integer else float(high))

    def _bound(self, value: Any, what: str) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ConfigError(f"{self.name}: {what} must be a finite number, got {value!r}.")
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
        if self.integer and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{self.name}: {what} must be an integer, got {value!r}; use uniform/loguniform for "
                              "floats.")
        return int(value) if self.integer else value

    @property
    def name(self) -> str:
        return "int" * self.integer + "log" * self.log + "uniform"

    def ppf(self, u: np.ndarray) -> list:
        """The inverse CDF at unit values u in [0, 1) -> plain floats (ints) in [low, high]."""
        low, end = self.low, self.high + 1 if self.integer else self.high
        u = np.asarray(u, np.float64)
        values = np.exp(math.log(low) + u * (math.log(end) - math.log(low))) if self.log else low + u * (end - low)
        cast = int if self.integer else float
        return [cast(v) for v in np.clip(np.floor(values) if self.integer else values, self.low, self.high)]

    def __str__(self):
        return f"{self.name}({self.low!r}, {self.high!r})"


# The names users write, as constructors: Uniform(low, high), LogUniform(low, high) and so on.
Uniform = functools.partial(Range)
LogUniform = functools.partial(Range, log=True)
IntUniform = functools.partial(Range, integer=True)
IntLogUniform = functools.partial(Range, log=True, integer=True)


@dataclasses.dataclass(frozen=True, init=False)
class Choice:
    """One of `values` (any literals), each equally likely: Choice(8, 16, 32)."""

    values: tuple
    name = "choice"

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


Distribution = Union[Range, Choice]
DISTRIBUTIONS = {"uniform": Uniform, "loguniform": LogUniform, "intuniform": IntUniform, "intloguniform": IntLogUniform,
                 "choice": Choice}


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
    """'loguniform(1e-4,1e-1)' -> LogUniform(0.0001, 0.1); one-line ConfigError for anything else. Arguments are
    Python literals (bare words are strings: choice(mlp,conv)); the ranges also take low=/high= by name."""
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
    params = ("low", "high")
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
    if isinstance(value, (Range, Choice)):
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
    """n points {key: value} of `space` ({dotted key: distribution or text}), plain Python values, keys sorted;
    deterministic from `seed` (of the generator and the scrambling). Sobol keeps the first n of the next power of 2."""
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
    columns = [space[key].ppf(u_NxD[:, j]) for j, key in enumerate(keys)]
    return [dict(zip(keys, values)) for values in zip(*columns)]


def explorable_keys(space: Mapping[str, Any]) -> list[str]:
    """The hp.* keys population-based training can explore (`explore`): every range and every choice of two or
    more values, sorted. Other keys change the program, so PBT refuses them."""
    return sorted(k for k, d in parse_space(space).items()
                  if k.startswith("hp.") and not (isinstance(d, Choice) and len(d.values) < 2))


def continuous_keys(space: Mapping[str, Any]) -> list[str]:
    """The keys of float ranges, sorted."""
    return sorted(key for key, dist in parse_space(space).items() if isinstance(dist, Range) and not dist.integer)


def explore(dist: Distribution, value: Any, *, rng: np.random.Generator, perturb: Sequence[float],
            resample_probability: float = 0.25) -> Any:
    """PBT's explore step for one hyperparameter -> a plain Python float, int or the choice's literal (a copy).

    With probability `resample_probability` the value is drawn afresh from `dist`. Otherwise a range's value
    is multiplied by a factor drawn from `perturb`, rounded to the nearest int for integer ranges (halves up),
    and clipped to [low, high]; a choice steps to a neighbouring value (its order is the scale), or from the
    closest value when `value` is not one of them. Draws come from `rng` only. `explore_step` also says which
    factor was drawn.

    References: Jaderberg et al. 2017, "Population Based Training of Neural Networks" (perturb or resample);
    Liaw et al. 2018, Ray Tune (`hyperparam_mutations`, `resample_probability`, neighbouring choices).
    """
    return explore_step(dist, value, rng=rng, perturb=perturb, resample_probability=resample_probability)[0]


def explore_step(dist: Distribution, value: Any, *, rng: np.random.Generator, perturb: Sequence[float],
                 resample_probability: float = 0.25) -> tuple[Any, float | None]:
    """`explore`'s (new value, the factor drawn from `perturb`), the factor None where the value was resampled or
    a choice stepped (what search.json's "factors" records: the factor as drawn, before rounding and clipping)."""
    dist = as_distribution(dist)
    if rng.random() < resample_probability:
        return dist.ppf(np.array([rng.random()]))[0], None
    if isinstance(dist, Choice):  # at the ends the step goes to the only neighbour
        values, index = dist.values, _index_of(dist.values, value)
        step = int(rng.choice([-1, 1])) if len(values) > 1 else 0
        return copy.deepcopy(values[index + step if 0 <= index + step < len(values) else index - step]), None
    factor = float(rng.choice(list(perturb)))
    moved = float(value) * factor
    if dist.integer:
        return int(min(max(math.floor(moved + 0.5), dist.low), dist.high)), factor
    return float(min(max(moved, dist.low), dist.high)), factor


def _index_of(values: tuple, value: Any) -> int:
    """The position of `value` among a choice's values, or of the closest number (a float32 round trip)."""
    for i, v in enumerate(values):
        if type(v) is type(value) and v == value:
            return i
    numbers_ = [(abs(float(v) - float(value)), i) for i, v in enumerate(values)
                if isinstance(v, numbers.Real) and isinstance(value, numbers.Real)]
    if not numbers_:
        raise ConfigError(f"{value!r} is not one of the choice's values {list(values)}.")
    return min(numbers_)[1]


__all__ = ["Choice", "DISTRIBUTIONS", "Distribution", "IntLogUniform", "IntUniform", "LogUniform", "Range", "SAMPLERS",
           "Uniform", "as_distribution", "continuous_keys", "explorable_keys", "explore", "explore_step",
           "parse_distribution", "parse_space", "sample_points"]
