"""Redis stopping in the middle of a sign-in request (issue 19, found by bench/faults.py): the
limiter checked the address's budget while Redis answered, then could not deduct the refusal
once it had gone, and the sign-in answered 500. Now the refusal is answered as usual (logged),
and the next attempts are limited in memory. A Redis of the test's own, really stopped."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask, request

from tests.support.auth import post_password
from tests.support.own_redis import own_redis

pytest_plugins = ["tests.support.auth"]


def test_redis_gone_between_the_limit_check_and_the_deduction_is_no_500(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    with own_redis() as server:
        app = make_app(redis_url=server.url, login_rate_limit="10 per minute")

        @app.before_request
        def redis_dies_mid_request() -> None:  # after the limiter's check, before the view
            if request.method == "POST" and request.path == "/login":
                server.stop()

        client = app.test_client()
        caplog.set_level(logging.WARNING)
        first = post_password(client, "nobody@example.test", "not the password")
        assert first.status_code == 401, first.get_data(as_text=True)[:300]
        assert "Failed to deduct rate limit" in caplog.text
        statuses = [
            post_password(client, "nobody@example.test", "not the password").status_code
            for _ in range(10)
        ]
    assert statuses == [401] * 9 + [429]  # limited in memory now, the first one counted too
