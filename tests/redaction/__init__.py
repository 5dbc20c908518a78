"""Redaction and the leak check."""
