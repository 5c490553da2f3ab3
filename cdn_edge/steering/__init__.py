"""HLS Content Steering: the pathways (this edge and the CDNs before it), their health, and
which one each listener should use.

`pathways` (configuration), `health` (a pure state machine), `probes` (active checks),
`throughput_history` (each listener's recent throughput), `policy` (the steering decision and
manifest).
"""

__all__ = ["health", "pathways", "policy", "probes", "throughput_history"]
