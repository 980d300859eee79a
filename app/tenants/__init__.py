"""Tenants, API keys, authentication and the row-level security context; the tenant and key admin routes and the one service behind them and the CLI."""
