"""Notifications: in-app messages, who gets them, and the optional e-mail nudge."""
