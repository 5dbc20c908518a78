"""The registry: authorities and their assessments, providers, persons, items, redaction marks, and
the authorities' OpenPGP keys."""
