"""cdn_edge."""
