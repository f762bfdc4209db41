"""Builders that turn plain options (from config.model) into autoencoder objects."""

from __future__ import annotations

from typing import Sequence

from aejax.models.undercomplete import UndercompleteAE
from aejax.nets import make_encoder_decoder


def build_undercomplete(*, input_shape: Sequence[int], num_classes: int, code_size: int, net: str = "mlp",
                        hidden: Sequence[int] = (256, 128), channels: Sequence[int] = (32, 64),
                        activation: str = "gelu", likelihood: str = "mse") -> UndercompleteAE:
    del num_classes
    encoder, decoder = make_encoder_decoder(net, input_shape=input_shape, code_size=code_size, hidden=hidden,
                                            channels=channels, activation=activation)
    return UndercompleteAE(encoder, decoder, tuple(input_shape), int(code_size), likelihood)
