"""Tenants, API keys, authentication and the row-level security context."""
