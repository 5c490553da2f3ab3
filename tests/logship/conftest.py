"""The edge's telemetry fixtures, for tests that compare the shipper with the Python edge."""

from __future__ import annotations

from tests.telemetry import conftest as telemetry

access_log_stream = telemetry.access_log_stream
client = telemetry.client
clock = telemetry.clock
edge_app = telemetry.edge_app
edge_secrets = telemetry.edge_secrets
hls_dir = telemetry.hls_dir
listener_token = telemetry.listener_token
open_session = telemetry.open_session
open_playback = telemetry.open_playback
reader = telemetry.reader
ring = telemetry.ring
session_store = telemetry.session_store
store = telemetry.store
track = telemetry.track
