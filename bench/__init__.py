"""Benchmarks: the engine against its server stack's ceiling, and each connector's overhead.

Run every script with ``python -m bench`` or one with ``python -m bench engine_throughput``. Shared tooling
(raw timings, interleaved runner, side-by-side table) is in :mod:`bench._common`.
"""
