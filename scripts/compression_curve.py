"""Test MSE and PSNR against code size, autoencoder beside PCA, from a sweep over model.code_size.

Usage:
    aejax sweep experiments/fmnist_mlp_ae.py --grid model.code_size=2,4,8,16,32,64 --workdir sweeps/compression
    python scripts/compression_curve.py sweeps/compression [--figures docs/figures] [--force]

Runs `aejax eval RUN --task compression` on every DIR/runs/*/ without eval_compression.json (all
with --force), prints a Markdown table (code size, AE and PCA test MSE and PSNR, PSNR at 4 and 8
bits per code dimension), writes it to DIR/compression_table.md and draws
compression_curve.png (MSE against code size) and rate_distortion.png (PSNR against bits per
image, every code size) into --figures (default DIR).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--figures", default=None, help="where the two figures go (default: the sweep directory)")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aejax.evaluate import evaluate_workdir
    from aejax.evaluate.compression import rate_distortion_figure

    runs = sorted(d for d in glob.glob(os.path.join(args.sweep_dir, "runs", "*")) if os.path.isdir(d))
    if not runs:
        print(f"no runs under {args.sweep_dir}/runs; train them with `aejax sweep`.", file=sys.stderr)
        return 2
    results = []
    for run in runs:
        path = os.path.join(run, "eval_compression.json")
        t = time.time()
        if args.force or not os.path.isfile(path):
            evaluate_workdir(run, "compression")
            print(f"evaluated {run} in {time.time() - t:.1f} s", file=sys.stderr)
        with open(path, encoding="utf-8") as f:
            results.append(json.load(f))
    results.sort(key=lambda r: r["code_size"])
    q = lambda r, b: next((row["psnr"] for row in r["rate_distortion"] if row["bits"] == b), float("nan"))
    lines = ["| code size | AE test MSE | PCA test MSE | AE PSNR (dB) | PCA PSNR (dB) | AE below PCA | "
             "AE PSNR at 4 bits/dim | AE PSNR at 8 bits/dim |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['code_size']} | {r['test/mse']:.5f} | {r['test/pca_mse']:.5f} | {r['test/psnr']:.2f} | "
                     f"{r['test/pca_psnr']:.2f} | {'yes' if r['test/mse'] < r['test/pca_mse'] else 'no'} | "
                     f"{q(r, 4):.2f} | {q(r, 8):.2f} |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(args.sweep_dir, "compression_table.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    out = args.figures or args.sweep_dir
    os.makedirs(out, exist_ok=True)
    sizes = [r["code_size"] for r in results]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(sizes, [r["test/mse"] for r in results], "o-", label="autoencoder (MLP)")
    ax.plot(sizes, [r["test/pca_mse"] for r in results], "s--", label="PCA")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("code size K")
    ax.set_ylabel("test MSE per pixel")
    ax.set_title("reconstruction error against code size")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "compression_curve.png"), dpi=100)
    plt.close(fig)
    rate_distortion_figure({r["code_size"]: r["rate_distortion"] for r in results},
                           os.path.join(out, "rate_distortion.png"))
    print(f"figures: {out}/compression_curve.png, {out}/rate_distortion.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
