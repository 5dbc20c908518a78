"""``portal backup`` and ``portal restore``: a consistent database dump, the blob list and
the audit head, and a checked restore into an empty database."""
