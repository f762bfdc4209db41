"""The PyTorch eager reference: the step a user would otherwise write, timed beside aejax's.

An MLP autoencoder with the same widths and activation as aejax's `net="mlp"` undercomplete
model (Linear layers, the activation after every hidden layer, a linear code and linear output
logits), the same initialisation scheme (Flax's `lecun_normal`: a normal truncated at two
standard deviations with variance 1/fan_in, zero biases), the same loss (mean squared error of
sigmoid(logits) against x) and Adam with the same learning rate, one eager step per batch
gathered from a per-epoch permutation. Needs the optional `bench` extra (`pip install
'aejax[bench]'`, the CPU build of torch); `torch_available()` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

TRUNCATED_NORMAL_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2] (Flax's correction)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _autoencoder(widths: Sequence[int], activation: str, seed: int):
    import torch

    acts = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "tanh": torch.nn.Tanh}
    if activation not in acts:
        raise ValueError(f"the torch reference knows the activations {sorted(acts)}, got {activation!r}.")
    generator = torch.Generator().manual_seed(seed)
    layers, code_layer = [], len(widths) // 2 - 1  # widths mirror: in, hidden..., code, hidden..., out
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        linear = torch.nn.Linear(fan_in, fan_out)
        std = math.sqrt(1.0 / fan_in) / TRUNCATED_NORMAL_STD
        with torch.no_grad():
            linear.weight.copy_(torch.nn.init.trunc_normal_(torch.empty(fan_out, fan_in), std=std, a=-2 * std,
                                                            b=2 * std, generator=generator))
            linear.bias.zero_()
        layers.append(linear)
        if i != code_layer and i != len(widths) - 2:
            layers.append(acts[activation]())
    return torch.nn.Sequential(*layers)


def torch_steps_per_s(x_NxD: np.ndarray, *, widths: Sequence[int], activation: str, batch_size: int,
                      learning_rate: float, steps: int, repeats: int, threads: int, seed: int = 0) -> dict[str, Any]:
    """Median steps/s of the eager PyTorch step over `repeats` runs of `steps` steps (after 10 warm-up steps).

    Args:
      x_NxD: the training split, flattened, float32 in [0, 1].
      widths: layer widths, input first (e.g. (784, 512, 32, 512, 784)).
      threads: `torch.set_num_threads` (use the core count XLA uses).
    """
    import torch

    if x_NxD.ndim != 2 or x_NxD.shape[1] != widths[0]:
        raise ValueError(f"x must be [N, {widths[0]}] for widths {tuple(widths)}, got {x_NxD.shape}.")
    torch.set_num_threads(threads)
    model = _autoencoder(widths, activation, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    data = torch.from_numpy(np.ascontiguousarray(x_NxD, dtype=np.float32))
    generator = torch.Generator().manual_seed(seed)
    order, cursor = torch.randperm(len(data), generator=generator), 0

    def step() -> float:
        nonlocal order, cursor
        if cursor + batch_size > len(data):
            order, cursor = torch.randperm(len(data), generator=generator), 0
        batch = data.index_select(0, order[cursor:cursor + batch_size])
        cursor += batch_size
        loss = torch.mean(torch.square(torch.sigmoid(model(batch)) - batch))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(10):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        final = float(loss.detach())  # eager on CPU: the work is done when the call returns
        rates.append(steps / (time.perf_counter() - start))
    return {"steps_per_s": statistics.median(rates), "threads": threads, "torch": torch.__version__,
            "final_loss": final}
