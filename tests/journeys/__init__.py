"""Journeys across domains (command line; requests and consent)."""
