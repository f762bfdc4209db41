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
from aejax.nets.common import append_condition

CELLS = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}


def make_cell(cell: str, hidden_size: int, name: str) -> nn.RNNCellBase:
    """An LSTM or GRU cell with `hidden_size` units."""
    if cell not in CELLS:
        raise ConfigError(f"unknown recurrent cell {cell!r}; choose one of {sorted(CELLS)}.")
    return CELLS[cell](features=hidden_size, name=name)


def check_sequence_shape(input_shape: Sequence[int], net: str) -> tuple[int, int]:
    """(T, C) of a sequence example, or a ConfigError naming the nets that take other shapes."""
    if len(input_shape) != 2 or min(int(s) for s in input_shape) < 1:
        raise ConfigError(f"net={net!r} takes sequences shaped (T, C), got examples shaped {tuple(input_shape)}; "
                          "use net='mlp' (any shape) or 'conv'/'transformer' for images (H, W, C).")
    return int(input_shape[0]), int(input_shape[1])


def initial_carry(cell: str, code_BxF: jnp.ndarray, hidden_size: int) -> object:
    """The decoder's initial recurrent state from the code: tanh of a Dense projection per state part."""
    if cell == "lstm":  # flax's LSTM carry is (c, h)
        c, h = jnp.split(jnp.tanh(nn.Dense(2 * hidden_size, name="init_state")(code_BxF)), 2, axis=-1)
        return c, h
    return jnp.tanh(nn.Dense(hidden_size, name="init_state")(code_BxF))


class RecurrentEncoder(nn.Module):
    """Sequences [B, T, C] -> RNN over time -> Dense of the final state -> codes [B, code_size].

    Attributes:
      cell: "lstm" or "gru".
      hidden_size: units of the recurrent cell.
      code_size: width of the (linear) code layer.
      bidirectional: also run the sequence backwards and concatenate both final states.
    """

    cell: str
    hidden_size: int
    code_size: int
    bidirectional: bool = False

    @nn.compact
    def __call__(self, x_BxTxC, condition=None):
        forward = nn.RNN(make_cell(self.cell, self.hidden_size, "cell"), return_carry=True, name="rnn")
        if self.bidirectional:
            backward = nn.RNN(make_cell(self.cell, self.hidden_size, "cell_backward"), return_carry=True,
                              name="rnn_backward")
            carry, _ = nn.Bidirectional(forward, backward, return_carry=True, name="bidirectional")(x_BxTxC)
        else:
            carry, _ = forward(x_BxTxC)
        state_BxF = jnp.concatenate(jax.tree_util.tree_leaves(carry), axis=-1)
        return nn.Dense(self.code_size, name="code")(append_condition(state_BxF, condition))


class FeedbackStep(nn.Module):
    """One decoder step: cell input [code, previous value] -> cell -> readout; carries the prediction.

    `teacher_forced` picks the previous value: the given target's (teacher forcing) or the
    step's own last prediction (free-running). Parameters are the same either way.
    """

    cell: str
    hidden_size: int
    channels: int
    teacher_forced: bool

    @nn.compact
    def __call__(self, state, code_BxF, previous_target_BxC):
        carry, previous_prediction_BxC = state
        previous_BxC = previous_target_BxC if self.teacher_forced else previous_prediction_BxC
        carry, h_BxH = make_cell(self.cell, self.hidden_size, "cell")(
            carry, jnp.concatenate([code_BxF, previous_BxC.astype(code_BxF.dtype)], axis=-1))
        y_BxC = nn.Dense(self.channels, name="readout")(h_BxH)
        return (carry, y_BxC), y_BxC


class RecurrentDecoder(nn.Module):
    """Codes [B, K] -> initial state and per-step input -> RNN over T steps -> outputs [B, T, C].

    Attributes:
      cell: "lstm" or "gru".
      hidden_size: units of the recurrent cell.
      output_shape: (T, C) of one example.
      autoregressive: feed the previous step's value back as input (see the module docstring).
    """

    cell: str
    hidden_size: int
    output_shape: Sequence[int]
    autoregressive: bool = False

    @nn.compact
    def __call__(self, z_BxK, condition=None, targets=None):
        """Decodes codes; `targets` [B, T, C] (autoregressive decoders only) switches on teacher forcing."""
        steps, channels = check_sequence_shape(self.output_shape, self.cell)
        code_BxF = append_condition(z_BxK, condition)
        carry = initial_carry(self.cell, code_BxF, self.hidden_size)
        if not self.autoregressive:
            if targets is not None:
                raise ConfigError("teacher forcing needs an autoregressive decoder; set model.autoregressive=True "
                                  "or call the decoder without targets.")
            inputs_BxTxF = jnp.broadcast_to(code_BxF[:, None, :], (code_BxF.shape[0], steps, code_BxF.shape[-1]))
            h_BxTxH = nn.RNN(make_cell(self.cell, self.hidden_size, "cell"), name="rnn")(
                inputs_BxTxF, initial_carry=carry)
            return nn.Dense(channels, name="readout")(h_BxTxH)
        batch = code_BxF.shape[0]
        if targets is None:
            previous_BxTxC = jnp.zeros((batch, steps, channels), code_BxF.dtype)  # unused when free-running
        else:
            if tuple(targets.shape) != (batch, steps, channels):
                raise ConfigError(f"teacher-forcing targets must be shaped {(batch, steps, channels)}, "
                                  f"got {tuple(targets.shape)}.")
            previous_BxTxC = jnp.concatenate([jnp.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
        scan = nn.scan(FeedbackStep, variable_broadcast="params", split_rngs={"params": False},
                       in_axes=(nn.broadcast, 1), out_axes=1, length=steps)
        step = scan(self.cell, self.hidden_size, channels, teacher_forced=targets is not None, name="step")
        start = (carry, jnp.zeros((batch, channels), code_BxF.dtype))
        _, y_BxTxC = step(start, code_BxF, previous_BxTxC)
        return y_BxTxC
