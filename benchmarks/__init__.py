"""Benchmark scripts; each prints the figures recorded in docs/benchmarks.md."""
