"""Defining a sweep: lists of override dicts, their product and zip, seeds, run ids, shards.

A sweep is a list of points; a point is a dict of dotted-key overrides
(`{"hp.beta": 4.0, "seed": 1}`) applied on top of the experiment's config and the `--set`
overrides. An experiment file's `sweep()` returns such a list; `--grid` and `--seeds` build one
from the command line (and replace the file's).
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any, Iterable, Mapping, Sequence

from aejax.config import parse_value
from aejax.errors import ConfigError

Point = dict[str, Any]


def product(**axes: Sequence[Any]) -> list[Point]:
    """Every combination: product(**{"hp.beta": [1, 4], "seed": [0, 1]}) -> 4 points (last key fastest)."""
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def zip_points(**axes: Sequence[Any]) -> list[Point]:
    """Values taken together: zip_points(**{"hp.beta": [1, 4], "hp.free_bits": [0, 0.1]}) -> 2 points."""
    lengths = {k: len(v) for k, v in axes.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"zipped sweep axes need equal lengths, got {lengths}.")
    return [dict(zip(axes, values)) for values in zip(*axes.values())]


def cross(*sweeps: Iterable[Point]) -> list[Point]:
    """The product of several point lists: cross(zip_points(...), product(seed=range(3)))."""
    out: list[Point] = [{}]
    for sweep in sweeps:
        out = [{**a, **b} for a in out for b in sweep]
    return out


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """["hp.beta=1,4", "model.hidden=(64,32);(128,64)"] -> {"hp.beta": [1, 4], ...}: values separated by commas,
    or by semicolons when any value holds a comma (tuples)."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"grid axis {item!r} is not KEY=V1,V2,...; write e.g. --grid hp.beta=1,4.")
        key, text = (part.strip() for part in item.split("=", 1))
        parts = text.split(";") if ";" in text or "(" in text else text.split(",")
        values = [parse_value(p.strip()) for p in parts if p.strip()]
        if not values:
            raise ConfigError(f"grid axis {key!r} has no values; write e.g. --grid {key}=1,2.")
        axes[key] = values
    return axes


def expand(file_points: Sequence[Mapping[str, Any]] | None, *, grid: Sequence[str] = (), seeds: int | None = None,
           sampled: Sequence[Mapping[str, Any]] | None = None, folds: int | None = None) -> list[Point]:
    """The sweep's points: `sampled` points (drawn from a search space) and `--grid` axes (a product),
    crossed with `--seeds N`; when none of them is given, the file's `sweep()`. With `--folds K` every point
    is crossed with data.fold = 0..K-1 (K-fold cross-validation of each point)."""
    axes = parse_grid(grid) if grid else {}
    if seeds is not None and int(seeds) < 1:
        raise ConfigError(f"--seeds must be a positive count, got {seeds}.")
    if grid or seeds or sampled is not None:
        points = [dict(p) for p in sampled] if sampled is not None else [{}]
        both = sorted(set(axes) & {k for p in points for k in p})
        if both:
            raise ConfigError(f"{both} are both sampled from the search space and a --grid axis; keep each key in one "
                              "place.")
        if seeds and ("seed" in axes or any("seed" in p for p in points)):
            raise ConfigError("the seed is both swept (--grid seed=... or the space) and crossed with --seeds N; "
                              "give one of them.")
        points = cross(points, product(**axes))  # no axes: product() is [{}]
        if seeds:
            points = cross(points, [{"seed": s} for s in range(int(seeds))])
    else:
        points = [dict(p) for p in (file_points or [])]
    if not points:
        raise ConfigError("the sweep is empty: the experiment defines no sweep() (or it returned no points); "
                          "give --grid KEY=V1,V2 or --seeds N.")
    for p in points:
        if not isinstance(p, Mapping):
            raise ConfigError(f"a sweep point must be a dict of dotted-key overrides, got {p!r}.")
    if folds is None:
        return points
    if int(folds) < 2:
        raise ConfigError(f"--folds must be >= 2 (K-fold cross-validation), got {folds}.")
    if any(k in p for p in points for k in ("data.fold", "data.folds")):
        raise ConfigError("data.fold is both swept and set by --folds K; give one of them.")
    return cross(points, [{"data.fold": k} for k in range(int(folds))])


def _format(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join(_format(v) for v in value) or "none"
    if isinstance(value, float):
        value = f"{value:g}"
    return re.sub(r"[^A-Za-z0-9.+-]", "", str(value)) or "none"


def run_ids(points: Sequence[Point]) -> list[str]:
    """A readable, unique, filesystem-safe id per point: {"hp.beta": 4.0, "seed": 1} -> "beta=4_seed=1"; a point
    drawn again keeps the id with "_dupN" added ("batch_size=32", "batch_size=32_dup1": never read as a value)."""
    def make(point, full):
        parts = [f"{k if full else k.rsplit('.', 1)[-1]}={_format(v)}" for k, v in point.items()]
        return "_".join(parts) or "base"

    ids = [make(p, False) for p in points]
    if len(set(ids)) < len({make(p, True) for p in points}):  # two different points share a short id
        ids = [make(p, True) for p in points]
    seen: dict[str, int] = {}
    unique = []
    for i in ids:  # duplicate points keep their order: base, base_dup1, ...
        seen[i] = seen.get(i, -1) + 1
        unique.append(i if seen[i] == 0 else f"{i}_dup{seen[i]}")
    return unique


def parse_shard(text: str | None, environ: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """(K, N) from "K/N" (0 <= K < N), else from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, else (0, 1)."""
    if text is None and "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
        base = int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        text = f"{int(environ['SLURM_ARRAY_TASK_ID']) - base}/{int(environ['SLURM_ARRAY_TASK_COUNT'])}"
    if text is None:
        return 0, 1
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"--shard takes K/N with 0 <= K < N (e.g. 0/4), got {text!r}.")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 0 <= k < n:
        raise ConfigError(f"--shard {k}/{n} is out of range: K must satisfy 0 <= K < N and N >= 1.")
    return k, n


def shard_slice(count: int, k: int, n: int) -> range:
    """The K-th of N contiguous, disjoint slices of `count` items (together they cover all)."""
    return range(count * k // n, count * (k + 1) // n)
