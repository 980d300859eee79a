"""The cache: scope fingerprint, normalisation, embedders, verifier, repository and routes."""
