"""What ingest and the edge share: settings, ids, storage interfaces and the track record."""
