"""Requests for assistance: drafting, the status machine, triage, uploads, repository search, and
their pages and API."""
