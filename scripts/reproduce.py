"""Runs the README's headline experiments and evaluations and rewrites its results table from their outputs.

    python scripts/reproduce.py                      # every row (hours on a 2-core CPU; minutes on a GPU)
    python scripts/reproduce.py --quick              # the rows that take minutes on a CPU
    python scripts/reproduce.py --only digits_ae,breast_cancer
    python scripts/reproduce.py --list               # the rows, their commands and whether --quick runs them
    python scripts/reproduce.py --only digits_ae --no-run   # rewrite rows from outputs already in --root

Each row of the README's "## Results" table is one entry below: the shell commands that produce it
(exactly what the row's command cell shows; run in order from `--root`, default `reproduce/`, so
`runs/...` and `sweeps/...` land there) and a function that formats the result cell from the JSON
those commands write (summary.json, eval_TASK.json, a script's --json). The last cell is the
device the run used and the wall time the commands took, measured here. A row is replaced where
its first cell matches the entry's label and appended to the table otherwise; rows of entries not
run are left as they are. Before an entry runs, the directories it writes are deleted, so a
stale or half-finished run is never reused (`--no-run` reuses them on purpose).

The README's speed figures are not here: they are measured side by side by `aejax bench`
(`scripts/bench.py`), recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMINGS = "reproduce_timings.json"


def load(root: Path, path: str) -> dict:
    with open(root / path, encoding="utf-8") as f:
        return json.load(f)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One README results row: its label (first cell), the commands that produce it, the result cell."""

    key: str
    label: str
    commands: tuple[str, ...]
    result: Callable[[Path], str]
    outputs: tuple[str, ...]  # directories and files (relative to the root) the commands write
    quick: bool = False  # minutes on a 2-core CPU


def _reconstruction(summary: str, evaluation: str, k: int) -> Callable[[Path], str]:
    def cell(root: Path) -> str:
        s, e = load(root, summary), load(root, evaluation)
        return f"test MSE {s['test/mse']:.5f} (PCA-{k}: {e[f'test/pca{k}_mse']:.5f})"
    return cell


def _pca(root: Path) -> str:
    rows = load(root, "pca.json")["rows"]
    return ", ".join(f"{r['components']} components {r['test_mse']:.5f}" for r in rows)


def _denoising(root: Path) -> str:
    e = load(root, "runs/fmnist_denoising/eval_denoising.json")
    return (f"**test PSNR {e['test/psnr']:.2f} dB**, SSIM {e['test/ssim']:.3f} "
            f"(noisy input {e['test/input_psnr']:.1f} dB)")


def _sparse_kl(root: Path) -> str:
    e = load(root, "runs/fmnist_sparse/eval_sparsity.json")
    return (f"test mean activation {e['test/mean_activation']:.4f} (target rho {e['rho']:g}); "
            f"L0 {e['test/l0']:.1f} of 128 units per code; dead-unit fraction {e['test/dead_fraction']:.3f}")


def _topk(root: Path) -> str:
    e = load(root, "runs/fmnist_sparse_topk/eval_sparsity.json")
    exact = "exactly" if e["test/l0_min"] == e["test/l0_max"] else "between"
    count = f"{e['test/l0_min']}" if exact == "exactly" else f"{e['test/l0_min']} and {e['test/l0_max']}"
    return f"{exact} {count} nonzeros per test code; dead-unit fraction {e['test/dead_fraction']:.3f}"


def _contractive(root: Path) -> str:
    s = load(root, "runs/fmnist_contractive/summary.json")
    return f"test MSE {s['test/mse']:.4f}, mean ‖J‖²_F {s['test/jacobian_fro2']:.1f}"


def _vae(root: Path) -> str:
    e = load(root, "runs/fmnist_vae/eval_likelihood.json")
    k = e["num_samples"]
    return (f"**test NLL (IWAE, k = {k}) {e[f'test/nll_iwae{k}']:.2f} nats** "
            f"({e[f'test/bits_per_dim_iwae{k}']:.3f} bits/dim), ELBO {e['test/elbo']:.1f} (a Bernoulli likelihood of grey "
            "levels: a cross-entropy, not comparable with published NLLs; see docs/generative.md)")


def _cvae(root: Path) -> str:
    e = load(root, "runs/fmnist_cvae/eval_generation.json")
    return (f"{100 * e['test/conditional_sample_accuracy']:.1f}% of conditional samples classified as the requested "
            f"class (real test images: {100 * e['test/classifier_accuracy_on_real']:.1f}%)")


def _aae_mixture(root: Path) -> str:
    e = load(root, "runs/fmnist_aae/eval_generation.json")
    return (f"{100 * e['test/code_component_accuracy']:.1f}% of test codes nearest their class's component "
            "(first 5000 test images); class clusters in `code_map.png`")


def _aae_gaussian(root: Path) -> str:
    e = load(root, "runs/fmnist_aae_gaussian/eval_generation.json")
    return (f"test codes' mean within {e['test/code_mean_max_abs_err']:.3f}, covariance within "
            f"{e['test/code_cov_max_abs_err']:.3f} of N(0, I)")


def _oneclass(root: Path) -> str:
    t = load(root, "sweeps/fmnist_oneclass/oneclass_table.json")["mean"]
    return (f"**mean AUROC {t['autoencoder']:.3f}** (PCA error {t['PCA recon.']:.3f}, smoothed "
            f"{t['PCA recon. smoothed']:.3f}; Isolation Forest "
            f"{t['Isolation Forest']:.3f}, one-class SVM {t['one-class SVM']:.3f}); per-class table in "
            "[docs/evaluation.md](docs/evaluation.md)")


def _breast_cancer(root: Path) -> str:
    e = load(root, "runs/breast_cancer_oneclass/eval_anomaly.json")
    return (f"AUROC: AE {e['test/auroc']:.3f} ({e['score']}), PCA {e['test/pca_auroc']:.3f}, Isolation Forest "
            f"{e['test/isolation_forest_auroc']:.3f}, one-class SVM {e['test/ocsvm_auroc']:.3f}")


def _compression(root: Path) -> str:
    parts = []
    for k in (2, 16, 64):
        e = load(root, f"sweeps/compression/runs/code_size={k}/eval_compression.json")
        parts.append(f"K={k} {e['test/mse']:.4f} vs {e['test/pca_mse']:.4f}")
    below = all(load(root, f"sweeps/compression/runs/code_size={k}/eval_compression.json")["test/mse"]
                < load(root, f"sweeps/compression/runs/code_size={k}/eval_compression.json")["test/pca_mse"]
                for k in (2, 4, 8, 16, 32, 64))
    return ("test MSE below PCA's at every size" if below else "test MSE NOT below PCA's at every size") + \
        ": " + ", ".join(parts)


def _representation(root: Path) -> str:
    e = load(root, "sweeps/compression/runs/code_size=32/eval_representation.json")
    return (f"linear probe on the codes **{100 * e['test/codes_probe_accuracy']:.1f}%** vs PCA-32 "
            f"{100 * e['test/pca_probe_accuracy']:.1f}%, raw pixels {100 * e['test/raw_probe_accuracy']:.1f}%; "
            f"5-NN {100 * e['test/codes_knn_accuracy']:.1f}% vs {100 * e['test/pca_knn_accuracy']:.1f}%, "
            f"{100 * e['test/raw_knn_accuracy']:.1f}%")


def _inpainting(root: Path) -> str:
    e = load(root, "runs/fmnist_inpainting/eval_inpainting.json")
    return (f"masked-region PSNR, centre 8x8 holes **{e['test/centre8/psnr']:.2f} dB** vs mean filling "
            f"{e['test/centre8/mean_fill_psnr']:.2f} (hole left at 0: {e['test/centre8/input_psnr']:.2f}); random 8x8 "
            f"**{e['test/random8/psnr']:.2f}** vs {e['test/random8/mean_fill_psnr']:.2f}; 14x14 holes "
            f"{e['test/centre14/psnr']:.2f} / {e['test/random14/psnr']:.2f} vs {e['test/centre14/mean_fill_psnr']:.2f} / "
            f"{e['test/random14/mean_fill_psnr']:.2f}")


def _mae(root: Path) -> str:
    e = load(root, "runs/fmnist_mae/eval_mae.json")
    return (f"**masked-patch PSNR {e['test/random_psnr']:.2f} dB** (random masks; training-mean filling "
            f"{e['test/random_train_mean_psnr']:.2f} dB, visible-mean filling {e['test/random_visible_mean_psnr']:.2f} dB); "
            f"linear probe {100 * e['probe/mae_acc']:.1f}% (raw pixels {100 * e['probe/pixels_acc']:.1f}%, "
            f"PCA-64 {100 * e['probe/pca64_acc']:.1f}%)")


def _transformer(root: Path) -> str:
    s = load(root, "runs/fmnist_transformer_ae/summary.json")
    e = load(root, "runs/fmnist_transformer_ae/eval_reconstruction.json")
    return f"test MSE {s['test/mse']:.5f} (PCA-32: {e['test/pca32_mse']:.5f})"


def _audio(root: Path) -> str:
    e = load(root, "runs/audio_denoising/eval_denoising.json")
    return (f"**SNR improvement {e['test/snr_improvement']:.2f} dB** ({e['test/snr_in']:.2f} dB in, "
            f"{e['test/snr_out']:.2f} dB out; {e['test/pink_snr@0/snr_improvement']:.2f} dB on unseen pink noise); grid and "
            "waveforms in [docs/audio_and_colour.md](docs/audio_and_colour.md)")


def _colour(root: Path) -> str:
    e = load(root, "runs/colour_colorization/eval_colorization.json")
    return (f"**PSNR RGB {e['test/psnr_rgb']:.2f} dB, chroma {e['test/psnr_chroma']:.2f} dB** vs grayscale copy "
            f"{e['test/gray_psnr_rgb']:.2f} / {e['test/gray_psnr_chroma']:.2f} and mean chroma "
            f"{e['test/mean_chroma_psnr_rgb']:.2f} / {e['test/mean_chroma_psnr_chroma']:.2f} ({e['num_examples']} held-out patches)")


def _mnist1d_ae(root: Path) -> str:
    s, e = load(root, "runs/mnist1d_ae/summary.json"), load(root, "runs/mnist1d_ae/eval_reconstruction.json")
    return (f"**test MSE {s['test/mse']:.6f}** vs PCA-8 {e['test/pca8_mse']:.6f} (stored units 0.5 + z/8; "
            "[docs/sequences.md](docs/sequences.md))")


def _mnist1d_vae(root: Path) -> str:
    s = load(root, "runs/mnist1d_vae/summary.json")
    return (f"test ELBO {s['test/elbo']:.2f} nats per sequence, MSE {s['test/mse']:.5f}; prior samples drawn as lines "
            "in [docs/sequences.md](docs/sequences.md)")


def _series(root: Path) -> str:
    e = load(root, "runs/series_anomaly/eval_anomaly.json")
    score = e["score"]
    kinds = ", ".join(f"{e[f'test/{score}_auroc_class{c}']:.3f}" for c in (1, 2, 3))
    return (f"**AUROC {e['test/auroc']:.3f}** per window (spikes, level shifts, frequency changes: {kinds}); "
            f"PCA-8 {e['test/pca_auroc']:.3f}, one-class SVM {e['test/ocsvm_auroc']:.3f}, Isolation Forest "
            f"{e['test/isolation_forest_auroc']:.3f}, rolling z-score {e['test/rolling_zscore_auroc']:.3f}")


def train_eval(experiment: str, task: str | None = None, *options: str, workdir: str | None = None,
               train_args: str = "") -> tuple[str, ...]:
    """`aejax train EXPERIMENT [--workdir W]` then, optionally, `aejax eval W --task TASK [--option ...]`."""
    name = experiment.split(":")[0]
    workdir_flag = f" --workdir {workdir}" if workdir else ""
    run = workdir or f"runs/{name}"
    commands = [f"aejax train {experiment}{workdir_flag}{train_args}"]
    if task:
        commands.append(f"aejax eval {run} --task {task}" + "".join(f" --option {o}" for o in options))
    return tuple(commands)


ENTRIES = (
    Entry("digits_ae", "digits, MLP AE, code 16", train_eval("digits_ae", "reconstruction"),
          _reconstruction("runs/digits_ae/summary.json", "runs/digits_ae/eval_reconstruction.json", 16),
          ("runs/digits_ae",), quick=True),
    Entry("fmnist_ae", "Fashion-MNIST, conv AE, code 32", train_eval("fmnist_ae", "reconstruction"),
          _reconstruction("runs/fmnist_ae/summary.json", "runs/fmnist_ae/eval_reconstruction.json", 32),
          ("runs/fmnist_ae",)),
    Entry("fmnist_mlp_ae", "Fashion-MNIST, 784-512-256-32 MLP AE", train_eval("fmnist_mlp_ae", "reconstruction"),
          _reconstruction("runs/fmnist_mlp_ae/summary.json", "runs/fmnist_mlp_ae/eval_reconstruction.json", 32),
          ("runs/fmnist_mlp_ae",), quick=True),
    Entry("pca", "Fashion-MNIST, PCA", ("python scripts/pca_baseline.py --components 32 64 --json pca.json",), _pca, ("pca.json",), quick=True),
    Entry("fmnist_denoising", "denoising, Fashion-MNIST, conv, Gaussian sigma 0.2",
          train_eval("fmnist_denoising", "denoising"), _denoising, ("runs/fmnist_denoising",)),
    Entry("fmnist_sparse", "sparse KL, Fashion-MNIST, rho 0.05", train_eval("fmnist_sparse", "sparsity"),
          _sparse_kl, ("runs/fmnist_sparse",)),
    Entry("fmnist_sparse_topk", "top-k, Fashion-MNIST, k 16 of 128",
          train_eval("fmnist_sparse:topk", "sparsity", workdir="runs/fmnist_sparse_topk"), _topk,
          ("runs/fmnist_sparse_topk",)),
    Entry("fmnist_contractive", "contractive, Fashion-MNIST, lambda 0.1", train_eval("fmnist_contractive"),
          _contractive, ("runs/fmnist_contractive",)),
    Entry("fmnist_vae", "VAE, Fashion-MNIST, MLP, Bernoulli, code 16",
          train_eval("fmnist_vae", "likelihood", "num_samples=1000"), _vae, ("runs/fmnist_vae",)),
    Entry("fmnist_cvae", "CVAE, Fashion-MNIST", train_eval("fmnist_vae:cvae", "generation", workdir="runs/fmnist_cvae"),
          _cvae, ("runs/fmnist_cvae",)),
    Entry("fmnist_aae", "AAE, 2-D, 10-Gaussian mixture prior", train_eval("fmnist_aae", "generation"), _aae_mixture,
          ("runs/fmnist_aae",)),
    Entry("fmnist_aae_gaussian", "AAE, 2-D Gaussian prior",
          train_eval("fmnist_aae", "generation", workdir="runs/fmnist_aae_gaussian",
                     train_args=" --set model.prior=gaussian --set model.label_prior=False --set model.code_size=2"),
          _aae_gaussian, ("runs/fmnist_aae_gaussian",)),
    Entry("fmnist_oneclass", "one-class anomaly, Fashion-MNIST (10 classes, 784-512-256-32 MLP AE, smoothed reconstruction error)",
          ("aejax sweep fmnist_oneclass --workdir sweeps/fmnist_oneclass",
           "python scripts/oneclass_table.py sweeps/fmnist_oneclass --score smoothed_mse"),
          _oneclass, ("sweeps/fmnist_oneclass",)),
    Entry("breast_cancer", "one-class anomaly, breast cancer (benign normal)",
          train_eval("breast_cancer_oneclass", "anomaly"), _breast_cancer, ("runs/breast_cancer_oneclass",), quick=True),
    Entry("compression", "compression, Fashion-MNIST MLP AE, code 2..64 (10 epochs each)",
          ("aejax sweep fmnist_mlp_ae --grid model.code_size=2,4,8,16,32,64 --set train.epochs=10 --workdir sweeps/compression",
           "python scripts/compression_curve.py sweeps/compression"),
          _compression, ("sweeps/compression",)),
    Entry("representation", "representation, Fashion-MNIST MLP AE code 32 (10 epochs, from the compression sweep)",
          ("aejax eval sweeps/compression/runs/code_size=32 --task representation",), _representation, ()),
    Entry("fmnist_inpainting", "inpainting, Fashion-MNIST, DAE trained on random square holes (`block` corruption, "
          "sides 1-14)", train_eval("fmnist_inpainting", "inpainting"), _inpainting, ("runs/fmnist_inpainting",),
          quick=True),
    Entry("fmnist_mae", "MAE, Fashion-MNIST, 7x7 patches, 75% masked, ViT width 64, 2 blocks",
          train_eval("fmnist_mae", "mae"), _mae, ("runs/fmnist_mae",)),
    Entry("fmnist_transformer_ae", "transformer AE, Fashion-MNIST, 7x7 patches, width 64, 1 block, code 32",
          train_eval("fmnist_transformer_ae", "reconstruction"), _transformer, ("runs/fmnist_transformer_ae",)),
    Entry("audio_denoising", 'audio denoising, synthetic 8 kHz frames (256 samples), 256-1024-512-128 MLP, white noise at 0 dB',
          train_eval("audio_denoising", "denoising"), _audio, ("runs/audio_denoising",), quick=True),
    Entry("colour_colorization", "colorization, 8x8 patches of scikit-learn's sample photographs, 192-512-192 MLP on gray input",
          train_eval("colour_colorization", "colorization"), _colour, ("runs/colour_colorization",), quick=True),
    Entry("mnist1d_ae", 'MNIST-1D (generated locally, Greydanus 2020), GRU sequence AE (bidirectional encoder, 128 units), code 8',
          train_eval("mnist1d_ae", "reconstruction"), _mnist1d_ae, ("runs/mnist1d_ae",)),
    Entry("mnist1d_vae", 'MNIST-1D sequence VAE, conv1d, Gaussian likelihood, code 8',
          train_eval("mnist1d_vae", "generation"), _mnist1d_vae, ("runs/mnist1d_vae",)),
    Entry("series_anomaly", 'time-series anomalies (planted spikes, level shifts, frequency changes), conv1d AE on clean windows',
          train_eval("series_anomaly", "anomaly", "per_class=True"), _series, ("runs/series_anomaly",), quick=True),
)


def device_name() -> str:
    import jax

    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    return f"{d.device_kind} x{jax.device_count()}" if jax.device_count() > 1 else d.device_kind


def executable(command: str) -> list[str]:
    """argv of a command as the README shows it: `python scripts/X` is this interpreter on the repository's script."""
    argv = shlex.split(command)
    if argv[:1] == ["python"] and argv[1].startswith("scripts/"):
        argv = [sys.executable, str(REPO / argv[1]), *argv[2:]]
    return argv


def run_entry(entry: Entry, root: Path, env: dict) -> dict | None:
    """Runs an entry's commands from `root` -> {"seconds", "load"}, or None (said on stderr) when one fails."""
    for out in entry.outputs:
        target = root / out
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    start, load = time.perf_counter(), os.getloadavg()[0]
    for command in entry.commands:
        print(f"[{entry.key}] $ {command}", flush=True)
        done = subprocess.run(executable(command), check=False, cwd=root, env=env)
        if done.returncode != 0:
            print(f"[{entry.key}] `{command}` exited with {done.returncode}; its README row is left as it was.",
                  file=sys.stderr, flush=True)
            return None
        load = max(load, os.getloadavg()[0])
    return {"seconds": time.perf_counter() - start, "load": load}


def row(entry: Entry, root: Path, measured: dict, device: str) -> str:
    """The README row: label, result (from the outputs), commands, device and time (with the load when shared)."""
    command = " then ".join(f"`{c}`" for c in entry.commands)
    device = measured.get("device", device)
    if measured.get("load", 0) > (os.cpu_count() or 1):  # other work shared the CPU: the time is not the run's own
        device = f"{device}, shared (load {measured['load']:.1f})"
    when = f"{device}, {measured['seconds']:.0f} s" if "seconds" in measured else device
    return f"| {entry.label} | {entry.result(root)} | {command} | {when} |"


def rewrite_results_table(readme: str, rows: dict[str, str]) -> str:
    """`readme` with the rows whose first cell is a key of `rows` replaced (new ones appended to the table)."""
    lines = readme.split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "## Results")
    except StopIteration:
        raise SystemExit("README.md has no '## Results' section; nothing to rewrite.") from None
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    last = first
    while last + 1 < len(lines) and lines[last + 1].startswith("|"):
        last += 1
    pending = dict(rows)
    for i in range(first + 2, last + 1):
        label = lines[i].split("|")[1].strip()
        if label in pending:
            lines[i] = pending.pop(label)
    return "\n".join(lines[:last + 1] + list(pending.values()) + lines[last + 1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated entry keys (see --list)")
    parser.add_argument("--quick", action="store_true", help="only the entries that take minutes on a CPU")
    parser.add_argument("--root", default="reproduce", help="directory the commands run in (default reproduce/)")
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    parser.add_argument("--no-run", action="store_true", help="rewrite rows from outputs already under --root")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)

    if args.list:
        for e in ENTRIES:
            print(f"{e.key:<22}{'quick' if e.quick else '':<7}{' then '.join(c for c in e.commands)}")
        return 0
    by_key = {e.key: e for e in ENTRIES}
    keys = [k for k in args.only.split(",") if k] if args.only else [e.key for e in ENTRIES if e.quick or not args.quick]
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        print(f"unknown entries {unknown}; `python scripts/reproduce.py --list` shows them.", file=sys.stderr)
        return 2
    entries = [by_key[k] for k in keys]
    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    timings_path = root / TIMINGS
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    device = device_name()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rows, failed = {}, []
    for entry in entries:
        if not args.no_run:
            measured = run_entry(entry, root, env)
            if measured is None:
                failed.append(entry.key)
                continue
            timings[entry.key] = {**measured, "device": device}
            timings_path.write_text(json.dumps(timings, indent=2))
        rows[entry.label] = row(entry, root, timings.get(entry.key, {}), device)
        print(rows[entry.label], flush=True)
    readme = Path(args.readme)
    readme.write_text(rewrite_results_table(readme.read_text(encoding="utf-8"), rows), encoding="utf-8")
    print(f"rewrote {len(rows)} row(s) of the results table in {readme}")
    if failed:
        print(f"failed, rows left as they were: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
