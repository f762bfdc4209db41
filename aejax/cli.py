"""`aejax train | sweep | eval | bench | list | download` — thin: parses arguments, then calls library functions."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from aejax.errors import AejaxError, NonFiniteError

EXIT_USAGE, EXIT_NONFINITE, EXIT_FAILED_MEMBERS, EXIT_INTERRUPTED = 2, 3, 4, 130


def _default_workdir(experiment: str, overrides: dict | None = None, root: str = "runs") -> str:
    """ROOT/<experiment>[_<variant>][-<overrides>]: a readable suffix for the overrides (a hash when
    long), so two different --set commands never share a workdir."""
    import hashlib

    from aejax.config import split_variant
    from aejax.sweep.spec import run_ids
    from aejax.train.loop import NOT_IDENTITY

    name, variant = split_variant(experiment)
    stem = os.path.splitext(os.path.basename(name))[0] + (f"_{variant}" if variant else "")
    overrides = {k: v for k, v in (overrides or {}).items() if k not in NOT_IDENTITY}  # display-only keys
    if overrides:
        suffix = run_ids([dict(sorted(overrides.items()))])[0]
        if len(suffix) > 48:
            suffix = hashlib.sha256(json.dumps(sorted(overrides.items()), default=repr).encode()).hexdigest()[:10]
        stem = f"{stem}-{suffix}"
    return os.path.join(root, stem)


def _overrides(args) -> dict:
    """The --set overrides (and --data-dir, which is data.dir) as a dict; data.path and data.dir are
    recorded absolute, relative to where the command runs, so that eval works from anywhere."""
    from aejax import platform
    from aejax.config import parse_overrides

    overrides = parse_overrides(args.set or [])
    if getattr(args, "data_dir", None):
        overrides["data.dir"] = args.data_dir
    for key in ("data.path", "data.dir"):
        value = overrides.get(key)
        if isinstance(value, str) and value:
            overrides[key] = ",".join(os.path.abspath(p) for p in value.split(","))
    if overrides.get("train.deterministic") is False:  # before anything starts the backend
        platform.request_deterministic(False)
    return overrides


def cmd_train(args) -> int:
    from aejax.train.distributed import initialize

    overrides = _overrides(args)
    initialize(args.coordinator, args.num_processes, args.process_id)  # before anything touches a device
    from aejax.api import fit
    from aejax.config import get_experiment_config
    from aejax.train import StopRequested

    config = get_experiment_config(args.experiment, overrides)
    workdir = args.workdir or _default_workdir(args.experiment, overrides)
    try:
        summary = fit(config, workdir, extend=args.extend)
    except StopRequested as stop:
        print(f"aejax: {stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    shown = {k: v for k, v in summary.items() if k.startswith("test/") or k in ("wall_time_s", "steps")}
    print(json.dumps(shown, indent=2, sort_keys=True))
    print(f"aejax: workdir     {os.path.abspath(workdir)}")
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints", "tensorboard"):
        print(f"aejax:   {name:<14}{os.path.join(workdir, name)}")
    for path in summary.get("figures", []):
        print(f"aejax:   figure        {path}")
    return 0


def cmd_sweep(args) -> int:
    from aejax.train.distributed import initialize, is_primary

    from aejax.tune.rounds import check_sampler

    if args.sampler is not None:
        check_sampler(args.sampler)  # aejax's or Optuna's, else a "did you mean"
    selects = args.select or ["val/mse"]
    if args.sampler in _tuners() or len(selects) > 1:  # Optuna as the sampler (aejax.tune.rounds)
        return _tune(args, selects)
    if args.collect:
        from aejax.sweep import collect_results

        workdir = args.experiment
        _check_workdir(workdir, exists=True)
        with _one_line_on_write_errors(workdir):
            out = collect_results(workdir, select=selects[0])
    else:
        overrides = _overrides(args)
        initialize(args.coordinator, args.num_processes, args.process_id)  # before anything touches a device
        from aejax.api import run_sweep
        from aejax.train import StopRequested

        workdir = args.workdir or _default_workdir(args.experiment, overrides, root="sweeps")
        search = _search_options(args)  # every refusal of the command line before anything is written
        shard = _shard(args, search)
        _check_size(args, search, workdir)
        _check_workdir(workdir)
        try:
            with _one_line_on_write_errors(workdir):
                out = run_sweep(args.experiment, workdir, overrides=overrides, grid=args.grid or [], seeds=args.seeds,
                                parallel=args.parallel, max_parallel=args.max_parallel, shard=shard,
                                select=selects[0], progress=not args.no_progress, folds=args.folds,
                                **search)
        except StopRequested as stop:
            print(f"aejax: {stop}", file=sys.stderr)
            return EXIT_INTERRUPTED
        if not is_primary():  # process 0 reports
            return 0
        print(f"aejax: ran {out['ran']} runs in {out['groups']} groups; {out['skipped']} already finished")
    rows = out["rows"]
    done, stopped = (sum(r["status"] == s for r in rows) for s in ("done", "stopped"))
    by_search = f" ({stopped} stopped by the search)" if stopped else ""
    print(f"aejax: {done} of {len(rows)} runs finished{by_search}; results in {out['results_csv']} and "
          f"{out['results_md']}")
    failed = [r["run_id"] for r in rows if r["status"] == "failed"]
    for run_id in failed:
        print(f"aejax: run {run_id} failed (see {os.path.join(workdir, 'runs', run_id, 'failed.json')})")
    best = out["best"]
    if best is not None:
        metric = out["select"].partition(":")[0]
        where = (f"(mean of {best['folds']} folds; results_folds.md)" if "folds" in best
                 else f"in {os.path.join(workdir, 'runs', best['run_id'])}")
        print(f"aejax: best by {out['select']}: {best['run_id']} ({metric} = {best[metric]:.6g}{_trained_at(best)}) "
              f"{where}")
    return EXIT_FAILED_MEMBERS if failed else 0


def _tuners() -> tuple[str, ...]:
    from aejax.tune.rounds import TUNERS

    return TUNERS


def _tune(args, selects: list[str]) -> int:
    """`aejax sweep --sampler tpe|cmaes|gp|nsga2` (or several --select objectives): an Optuna study asks the
    points, aejax trains each batch as one population (`aejax.tune.rounds.run_tuner`)."""
    from aejax.errors import ConfigError
    from aejax.tune.rounds import TunerOptions, require_optuna, run_tuner
    from aejax.viz import training_figures
    from aejax.train import StopRequested

    if len(selects) > 1 and args.scheduler:
        raise ConfigError(f"--scheduler {args.scheduler} ranks members on one metric; several --select objectives "
                          "need a search without --scheduler.")
    if args.sampler not in _tuners():
        raise ConfigError(f"several --select objectives need an Optuna sampler (--sampler nsga2, tpe or gp), not "
                          f"{args.sampler!r}.")
    require_optuna(f"--sampler {args.sampler}")
    if args.collect or args.grid or args.shard or args.parallel != "vmap":
        raise ConfigError("an Optuna search takes no --collect, --grid, --shard or --parallel sequential: its batches "
                          "are asked of the study (run the same command in several processes to share it).")
    if args.sample is None:
        raise ConfigError(f"--sampler {args.sampler} needs --sample N (the points of each batch).")
    overrides = _overrides(args)
    workdir = args.workdir or _default_workdir(args.experiment, overrides, root="sweeps")
    search = _search_options(args)
    options = TunerOptions(args.sampler, args.sample, rounds=args.rounds, selects=tuple(selects),
                           storage=args.storage, study_name=args.study_name)
    try:
        out = run_tuner(args.experiment, workdir, options, space=search["space"], overrides=overrides,
                        seeds=args.seeds, search=search.get("search"), progress=not args.no_progress,
                        figures=training_figures, max_parallel=args.max_parallel)
    except StopRequested as stop:
        print(f"aejax: {stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    rows = out["trials"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "stopped", "failed", "pending")}
    print(f"aejax: trained {out['ran']} trials here in {len(out['batches'])} batches; the study holds {len(rows)} of "
          f"{out['budget']}: {counts['done']} complete, {counts['stopped']} pruned, {counts['failed']} failed, "
          f"{counts['pending']} running elsewhere; results in {out['results_md']}")
    if out["best"] is not None:
        metric = out["select"].partition(":")[0]
        print(f"aejax: best by {out['select']}: trial {out['best']['trial']} ({metric} = {out['best'][metric]:.6g}) "
              f"in {os.path.join(workdir, 'batches', out['best']['batch'], 'runs', out['best']['run_id'])}")
    if out["front"]:
        print(f"aejax: Pareto front of {len(out['front'])} trials: "
              + ", ".join(str(r["trial"]) for r in out["front"]) + f" (figure {out['figures'][0]})")
    return EXIT_FAILED_MEMBERS if counts["failed"] else 0


def _trained_at(row: dict) -> str:
    """After PBT: "; at its last epoch hp.learning_rate=0.0137 (started at 0.000112)" for the keys it explored."""
    moved = [k[len("start:"):] for k in sorted(row) if k.startswith("start:") and row[k] != row.get(k[len("start:"):])]
    if not moved:
        return ""
    return "; at its last epoch " + ", ".join(f"{k}={_g(row[k])} (started at {_g(row['start:' + k])})" for k in moved)


def _g(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


HALVING_OPTIONS = {"eta": "--eta", "min_epochs": "--min-epochs"}
PBT_OPTIONS = {"ready_epochs": "--ready-epochs", "quantile": "--quantile", "perturb": "--perturb"}
SEARCH_DEFAULTS = {"eta": 3, "min_epochs": 1, "ready_epochs": 2, "quantile": 0.25, "perturb": "0.8,1.2"}
MANY_RUNS = 1000  # a sweep of more runs asks for --yes first


def _search_options(args) -> dict:
    """--space/--sample/--sampler and --scheduler's options as run_sweep's arguments (the experiment's space()
    first; a --space KEY=DIST replaces the file's distribution of KEY, as --set replaces a file's value; one key
    twice on the command line is refused). Options that would do nothing are refused in one line."""
    from aejax.config import load_experiment
    from aejax.errors import ConfigError
    from aejax.sweep.search import SearchOptions

    mine = {**HALVING_OPTIONS, **PBT_OPTIONS}
    given = [flag for name, flag in mine.items() if getattr(args, name) is not None]
    if given and not args.scheduler:
        raise ConfigError(f"{given[0]} only acts in a search; add --scheduler "
                          f"{'halving' if given[0] in HALVING_OPTIONS.values() else 'pbt'} or drop {given[0]}.")
    other = PBT_OPTIONS if args.scheduler == "halving" else HALVING_OPTIONS
    wrong = [flag for name, flag in other.items() if getattr(args, name) is not None]
    if wrong:
        owner = "pbt" if args.scheduler == "halving" else "halving"
        raise ConfigError(f"{wrong[0]} is an option of --scheduler {owner}, not of {args.scheduler}; drop it.")
    if args.sampler is not None and args.sample is None:
        raise ConfigError(f"--sampler {args.sampler} only acts with --sample N (how many points to draw); add "
                          "--sample N or drop --sampler.")
    module = load_experiment(args.experiment)
    space = dict(module.space()) if callable(getattr(module, "space", None)) else {}
    seen: set[str] = set()
    for item in args.space or []:
        key, sep, dist = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--space {item!r} is not KEY=DIST; write e.g. "
                              "--space 'hp.learning_rate=loguniform(1e-4,1e-1)'.")
        if key.strip() in seen:
            raise ConfigError(f"--space gives {key.strip()} twice; give each key one distribution.")
        seen.add(key.strip())
        space[key.strip()] = dist.strip()
    options = {"space": space, "sample": args.sample, "sampler": args.sampler or "random", "module": module}
    if args.scheduler:
        values = {name: SEARCH_DEFAULTS[name] if getattr(args, name) is None else getattr(args, name) for name in mine}
        try:
            perturb = tuple(float(v) for v in str(values["perturb"]).split(","))
        except ValueError:
            raise ConfigError(f"--perturb takes factors such as 0.8,1.2, got {values['perturb']!r}.") from None
        if any(not (f > 0 and f < float("inf")) for f in perturb):
            raise ConfigError(f"--perturb takes positive factors such as 0.8,1.2, got {values['perturb']}.")
        options["search"] = SearchOptions(args.scheduler, eta=values["eta"], min_epochs=values["min_epochs"],
                                          ready_epochs=values["ready_epochs"], quantile=values["quantile"],
                                          perturb=perturb)
    return options


def _shard(args, search: dict) -> tuple[int, int]:
    """--shard K/N, else the SLURM array's task; a search under a SLURM array (no --shard) is refused here,
    naming the array rather than a --shard the user never gave."""
    from aejax.errors import ConfigError
    from aejax.sweep import parse_shard

    shard = parse_shard(args.shard)
    if search.get("search") is not None and args.shard is None and shard != (0, 1):
        raise ConfigError(f"a search decides across its members while they train, so it runs in one process; this is "
                          f"task {shard[0]} of {shard[1]} of a SLURM array (SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT)"
                          ": run it outside the array, or give --shard 0/1 in one task.")
    return shard


def _check_size(args, search: dict, workdir: str) -> None:
    """More than MANY_RUNS runs (sampled points x grid x seeds) need --yes: one line saying how many runs and
    run directories it would create, before anything is drawn or written."""
    from aejax.errors import ConfigError
    from aejax.sweep.spec import parse_grid

    count = search["sample"] if search["sample"] is not None else 1
    for values in parse_grid(args.grid or []).values():
        count *= len(values)
    count *= args.seeds or 1
    if count > MANY_RUNS and not args.yes and (search["sample"] is not None or args.grid):
        raise ConfigError(f"this sweep has {count:,} runs: it would create {count:,} run directories under "
                          f"{os.path.join(workdir, 'runs')} and train each; add --yes to go ahead, or draw fewer.")


def _check_workdir(workdir: str, *, exists: bool = False) -> None:
    """A sweep's workdir (or its nearest existing parent) is a directory this process can write to, else one line."""
    import errno
    import tempfile

    from aejax.errors import ConfigError

    if exists and not os.path.isdir(workdir):
        raise ConfigError(f"{workdir} is {'a file' if os.path.exists(workdir) else 'not there'}, not a sweep's "
                          "workdir; pass the --workdir of an `aejax sweep`.")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"the workdir {workdir} is a file, not a directory; pass another --workdir.")
    place = os.path.abspath(workdir)
    while not os.path.exists(place):
        place = os.path.dirname(place)
    if not os.path.isdir(place):
        raise ConfigError(f"the workdir {workdir} lies under {place}, a file; pass another --workdir.")
    try:  # a real write: read-only mounts and permissions alike (root ignores the mode bits os.access reads)
        fd, probe = tempfile.mkstemp(prefix=".aejax-write-check-", dir=place)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        reason = err.strerror or errno.errorcode.get(err.errno, str(err))
        raise ConfigError(f"cannot write to the workdir {workdir} ({reason}); pass a --workdir you can write to."
                          ) from None


class _one_line_on_write_errors:
    """A workdir that turns read-only (or unwritable) under a sweep: one line naming the file, not a traceback."""

    def __init__(self, workdir: str):
        self.workdir = workdir

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        import errno

        from aejax.errors import ConfigError

        if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            where = err.filename or self.workdir
            raise ConfigError(f"cannot write {where} ({err.strerror}); pass a --workdir you can write to.") from None
        return False


_NUMBER_OPTIONS = ("--perturb", "--quantile", "--eta", "--min-epochs", "--ready-epochs", "--sample", "--seeds",
                   "--max-parallel")


def _join_negative_values(argv: list[str]) -> list[str]:
    """`--perturb -1,2` as `--perturb=-1,2`, so that the value reaches aejax's own check (argparse would take it
    for an option and answer "expected one argument")."""
    out: list[str] = []
    for token in argv:
        if out and out[-1] in _NUMBER_OPTIONS and re.match(r"-[0-9.]", token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def cmd_list(args) -> int:
    """One line per experiment, kind or task (tasks with their options, defaults and meaning)."""
    what = args.what
    if what in ("experiments", "all"):
        from aejax.config import list_experiments, load_experiment

        print("experiments (aejax train NAME[:VARIANT]):")
        for name, path in list_experiments():
            module = load_experiment(str(path))
            extras = []
            if getattr(module, "VARIANTS", None):
                extras.append("variants: " + ", ".join(sorted(module.VARIANTS)))
            if callable(getattr(module, "sweep", None)):
                extras.append("sweep()")
            suffix = f" [{'; '.join(extras)}]" if extras else ""
            print(f"  {name:<24}{_first_line(module.__doc__)}{suffix}")
        print(f"  (looked in: {', '.join(str(d) for d in __import__('aejax.config').config.experiment_dirs())})")
    if what in ("kinds", "all"):
        from aejax.models import KINDS, kind_hp_defaults, kind_options

        print("kinds (model.kind):")
        for kind, entry in KINDS.items():
            options = kind_options(kind)
            print(f"  {kind:<14}{_first_line(entry.cls().__doc__)}")
            print(f"  {'':<14}model.*: " + ", ".join(f"{k}={v!r}" for k, v in options.items()))
            print(f"  {'':<14}hp.*: " + ", ".join(f"{k}={v!r}" for k, v in kind_hp_defaults(kind, options).items()))
    if what in ("tasks", "all"):
        from aejax.evaluate import TASKS, option_help, task_function

        print("tasks (aejax eval WORKDIR --task TASK --option KEY=VALUE):")
        for task in TASKS:
            print(f"  {task:<16}{_first_line(task_function(task).__doc__)}")
            for line in option_help(task):
                print(f"  {'':<16}{line}")
    return 0


def cmd_download(args) -> int:
    from aejax.data import download_fashion_mnist, download_olivetti

    if args.dataset == "olivetti_faces":
        print(f"aejax: Olivetti faces verified in {download_olivetti(args.target)}")
        return 0
    if args.dataset != "fashion_mnist":
        print(f"aejax: only fashion_mnist and olivetti_faces are downloadable; {args.dataset!r} ships with its "
              "package.", file=sys.stderr)
        return EXIT_USAGE
    print(f"aejax: Fashion-MNIST verified in {download_fashion_mnist(args.target)}")
    return 0


def cmd_eval(args) -> int:
    from aejax.config import parse_overrides
    from aejax.evaluate import evaluate_workdir

    results = evaluate_workdir(args.workdir, args.task, **parse_overrides(args.option or []))
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, (list, dict))}, indent=2, sort_keys=True))
    print(f"aejax: report      {os.path.join(args.workdir, 'report.md')}")
    return 0


def cmd_bench(args) -> int:
    from aejax.bench import SECTIONS, SuiteOptions, markdown, run_suite
    from aejax.config import get_experiment_config
    from aejax.errors import ConfigError

    def integers(text: str, what: str) -> tuple[int, ...]:
        try:
            return tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"{what} must be comma-separated integers such as 128,1024, got {text!r}.") from None

    overrides = _overrides(args)
    loop_config = get_experiment_config(args.experiment, overrides) if args.experiment else None
    overrides.pop("data.dir", None)  # the reference model takes --data-dir as data_dir
    only = tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else SECTIONS
    quick = args.quick
    options = SuiteOptions(only=only, repeats=args.repeats or (1 if quick else 3), quick=quick,
                           batch_sizes=integers(args.batch_sizes or ("128" if quick else "128,1024"), "--batch-sizes"),
                           sweep_runs=integers(args.sweep_runs or ("1,4" if quick else "1,4,16,64"), "--sweep-runs"),
                           loop_epochs=args.epochs or (3 if quick else None), data_dir=args.data_dir,
                           loop_config=loop_config, loop_overrides=tuple(overrides.items()) if loop_config is None else ())
    result = run_suite(options, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(markdown(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, sort_keys=True)
    return 0


def _multihost_arguments(parser, what: str) -> None:
    parser.add_argument("--coordinator", metavar="HOST:PORT", help=f"multi-host: process 0's address, the same on "
                        f"every process (also JAX_COORDINATOR_ADDRESS): {what}")
    parser.add_argument("--num-processes", type=int, help="multi-host: how many processes (also JAX_NUM_PROCESSES)")
    parser.add_argument("--process-id", type=int, help="multi-host: this process's index (also JAX_PROCESS_ID)")


def build_parser() -> argparse.ArgumentParser:
    from aejax.evaluate import TASKS, describe_options

    parser = argparse.ArgumentParser(prog="aejax", description="Autoencoder research framework (JAX/Flax).")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an experiment (resumes when the workdir has checkpoints)")
    train.add_argument("experiment", help="experiment file path, or a name in experiments/; NAME:VARIANT picks "
                       "a variant of get_config(variant)")
    train.add_argument("--workdir", help="output directory (default runs/<experiment>[-<overrides>])")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    train.add_argument("--data-dir", help="directory holding dataset files (also: AEJAX_DATA_DIR)")
    train.add_argument("--extend", action="store_true", help="allow more train.epochs than the run in WORKDIR was "
                       "started with: it trains on, with the schedule rebuilt for the new length (recorded in "
                       "history.jsonl)")
    _multihost_arguments(train, "with --set train.data_parallel=True, each batch over every process's devices")
    train.set_defaults(func=cmd_train)
    sweep = sub.add_parser("sweep", help="train many runs: vmapped groups, results.csv/md, resumable")
    sweep.add_argument("experiment", help="experiment (its sweep() is used unless --grid/--seeds); with --collect, "
                       "the sweep's workdir")
    sweep.add_argument("--workdir", help="output directory (default sweeps/<experiment>)")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE", help="override for every run (repeatable)")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="a product axis (repeatable); "
                       "use ';' between tuple values")
    sweep.add_argument("--seeds", type=int, help="cross everything with seeds 0..N-1")
    sweep.add_argument("--folds", type=int, metavar="K", help="K-fold cross-validation: every point on each fold "
                       "(data.fold crossed like --seeds), one population; results_folds.csv/md: fold mean and error")
    sweep.add_argument("--parallel", default="vmap", choices=["vmap", "sequential"],
                       help="vmap runs of one structure as one program (default), or train them one by one")
    sweep.add_argument("--max-parallel", type=int, help="at most N runs per vmapped program (default: an estimate)")
    sweep.add_argument("--shard", metavar="K/N", help="run only the K-th of N slices (0 <= K < N); default from "
                       "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set")
    sweep.add_argument("--collect", action="store_true", help="only rebuild results.csv/md from the runs' outputs")
    sweep.add_argument("--select", action="append", help="metric naming the best run (default val/mse); known "
                       "metrics know their direction (elbo, auroc, psnr higher; mse, loss, nll lower), :min or :max "
                       "decides for others or overrides; repeat it for a multi-objective Optuna search (a Pareto "
                       "front)")
    sweep.add_argument("--data-dir", help="directory holding dataset files")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--space", action="append", metavar="KEY=DIST", help="a searched key (repeatable): "
                       "loguniform(1e-4,1e-1), uniform(0,1), intuniform(1,8), intloguniform(8,256), choice(8,16,32); "
                       "adds to the experiment's space() or replaces its distribution of KEY")
    sweep.add_argument("--sample", type=int, metavar="N", help="draw N points of the space (crossed with --grid/--seeds)")
    sweep.add_argument("--sampler", help="random (default), sobol or halton (scrambled, seeded), with --sample; "
                       "or an Optuna sampler asked for batches of --sample points: tpe, cmaes, gp, nsga2 "
                       '(pip install "aejax[tune]")')
    sweep.add_argument("--rounds", type=int, default=1, help="Optuna samplers: batches of --sample points, each "
                       "asked from the results before it (default 1)")
    sweep.add_argument("--storage", help="Optuna samplers: the study's storage URL (default sqlite:///WORKDIR/"
                       "study.db; postgresql://... or mysql://... for several machines)")
    sweep.add_argument("--study-name", help="Optuna samplers: the study's name in the storage (default: the "
                       "workdir's name)")
    sweep.add_argument("--scheduler", choices=["halving", "pbt"], help="search inside the population: successive "
                       "halving, or population-based training")
    sweep.add_argument("--eta", type=int, help="halving: keep the best 1/eta at each rung (default 3)")
    sweep.add_argument("--min-epochs", type=int, help="halving: the first rung (rungs E, E*eta, ...; default 1)")
    sweep.add_argument("--ready-epochs", type=int, help="pbt: exploit and explore every N epochs (default 2)")
    sweep.add_argument("--quantile", type=float, help="pbt: the bottom and top share (0, 0.5]; default 0.25")
    sweep.add_argument("--perturb", help="pbt: the explore factors (default 0.8,1.2)")
    sweep.add_argument("--yes", action="store_true", help=f"go ahead with a sweep of more than {MANY_RUNS:,} runs")
    _multihost_arguments(sweep, "the population's members over every process's devices; run the same command on each")
    sweep.set_defaults(func=cmd_sweep)
    evaluate = sub.add_parser("eval", help="score a trained run; writes WORKDIR/report.md and figures")
    evaluate.add_argument("workdir")
    evaluate.add_argument("--task", required=True, help="evaluation task: " + ", ".join(sorted(TASKS)))
    evaluate.add_argument("--option", action="append", metavar="KEY=VALUE",
                          help="task option (repeatable); unknown options and wrong types are errors. Options: "
                          + "; ".join(f"{t}: {describe_options(t)}" for t in sorted(TASKS)))
    evaluate.set_defaults(func=cmd_eval)
    bench = sub.add_parser("bench", help="the benchmark suite: steps/s, compile time and efficiency of every kind "
                           "and net, fit against the bare scan, contractive methods, sweeps, PyTorch eager")
    bench.add_argument("--only", metavar="SECTIONS", help="comma-separated sections to run: loop, kinds, nets, "
                       "contractive, sweep, torch (default: all)")
    bench.add_argument("--repeats", type=int, help="repeats per figure; medians are reported (default 3, quick 1)")
    bench.add_argument("--quick", action="store_true", help="a smoke test: digits, batch 128, fewer steps and runs")
    bench.add_argument("--batch-sizes", help="batch sizes of the kinds and nets tables (default 128,1024)")
    bench.add_argument("--sweep-runs", help="sweep sizes (default 1,4,16,64)")
    bench.add_argument("--experiment", help="time this experiment in the loop section instead of the 784-512-32 "
                       "sigmoid MLP autoencoder")
    bench.add_argument("--epochs", type=int, help="epochs per fit in the loop section (default: enough for about "
                       "2 s of training, at least 6; compiles are timed apart)")
    bench.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value of the loop "
                       "section's model (repeatable)")
    bench.add_argument("--data-dir", help="directory holding dataset files")
    bench.add_argument("--json", help="also write the results as JSON to this file")
    bench.set_defaults(func=cmd_bench)
    listing = sub.add_parser("list", help="list experiments, kinds or evaluation tasks (with their options)")
    listing.add_argument("what", nargs="?", default="all", choices=["experiments", "kinds", "tasks", "all"])
    listing.set_defaults(func=cmd_list)
    download = sub.add_parser("download", help="download a dataset into the cache, verifying checksums")
    download.add_argument("dataset", choices=["fashion_mnist", "olivetti_faces"])
    download.add_argument("--target", help="directory to download into (default: the user cache)")
    download.set_defaults(func=cmd_download)
    return parser


_INTERRUPTED = ("aejax: interrupted before training had started or finished a checkpointable step; nothing to "
                "resume was lost (run the same command again).")


def _interrupt(signum, frame):
    """SIGTERM in a caller's process (`main(argv)`): stops as Ctrl-C does, with a KeyboardInterrupt."""
    del frame
    raise KeyboardInterrupt(signum)


def _exit_now(signum, frame):
    """The command line's SIGINT and SIGTERM whenever no training loop has its own handler installed (the loop
    turns them into a checkpoint and a stop): one line and exit 130 at once. A KeyboardInterrupt is not safe
    here: raised inside a C extension's initialisation (jaxlib, while JAX imports) it surfaces as an
    ImportError or aborts the process, and raised in a garbage-collection callback it is swallowed."""
    del signum, frame
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 - a write under way in the main thread: its text is what is lost
        pass
    os.write(2, (_INTERRUPTED + "\n").encode())
    os._exit(EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    import signal

    if argv is None:  # the command line: before anything heavy is imported
        signal.signal(signal.SIGINT, _exit_now)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, _exit_now)
    elif hasattr(signal, "SIGTERM"):  # SIGTERM outside the training loop stops as cleanly as Ctrl-C
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        args = build_parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else list(argv)))
        return args.func(args)
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=sys.stderr)
        if argv is None:  # the command line: leave at once, so no half-finished compile or writer thread
            sys.stdout.flush()  # is torn down underneath the interpreter's shutdown
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except NonFiniteError as err:
        print(f"aejax: error: {err}", file=sys.stderr)
        return EXIT_NONFINITE
    except AejaxError as err:
        print(f"aejax: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
