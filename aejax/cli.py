"""`aejax train | sweep | eval | bench | list | download` — thin: parses arguments, then calls library functions."""

from __future__ import annotations

import argparse
import json
import os
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

    if args.collect:
        from aejax.sweep import collect_results

        out = collect_results(args.experiment, select=args.select)
        workdir = args.experiment
    else:
        overrides = _overrides(args)
        initialize(args.coordinator, args.num_processes, args.process_id)  # before anything touches a device
        from aejax.api import run_sweep
        from aejax.sweep import parse_shard
        from aejax.train import StopRequested

        workdir = args.workdir or _default_workdir(args.experiment, overrides, root="sweeps")
        try:
            out = run_sweep(args.experiment, workdir, overrides=overrides, grid=args.grid or [], seeds=args.seeds,
                            parallel=args.parallel, max_parallel=args.max_parallel, shard=parse_shard(args.shard),
                            select=args.select, progress=not args.no_progress, folds=args.folds,
                            **_search_options(args))
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
        print(f"aejax: best by {out['select']}: {best['run_id']} ({metric} = {best[metric]:.6g}) {where}")
    return EXIT_FAILED_MEMBERS if failed else 0


def _search_options(args) -> dict:
    """--space/--sample/--sampler and --scheduler's options as run_sweep's arguments (the experiment's space()
    first, each --space KEY=DIST replacing or adding a key)."""
    from aejax.config import load_experiment
    from aejax.errors import ConfigError
    from aejax.sweep.search import SearchOptions

    module = load_experiment(args.experiment)
    space = dict(module.space()) if callable(getattr(module, "space", None)) else {}
    for item in args.space or []:
        key, sep, dist = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--space {item!r} is not KEY=DIST; write e.g. --space 'hp.learning_rate=loguniform(1e-4,1e-1)'.")
        space[key.strip()] = dist.strip()
    options = {"space": space, "sample": args.sample, "sampler": args.sampler}
    if args.scheduler:
        try:
            perturb = tuple(float(v) for v in args.perturb.split(","))
        except ValueError:
            raise ConfigError(f"--perturb takes factors such as 0.8,1.2, got {args.perturb!r}.") from None
        options["search"] = SearchOptions(args.scheduler, eta=args.eta, min_epochs=args.min_epochs,
                                          ready_epochs=args.ready_epochs, quantile=args.quantile, perturb=perturb)
    return options


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
    from aejax.data import download_fashion_mnist

    if args.dataset != "fashion_mnist":
        print(f"aejax: only fashion_mnist is downloadable; {args.dataset!r} ships with its package.", file=sys.stderr)
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
    sweep.add_argument("--select", default="val/mse", help="metric naming the best run; METRIC:max when higher "
                       "is better (default val/mse, lower is better)")
    sweep.add_argument("--data-dir", help="directory holding dataset files")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--space", action="append", metavar="KEY=DIST", help="a searched key (repeatable): "
                       "loguniform(1e-4,1e-1), uniform(0,1), intuniform(1,8), intloguniform(8,256), choice(8,16,32); "
                       "adds to or replaces the experiment's space()")
    sweep.add_argument("--sample", type=int, metavar="N", help="draw N points of the space (crossed with --grid/--seeds)")
    sweep.add_argument("--sampler", default="random", help="random (default), sobol or halton (scrambled, seeded)")
    sweep.add_argument("--scheduler", choices=["halving", "pbt"], help="search inside the population: successive "
                       "halving, or population-based training")
    sweep.add_argument("--eta", type=int, default=3, help="halving: keep the best 1/eta at each rung (default 3)")
    sweep.add_argument("--min-epochs", type=int, default=1, help="halving: the first rung (rungs E, E*eta, ...)")
    sweep.add_argument("--ready-epochs", type=int, default=2, help="pbt: exploit and explore every N epochs")
    sweep.add_argument("--quantile", type=float, default=0.25, help="pbt: the bottom and top share (0, 0.5]")
    sweep.add_argument("--perturb", default="0.8,1.2", help="pbt: the explore factors (default 0.8,1.2)")
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
    download.add_argument("dataset", choices=["fashion_mnist"])
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
        args = build_parser().parse_args(argv)
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
