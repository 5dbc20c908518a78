"""Figures and the period report: set-based queries, SVG charts, PDF and CSV."""
