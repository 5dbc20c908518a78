"""Packages: assembly, bag, manifest, OpenPGP stream, jobs, documents, pages, downloads,
recalls, export, API."""
