"""Consent: the ledger, its append-only guarantee, the provider's pages."""
