"""portal import."""
