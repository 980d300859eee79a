"""Déjà: a semantic cache for LLM responses, on Postgres and pgvector."""

__version__ = "0.1.0"
