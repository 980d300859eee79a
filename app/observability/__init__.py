"""Metrics, structured logs, request ids, health and readiness."""
