"""``portal-verify``: the recipient's offline check of a package. Imports nothing of Flask or
SQLAlchemy."""
