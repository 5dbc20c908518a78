"""What the portal says from Python in Arabic and Burmese (issue 21, second part), over real
HTTP and a real SMTP socket: flashes, domain refusals and form errors on the provider's and
requester's pages, error pages (problem+json stays English), notification subjects shown in
the reader's language whatever language they were made in (older rows still readable), the
notification e-mail in the user's language, and the transmittal letter in the language of
the authority's recipients with the Noto faces embedded."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
from collections.abc import Callable, Iterator

import pikepdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pdfminer.high_level import extract_text
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.config import REPO_ROOT
from portal.db import make_session_factory
from portal.notifications import service
from portal.notifications.mailer import MAIL_SENTENCE, install
from portal.notifications.models import Notification
from portal.pages.i18n import N_, Phrase, readers_language, translate
from portal.registry.models import Authority
from portal.rfa.models import Rfa
from portal.state import portal_state
from tests.notifications.test_notifications import Sink, _SmtpHandler, _SmtpServer
from tests.support.auth import Credentials, csrf_token, login, make_user
from tests.support.package_facts import example_item, example_package
from tests.web.test_languages import compiled_catalogs  # noqa: F401 - the .mo files

pytest_plugins = ["tests.support.auth"]

TEMPLATES = REPO_ROOT / "templates"


def _user(db: Session, role: str, locale: str | None, **codes: str) -> Credentials:
    creds = make_user(db, role, **codes)
    user = db.get(User, creds.user_id)
    assert user is not None
    user.locale = locale
    db.commit()
    return creds


def _signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


# --- phrases ---------------------------------------------------------------------------------


def test_a_phrase_is_english_text_and_said_in_the_readers_language_when_shown(app: Flask) -> None:
    status = Phrase("submitted", {})
    subject = N_("Request %(code)s is now %(status)s", code="RFA-2026-0001", status=status)
    assert isinstance(subject, Phrase)
    assert subject == "Request RFA-2026-0001 is now submitted"  # logs, API, command line
    assert json.dumps(subject) == '"Request RFA-2026-0001 is now submitted"'
    assert N_("Access denied") == "Access denied" and not isinstance(N_("x"), Phrase)
    with app.test_request_context("/", headers={"Accept-Language": "ar"}):
        said = translate(subject)
    assert said.startswith("الطلب RFA-2026-0001 الآن")
    assert "submitted" not in said  # the nested status label is translated too
    with app.test_request_context("/", headers={"Accept-Language": "fr"}):
        assert translate(subject) == str(subject)


def test_readers_language_is_the_one_language_they_share_else_english() -> None:
    def people(*codes: str | None) -> list[User]:
        return [User(locale=code) for code in codes]

    assert readers_language(people("ar", None, "ar")) == "ar"
    assert readers_language(people("ar", "my")) == "en"
    assert readers_language(people(None)) == "en"
    assert readers_language([]) == "en"


# --- pages -----------------------------------------------------------------------------------


def test_a_providers_flashes_and_refusals_are_in_arabic(app: Flask, db: Session) -> None:
    provider = _user(db, "provider", "ar", provider_code="PRV-AR2")
    make_user(db, "requester", authority_code="AUTH-AR2")
    authority_id = db.scalar(select(Authority.id).where(Authority.code == "AUTH-AR2"))
    client = _signed_in(app, provider)
    token = csrf_token(client.get("/consent/given"))
    unconfirmed = client.post(f"/consent/standing/{authority_id}", data={"csrf_token": token})
    assert unconfirmed.status_code == 303
    page = client.get(unconfirmed.headers["Location"]).get_data(as_text=True)
    assert "ضع علامة في المربع لتأكيد الموافقة الدائمة." in page
    assert "Tick the box" not in page
    # a refusal of the domain (ledger.py), inside a sentence of the view
    bad_date = client.post(
        f"/consent/standing/{authority_id}",
        data={"csrf_token": token, "confirm": "yes", "expires_on": "2020-01-01"},
    )
    page = client.get(bad_date.headers["Location"]).get_data(as_text=True)
    assert "لم يُحفظ شيء: يجب أن يكون تاريخ الانتهاء في المستقبل." in page
    assert "the expiry date" not in page


def test_a_requesters_form_errors_and_labels_are_in_burmese(app: Flask, db: Session) -> None:
    requester = _user(db, "requester", "my", authority_code="AUTH-MY2")
    client = _signed_in(app, requester)
    token = csrf_token(client.get("/requests/new"))
    refused = client.post(
        "/requests/new",
        data={"csrf_token": token, "action": "save", "deadline": "soon", "urgency": "normal"},
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "ရက်စွဲကို YYYY-MM-DD ပုံစံဖြင့် ထည့်ပါ။" in html  # the view's own check
    assert "အရေးပေါ်ရသည့် အကြောင်းရင်း" in html  # a WTForms label ("Why it is urgent")
    assert "ရွေးပါ…" in html and "Choose…" not in html  # the select's empty choice
    refused = client.post(
        "/requests/new",
        data={"csrf_token": token, "action": "save", "urgency": "normal"},
    )
    html = refused.get_data(as_text=True)
    assert "ဤတောင်းခံချက်အတွက် သင့်ရည်ညွှန်းအမှတ်ကို ထည့်ပါ။" in html  # drafting.py
    assert "Enter your reference" not in html
    assert db.scalar(select(Rfa.id)) is None  # nothing half-written


def test_error_pages_are_translated_and_problem_json_stays_english(client: FlaskClient) -> None:
    page = client.get("/no-such-page", headers={"Accept-Language": "ar"})
    html = page.get_data(as_text=True)
    assert page.status_code == 404
    assert "الصفحة غير موجودة" in html and "Page not found" not in html
    api = client.get("/api/no-such-thing", headers={"Accept-Language": "ar"})
    assert api.status_code == 404
    assert api.get_json()["title"] == "Page not found"


# --- notifications ----------------------------------------------------------------------------


def test_subjects_are_shown_in_the_readers_language_and_old_rows_stay_readable(
    app: Flask, db: Session
) -> None:
    arabic = _user(db, "requester", "ar", authority_code="AUTH-NT")
    english = _user(db, "requester", None, authority_code="AUTH-NT")
    reader = db.get(User, arabic.user_id)
    other = db.get(User, english.user_id)
    assert reader is not None and other is not None
    subject = N_("Package %(code)s is ready to download", code="PKG-2026-0042")
    service.notify(db, [reader, other], subject, "/received/PKG-2026-0042")
    # rows written before subjects were stored as phrases: a fixed subject, a made one
    db.add(Notification(user_id=reader.id, subject="New consent request"))
    db.add(Notification(user_id=reader.id, subject="Request RFA-2020-0001 is now declined"))
    db.add(
        Notification(
            user_id=reader.id,
            subject="Package PKG-2020-0001 has been recalled",
            subject_phrase='{"msgid": "Package %(code)s has been recalled", "args": {}}',
        )
    )
    db.commit()
    stored = db.scalars(select(Notification.subject).where(Notification.user_id == other.id))
    assert list(stored) == ["Package PKG-2026-0042 is ready to download"]  # English kept

    inbox = _signed_in(app, arabic).get("/inbox").get_data(as_text=True)
    assert "الحزمة PKG-2026-0042 جاهزة للتنزيل" in inbox
    assert "طلب موافقة جديد" in inbox  # an old fixed subject, translated as it is a msgid
    assert "Request RFA-2020-0001 is now declined" in inbox  # an old made one, as stored
    assert "Package PKG-2020-0001 has been recalled" in inbox  # a broken phrase: English
    english_inbox = _signed_in(app, english).get("/inbox").get_data(as_text=True)
    assert "Package PKG-2026-0042 is ready to download" in english_inbox


@pytest.fixture
def smtp_sink() -> Iterator[Sink]:
    server = _SmtpServer(("127.0.0.1", 0), _SmtpHandler)
    host, port = server.server_address[:2]
    server.sink = Sink(host=str(host), port=int(port))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.sink
    server.shutdown()
    server.server_close()


def test_the_notification_mail_is_in_each_users_language(
    make_app: Callable[..., Flask], smtp_sink: Sink
) -> None:
    app = make_app()
    state = portal_state(app)
    settings = state.settings.with_overrides(
        smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, base_url="https://portal.example/"
    )
    sessions = make_session_factory(state.engine)
    install(sessions, settings)
    with sessions() as db:
        people = {
            locale: _user(db, "provider", locale, provider_code="PRV-ML")
            for locale in ("my", "ar", None)
        }
        users = [db.get(User, creds.user_id) for creds in people.values()]
        service.notify(db, [u for u in users if u is not None], N_("New consent request"))
        db.commit()
    for _ in range(3):
        assert smtp_sink.done.wait(5)
        if len(smtp_sink.messages) == 3:
            break
        smtp_sink.done.clear()
    by_address = {to: mail for (_, rcpts), mail in zip(
        smtp_sink.envelopes, smtp_sink.messages, strict=True) for to in rcpts}  # fmt: skip
    burmese = by_address[people["my"].email]
    assert "Sharing Portal တွင် သင့်အတွက် မက်ဆေ့ချ်အသစ် ရှိသည်။" in burmese.get_content()
    assert str(burmese["Subject"]) == "Sharing Portal အသိပေးချက်"
    arabic = by_address[people["ar"].email]
    assert "لديك رسالة جديدة في بوابة المشاركة." in arabic.get_content()
    assert "https://portal.example/" in arabic.get_content()
    assert MAIL_SENTENCE in by_address[people[None].email].get_content()


# --- the transmittal letter ---------------------------------------------------------------------


def _fonts(pdf: bytes) -> set[str]:
    found: set[str] = set()
    with pikepdf.open(io.BytesIO(pdf)) as document:
        for page in document.pages:
            for font in page.Resources.Font.values():
                found.add(str(font.BaseFont).replace("-", ""))
    return found


@pytest.mark.parametrize(
    ("language", "direction", "heading", "face"),
    [
        ("ar", "rtl", "رسالة الإحالة", "NotoNaskhArabic"),
        ("my", "ltr", "ပေးပို့လွှာ", "NotoSansMyanmar"),
    ],
)
def test_the_transmittal_letter_is_written_in_the_packages_language(
    language: str, direction: str, heading: str, face: str
) -> None:
    from portal.packages.assembly.documents import transmittal_letter_html, transmittal_letter_pdf

    package = dataclasses.replace(example_package(), language=language)
    items = (example_item(1), example_item(2, rendition="as_is", redactions=(), consent=None))
    html = transmittal_letter_html(package, items, TEMPLATES)
    assert f'<html lang="{language}" dir="{direction}">' in html
    assert heading in html and "What you must do" not in html
    assert f"portal-verify {package.code}.tar.gpg --sender-fingerprint" in html  # as typed
    pdf = transmittal_letter_pdf(package, items, TEMPLATES)
    fonts = _fonts(pdf)
    assert any(face in name for name in fonts), fonts
    text = extract_text(io.BytesIO(pdf))
    assert "(cid:0)" not in text  # no .notdef glyph
    assert package.code in text


def test_the_letter_stays_english_for_a_language_without_a_catalog() -> None:
    from portal.packages.assembly.documents import transmittal_letter_html

    package = dataclasses.replace(example_package(), language="xx")
    html = transmittal_letter_html(package, (example_item(1),), TEMPLATES)
    assert '<html lang="en" dir="ltr">' in html and "What you must do" in html
    assert 'content: "Page " counter(page) " of " counter(pages);' in html
