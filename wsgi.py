"""WSGI entry point: ``gunicorn wsgi:app``. Settings come from PORTAL_* variables."""

from portal import create_app

app = create_app()
