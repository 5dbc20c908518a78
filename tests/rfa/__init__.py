"""Requests for assistance: requester pages, status machine, triage, uploads, API."""
