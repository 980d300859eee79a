"""`deja bench`: the load benchmark behind docs/benchmarks.md."""
