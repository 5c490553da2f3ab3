"""transcoder."""
