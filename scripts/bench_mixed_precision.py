"""bfloat16 compute for the conv autoencoder: accuracy cost and speed against float32, side by side.

    python scripts/bench_mixed_precision.py [--epochs 2] [--channels 16 32] [--json FILE]

Trains the fmnist_ae conv autoencoder (Fashion-MNIST; digits when it is missing) twice with
`aejax.train.fit`, the same seed, data order and optimizer, once with `model.dtype=float32` and
once with `model.dtype=bfloat16` (float32 parameters and optimizer state, bfloat16 layers; see
`aejax.nets.conv`), then prints test MSE, training steps/s and wall time of each and their ratios.
The runs alternate (float32 first) so a change of machine load shows in both. A CPU has no
bfloat16 matrix units: there the speed ratio says what the conversions cost, not what a GPU gains.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import jax

from aejax.config import get_experiment_config
from aejax.train.fit import fit


def train(dtype: str, *, epochs: int, channels: tuple[int, ...], dataset: str) -> dict:
    overrides = {"model.dtype": dtype, "model.channels": channels, "train.epochs": epochs, "train.figures": False,
                 "train.progress": False, "train.tensorboard": False, "optim.warmup": 100}
    if dataset == "digits":
        overrides.update({"data.name": "digits", "data.val_size": 180, "train.batch_size": 64})
    config = get_experiment_config("fmnist_ae", overrides)
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        summary = fit(config, workdir)
        wall = time.perf_counter() - start
    return {"dtype": dtype, "test_mse": summary["test/mse"], "steps_per_s": summary["perf/steps_per_s"],
            "wall_s": wall, "epochs": epochs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    from aejax.data import find_fashion_mnist
    from aejax.errors import DatasetNotFoundError

    try:
        find_fashion_mnist(None)
        dataset = "fashion_mnist"
    except DatasetNotFoundError:
        dataset = "digits"
        print("Fashion-MNIST not found: digits instead", file=sys.stderr)
    rows = [train(dtype, epochs=args.epochs, channels=tuple(args.channels), dataset=dataset)
            for dtype in ("float32", "bfloat16")]
    device = jax.devices()[0].device_kind
    print(f"conv AE {'/'.join(map(str, args.channels))} channels on {dataset}, {args.epochs} epoch(s), "
          f"{device} ({jax.default_backend()}), jax {jax.__version__}\n")
    print("| dtype | test MSE | steps/s | wall s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['dtype']} | {r['test_mse']:.5f} | {r['steps_per_s']:.1f} | {r['wall_s']:.0f} |")
    mse_ratio = rows[1]["test_mse"] / rows[0]["test_mse"]
    speed_ratio = rows[1]["steps_per_s"] / rows[0]["steps_per_s"]
    print(f"\nbfloat16 / float32: test MSE x{mse_ratio:.3f}, steps/s x{speed_ratio:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"dataset": dataset, "device": device, "jax": jax.__version__, "rows": rows,
                       "mse_ratio": mse_ratio, "speed_ratio": speed_ratio}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
