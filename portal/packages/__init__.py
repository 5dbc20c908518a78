"""Packages: lifecycle, assembly (``assembly/``), release, downloads, recalls and export."""
