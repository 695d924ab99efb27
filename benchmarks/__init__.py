"""Benchmarks: the real bot against the local Bot API, measured side by side with a baseline."""
