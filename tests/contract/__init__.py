"""One suite per storage interface, run against every implementation."""
