"""Restoration engine: degradations, the latent MAP solver, tiling and the one-image pipeline."""
