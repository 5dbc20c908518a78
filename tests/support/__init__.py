"""Helpers shared by the web tests (real app, real HTTP through the Flask test client)."""

import pytest

# The helpers assert; have pytest rewrite them (they are imported before pytest would).
pytest.register_assert_rewrite("tests.support.auth", "tests.support.recipient")
