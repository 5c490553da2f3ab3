"""Ingest: probe a master, measure its loudness, encode the ladder, package, encrypt, publish.

`pipeline.ingest_master` is one master end to end; `worker.IngestWorker` runs jobs from the job
store; `http_api` is the ingest API; `ingest_cli` is `streamer ingest`.
"""

__all__: list[str] = []  # import the modules; the package itself exports nothing
