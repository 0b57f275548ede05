"""Benchmarks (python -m xray_lightning.bench.data, ...)."""
