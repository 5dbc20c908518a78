"""Packages: redaction, leak check, bag, manifest, documents, OpenPGP and the assembly job."""
