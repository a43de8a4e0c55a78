"""Cron: polling a list, the state store, the mirror."""
