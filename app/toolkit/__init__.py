"""Tooling around the service, never imported by serving code: the load benchmark, model
training and export, the stand-in model server and the evaluation of the hit decision.
Heavy dependencies (PyTorch, matplotlib) come with the `train` and `tools` extras."""
