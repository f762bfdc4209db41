"""Our training loop (fit) against a bare lax.scan of the same step, measured in one run.

    python scripts/bench_loop.py [--experiment fmnist_mlp_ae] [--epochs 6] [--json FILE]

The loop section of the benchmark suite (`aejax bench --only loop`): both throughputs
(steps/s) and their ratio; the loop is meant to stay within 10% of the bare scan.
"""

import sys

from aejax.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--only", "loop", *sys.argv[1:]]))
