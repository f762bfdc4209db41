"""The benchmark suite behind `aejax bench` and `scripts/bench.py`: one run, every figure side by side.

Sections (`SECTIONS`; `only=` picks some):
  loop         `fit` against the bare scan of the same `setup_run` (one optimizer), the reference model
  kinds        every autoencoder kind on the reference MLP (the MAE on its transformer), batch 128 and 1024
  nets         the conv net (float32 and bfloat16 compute) and the transformer, batch 128 and 1024
  contractive  the contractive penalty's Jacobian methods against the plain step, batch 128
  sweep        vmapped sweep programs of 1, 4, 16 and 64 runs (seeds), run-steps/s
  torch        a Python loop of jitted steps and the PyTorch step (eager and torch.compile'd, on the device
               JAX runs on) against the bare scan

The loop section also times aejax's bare scan against the plain one (`scripts/plain_scan.py`: the reference
model as flax + optax in one `lax.scan`, written by hand) on the same batches, and counts the fused
kernels (HLO fusions, `aejax.bench.steps.hlo_counts`) of both compiled steps; every step row carries
its step's fusions too, a figure a CPU can track for a GPU (where each fusion is one kernel launch).

The reference model is the 784-512-32 sigmoid MLP autoencoder (MSE, Adam, batch 128) on
Fashion-MNIST; without Fashion-MNIST (or with `quick`) it is the 64-512-32 one on scikit-learn's
digits, and the output says so. Every figure is the median over `repeats`; each step row has its
compile time apart, its FLOPs per step (counted for MLPs, else XLA's cost analysis), its FLOP/s,
and the peak matmul FLOP/s measured beside it (`aejax.bench.steps`).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from aejax.bench.machine import load_average, machine_info, matmul_peak_flops_per_s
from aejax.bench.steps import (
    compiled_step,
    hlo_counts,
    load_plain_scan,
    batch_indices,
    counted_mlp_step_flops,
    time_run_step,
    timed,
)
from aejax.bench.torch_reference import TorchReference, torch_available, torch_device
from aejax.config import base_config, resolve_config
from aejax.errors import ConfigError, DatasetNotFoundError
from aejax.models import KINDS
from aejax.train.population import stack
from aejax.train.benchmark import benchmark_loop, make_bare_scan
from aejax.train.setup import config_dataset, setup_run
from aejax.train.step import batch_at, epoch_body, over_runs

SECTIONS = ("loop", "kinds", "nets", "contractive", "sweep", "torch")
SWEEP_RUNS = (1, 4, 16, 64)
CONTRACTIVE_METHODS = ("auto", "jacrev", "jacfwd", "hutchinson")
HIDDEN, CODE, ACTIVATION = (512,), 32, "sigmoid"


@dataclasses.dataclass(frozen=True)
class SuiteOptions:
    """What to run and how long: `only` sections, `repeats` per figure, `batch_sizes` for the step
    tables, `sweep_runs`, `loop_epochs` per fit, `quick` (digits, fewer steps: a smoke test)."""

    only: tuple[str, ...] = SECTIONS
    repeats: int = 3
    batch_sizes: tuple[int, ...] = (128, 1024)
    sweep_runs: tuple[int, ...] = SWEEP_RUNS
    loop_epochs: int | None = None  # None: enough epochs for about 2 s of training (benchmark_loop)
    quick: bool = False
    data_dir: str | None = None
    loop_config: ml_collections.ConfigDict | None = None  # the loop section's model (default: the reference)
    loop_overrides: tuple[tuple[str, Any], ...] = ()  # dotted-key overrides of the reference in the loop section

    def check(self) -> None:
        unknown = sorted(set(self.only) - set(SECTIONS))
        if unknown or not self.only:
            raise ConfigError(f"unknown benchmark section(s) {unknown or '(none given)'}; choose from "
                              f"{', '.join(SECTIONS)}, e.g. --only loop,torch.")
        if self.repeats < 1 or (self.loop_epochs is not None and self.loop_epochs < 2):
            raise ConfigError(f"repeats must be >= 1 and loop epochs >= 2 (the first compiles), got "
                              f"{self.repeats} and {self.loop_epochs}.")
        if not self.batch_sizes or min(self.batch_sizes) < 1 or not self.sweep_runs or min(self.sweep_runs) < 1:
            raise ConfigError("batch sizes and sweep sizes must be positive integers, e.g. 128,1024 and 1,4,16.")


def pick_dataset(data_dir: str | None, quick: bool) -> tuple[str, str]:
    """("fashion_mnist", "") when its files are found and not `quick`, else ("digits", why)."""
    if quick:
        return "digits", "quick run: scikit-learn digits (8x8) instead of Fashion-MNIST"
    from aejax.data import find_fashion_mnist

    try:
        find_fashion_mnist(data_dir)
        return "fashion_mnist", ""
    except DatasetNotFoundError:
        return "digits", "Fashion-MNIST not found: scikit-learn digits (8x8) instead (see `aejax download`)"


def reference_config(dataset: str, *, kind: str = "undercomplete", net: str = "mlp", batch_size: int = 128,
                     data_dir: str | None = None, **overrides) -> ml_collections.ConfigDict:
    """The suite's model: a `kind` autoencoder on the 784-512-32 sigmoid MLP (code 32, Adam at 1e-3)
    for `dataset`; `net="conv"` is fmnist_ae's net (32/64 channels, Dense 256), `"transformer"`
    fmnist_transformer_ae's (patch 7, one block; patch 4 on 8x8 digits)."""
    c = base_config(kind=kind, net=net)  # keys the kind or net does not read are dropped when resolved
    c.data.name = dataset
    if dataset == "fashion_mnist":
        c.data.val_size = 5000
        if data_dir:
            c.data.dir = data_dir
    c.model.code_size = CODE
    if net in ("mlp", "conv"):
        c.model.hidden = HIDDEN if net == "mlp" else (256,)
    if net == "mlp":
        c.model.activation = ACTIVATION
    if net == "transformer":
        c.model.patch_size = 7 if dataset == "fashion_mnist" else 4
        if kind != "mae":
            c.model.depth = 1
    return resolve_config(c, {"train.batch_size": batch_size, "train.progress": False, "train.figures": False,
                              **overrides})


def mlp_widths(run) -> tuple[int, ...] | None:
    """Layer widths (input first) of an undercomplete MLP run, for the counted FLOPs; None otherwise."""
    model = run.config.model
    if model.net != "mlp" or model.kind not in ("undercomplete", "denoising"):
        return None
    features = int(run.dataset.train.x[0].size)
    return (features, *model.hidden, model.code_size, *reversed(model.hidden), features)


def _steps_for(net: str, batch_size: int, quick: bool, method: str = "") -> int:
    """Steps per timed call: about half a second of work on a 2-core CPU."""
    per_128 = {"mlp": 40, "conv": 3, "transformer": 10}[net]
    if method == "jacfwd":
        per_128 = 2
    elif method in ("auto", "jacrev"):
        per_128 = 6
    steps = max(1, per_128 * 128 // batch_size)
    return max(1, steps // 4) if quick else steps


class Suite:
    """One benchmark run: holds the options, the dataset (loaded once) and the results as they come."""

    def __init__(self, options: SuiteOptions, *, log=print):
        options.check()
        self.options = options
        self.log = log
        self.dataset_name, self.dataset_note = pick_dataset(options.data_dir, options.quick)
        self._datasets: dict[tuple, Any] = {}

    def setup(self, config: ml_collections.ConfigDict):
        """`setup_run(config)`, sharing one loaded dataset between configs with the same data section."""
        key = tuple(sorted(config.data.to_dict().items()))
        if key not in self._datasets:
            self._datasets[key] = config_dataset(config.data)
        return setup_run(config, dataset=self._datasets[key])

    def config(self, **kwargs) -> ml_collections.ConfigDict:
        return reference_config(self.dataset_name, data_dir=self.options.data_dir, **kwargs)

    def step_row(self, name: str, config: ml_collections.ConfigDict, steps: int) -> dict[str, Any]:
        run = self.setup(config)
        widths = mlp_widths(run)
        counted = counted_mlp_step_flops(widths, run.train.batch_size) if widths else None
        row = {"name": name, "kind": config.model.kind, "net": config.model.net,
               **time_run_step(run, steps=steps, repeats=self.options.repeats, counted_flops=counted)}
        self.log(f"  {name:<28} batch {row['batch_size']:>5}: {row['steps_per_s']:9.1f} steps/s, compile "
                 f"{row['compile_s']:.1f} s" + (f", efficiency {row['efficiency']:.2f}" if row["efficiency"] else ""))
        return row

    # -- sections -------------------------------------------------------------------------------------

    def loop(self) -> dict[str, Any]:
        config = self.options.loop_config or self.config(**dict(self.options.loop_overrides))
        if self.options.loop_config is None and self.options.quick:
            config = resolve_config(config, {"train.batch_size": 64})
        repeats = [benchmark_loop(config, epochs=self.options.loop_epochs) for _ in range(self.options.repeats)]
        fit = [r["fit_steps_per_s"] for r in repeats]
        bare = [r["bare_scan_steps_per_s"] for r in repeats]
        brackets = [r.pop("bare_scan_steps_per_s_before_after_fit") for r in repeats]
        out = {**{k: v for k, v in repeats[0].items() if not k.endswith("per_s") and k != "fit_over_bare"},
               "fit_steps_per_s": statistics.median(fit), "bare_scan_steps_per_s": statistics.median(bare),
               "fit_over_bare": statistics.median(f / b for f, b in zip(fit, bare)),
               "fit_steps_per_s_repeats": fit, "bare_scan_steps_per_s_repeats": bare,
               "bare_scan_steps_per_s_before_after_fit": brackets, "optimizer": config.optim.name,
               "model_widths": self._widths_label(config)}
        self.log(f"  loop: fit {out['fit_steps_per_s']:.1f} vs bare scan {out['bare_scan_steps_per_s']:.1f} "
                 f"steps/s (fit/bare {out['fit_over_bare']:.3f})")
        out["plain"] = self.plain(config.train.batch_size)
        return out

    def plain(self, batch_size: int) -> dict[str, Any]:
        """aejax's bare scan of the reference model against the plain flax + optax scan (`scripts/plain_scan.py`)
        over the same batches, in alternating turns (five per repeat); and the fusions of both steps and scan bodies."""
        plain = load_plain_scan()
        if plain is None:
            return {"skipped": "scripts/plain_scan.py is not in this checkout (an installed package); not timed"}
        run = self.setup(self.config(batch_size=batch_size))
        x = run.dataset.train.x.reshape(len(run.dataset.train), -1)
        steps = min(run.steps_per_epoch, 50 if self.options.quick else 400)
        idx_SxB = batch_indices(run, steps)
        bare = make_bare_scan(run)
        train, plain_step, plain_state = plain.make_plain_scan(x, hidden=HIDDEN[0], code=CODE,
                                                               learning_rate=float(run.hp["learning_rate"]))
        programs = {"bare": (bare.lower(run.init_state(), idx_SxB).compile(), run.init_state()),
                    "plain": (train.lower(plain_state, idx_SxB).compile(), plain_state)}
        counts = {"aejax_step": hlo_counts(compiled_step(run).as_text()),
                  "plain_step": hlo_counts(plain_step.lower(plain_state, jnp.asarray(x[:batch_size])).compile().as_text()),
                  "aejax_scan_body": hlo_counts(programs["bare"][0].as_text(), loop_body=True),
                  "plain_scan_body": hlo_counts(programs["plain"][0].as_text(), loop_body=True)}
        states, first = {}, {}
        for name, (c, state) in programs.items():  # the plain scan donates its state: always keep the new one
            states[name], out = c(state, idx_SxB)  # warm: allocations, caches
            jax.block_until_ready(out)
            start = time.perf_counter()
            states[name], out = c(states[name], idx_SxB)
            jax.block_until_ready((states[name], out))
            first[name] = time.perf_counter() - start
        # Short turns, many of them, in alternating order (bare-plain, plain-bare, ...): this CPU's speed drifts by
        # tens of percent over seconds, and a ratio of two neighbouring 0.1-s turns sees less of the drift.
        calls = max(1, min(50, round(0.1 / max(min(first.values()), 1e-6))))
        rates: dict[str, list[float]] = {"bare": [], "plain": []}
        for turn in range(5 * self.options.repeats):
            for name in (("bare", "plain") if turn % 2 == 0 else ("plain", "bare")):
                c = programs[name][0]
                start = time.perf_counter()
                for _ in range(calls):
                    states[name], out = c(states[name], idx_SxB)
                jax.block_until_ready((states[name], out))
                rates[name].append(steps * calls / (time.perf_counter() - start))
        out = {"model_widths": f"{x.shape[1]}-{HIDDEN[0]}-{CODE}", "batch_size": batch_size, "steps": steps,
               "calls_per_repeat": calls, "bare_scan_steps_per_s": statistics.median(rates["bare"]),
               "plain_scan_steps_per_s": statistics.median(rates["plain"]),
               "bare_over_plain": statistics.median(b / p for b, p in zip(rates["bare"], rates["plain"])),
               "turns": len(rates["bare"]),
               "bare_scan_steps_per_s_repeats": rates["bare"], "plain_scan_steps_per_s_repeats": rates["plain"],
               "fusions": {k: v["fusion"] for k, v in counts.items()}, "hlo_counts": counts,
               "fusions_counted": "fusion instructions of the optimized HLO outside fusion bodies: the single "
                                  "jitted step (x batch in, state out), and the while body of the scanned "
                                  "program (one step with its batch gather); see aejax.bench.steps.hlo_counts"}
        self.log(f"  plain flax+optax scan {out['plain_scan_steps_per_s']:.1f} vs aejax bare scan "
                 f"{out['bare_scan_steps_per_s']:.1f} steps/s (bare/plain {out['bare_over_plain']:.3f}); fusions per "
                 f"step: aejax {out['fusions']['aejax_step']}, plain {out['fusions']['plain_step']}")
        return out

    def _widths_label(self, config) -> str:
        run = self.setup(config)
        widths = mlp_widths(run)
        return "-".join(str(w) for w in widths[:len(widths) // 2 + 1]) if widths else config.model.net

    def kinds(self) -> list[dict[str, Any]]:
        rows = []
        for batch in self.options.batch_sizes:
            for kind in KINDS:
                net = "transformer" if kind == "mae" else "mlp"
                config = self.config(kind=kind, net=net, batch_size=batch)
                rows.append(self.step_row(kind, config, _steps_for(net, batch, self.options.quick)))
        return rows

    def nets(self) -> list[dict[str, Any]]:
        rows = []
        for batch in self.options.batch_sizes:
            for net, dtype in (("conv", "float32"), ("conv", "bfloat16"), ("transformer", "float32")):
                config = self.config(net=net, batch_size=batch, **{"model.dtype": dtype})
                rows.append({**self.step_row(f"{net} {dtype}", config, _steps_for(net, batch, self.options.quick)),
                             "dtype": dtype})
        return rows

    def contractive(self) -> list[dict[str, Any]]:
        plain = self.step_row("plain (undercomplete)", self.config(), _steps_for("mlp", 128, self.options.quick))
        rows = [{**plain, "method": "plain", "relative_to_plain": 1.0}]
        for method in CONTRACTIVE_METHODS:
            config = self.config(kind="contractive", **{"model.method": method})
            row = self.step_row(f"contractive {method}", config, _steps_for("mlp", 128, self.options.quick, method))
            rows.append({**row, "method": method, "relative_to_plain": plain["steps_per_s"] / row["steps_per_s"]})
        return rows

    def sweep(self) -> list[dict[str, Any]]:
        """R seeds of the reference model as one vmapped program (`epoch_body`, as `aejax sweep` runs a
        group) over a fixed S steps: run-steps/s and the speed-up over one run."""
        config = self.config()
        first = self.setup(config)
        batch = first.train.batch_size
        steps = min(_steps_for("mlp", batch, self.options.quick) // 2 or 1, first.steps_per_epoch)
        num = steps * batch
        body = epoch_body(first.train_step(), num_examples=num, batch_size=batch)
        x, y = jax.device_put(first.dataset.train.x[:num]), jax.device_put(first.dataset.train.y[:num])
        widths = mlp_widths(first)
        flops = counted_mlp_step_flops(widths, batch)
        rows = []
        for runs in self.options.sweep_runs:
            setups = [first] + [self.setup(resolve_config(config, {"seed": s})) for s in range(1, runs)]
            group = jax.jit(over_runs(body, shared=(1, 2, 6)))
            state = stack([s.init_state() for s in setups])
            args = (stack([s.hp for s in setups]), jnp.stack([s.keys.data for s in setups]),
                    jnp.stack([s.keys.loop for s in setups]))
            start = time.perf_counter()
            compiled = group.lower(state, x, y, *args, 0).compile()
            compile_s = time.perf_counter() - start
            state, _ = compiled(state, x, y, *args, 0)
            rates, peaks = [], []
            for r in range(self.options.repeats):
                start = time.perf_counter()
                jax.block_until_ready(compiled(state, x, y, *args, r + 1))
                rates.append(runs * steps / (time.perf_counter() - start))
                peaks.append(matmul_peak_flops_per_s())
            row = {"runs": runs, "batch_size": batch, "steps": steps, "compile_s": compile_s,
                   "run_steps_per_s": statistics.median(rates), "matmul_peak_flops_per_s": statistics.median(peaks),
                   "step_flops_per_s": flops * statistics.median(rates),
                   "efficiency": statistics.median(flops * a / p for a, p in zip(rates, peaks))}
            rows.append(row)
            self.log(f"  sweep of {runs:>3} runs: {row['run_steps_per_s']:9.1f} run-steps/s, compile {compile_s:.1f} s")
        for row in rows:
            row["speedup_over_one_run"] = row["run_steps_per_s"] / rows[0]["run_steps_per_s"]
        return rows

    def torch(self) -> dict[str, Any]:
        """The bare scan, a Python loop of the jitted step and the PyTorch step (eager, and torch.compile'd) on
        the device JAX runs on, interleaved per repeat."""
        run = self.setup(self.config())
        batch = run.train.batch_size
        steps = _steps_for("mlp", batch, self.options.quick) * 2
        if jax.default_backend() != "cpu":  # a GPU runs 80 steps in a few milliseconds: time more of them
            steps *= 10
        bare = make_bare_scan(run)
        idx_SxB = batch_indices(run, steps)
        x, y = jax.device_put(run.dataset.train.x), jax.device_put(run.dataset.train.y)
        step = run.train_step()

        @jax.jit
        def one_step(state, idx_B, key):
            return step(state, batch_at(x, y, idx_B), key, run.hp)

        def python_loop(state):
            for i in range(steps):
                state, _, _ = one_step(state, idx_SxB[i], jax.random.fold_in(run.keys.loop, i))
            return state

        state = run.init_state()
        state, _ = bare(state, idx_SxB)
        loop_state = python_loop(run.init_state())
        widths = mlp_widths(run)
        out = {"batch_size": batch, "steps": steps, "model_widths": "-".join(map(str, widths[:len(widths) // 2 + 1])),
               "jax_backend": jax.default_backend(), "jax_device": jax.devices()[0].device_kind}
        refs = self._torch_references(run, widths, out) if torch_available() else {}
        if not refs:
            out["torch_skipped"] = "torch is not installed (pip install 'aejax[bench]'); the reference was skipped"
        # on a CPU: torch with as many threads as XLA uses (the cores), and with one: on a shared machine OpenMP's
        # thread barriers can make the threaded run far slower; the faster of the two is the reference
        threads = os.cpu_count() or 1
        # (a compiled CPU step keeps the thread count it was compiled with: switching it made one run 100x slower)
        counts = {"torch": tuple(dict.fromkeys((threads, 1))) if out.get("torch_device") == "cpu" else (threads,),
                  "torch_compile": (out.get("torch_compile_threads", threads),)}
        rates: dict[str, list[float]] = {"bare_scan": [], "jit_loop": []}
        for mode in refs:
            rates.update({mode: [], **{f"{mode}_{n}": [] for n in counts[mode]}})
        for _ in range(self.options.repeats):
            rates["bare_scan"].append(steps / timed(lambda: bare(state, idx_SxB)))
            rates["jit_loop"].append(steps / timed(lambda: python_loop(loop_state)))
            for mode, ref in refs.items():
                for n in counts[mode]:
                    rate, out[f"{mode}_final_loss"] = ref.steps_per_s(steps, n)
                    rates[f"{mode}_{n}"].append(rate)
                rates[mode].append(max(rates[f"{mode}_{n}"][-1] for n in counts[mode]))
        out.update({"bare_scan_steps_per_s": statistics.median(rates["bare_scan"]),
                    "jit_loop_steps_per_s": statistics.median(rates["jit_loop"])})
        for mode in refs:  # "torch" (eager) and "torch_compile"
            out.update({f"{mode}_steps_per_s": statistics.median(rates[mode]),
                        f"{mode}_steps_per_s_by_threads": {n: statistics.median(rates[f"{mode}_{n}"])
                                                           for n in counts[mode]},
                        f"bare_scan_over_{mode}": statistics.median(b / t for b, t in zip(rates["bare_scan"],
                                                                                           rates[mode])),
                        f"jit_loop_over_{mode}": statistics.median(j / t for j, t in zip(rates["jit_loop"],
                                                                                          rates[mode]))})
        if "torch" in refs:
            out["torch_threads"] = counts["torch"]
            by_threads = ", ".join(f"{r:.1f} with {n} thread(s)" for n, r in out["torch_steps_per_s_by_threads"].items())
            self.log(f"  torch eager on {out['torch_device']} ({out['torch_device_name']}): {by_threads}; bare scan "
                     f"{out['bare_scan_over_torch']:.2f}x the faster")
        if "torch_compile" in refs:
            self.log(f"  torch.compile (mode {out['torch_compile_mode']}): {out['torch_compile_steps_per_s']:.1f} "
                     f"steps/s; bare scan {out['bare_scan_over_torch_compile']:.2f}x")
        for key in ("torch_skipped", "torch_compile_skipped"):
            if key in out:
                self.log(f"  {out[key]}")
        return out

    def _torch_references(self, run, widths, out: dict[str, Any]) -> dict[str, TorchReference]:
        """{"torch": eager, "torch_compile": compiled} references on the device JAX runs on, warmed up (their
        compiles happen there); a compile that fails is said in `out` ("torch_compile_skipped")."""
        import torch

        device, name = torch_device(jax.default_backend())
        out.update({"torch_version": torch.__version__, "torch_device": device, "torch_device_name": name,
                    "torch_on_jax_device": name == out["jax_device"]
                    and (device == "cuda") == (out["jax_backend"] != "cpu")})
        if not out["torch_on_jax_device"]:
            out["torch_device_note"] = (f"JAX runs on {out['jax_device']} ({out['jax_backend']}) but torch sees no "
                                        "such device (a CPU build of torch?): torch ran on the CPU")
        flat = run.dataset.train.x.reshape(len(run.dataset.train), -1)
        options = dict(widths=widths, activation=ACTIVATION, batch_size=run.train.batch_size,
                       learning_rate=float(run.hp["learning_rate"]), device=device)
        refs = {"torch": TorchReference(flat, **options)}
        refs["torch"].warm_up(10)
        threads = os.cpu_count() or 1
        if device == "cpu":  # compile with the thread count eager runs faster with now (see `torch`)
            probe = {n: refs["torch"].steps_per_s(10, n)[0] for n in dict.fromkeys((threads, 1))}
            threads = max(probe, key=probe.get)
        torch.set_num_threads(threads)
        out["torch_compile_threads"] = threads
        try:
            refs["torch_compile"] = TorchReference(flat, compiled=True, **options)
            out["torch_compile_mode"] = refs["torch_compile"].mode
            out["torch_compile_warm_up_s"] = refs["torch_compile"].warm_up(20)
        except Exception as e:  # noqa: BLE001 - a compiler missing or failing is reported, not fatal
            refs.pop("torch_compile", None)
            out["torch_compile_skipped"] = f"torch.compile failed on {device}, not timed: {type(e).__name__}: {e}"[:500]
        return refs

    def run(self) -> dict[str, Any]:
        result: dict[str, Any] = {"schema": 1, "machine": machine_info(), "dataset": self.dataset_name,
                                  "dataset_note": self.dataset_note, "repeats": self.options.repeats,
                                  "quick": self.options.quick, "sections": list(self.options.only),
                                  "load_average_before": load_average()}
        if self.dataset_note:
            self.log(f"aejax bench: {self.dataset_note}")
        start = time.perf_counter()
        result["matmul_peak_flops_per_s"] = matmul_peak_flops_per_s()
        for section in SECTIONS:
            if section in self.options.only:
                self.log(f"aejax bench: {section} ...")
                result[section] = getattr(self, section)()
        if "loop" in result:
            for key in ("fit_steps_per_s", "bare_scan_steps_per_s", "fit_over_bare"):
                result[key] = result["loop"][key]
            plain = result["loop"]["plain"]
            if "bare_over_plain" in plain:
                result["bare_over_plain"] = plain["bare_over_plain"]
                result["step_fusions"] = plain["fusions"]  # {"aejax_step", "plain_step", "aejax_scan_body", ...}
        result["load_average_after"] = load_average()
        result["total_s"] = time.perf_counter() - start
        return result


def run_suite(options: SuiteOptions | None = None, *, log=print) -> dict[str, Any]:
    """Runs the selected sections and returns the JSON-able result (see the module docstring)."""
    return Suite(options or SuiteOptions(), log=log).run()


# -- the markdown tables ------------------------------------------------------------------------------

def _fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _gflops(value) -> str:
    return "-" if value is None else f"{value / 1e9:.1f}"


def _step_table(rows) -> str:
    return _table(["step", "batch", "compile s", "steps/s", "examples/s", "fusions", "MFLOP/step", "GFLOP/s",
                   "peak GFLOP/s", "efficiency"],
                  [[r["name"], str(r["batch_size"]), _fmt(r["compile_s"]), _fmt(r["steps_per_s"]),
                    _fmt(r["examples_per_s"], ".0f"), str(r.get("step_fusions", "-")),
                    _fmt((r["counted_flops"] or r["cost_flops"] or 0) / 1e6 or None, ".1f"),
                    _gflops(r["step_flops_per_s"]), _gflops(r["matmul_peak_flops_per_s"]), _fmt(r["efficiency"], ".2f")]
                   for r in rows])


def markdown(result: dict[str, Any]) -> str:
    """Every section of a `run_suite` result as markdown tables, with the machine on top."""
    m = result["machine"]
    parts = [(f"**{m['device']}** ({m['backend']}, {m['device_count']} device(s)); CPU {m['cpu_model']}, "
             f"{m['cpu_cores']} cores; jax {m['jax']}, flax {m['flax']}, optax {m['optax']}, torch "
             f"{m['torch'] or 'not installed'}; data: {result['dataset']}; median of {result['repeats']} "
             f"repeat(s); load average before {result['load_average_before']}, after "
             f"{result['load_average_after']}; peak float32 matmul {_gflops(result['matmul_peak_flops_per_s'])} "
             f"GFLOP/s; {result['total_s']:.0f} s in all.")]
    if result.get("dataset_note"):
        parts.append(f"Note: {result['dataset_note']}.")
    if "loop" in result:
        lp = result["loop"]
        parts.append(f"### fit against the bare scan ({lp['model']} {lp['model_widths']}, batch {lp['batch_size']}, "
                     f"{lp['optimizer']} in both)\n\n" + _table(
                         ["fit_steps_per_s", "bare_scan_steps_per_s", "fit / bare"],
                         [[_fmt(lp["fit_steps_per_s"]), _fmt(lp["bare_scan_steps_per_s"]),
                           _fmt(lp["fit_over_bare"], ".3f")]]))
        pl = lp.get("plain", {})
        if "bare_over_plain" in pl:
            f, c = pl["fusions"], pl["hlo_counts"]
            parts.append(f"### aejax's bare scan against the plain flax + optax scan ({pl['model_widths']} sigmoid MLP "
                         f"AE, batch {pl['batch_size']}, the same {pl['steps']} batches, interleaved)\n\n" + _table(
                             ["program", "steps/s", "fusions per step (jitted step)", "kernels per step",
                              "fusions in the scan body"],
                             [["aejax bare scan", _fmt(pl["bare_scan_steps_per_s"]), str(f["aejax_step"]),
                               str(c["aejax_step"]["kernels"]), str(f["aejax_scan_body"])],
                              ["plain scan (scripts/plain_scan.py)", _fmt(pl["plain_scan_steps_per_s"]),
                               str(f["plain_step"]), str(c["plain_step"]["kernels"]), str(f["plain_scan_body"])]])
                         + f"\n\nbare / plain = **{pl['bare_over_plain']:.3f}** (median of the ratios of "
                           f"{pl.get('turns', 'the')} alternating turns).")
        elif "skipped" in pl:
            parts.append(f"Plain scan: {pl['skipped']}.")
    if "torch" in result:
        t = result["torch"]
        eager = t.get("torch_steps_per_s")

        def row(name, device, rate):
            return [name, device, _fmt(rate), _fmt(rate / eager if eager and rate else None, ".2f"),
                    _fmt(t["bare_scan_steps_per_s"] / rate if rate else None, ".2f")]

        jax_device = f"{t.get('jax_device', '?')} (JAX)"
        rows = [row("bare scanned step (aejax)", jax_device, t["bare_scan_steps_per_s"]),
                row("Python loop of the jitted step", jax_device, t["jit_loop_steps_per_s"])]
        if "fit_steps_per_s" in result:
            rows.insert(0, row("fit (from the loop table)", jax_device, result["fit_steps_per_s"]))
        torch_device = f"{t.get('torch_device_name', '-')} (torch)"
        for n, r in t.get("torch_steps_per_s_by_threads", {}).items():
            threads = f", {n} thread(s)" if t.get("torch_device") == "cpu" else ""
            rows.append(row(f"PyTorch eager{threads}", torch_device, r))
        for n, r in t.get("torch_compile_steps_per_s_by_threads", {}).items():
            threads = f", {n} thread(s)" if t.get("torch_device") == "cpu" else ""
            rows.append(row(f"torch.compile, mode {t['torch_compile_mode']}{threads}", torch_device, r))
        notes = [t[k] for k in ("torch_skipped", "torch_compile_skipped", "torch_device_note") if k in t]
        if "torch_skipped" in t:
            rows.append(["PyTorch eager", "-", "-", "-", "-"])
        title = (f"### against PyTorch on the same device ({t['model_widths']} sigmoid MLP AE, batch "
                 f"{t['batch_size']}, {t['steps']} steps per timed call)")
        parts.append(f"{title}\n\n" + _table(["loop", "device", "steps/s", "x torch eager (faster thread count)",
                                               "bare scan / this"], rows)
                     + "".join(f"\n\n{n}." for n in notes))
    for section, title in (("kinds", "every kind (MLP; the MAE on its transformer)"),
                           ("nets", "conv (float32, bfloat16) and transformer nets")):
        if section in result:
            parts.append(f"### {title}\n\n" + _step_table(result[section]))
    if "contractive" in result:
        rows = result["contractive"]
        parts.append("### contractive penalty methods (batch 128)\n\n" + _table(
            ["method", "steps/s", "compile s", "x plain step time"],
            [[r["method"], _fmt(r["steps_per_s"]), _fmt(r["compile_s"]), _fmt(r["relative_to_plain"], ".2f")]
             for r in rows]))
    if "sweep" in result:
        parts.append("### vmapped sweep programs (seeds of the reference model)\n\n" + _table(
            ["runs", "batch", "compile s", "run-steps/s", "x one run", "efficiency"],
            [[str(r["runs"]), str(r["batch_size"]), _fmt(r["compile_s"]), _fmt(r["run_steps_per_s"]),
              _fmt(r["speedup_over_one_run"], ".2f"), _fmt(r["efficiency"], ".2f")] for r in result["sweep"]]))
    return "\n\n".join(parts) + "\n"
