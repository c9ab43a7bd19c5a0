"""revival: audit pruning-based concept unlearning in text-to-image diffusion models."""

__version__ = "0.1.0"
