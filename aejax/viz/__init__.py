"""Figures: reconstructions, samples, interpolations, latent maps, curves."""
