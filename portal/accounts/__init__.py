"""Accounts: users, sign-in, sessions, TOTP, recovery codes, passwords, invitations and the admin
pages for them."""
