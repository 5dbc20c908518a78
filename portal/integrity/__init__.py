"""Integrity of the stored evidence: what uses a blob, recording and announcing damage, and
``portal scrub``, which re-hashes the whole blob store."""
