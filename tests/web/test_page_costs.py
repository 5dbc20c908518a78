"""What pages do once instead of on every call (issue 23), checked against the slow way they
replaced: the request's catalog fetched once (and fetched again when the user changes
language), English timestamps and sizes without CLDR's pattern machinery, and the header's
unread badge counted with the sign-in session (and counted again after a change)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import flask_babel
import pytest
from babel import dates, numbers
from flask import Flask, render_template_string, url_for
from flask_login import login_user
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from portal.accounts.login_manager import CurrentUser
from portal.accounts.models import User
from portal.accounts.sessions import load_session, start_session
from portal.db import db as request_db
from portal.notifications.service import mark_all_read, notify
from portal.pages.formatting import when_in
from portal.pages.i18n import (
    direction,
    format_size,
    format_when,
    gettext,
    locale_code,
    refresh_language,
)
from portal.pages.templating import RowLinks
from tests.support.auth import make_user

pytest_plugins = ["tests.support.auth"]  # fixtures app, client, db

MOMENTS = (
    datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59),  # naive: SQLite's UTC
    datetime(2027, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=5))),  # 2026-12-31 20:30 UTC
    datetime(999, 5, 6, 7, 8, tzinfo=UTC),  # a year of three digits is still written with four
)


def _sign_in(user: User) -> CurrentUser:
    """Sign ``user`` in for this test request, as the login manager does for a page."""
    session = request_db()
    token = start_session(session, user)
    session.commit()
    active = load_session(session, token)
    assert active is not None
    current = CurrentUser(active)
    login_user(current)
    return current


def test_english_timestamps_read_as_cldrs_pattern_wrote_them(app: Flask) -> None:
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        for moment in MOMENTS:
            aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            pattern = dates.format_datetime(aware, "yyyy-MM-dd HH:mm", tzinfo=UTC, locale="en")
            day = dates.format_datetime(aware, "yyyy-MM-dd", tzinfo=UTC, locale="en")
            assert format_when(moment) == f"{pattern} UTC"
            assert format_when(moment, date_only=True) == day
    with app.test_request_context("/", headers={"Accept-Language": "ar"}):
        assert format_when(MOMENTS[0]) == (
            dates.format_datetime(MOMENTS[0], "medium", tzinfo=UTC, locale="ar") + " UTC"
        )


@pytest.mark.parametrize("code", ["en", "ar", "my"])
def test_a_pages_timestamps_read_as_format_when_wrote_them(app: Flask, code: str) -> None:
    """``when`` as pages get it (:func:`when_in`, the language fixed once per page) shows
    what :func:`format_when` shows, for the tricky moments and a thousand random ones."""
    rng = random.Random(23)  # noqa: S311 - test data, the same every run
    zones = (UTC, timezone(timedelta(hours=-11)), timezone(timedelta(hours=5, minutes=30)))
    moments = [*MOMENTS] + [
        datetime(1, 1, 1, tzinfo=UTC)
        + timedelta(seconds=rng.randrange(10**11), microseconds=rng.randrange(10**6))
        for _ in range(1000)
    ]
    with app.test_request_context("/", headers={"Accept-Language": code}):
        assert locale_code() == code
        shown_as = when_in(code)
        for moment in moments:
            aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            aware = aware.astimezone(rng.choice(zones)) if moment.tzinfo else aware
            machine = aware.astimezone(UTC).isoformat(timespec="seconds")
            expected = f'<time datetime="{machine}">{escape(format_when(aware))}</time>'
            shown = shown_as(aware)
            assert isinstance(shown, Markup) and str(shown) == expected, aware


@pytest.mark.parametrize("code", ["en", "ar", "my"])
def test_sizes_read_as_babels_decimal_format_wrote_them(app: Flask, code: str) -> None:
    with app.test_request_context("/", headers={"Accept-Language": code}):
        for size, value, unit in ((1536, 1.5, "KB"), (5 * 1024**3, 5, "GB"),
                                  (2048 * 1024**4 + 10**11, 2048.1, "TB")):  # fmt: skip
            number = numbers.format_decimal(value, "#,##0.#", locale=code)
            assert format_size(size) == f"{number} {flask_babel.gettext(unit)}"


def test_pages_translate_with_the_catalog_flask_babel_gives(app: Flask) -> None:
    for code, words in (("ar", "الصفحة التالية"), ("my", "နောက်စာမျက်နှာ")):
        with app.test_request_context("/", headers={"Accept-Language": code}):
            assert gettext("Next page") == flask_babel.gettext("Next page") == words
            assert render_template_string("{{ _('Next page') }}") == words
            assert gettext("Page %(page)s of %(pages)s", page=2, pages=3) == (
                flask_babel.gettext("Page %(page)s of %(pages)s", page=2, pages=3)
            )
            assert render_template_string("{{ ngettext('%(num)s byte', '%(num)s bytes', 2) }}") == (
                flask_babel.ngettext("%(num)s byte", "%(num)s bytes", 2)
            )


def test_a_new_language_applies_within_the_request_that_chose_it(app: Flask, db: Session) -> None:
    creds = make_user(db, "requester")
    with app.test_request_context("/"):
        current = _sign_in(request_db().get_one(User, creds.user_id))
        current.user.locale = "ar"
        refresh_language()
        assert render_template_string("{{ _('Next page') }}") == "الصفحة التالية"
        assert (locale_code(), direction()) == ("ar", "rtl")
        current.user.locale = "my"
        # As Flask-Babel keeps the locale, the catalog is kept for the request...
        assert render_template_string("{{ _('Next page') }}") == "الصفحة التالية"
        refresh_language()  # ...until the language changes (the account page calls this)
        assert render_template_string("{{ _('Next page') }}") == "နောက်စာမျက်နှာ"
        assert (locale_code(), direction()) == ("my", "ltr")
        assert format_when(MOMENTS[0]) == (
            dates.format_datetime(MOMENTS[0], "medium", tzinfo=UTC, locale="my") + " UTC"
        )
        assert gettext("Next page") == flask_babel.gettext("Next page")


def test_the_badge_is_counted_with_the_session_and_again_after_a_change(
    app: Flask, db: Session
) -> None:
    creds = make_user(db, "requester")
    user = db.get_one(User, creds.user_id)
    notify(db, [user], "First thing", None)
    notify(db, [user], "Second thing", None)
    db.commit()
    badge = "{{ unread_notifications() }}"
    with app.test_request_context("/"):
        session = request_db()
        current = _sign_in(session.get_one(User, creds.user_id))
        assert current.unread == 2
        assert render_template_string(badge) == "2"
        notify(session, [current.user], "Third thing", None)  # in this request: counted again
        assert render_template_string(badge) == "3"
        assert mark_all_read(session, current.user) == 3
        assert render_template_string(badge) == "0"
        session.commit()
    with app.test_request_context("/"):
        assert _sign_in(request_db().get_one(User, creds.user_id)).unread == 0


@pytest.mark.parametrize("script_root", ["", "/portal"])
def test_row_links_are_the_links_url_for_makes(app: Flask, script_root: str) -> None:
    """A list's per-row links (:class:`RowLinks`, built once a page) equal url_for's for
    every value, those that need quoting included, under a prefix too."""
    values = ["RFA-2026-0001", "PKG-2026-0501", "a.b_c~d", "with space", "slash/inside",
              "per%cent", "ملف", "ဖိုင်", "?q=1", "#frag", "", "0"]  # fmt: skip
    with app.test_request_context("/", base_url=f"http://portal.test{script_root}"):
        for endpoint, argument in (("requests.detail", "rfa_code"),
                                   ("recipient.detail", "package_code"),
                                   ("triage.assign_request", "rfa_code")):  # fmt: skip
            link = RowLinks(endpoint, argument)
            for value in values:
                if not value:
                    continue  # no route has an empty segment
                assert link(value) == url_for(endpoint, **{argument: value}), (endpoint, value)
            assert link("RFA-1").startswith(f"{script_root}/")
