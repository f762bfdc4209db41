"""Figures: reconstructions, samples, interpolations, latent maps, curves.

`training_figures` is what a training run draws (`aejax.fit`, `aejax.run_sweep` and the command line
hand it to the training loop, which does not import this layer).
"""

from aejax.viz.figures import image_rows, sequence_rows, training_curves, training_figures

__all__ = ["image_rows", "sequence_rows", "training_curves", "training_figures"]
