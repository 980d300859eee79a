"""Admin routes: tenants, keys, quotas, purge, stats, audit."""
