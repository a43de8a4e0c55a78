"""A warm per-user reviewer on a private Unix socket."""
