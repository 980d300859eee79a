"""Exporting and training the models the cache serves (needs the `train` extra: PyTorch)."""
