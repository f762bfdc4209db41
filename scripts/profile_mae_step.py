"""Where the masked autoencoder's training step goes: its pieces compiled and timed apart, with their kernels.

The suite's MAE (`aejax bench --only kinds`: patch 7 on Fashion-MNIST, patch 4 on digits, width 64,
depth 2, 4 heads; the light decoder 32 wide, one block; mask ratio 0.75; batch 128). Each piece is
one jitted program, compiled first; its row gives the median time of `--repeats` calls of `--calls`
back-to-back runs (pieces are interleaved per repeat, so they see the same load) and what the
optimized HLO holds: fusions (XLA's fused kernels), sorts, gathers, scatters and dots outside fusions
counted by `aejax.bench.steps.hlo_counts`. The last row is the bare scan of the whole step
(`aejax.train.benchmark.make_bare_scan`, as the suite times it), in steps/s.

    python scripts/profile_mae_step.py [--quick] [--batch 128] [--repeats 5] [--json mae_profile.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

from aejax.bench.steps import batch_indices, hlo_counts
from aejax.bench.suite import pick_dataset, reference_config
from aejax.train.benchmark import make_bare_scan
from aejax.train.setup import setup_run


def pieces(run, batch):
    """name -> (jitted function, args): the step's parts, from the masks to the optimizer."""
    model, params, key = run.model, run.init_state()["params"], jax.random.key(3)
    x = batch["x"]
    keep = model.keep_indices(key, x.shape[0])
    tokens = jax.jit(lambda p, x, k: model.encoder.apply({"params": p["encoder"]}, x, None, k))(params, x, keep)
    loss = lambda p, b, k: model.loss(p, b, k, run.hp)[0]  # noqa: E731
    return {
        "masks (noise, sort)": (jax.jit(lambda k: model.keep_indices(k, x.shape[0])), (key,)),
        "encoder forward (visible patches)": (
            jax.jit(lambda p, x, k: model.encoder.apply({"params": p["encoder"]}, x, None, k)), (params, x, keep)),
        "decoder forward (all patches)": (
            jax.jit(lambda p, t, k: model.decoder.apply({"params": p["decoder"]}, t, k)), (params, tokens, keep)),
        "loss forward": (jax.jit(loss), (params, batch, key)),
        "loss forward + backward": (jax.jit(jax.value_and_grad(loss)), (params, batch, key)),
        "whole step (with Adam)": (jax.jit(run.train_step()), (run.init_state(), batch, key, run.hp)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="digits, fewer calls")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="back-to-back calls per timed repeat")
    parser.add_argument("--scan-steps", type=int, default=40)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    dataset, note = pick_dataset(args.data_dir, args.quick)
    run = setup_run(reference_config(dataset, kind="mae", net="transformer", batch_size=args.batch,
                                     data_dir=args.data_dir))
    batch = {"x": jnp.asarray(run.dataset.train.x[:args.batch]), "y": jnp.asarray(run.dataset.train.y[:args.batch])}
    compiled, rows = {}, {}
    for name, (fn, fargs) in pieces(run, batch).items():
        c = fn.lower(*fargs).compile()
        jax.block_until_ready(c(*fargs))
        compiled[name] = (c, fargs)
        rows[name] = {"piece": name, **hlo_counts(c.as_text()), "ms": []}
    bare, idx = make_bare_scan(run), batch_indices(run, args.scan_steps)
    state = run.init_state()
    scan = bare.lower(state, idx).compile()
    state, out = scan(state, idx)
    jax.block_until_ready(out)
    scan_row = {"piece": f"bare scan of the step ({args.scan_steps} steps per call)",
                **hlo_counts(scan.as_text(), loop_body=True),
                "steps_per_s": []}
    calls = max(1, args.calls // 4) if args.quick else args.calls
    for _ in range(args.repeats):
        for name, (c, fargs) in compiled.items():
            start = time.perf_counter()
            for _ in range(calls):
                out = c(*fargs)
            jax.block_until_ready(out)
            rows[name]["ms"].append((time.perf_counter() - start) / calls * 1e3)
        start = time.perf_counter()
        state, out = scan(state, idx)
        jax.block_until_ready((state, out))
        scan_row["steps_per_s"].append(args.scan_steps / (time.perf_counter() - start))
    for row in rows.values():
        row["ms"] = statistics.median(row["ms"])
    scan_row["steps_per_s"] = statistics.median(scan_row["steps_per_s"])
    print(f"MAE step pieces: {dataset}{' (' + note + ')' if note else ''}, batch {args.batch}, "
          f"{jax.devices()[0].device_kind}, jax {jax.__version__}; median of {args.repeats} repeats\n")
    print("| piece | ms | fusions | sort | gather | scatter | dot (unfused) | copy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows.values():
        print(f"| {r['piece']} | {r['ms']:.3f} | {r['fusion']} | {r['sort']} | {r['gather']} | {r['scatter']} | "
              f"{r['dot']} | {r['copy']} |")
    print(f"| {scan_row['piece']} | {1e3 / scan_row['steps_per_s']:.3f} per step ({scan_row['steps_per_s']:.1f} "
          f"steps/s) | {scan_row['fusion']} | {scan_row['sort']} | {scan_row['gather']} | {scan_row['scatter']} | "
          f"{scan_row['dot']} | {scan_row['copy']} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"dataset": dataset, "batch": args.batch, "device": jax.devices()[0].device_kind,
                       "pieces": list(rows.values()), "scan": scan_row}, f, indent=2)


if __name__ == "__main__":
    main()
