"""Redaction: true redaction of text, PDFs and images, and the leak check that proves nothing
protected remains."""
