"""The benchmark suite: the same code and options as `aejax bench` (see `aejax.bench.suite`).

    python scripts/bench.py [--only loop,kinds,nets,contractive,sweep,torch] [--repeats 3] [--quick]
                            [--json FILE]

Prints markdown tables on stdout (progress on stderr) and, with --json, every figure's median
with the device name, CPU model and cores, and the jax/flax/optax/torch versions.
"""

import sys

from aejax.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
