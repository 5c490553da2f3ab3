"""The shared core: what ingest and the edge both need, and nothing of either.

Settings (`settings`), errors (`errors`), the published track record (`catalog`), royalty play
rules (`plays`), QoE (`qoe`), the key ring file and token secrets, and storage: a port and its
adapters per kind in `objects/`, `jobs/` and `sessions/`, CQL helpers in `cql/`, the telemetry
model in `telemetry/`; `backends` opens the adapter the settings name.
"""

__all__: list[str] = []  # import the modules; the package itself exports nothing
