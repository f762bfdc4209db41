"""Training from host memory against training from the device, side by side in one run.

Both sides are the same run (one `setup_run` each, sharing the loaded dataset): the on-device feed
gathers each batch from the split on the device; the host feed (`data.on_device=False`) gathers
`chunk_steps` batches on the host in the same order, transfers them and scans the same step over
them, double-buffered (`aejax.train.feed`). Epochs alternate between the two sides (interleaved
repeats, so a change in the machine's load hits both) and each epoch ends with its metrics on the
host, as in `fit`. Prints steps/s per side (medians over repeats), the ratio host/device, whether
the two trained the same parameters bitwise, and the machine's load. On a shared machine the wall
clock swings with the other jobs; the process CPU seconds per epoch (all threads) measure the work
each feed does and are printed beside it.

Command:
    python scripts/bench_streaming.py                      # 784-512-256-32 GELU MLP on Fashion-MNIST, batch 128
    python scripts/bench_streaming.py --experiment digits_ae --repeats 3   # quick check
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import numpy as np

from aejax.config import get_experiment_config
from aejax.train.feed import DeviceEpochs, HostStream, chunk_steps_for, epoch_metrics
from aejax.train.population import Population
from aejax.train.setup import RunSetup, setup_run
from aejax.train.step import make_split_sums


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def make_feed(run: RunSetup, pop: Population):
    """The feed the loop gives a run alone: the split on the device, or streamed from host memory."""
    train, opts = run.dataset.train, run.train
    common = dict(data_key=pop.keys["data"], loop_key=pop.keys["loop"], batch_size=opts.batch_size,
                  program=pop.program)
    if run.streams:
        example_bytes = 4 * int(np.prod(run.dataset.input_shape))
        chunk = chunk_steps_for(run.feed.stream_chunk_steps, example_bytes=example_bytes,
                                batch_size=opts.batch_size, steps_per_epoch=run.steps_per_epoch, members=1)
        return HostStream(run.train_step(), train.x, train.y, pop.hp, chunk_steps=chunk, **common)
    val = (pop.shared(run.dataset.val.x), pop.shared(run.dataset.val.y))
    return DeviceEpochs(run.train_step(), pop.shared(train.x), pop.shared(train.y), pop.hp, **common,
                        eval_key=pop.keys["eval"], val=val, capacity=1,
                        split_sums=make_split_sums(run.model, batch_size=opts.eval_batch_size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="fmnist_mlp_ae")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--chunk-steps", type=int, default=0, help="batches per streamed chunk (0: about 64 MiB)")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per side, alternating")
    args = parser.parse_args()

    common = {"train.batch_size": args.batch_size, "train.epochs": args.repeats + 1, "train.progress": False}
    device_cfg = get_experiment_config(args.experiment, {**common, "data.on_device": True})
    device_run = setup_run(device_cfg)
    host_run = setup_run(get_experiment_config(args.experiment, {**common, "data.on_device": False,
                                                                 "data.stream_chunk_steps": args.chunk_steps}),
                         dataset=device_run.dataset)
    assert not device_run.streams and host_run.streams
    sides = {"device": device_run, "host": host_run}
    keys = lambda run: {k: getattr(run.keys, k) for k in ("data", "loop", "eval")}
    pops = {name: Population([run.init_state()], [run.hp], [keys(run)], vmapped=False) for name, run in sides.items()}
    feeds = {name: make_feed(run, pops[name]) for name, run in sides.items()}
    states = {name: pop.state for name, pop in pops.items()}
    steps = device_run.steps_per_epoch

    def epoch(name: str, e: int) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) of one epoch."""
        start, cpu = time.perf_counter(), time.process_time()
        states[name], parts, _ = feeds[name](states[name], range(e, e + 1), [False])
        epoch_metrics(pops[name].fetch(list(parts)), 1, steps)  # the epoch's metrics on the host, as the loop does
        return time.perf_counter() - start, time.process_time() - cpu

    load_before = load()
    compile_s = {name: epoch(name, 0)[0] for name in sides}  # epoch 0 compiles
    times: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    for e in range(1, args.repeats + 1):
        for name in (("device", "host") if e % 2 else ("host", "device")):
            wall, used = epoch(name, e)
            times[name].append(wall)
            cpu[name].append(used)
    rates = {name: steps / statistics.median(t) for name, t in times.items()}
    cpu_per_epoch = {name: statistics.median(c) for name, c in cpu.items()}
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(jax.device_get(states["device"])),
                                                     jax.tree_util.tree_leaves(jax.device_get(states["host"]))))

    print(f"# streaming from host against on-device: {args.experiment}, batch {args.batch_size}, "
          f"{steps} steps/epoch, chunk {feeds['host'].chunk_steps} steps")
    print(f"device: {jax.devices()[0].device_kind} ({cpu_name()}, {os.cpu_count()} cores); jax {jax.__version__}; "
          f"load average before {load_before}, after {load()}")
    print(f"\n| feed | first epoch (compile) s | steps/s (median of {args.repeats}) | examples/s | CPU s/epoch |")
    print("|---|---:|---:|---:|---:|")
    for name in sides:
        print(f"| {name} | {compile_s[name]:.2f} | {rates[name]:.0f} | {rates[name] * args.batch_size:.0f} | "
              f"{cpu_per_epoch[name]:.2f} |")
    print(f"\nhost / device steps/s: {rates['host'] / rates['device']:.3f}; "
          f"CPU seconds per epoch host / device: {cpu_per_epoch['host'] / cpu_per_epoch['device']:.3f}")
    print(f"every epoch's times (s): device {[round(t, 3) for t in times['device']]}, "
          f"host {[round(t, 3) for t in times['host']]}")
    print(f"same parameters bitwise after {args.repeats + 1} epochs: {same}")


if __name__ == "__main__":
    main()
