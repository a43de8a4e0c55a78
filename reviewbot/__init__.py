"""reviewbot: reviews Linux-kernel-style patch series for error-path, get/put and ops-table bugs."""

__version__ = "0.1.0"
