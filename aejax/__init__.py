"""aejax: a JAX/Flax research framework for autoencoders."""

__version__ = "0.1.0"
