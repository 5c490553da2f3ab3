"""Ingest jobs: the queue ingest workers lease masters from.

`port` holds the job model and the `JobStore` interface; `sqlite` (the embedded default) and
`scylla` (many hosts of workers) implement it.
"""

from streamer.jobs.port import IngestSpec, Job, JobStore

__all__ = ["IngestSpec", "Job", "JobStore"]
