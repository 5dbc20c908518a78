"""Accounts: sign-in, sessions, TOTP, passwords, enrolment, invitations, admin pages."""
