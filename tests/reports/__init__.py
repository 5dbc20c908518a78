"""Figures, charts and the period report."""
