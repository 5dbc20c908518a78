"""WSGI entry point: ``gunicorn wsgi:app``. Settings come from PORTAL_* variables."""

from portal import create_web_app

app = create_web_app()  # without the signing key: `portal worker` signs
