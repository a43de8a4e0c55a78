"""Cron: one poll run (poll) and its steps (ingest, series, review), the state store, the mirror."""
