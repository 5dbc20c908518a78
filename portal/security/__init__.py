"""Security building blocks, one small module per concern (headers, and later passwords, TOTP,
sessions and authorisation)."""
