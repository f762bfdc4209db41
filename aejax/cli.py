"""`aejax train | eval | bench | download` — thin: parses arguments, then calls library functions."""

from __future__ import annotations

import argparse
import json
import os
import sys

from aejax.errors import AejaxError, NonFiniteError

EXIT_USAGE, EXIT_NONFINITE, EXIT_INTERRUPTED = 2, 3, 130


def _default_workdir(experiment: str) -> str:
    from aejax.config import split_variant

    name, variant = split_variant(experiment)
    stem = os.path.splitext(os.path.basename(name))[0]
    return os.path.join("runs", f"{stem}_{variant}" if variant else stem)


def cmd_train(args) -> int:
    from aejax.config import get_experiment_config, parse_overrides
    from aejax.train import StopRequested, fit

    config = get_experiment_config(args.experiment, parse_overrides(args.set or []))
    if args.data_dir:
        config.data.dir = args.data_dir
    workdir = args.workdir or _default_workdir(args.experiment)
    try:
        summary = fit(config, workdir)
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
    from aejax.config import get_experiment_config, parse_overrides
    from aejax.errors import DatasetNotFoundError
    from aejax.train.benchmark import benchmark_loop

    experiment = args.experiment
    if experiment is None:  # the 784-512-256-32 MLP on Fashion-MNIST when present, else digits
        try:
            from aejax.data import find_fashion_mnist

            find_fashion_mnist(args.data_dir)
            experiment = "fmnist_mlp_ae"
        except DatasetNotFoundError:
            experiment = "digits_ae"
    config = get_experiment_config(experiment, parse_overrides(args.set or []))
    if args.data_dir:
        config.data.dir = args.data_dir
    result = benchmark_loop(config, epochs=args.epochs)
    result["experiment"] = experiment
    print(f"{'experiment':<14}{'backend':<9}{'batch':>6}{'fit steps/s':>14}{'bare steps/s':>15}{'fit/bare':>10}")
    print(f"{experiment:<14}{result['backend']:<9}{result['batch_size']:>6}{result['fit_steps_per_s']:>14.1f}"
          f"{result['bare_scan_steps_per_s']:>15.1f}{result['fit_over_bare']:>10.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, sort_keys=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from aejax.evaluate import TASKS, describe_options

    parser = argparse.ArgumentParser(prog="aejax", description="Autoencoder research framework (JAX/Flax).")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train an experiment (resumes when the workdir has checkpoints)")
    train.add_argument("experiment", help="experiment file path, or a name in experiments/; NAME:VARIANT picks "
                       "a variant of get_config(variant)")
    train.add_argument("--workdir", help="output directory (default runs/<experiment>)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    train.add_argument("--data-dir", help="directory holding dataset files (also: AEJAX_DATA_DIR)")
    train.set_defaults(func=cmd_train)
    evaluate = sub.add_parser("eval", help="score a trained run; writes WORKDIR/report.md and figures")
    evaluate.add_argument("workdir")
    evaluate.add_argument("--task", required=True, help="evaluation task: " + ", ".join(sorted(TASKS)))
    evaluate.add_argument("--option", action="append", metavar="KEY=VALUE",
                          help="task option (repeatable); unknown options and wrong types are errors. Options: "
                          + "; ".join(f"{t}: {describe_options(t)}" for t in sorted(TASKS)))
    evaluate.set_defaults(func=cmd_eval)
    bench = sub.add_parser("bench", help="time the training loop against a bare lax.scan of the step")
    bench.add_argument("--experiment", help="experiment to time (default: fmnist_mlp_ae, or digits_ae without Fashion-MNIST)")
    bench.add_argument("--epochs", type=int, default=6, help="epochs per measurement (the first compiles)")
    bench.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    bench.add_argument("--data-dir", help="directory holding dataset files")
    bench.add_argument("--json", help="also write the results as JSON to this file")
    bench.set_defaults(func=cmd_bench)
    download = sub.add_parser("download", help="download a dataset into the cache, verifying checksums")
    download.add_argument("dataset", choices=["fashion_mnist"])
    download.add_argument("--target", help="directory to download into (default: the user cache)")
    download.set_defaults(func=cmd_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NonFiniteError as err:
        print(f"aejax: error: {err}", file=sys.stderr)
        return EXIT_NONFINITE
    except AejaxError as err:
        print(f"aejax: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
