#!/usr/bin/env bash
# One device check for issue 19 (GPU: reproducible by default, the loop at the step's speed, tensor cores for
# populations), in under 8 minutes on one H100/H200:
#
#   scripts/gpu_check.sh [OUT_DIR] [--quick] [--data-dir DIR] [--budget SECONDS]
#
# OUT_DIR defaults to $OUT, else ./gpu_check_out. Parts, each a separate process under its own time limit
# (a part that fails or runs out of time is reported and the others still run):
#   bench_loop    aejax bench --only loop    fit against the bare scan; the bare scan against the plain flax+optax
#                                            scan (scripts/plain_scan.py); fusions of both steps
#   bench_torch   aejax bench --only torch   torch eager and torch.compile(mode="reduce-overhead") on JAX's device
#   bench_kinds   aejax bench --only kinds   every kind's step at batch 128 (the MAE among them), fusions per step
#   bench_sweep   scripts/bench_sweep.py --runs 16 64 256   vmapped sweep against the same runs one by one
#   bench_sweep_suite  aejax bench --only sweep   vmapped seed groups of 1, 16 and 64 runs
#   mae_profile   scripts/profile_mae_step.py   the MAE step's pieces and their kernels
#   determinism   two identical `aejax train experiments/digits_ae.py` runs in separate workdirs: metrics.jsonl
#                 byte for byte, and each run's test/mse
# Every part writes JSON (and markdown or text) under OUT_DIR; summary.json and summary.md gather them and the
# summary table is printed at the end. Needs only this repository and what a CUDA JAX image has (jax[cuda], flax,
# optax, orbax, chex, ml_collections, scikit-learn, matplotlib, tqdm, tensorboardX); without torch its part says so.
# Without Fashion-MNIST (no network there) every part falls back to scikit-learn's digits and says so; --data-dir
# points at a directory with Fashion-MNIST's IDX files. --quick shortens everything (a smoke test for a CPU).
# Exit status: 0 when every part succeeded, 1 when one failed or ran out of time (the table says which).

set -u
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)

if [ "${1:-}" = "--part-determinism" ]; then  # one part, run under `timeout` by the script itself
  out=$2
  shift 2
  a="$out/determinism/run_a"
  b="$out/determinism/run_b"
  rm -rf "$out/determinism"
  mkdir -p "$out/determinism"
  python -m aejax.cli train experiments/digits_ae.py --workdir "$a" --set train.figures=False "$@" \
    > "$out/determinism/run_a.txt" 2>&1 || { tail -n 20 "$out/determinism/run_a.txt" >&2; exit 1; }
  python -m aejax.cli train experiments/digits_ae.py --workdir "$b" --set train.figures=False "$@" \
    > "$out/determinism/run_b.txt" 2>&1 || { tail -n 20 "$out/determinism/run_b.txt" >&2; exit 1; }
  exec python - "$a" "$b" "$out/determinism.json" <<'EOF'
import filecmp, json, sys
a, b, out = sys.argv[1:4]
summaries = [json.load(open(f"{d}/summary.json")) for d in (a, b)]
config = json.load(open(f"{a}/config.json"))
result = {"metrics_jsonl_identical": filecmp.cmp(f"{a}/metrics.jsonl", f"{b}/metrics.jsonl", shallow=False),
          "summary_json_test_mse": [s.get("test/mse") for s in summaries],
          "train_deterministic": config.get("train", {}).get("deterministic"),
          "summary_device": [next((v for k, v in s.items() if "device" in k), None) for s in summaries]}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(result))
EOF
fi

if [ "${1:-}" = "--part-precision" ]; then  # float32 against bfloat16 compute (and tf32 matmuls): final val/mse
  out=$2
  shift 2
  exec python - "$out/precision.json" "$@" <<'EOF'
import json, sys, tempfile, time
from aejax.data import find_fashion_mnist
from aejax.errors import DatasetNotFoundError
from aejax.sweep import run_sweep
out, rest = sys.argv[1], sys.argv[2:]
quick = "--quick" in rest
try:
    find_fashion_mnist(None)
    experiment = "fmnist_mlp_ae"
except DatasetNotFoundError:
    experiment = "digits_ae"
seeds, epochs = (2, 2) if quick else (4, 20)
base = {"train.epochs": epochs, "train.figures": False, "train.tensorboard": False, "train.checkpoint_every": 1000}
result = {"experiment": experiment, "seeds": seeds, "epochs": epochs}
for name, extra in (("float32", {}), ("bfloat16", {"model.dtype": "bfloat16"}),
                    ("tf32", {"train.matmul_precision": "tf32"})):
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        rows = run_sweep(experiment, workdir, overrides={**base, **extra}, seeds=seeds, progress=False)["rows"]
        result[name] = {"val_mse": [r["val/mse"] for r in rows], "test_mse": [r["test/mse"] for r in rows],
                        "wall_s": time.perf_counter() - start}
    print(name, result[name], flush=True)
for name in ("bfloat16", "tf32"):
    mean = lambda v: sum(v) / len(v)
    result[f"{name}_over_float32_val_mse"] = mean(result[name]["val_mse"]) / mean(result["float32"]["val_mse"])
json.dump(result, open(out, "w"), indent=2)
print(json.dumps({k: v for k, v in result.items() if "over" in k}))
EOF
fi

if [ "${1:-}" = "--part-member" ]; then  # a vmapped sweep member against the same run alone (test/mse, relative)
  out=$2
  shift 2
  exec python - "$out/member_vs_alone.json" <<'EOF'
import json, sys, tempfile
from aejax.config import get_experiment_config
from aejax.sweep import run_sweep
from aejax.train import fit
quiet = {"train.epochs": 6, "train.figures": False, "train.tensorboard": False, "train.progress": False}
with tempfile.TemporaryDirectory() as d:
    rows = run_sweep("digits_ae", f"{d}/sweep", overrides=quiet, seeds=2, progress=False)["rows"]
    alone = fit(get_experiment_config("digits_ae", {**quiet, "seed": 1}), f"{d}/alone")
member = next(r for r in rows if r["run_id"] == "seed=1")
result = {"member_test_mse": member["test/mse"], "alone_test_mse": alone["test/mse"],
          "relative": abs(member["test/mse"] - alone["test/mse"]) / alone["test/mse"]}
json.dump(result, open(sys.argv[1], "w"), indent=2)
print(json.dumps(result))
EOF
fi

QUICK=0
OUT_DIR=""
DATA_DIR=""
BUDGET=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --data-dir) DATA_DIR="$2"; shift ;;
    --data-dir=*) DATA_DIR="${1#*=}" ;;
    --budget) BUDGET="$2"; shift ;;
    -h|--help) sed -n '2,25p' "$SELF"; exit 0 ;;
    *) OUT_DIR="$1" ;;
  esac
  shift
done
OUT_DIR=${OUT_DIR:-${OUT:-./gpu_check_out}}
# seconds for all parts: the whole script stays under 8 minutes on a GPU with the install and the summary; a
# quick run on a (shared) CPU gets longer, and every part's own limit is tripled there
if [ -z "$BUDGET" ]; then BUDGET=$([ "$QUICK" = 1 ] && echo 1500 || echo 460); fi
CAP_SCALE=$([ "$QUICK" = 1 ] && echo 3 || echo 1)
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR=$(cd "$OUT_DIR" && pwd)
START=$(date +%s)
DEADLINE=$((START + BUDGET))
PARTS="$OUT_DIR/parts.tsv"
printf 'part\tstatus\tseconds\tlimit_s\n' > "$PARTS"

echo "gpu_check: output in $OUT_DIR (quick=$QUICK, budget ${BUDGET} s)"
# the package from this checkout, without touching dependencies (no network on the device machine); PYTHONPATH
# serves when the editable install cannot be made
installed=$(cd / && python -c "import aejax, os; print(os.path.dirname(os.path.dirname(aejax.__file__)))" 2>/dev/null)
if [ "$installed" = "$REPO" ]; then
  echo "gpu_check: aejax is already installed from $REPO"
else
  pip install -e . --no-deps --no-build-isolation -q > "$OUT_DIR/pip_install.txt" 2>&1 \
    || echo "gpu_check: pip install -e . failed (see pip_install.txt); using PYTHONPATH=$REPO"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
# wheels carried for packages the image lacks (ml_collections, tensorboardX): .whl/ in the checkout
if ls "$REPO"/.whl/*.whl > /dev/null 2>&1; then
  python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_check_site \
    "$REPO"/.whl/*.whl > "$OUT_DIR/wheels.txt" 2>&1 && export PYTHONPATH="$PYTHONPATH:/tmp/gpu_check_site"
fi
export PYTHONUNBUFFERED=1
if [ -n "$DATA_DIR" ]; then
  export AEJAX_DATA_DIR="$DATA_DIR"
  DATA_ARGS=(--data-dir "$DATA_DIR")
else
  DATA_ARGS=()
fi

python - "$OUT_DIR/environment.json" <<'EOF'
import importlib.util, json, os, sys
import jax
info = {"jax": jax.__version__, "backend": jax.default_backend(), "devices": [d.device_kind for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "cpu_count": os.cpu_count(),
        "torch": importlib.util.find_spec("torch") is not None}
if info["torch"]:
    import torch
    info.update(torch_version=torch.__version__, torch_cuda=torch.cuda.is_available(),
                torch_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
try:
    from aejax.data import find_fashion_mnist
    info["fashion_mnist"] = str(find_fashion_mnist(os.environ.get("AEJAX_DATA_DIR") or None))
except Exception as e:  # noqa: BLE001
    info["fashion_mnist"] = None
    info["fashion_mnist_note"] = f"not found ({type(e).__name__}); every part falls back to scikit-learn's digits"
json.dump(info, open(sys.argv[1], "w"), indent=2)
print("gpu_check: " + ", ".join(f"{k}={v}" for k, v in info.items()))
EOF

# run_part NAME CAP_SECONDS COMMAND...: stdout to NAME.out, stderr to NAME.err, status and seconds to parts.tsv
run_part() {
  local name=$1 cap=$2
  shift 2
  local now left limit t0 rc status
  cap=$((cap * CAP_SCALE))
  now=$(date +%s)
  left=$((DEADLINE - now))
  limit=$(( cap < left ? cap : left ))
  if [ "$limit" -lt 15 ]; then
    printf '%s\tskipped (time budget spent)\t0\t%s\n' "$name" "$limit" >> "$PARTS"
    echo "gpu_check: $name skipped: the time budget is spent"
    return
  fi
  echo "gpu_check: $name (limit ${limit} s): $*"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$OUT_DIR/$name.out" 2> "$OUT_DIR/$name.err"
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status="timed out" ;;
    *) status="failed (exit $rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - t0 ))" "$limit" >> "$PARTS"
  echo "gpu_check: $name $status in $(( $(date +%s) - t0 )) s"
  if [ "$status" != ok ]; then tail -n 5 "$OUT_DIR/$name.err" | sed 's/^/    /'; fi
}

AEJAX=(python -m aejax.cli)
if [ "$QUICK" = 1 ]; then
  BENCH=(bench --quick "${DATA_ARGS[@]}")
  KIND_ARGS=(--batch-sizes 64)
  SUITE_SWEEP=(--sweep-runs 1,4)
  SWEEP_ARGS=(--runs 2 4 --epochs 1 --experiment digits_ae)
  SWEEP_BF16_ARGS=(--runs 4 --epochs 1 --experiment digits_ae)
  PRECISION_ARGS=(--quick)
  MAE_ARGS=(--quick --repeats 2)
  TRAIN_SET=(--set train.epochs=4)
else
  BENCH=(bench --repeats 2 "${DATA_ARGS[@]}")
  KIND_ARGS=(--batch-sizes 128)
  SUITE_SWEEP=(--sweep-runs 1,16,64)
  SWEEP_ARGS=(--runs 16 64 256 --epochs 1)
  SWEEP_BF16_ARGS=(--runs 256 --epochs 1)
  PRECISION_ARGS=()
  MAE_ARGS=(--repeats 5 "${DATA_ARGS[@]}")
  TRAIN_SET=()
fi

# the determinism check first: it is short and its answer does not depend on the others; then by priority
run_part determinism 100 bash "$SELF" --part-determinism "$OUT_DIR" "${TRAIN_SET[@]}"
run_part bench_loop 120 "${AEJAX[@]}" "${BENCH[@]}" --only loop --json "$OUT_DIR/bench_loop.json"
run_part member_vs_alone 60 bash "$SELF" --part-member "$OUT_DIR"
run_part bench_loop_nondet 80 "${AEJAX[@]}" "${BENCH[@]}" --only loop --set train.deterministic=False \
  --json "$OUT_DIR/bench_loop_nondet.json"
run_part bench_sweep 110 python scripts/bench_sweep.py "${SWEEP_ARGS[@]}" --json "$OUT_DIR/bench_sweep.json"
run_part bench_sweep_bf16 60 python scripts/bench_sweep.py "${SWEEP_BF16_ARGS[@]}" --set model.dtype=bfloat16 \
  --json "$OUT_DIR/bench_sweep_bf16.json"
run_part precision 100 bash "$SELF" --part-precision "$OUT_DIR" "${PRECISION_ARGS[@]}"
run_part bench_torch 80 "${AEJAX[@]}" "${BENCH[@]}" --only torch --json "$OUT_DIR/bench_torch.json"
run_part bench_kinds 100 "${AEJAX[@]}" "${BENCH[@]}" --only kinds "${KIND_ARGS[@]}" --json "$OUT_DIR/bench_kinds.json"
run_part mae_profile 40 python scripts/profile_mae_step.py "${MAE_ARGS[@]}" --json "$OUT_DIR/mae_profile.json"

python - "$OUT_DIR" "$(( $(date +%s) - START ))" <<'EOF'
import csv, json, os, sys

out, total = sys.argv[1], int(sys.argv[2])


def load(name):
    try:
        with open(os.path.join(out, name), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def f(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


env = load("environment.json") or {}
parts = list(csv.DictReader(open(os.path.join(out, "parts.tsv"), encoding="utf-8"), delimiter="\t"))
rows = [("device", f"{', '.join(env.get('devices', []))} ({env.get('backend')}), jax {env.get('jax')}, "
                   f"torch {env.get('torch_version', 'not installed')}")]
ran_on = sorted({(j["dataset"], j.get("dataset_note") or "") for j in map(load, (
    "bench_loop.json", "bench_torch.json", "bench_kinds.json", "bench_sweep_suite.json")) if j})
found = f"Fashion-MNIST found at {env['fashion_mnist']}" if env.get("fashion_mnist") else "Fashion-MNIST not found"
rows.append(("data", f"{found}; the bench parts ran on " + "; ".join(
    f"{name}" + (f" ({note})" if note else "") for name, note in ran_on)))
summary = {"environment": env, "parts": parts, "total_s": total}

det = load("determinism.json")
if det:
    mse = det["summary_json_test_mse"]
    rows.append(("determinism: two digits_ae runs, metrics.jsonl identical",
                 f"{'yes' if det['metrics_jsonl_identical'] else 'NO'} (test/mse {mse[0]!r} and {mse[1]!r}; "
                 f"train.deterministic={det.get('train_deterministic')})"))
    summary["determinism"] = det
loop = load("bench_loop.json")
if loop:
    lp = loop["loop"]
    rows.append(("fit / bare scan", f"{f(lp['fit_steps_per_s'])} / {f(lp['bare_scan_steps_per_s'])} steps/s = "
                                    f"{f(lp['fit_over_bare'], '.3f')} ({loop['dataset']}, batch {lp['batch_size']})"))
    pl = lp.get("plain", {})
    if "bare_over_plain" in pl:
        fu = pl["fusions"]
        rows.append(("bare scan / plain flax+optax scan", f"{f(pl['bare_scan_steps_per_s'])} / "
                     f"{f(pl['plain_scan_steps_per_s'])} steps/s = {f(pl['bare_over_plain'], '.3f')}"))
        rows.append(("fusions per step: aejax / plain (jitted step; scan body)",
                     f"{fu['aejax_step']} / {fu['plain_step']}; {fu['aejax_scan_body']} / {fu['plain_scan_body']}"))
    summary["loop"] = {k: v for k, v in lp.items() if not k.endswith("_repeats")}
nondet = load("bench_loop_nondet.json")
if nondet and loop:
    a, b = loop["loop"], nondet["loop"]
    rows.append(("deterministic ops' cost: fit and bare steps/s with / without",
                 f"fit {f(a['fit_steps_per_s'])} / {f(b['fit_steps_per_s'])}; bare {f(a['bare_scan_steps_per_s'])} / "
                 f"{f(b['bare_scan_steps_per_s'])}; fit/bare without {f(b['fit_over_bare'], '.3f')}"))
    summary["loop_nondeterministic"] = {k: v for k, v in b.items() if not k.endswith("_repeats")}
member = load("member_vs_alone.json")
if member:
    rows.append(("a vmapped member against its run alone (digits_ae seed 1, 6 epochs, test/mse)",
                 f"{member['member_test_mse']!r} vs {member['alone_test_mse']!r}: {member['relative']:.2e} relative"))
    summary["member_vs_alone"] = member
torch = load("bench_torch.json")
if torch:
    t = torch["torch"]
    if "torch_steps_per_s" in t:
        rows.append(("torch device = JAX device", f"{'yes' if t.get('torch_on_jax_device') else 'NO'} "
                     f"({t.get('torch_device_name')} / {t.get('jax_device')})"))
        rows.append(("bare scan / jitted Python loop / torch eager", f"{f(t['bare_scan_steps_per_s'])} / "
                     f"{f(t['jit_loop_steps_per_s'])} / {f(t['torch_steps_per_s'])} steps/s; bare = "
                     f"{f(t['bare_scan_over_torch'], '.2f')}x eager"))
        if "torch_compile_steps_per_s" in t:
            rows.append((f"torch.compile ({t['torch_compile_mode']})", f"{f(t['torch_compile_steps_per_s'])} steps/s "
                         f"(warm-up {f(t.get('torch_compile_warm_up_s'))} s); bare = "
                         f"{f(t['bare_scan_over_torch_compile'], '.2f')}x"))
        else:
            rows.append(("torch.compile", t.get("torch_compile_skipped", "not timed")))
    else:
        rows.append(("torch", t.get("torch_skipped", "not timed")))
    summary["torch"] = t
kinds = load("bench_kinds.json")
if kinds:
    rows.append(("kinds (steps/s, fusions per step)", "; ".join(
        f"{r['name']} {f(r['steps_per_s'], '.0f')} ({r.get('step_fusions', '-')})" for r in kinds["kinds"])
        + f" at batch {kinds['kinds'][0]['batch_size']}"))
    summary["kinds"] = kinds["kinds"]
suite_sweep = load("bench_sweep_suite.json")
if suite_sweep:
    rows.append(("suite sweep: runs -> run-steps/s (x one run)", "; ".join(
        f"{r['runs']} -> {f(r['run_steps_per_s'], '.0f')} ({f(r['speedup_over_one_run'], '.2f')}x)"
        for r in suite_sweep["sweep"])))
    summary["suite_sweep"] = suite_sweep["sweep"]
sweep = load("bench_sweep.json")
if sweep:
    rows.append((f"bench_sweep.py ({sweep.get('experiment')}): vmapped vs one by one", "; ".join(
        f"{r['runs']} runs {f(r['speedup'], '.2f')}x" for r in sweep["results"])))
    summary["bench_sweep"] = sweep
bf16 = load("bench_sweep_bf16.json")
if bf16 and sweep:
    f32_seq = {r["runs"]: r["sequential_s"] for r in sweep["results"] if r["what"] == "program"}
    rows.append(("bench_sweep.py bfloat16: vmapped vs one by one (and vs float32 one by one)", "; ".join(
        f"{r['runs']} runs {f(r['speedup'], '.2f')}x"
        + (f" ({f(f32_seq[r['runs']] / r['vmapped_s'], '.2f')}x float32's)" if r["runs"] in f32_seq else "")
        for r in bf16["results"])))
    summary["bench_sweep_bf16"] = bf16
prec = load("precision.json")
if prec:
    rows.append((f"final val/mse vs float32 ({prec['experiment']}, {prec['seeds']} seeds x {prec['epochs']} epochs)",
                 f"bfloat16 {f(prec['bfloat16_over_float32_val_mse'], '.4f')}x, tf32 "
                 f"{f(prec['tf32_over_float32_val_mse'], '.4f')}x"))
    summary["precision"] = prec
mae = load("mae_profile.json")
if mae:
    rows.append(("MAE step (profile_mae_step.py)", f"{f(mae['scan']['steps_per_s'])} steps/s in the bare scan; "
                 f"{mae['scan']['fusion']} fusions, {mae['scan']['scatter']} scatters, {mae['scan']['sort']} sort per step"))
    summary["mae_profile"] = mae
status = "; ".join(f"{p['part']} {p['status']} ({p['seconds']} s)" for p in parts)
rows.append(("parts", status))
rows.append(("total", f"{total} s"))
table = "| check | result |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
open(os.path.join(out, "summary.md"), "w", encoding="utf-8").write(table + "\n")
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2, default=str)
print()
print(table)
EOF

if grep -v '^part' "$PARTS" | cut -f2 | grep -qv '^ok$'; then
  exit 1
fi
exit 0
