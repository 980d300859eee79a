"""The error bound: a tenant's limit on wrong semantic hits, kept online from the cache's own
misses (docs/error-bound.md)."""
