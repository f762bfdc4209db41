"""The PyTorch reference: the step a user would otherwise write, timed beside aejax's on the same device.

An MLP autoencoder with the same widths and activation as aejax's `net="mlp"` undercomplete
model (Linear layers, the activation after every hidden layer, a linear code and linear output
logits), the same initialisation scheme (Flax's `lecun_normal`: a normal truncated at two
standard deviations with variance 1/fan_in, zero biases), the same loss (mean squared error of
sigmoid(logits) against x) and Adam with the same learning rate, one step per batch gathered
from a per-epoch permutation drawn on the device.

Two ways to run the step (`TorchReference`): eager, and `torch.compile`d (the forward and loss,
whose backward AOTAutograd compiles with it, and the optimizer step; mode "reduce-overhead",
which replays CUDA graphs, on a GPU, the default mode on a CPU, where there are no CUDA graphs).
`torch_device(jax_backend)` puts torch where JAX runs: CUDA when JAX is on a GPU and torch sees
one. Needs the optional `bench` extra (`pip install 'aejax[bench]'`, the CPU build of torch);
`torch_available()` says whether it is installed.
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


def torch_device(jax_backend: str) -> tuple[str, str]:
    """(device, device name) for torch on the device JAX runs on: ("cuda", its name) when JAX's backend is
    a GPU and torch sees CUDA; else ("cpu", "cpu"), JAX's own name for a CPU device. The caller compares the
    name with `jax.devices()[0].device_kind` (the JSON records both)."""
    import torch

    if jax_backend in ("gpu", "cuda", "rocm") and torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0)
    return "cpu", "cpu"


COMPILE_MODES = {"cuda": "reduce-overhead", "cpu": "default"}


class TorchReference:
    """The reference step on `device`, eager or compiled; `steps_per_s(steps)` times it.

    Args:
      x_NxD: the training split, flattened, float32 in [0, 1].
      widths: layer widths, input first (e.g. (784, 512, 32, 512, 784)).
      device: "cpu" or "cuda" (see `torch_device`).
      compiled: `torch.compile` the forward and loss (with their backward) and the optimizer step, in mode
        `COMPILE_MODES[device]` ("reduce-overhead": CUDA graphs on a GPU).
    """

    def __init__(self, x_NxD: np.ndarray, *, widths: Sequence[int], activation: str, batch_size: int,
                 learning_rate: float, device: str = "cpu", compiled: bool = False, seed: int = 0):
        import torch

        if x_NxD.ndim != 2 or x_NxD.shape[1] != widths[0]:
            raise ValueError(f"x must be [N, {widths[0]}] for widths {tuple(widths)}, got {x_NxD.shape}.")
        self.torch, self.device, self.batch_size = torch, torch.device(device), batch_size
        self.mode = COMPILE_MODES[self.device.type] if compiled else "eager"
        self.model = _autoencoder(widths, activation, seed).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        self.data = torch.from_numpy(np.ascontiguousarray(x_NxD, dtype=np.float32)).to(self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.order, self.cursor = self._permutation(), 0
        model = self.model

        def loss_fn(batch):
            return torch.mean(torch.square(torch.sigmoid(model(batch)) - batch))

        def optimizer_step():
            self.optimizer.step()

        if compiled:
            loss_fn = torch.compile(loss_fn, mode=self.mode)
            optimizer_step = torch.compile(optimizer_step, mode=self.mode)
        self._loss, self._optimizer_step = loss_fn, optimizer_step
        self._mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)

    def _permutation(self):
        return self.torch.randperm(len(self.data), generator=self.generator, device=self.device)

    def step(self):
        """One training step; returns the loss tensor (not synchronized)."""
        if self.cursor + self.batch_size > len(self.data):
            self.order, self.cursor = self._permutation(), 0
        batch = self.data.index_select(0, self.order[self.cursor:self.cursor + self.batch_size])
        self.cursor += self.batch_size
        if self._mark_step is not None and self.mode == "reduce-overhead":
            self._mark_step()  # a new iteration of the CUDA graphs: the last step's outputs may be overwritten
        loss = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer_step()
        return loss.detach()

    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def warm_up(self, steps: int = 10) -> float:
        """Seconds of `steps` first steps (the compiles and CUDA-graph recordings of a compiled step)."""
        start = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        float(loss)
        self._sync()
        return time.perf_counter() - start

    def steps_per_s(self, steps: int, threads: int | None = None) -> tuple[float, float]:
        """(steps/s, last loss) of `steps` back-to-back steps, synchronized at both ends; `threads` sets
        `torch.set_num_threads` first (CPU)."""
        if threads is not None:
            self.torch.set_num_threads(threads)
        self._sync()
        start = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        final = float(loss)  # waits for the device
        return steps / (time.perf_counter() - start), final


def torch_steps_per_s(x_NxD: np.ndarray, *, widths: Sequence[int], activation: str, batch_size: int,
                      learning_rate: float, steps: int, repeats: int, threads: int, seed: int = 0,
                      device: str = "cpu", compiled: bool = False) -> dict[str, Any]:
    """Median steps/s of the PyTorch step over `repeats` runs of `steps` steps (after 10 warm-up steps, 20 when
    compiled: compiles and CUDA-graph recordings happen there; `warm_up_s` says how long they took).

    Args:
      x_NxD: the training split, flattened, float32 in [0, 1].
      widths: layer widths, input first (e.g. (784, 512, 32, 512, 784)).
      threads: `torch.set_num_threads` (use the core count XLA uses).
      device: "cpu" or "cuda"; compiled: see `TorchReference`.
    """
    import torch

    torch.set_num_threads(threads)
    ref = TorchReference(x_NxD, widths=widths, activation=activation, batch_size=batch_size,
                         learning_rate=learning_rate, device=device, compiled=compiled, seed=seed)
    warm_up_s = ref.warm_up(20 if compiled else 10)
    rates, final = [], float("nan")
    for _ in range(repeats):
        rate, final = ref.steps_per_s(steps, threads)
        rates.append(rate)
    return {"steps_per_s": statistics.median(rates), "threads": threads, "torch": torch.__version__,
            "final_loss": final, "device": device, "mode": ref.mode, "warm_up_s": warm_up_s}
