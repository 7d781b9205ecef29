"""Benchmarks printing the tables in README.md; run each as ``python -m benchmarks.<name>``."""
