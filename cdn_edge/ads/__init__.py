"""Audio ads in free sessions: breaks in media playlists, the decision service, the recorder.

interstitials   the breaks a free media playlist carries (EXT-X-DATERANGE interstitials)
creatives       published ad creatives, read from the object store and cached
service         the decision at a break, bounded by a timeout; failures skip the break
recorder        decisions and ad events into the ad store, spooled to disk when it fails
metrics         breaks by outcome, decision latency, spooled records
"""
