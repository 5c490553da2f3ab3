"""Operator benchmarks: bounded in time, loopback only, each against a baseline in the same run.

Each module with a `__main__` is a program (`python -m benchmarks.NAME`, or `streamer bench
NAME`); see benchmarks/README.md.
"""

__all__: list[str] = []  # programs, not a library
