"""Live bars through a broker: stream sources, checks, the bar store, dead letters, ingest."""
