"""The registry: recipient keys and OpenPGP key handling."""
