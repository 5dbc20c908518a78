"""Consent: the append-only ledger of grants, declines and revocations, consent requests, and
revocation's effects."""
