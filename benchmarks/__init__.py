"""Operator benchmarks: bounded in time, loopback only, each against a baseline in the same run."""
