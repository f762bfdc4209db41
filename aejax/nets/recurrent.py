"""Recurrent (LSTM, GRU) sequence encoder and decoder (Flax linen) for sequences [B, T, C].

The encoder runs `nn.RNN` (one `lax.scan` over time, no Python loop) over the sequence and
projects its final state (LSTM: cell and hidden state; GRU: hidden state; both directions
when bidirectional) with a Dense layer to the code. The decoder unrolls from the code: the
code sets the initial state (a Dense projection) and is fed at every step; a Dense readout
maps each step's hidden state to the C output channels.

With `autoregressive=True` the decoder also feeds back the previous step's value (zeros at
the first step), as in sequence-to-sequence models. Given `targets` (the true sequence
[B, T, C]) it feeds the true previous values instead: teacher forcing. The autoencoder
kinds call decoders with the code only, so inside a kind an autoregressive decoder trains and
reconstructs free-running on its own predictions; teacher forcing is a net-level path for
callers that pass `targets`. Both paths are one `nn.scan` over the same step module, so they
share parameters.

Mixed precision: `dtype="bfloat16"` computes the cells' gate products and the Dense layers in
bfloat16 with float32 parameters (so float32 gradients and optimizer state); the recurrent state
(LSTM cell and hidden state, GRU hidden state) is carried in float32 from step to step, so rounding
does not accumulate over time, and the code and outputs are float32. At "float32" every layer
computes in the promoted dtype of its inputs and parameters (float64 inputs stay float64: the state
is carried in that dtype).

References: Hochreiter & Schmidhuber 1997, "Long short-term memory"; Cho et al. 2014, "Learning
phrase representations using RNN encoder-decoder for statistical machine translation" (GRU);
Srivastava, Mansimov & Salakhutdinov 2015, "Unsupervised learning of video representations using
LSTMs" (LSTM autoencoders, conditioned and unconditioned decoders); Williams & Zipser 1989 (teacher
forcing).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.nets.common import (append_condition, as_float32, cast_in, check_condition, check_input,
                               layer_dtype)

CELLS = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}


def make_cell(cell: str, hidden_size: int, name: str, dtype=None) -> nn.RNNCellBase:
    """An LSTM or GRU cell with `hidden_size` units computing in `dtype` (None: the promoted dtype)."""
    if cell not in CELLS:
        raise ConfigError(f"unknown recurrent cell {cell!r}; choose one of {sorted(CELLS)}.")
    return CELLS[cell](features=hidden_size, dtype=dtype, name=name)


def state_dtype(x, dtype):
    """The dtype the recurrent state is carried in: float32 under a reduced compute dtype, else the
    promoted dtype of `x` and the float32 parameters (float32, or float64 for a float64 check)."""
    return jnp.float32 if dtype is not None else jnp.result_type(x.dtype, jnp.float32)


def zero_carry(cell: str, batch: int, hidden_size: int, dtype) -> object:
    """The zero initial state of `cell` for `batch` sequences (flax's LSTM carry is (c, h))."""
    zeros = jnp.zeros((batch, hidden_size), dtype)
    return (zeros, zeros) if cell == "lstm" else zeros


def check_sequence_shape(input_shape: Sequence[int], net: str) -> tuple[int, int]:
    """(T, C) of a sequence example, or a ConfigError naming the nets that take other shapes."""
    if len(input_shape) != 2 or min(int(s) for s in input_shape) < 1:
        raise ConfigError(f"net={net!r} takes sequences shaped (T, C), got examples shaped {tuple(input_shape)}; "
                          "use net='mlp' (any shape) or 'conv'/'transformer' for images (H, W, C).")
    return int(input_shape[0]), int(input_shape[1])


def initial_carry(cell: str, code_BxF: jnp.ndarray, hidden_size: int, dtype=None) -> object:
    """The decoder's initial recurrent state from the code: tanh of a Dense projection per state part
    (computed in `dtype`, carried in float32 when `dtype` is a reduced one)."""
    if cell == "lstm":  # flax's LSTM carry is (c, h)
        c, h = jnp.split(jnp.tanh(nn.Dense(2 * hidden_size, dtype=dtype, name="init_state")(code_BxF)), 2, axis=-1)
        return as_float32(c, dtype), as_float32(h, dtype)
    return as_float32(jnp.tanh(nn.Dense(hidden_size, dtype=dtype, name="init_state")(code_BxF)), dtype)


class RecurrentEncoder(nn.Module):
    """Sequences [B, T, C] -> RNN over time -> Dense of the final state -> codes [B, code_size].

    Attributes:
      cell: "lstm" or "gru".
      hidden_size: units of the recurrent cell.
      code_size: width of the (linear) code layer.
      bidirectional: also run the sequence backwards and concatenate both final states.
      dtype: compute dtype, "float32" or "bfloat16" (parameters and the carried state stay float32;
        the code is float32).
    """

    cell: str
    hidden_size: int
    code_size: int
    bidirectional: bool = False
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x_BxTxC, condition=None):
        check_input(x_BxTxC, "RecurrentEncoder: the sequences x [B, T, C]", rank=3)
        check_condition(x_BxTxC, condition, "RecurrentEncoder")
        dt = layer_dtype(self.dtype)
        start = zero_carry(self.cell, x_BxTxC.shape[0], self.hidden_size, state_dtype(x_BxTxC, dt))
        x_BxTxC = cast_in(x_BxTxC, dt)
        forward = nn.RNN(make_cell(self.cell, self.hidden_size, "cell", dt), return_carry=True, name="rnn")
        if self.bidirectional:
            backward = nn.RNN(make_cell(self.cell, self.hidden_size, "cell_backward", dt), return_carry=True,
                              name="rnn_backward")
            carry, _ = nn.Bidirectional(forward, backward, return_carry=True, name="bidirectional")(
                x_BxTxC, initial_carry=(start, start))
        else:
            carry, _ = forward(x_BxTxC, initial_carry=start)
        state_BxF = cast_in(jnp.concatenate(jax.tree_util.tree_leaves(carry), axis=-1), dt)
        return as_float32(nn.Dense(self.code_size, dtype=dt, name="code")(append_condition(state_BxF, condition)), dt)


class FeedbackStep(nn.Module):
    """One decoder step: cell input [code, previous value] -> cell -> readout; carries the prediction.

    `teacher_forced` picks the previous value: the given target's (teacher forcing) or the
    step's own last prediction (free-running). Parameters are the same either way.
    """

    cell: str
    hidden_size: int
    channels: int
    teacher_forced: bool
    dtype: object = None  # the compute dtype (None: promoted); the carried state keeps its own dtype

    @nn.compact
    def __call__(self, state, code_BxF, previous_target_BxC):
        carry, previous_prediction_BxC = state
        previous_BxC = previous_target_BxC if self.teacher_forced else previous_prediction_BxC
        carry, h_BxH = make_cell(self.cell, self.hidden_size, "cell", self.dtype)(
            carry, jnp.concatenate([code_BxF, previous_BxC.astype(code_BxF.dtype)], axis=-1))
        y_BxC = nn.Dense(self.channels, dtype=self.dtype, name="readout")(h_BxH).astype(previous_prediction_BxC.dtype)
        return (carry, y_BxC), y_BxC


class RecurrentDecoder(nn.Module):
    """Codes [B, K] -> initial state and per-step input -> RNN over T steps -> outputs [B, T, C].

    Attributes:
      cell: "lstm" or "gru".
      hidden_size: units of the recurrent cell.
      output_shape: (T, C) of one example.
      autoregressive: feed the previous step's value back as input (see the module docstring).
      dtype: compute dtype, "float32" or "bfloat16" (parameters and the carried state stay float32;
        the outputs are float32).
    """

    cell: str
    hidden_size: int
    output_shape: Sequence[int]
    autoregressive: bool = False
    dtype: str = "float32"

    @nn.compact
    def __call__(self, z_BxK, condition=None, targets=None):
        """Decodes codes; `targets` [B, T, C] (autoregressive decoders only) switches on teacher forcing."""
        check_input(z_BxK, "RecurrentDecoder: the code z [B, K]", rank=2)
        check_condition(z_BxK, condition, "RecurrentDecoder")
        dt = layer_dtype(self.dtype)
        steps, channels = check_sequence_shape(self.output_shape, self.cell)
        code_BxF = cast_in(append_condition(z_BxK, condition), dt)
        carry = initial_carry(self.cell, code_BxF, self.hidden_size, dt)
        if not self.autoregressive:
            if targets is not None:
                raise ConfigError("teacher forcing needs an autoregressive decoder; set model.autoregressive=True "
                                  "or call the decoder without targets.")
            inputs_BxTxF = jnp.broadcast_to(code_BxF[:, None, :], (code_BxF.shape[0], steps, code_BxF.shape[-1]))
            h_BxTxH = nn.RNN(make_cell(self.cell, self.hidden_size, "cell", dt), name="rnn")(
                inputs_BxTxF, initial_carry=carry)
            return as_float32(nn.Dense(channels, dtype=dt, name="readout")(cast_in(h_BxTxH, dt)), dt)
        batch = code_BxF.shape[0]
        out_dtype = state_dtype(code_BxF, dt)  # what the readout returns and feeds back
        if targets is None:
            previous_BxTxC = jnp.zeros((batch, steps, channels), out_dtype)  # unused when free-running
        else:
            if tuple(targets.shape) != (batch, steps, channels):
                raise ConfigError(f"teacher-forcing targets must be shaped {(batch, steps, channels)}, "
                                  f"got {tuple(targets.shape)}.")
            previous_BxTxC = jnp.concatenate([jnp.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
        scan = nn.scan(FeedbackStep, variable_broadcast="params", split_rngs={"params": False},
                       in_axes=(nn.broadcast, 1), out_axes=1, length=steps)
        step = scan(self.cell, self.hidden_size, channels, teacher_forced=targets is not None, dtype=dt, name="step")
        start = (carry, jnp.zeros((batch, channels), out_dtype))
        _, y_BxTxC = step(start, code_BxF, previous_BxTxC)
        return y_BxTxC
