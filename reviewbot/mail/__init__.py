"""Mail: drafted replies, outbox files, sending."""
