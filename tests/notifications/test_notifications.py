"""Notifications on both databases: what creates them (a message, a status change, a
consent answer), the inbox and badge over HTTP, and e-mail through a real local SMTP
server (a small standard-library sink below) that carries no confidential content."""

from __future__ import annotations

import logging
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.consent.ledger import answer_request
from portal.consent.models import ConsentRequest, ConsentRequestItem
from portal.db import make_session_factory
from portal.notifications.mailer import MAIL_SENTENCE, install
from portal.notifications.models import Notification
from portal.notifications.service import (
    NotificationNotFound,
    consent_answered,
    consent_requested,
    mark_all_read,
    mark_read,
    notify,
    recipients_for_provider,
    recipients_for_rfa,
    rfa_link,
    unread_count,
)
from portal.registry.models import Authority, Item, Provider
from portal.rfa.drafting import RfaFields, create_draft, post_message
from portal.rfa.models import Message, Rfa
from portal.rfa.status import transition
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user

pytest_plugins = ["tests.support.auth"]

_BADGE = re.compile(r'data-unread="(\d+)"')
MESSAGE_BODY = "Which school in Dremna holds the detainees' records?"


# --- a real SMTP server -----------------------------------------------------------------


@dataclass
class Sink:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""

    server: _SmtpServer

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        sink = self.server.sink
        self._reply("220 sink.test ESMTP")
        sender, recipients = "", list[str]()
        while line := self.rfile.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 sink.test")
            elif verb == "MAIL":
                sender, recipients = command[10:].strip("<>"), []
                self._reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command[8:].strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                parsed = message_from_bytes(data, policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                sink.messages.append(parsed)
                sink.envelopes.append((sender, recipients))
                sink.done.set()
                self._reply("250 OK queued")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("250 OK")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    sink: Sink


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


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- a request with both sides ----------------------------------------------------------


@dataclass
class Scene:
    app: Flask
    rfa_code: str
    requester: Credentials
    colleague: Credentials  # a second requester of the same authority
    stranger: Credentials  # a requester of another authority
    officer: Credentials


def _scene(app: Flask) -> Scene:
    with portal_state(app).sessions() as db:
        requester = make_user(db, "requester", authority_code="AUTH-N")
        colleague = make_user(db, "requester", authority_code="AUTH-N")
        stranger = make_user(db, "requester", authority_code="AUTH-O")
        officer = make_user(db, "legal_officer")
        author = db.get(User, requester.user_id)
        assert author is not None
        mandate = portal_state(app).policy.mandate
        rfa = create_draft(
            db,
            author,
            RfaFields(their_reference="WCU-N/1", proceedings_type="investigation"),
            mandate,
        )
        transition(db, rfa, "submitted", by=author)
        db.commit()
        return Scene(app, rfa.code, requester, colleague, stranger, officer)


@pytest.fixture
def scene(app: Flask) -> Scene:
    return _scene(app)


def signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def post_message_as(client: FlaskClient, code: str, body: str) -> int:
    page = client.get(f"/requests/{code}")
    assert page.status_code == 200
    response = client.post(
        f"/requests/{code}/messages",
        data={"csrf_token": csrf_token(page), "body": body, "action": "post"},
    )
    return response.status_code


def subjects(db: Session, creds: Credentials) -> list[str]:
    db.expire_all()
    return list(
        db.scalars(
            select(Notification.subject)
            .where(Notification.user_id == creds.user_id)
            .order_by(Notification.id)
        )
    )


def badge(client: FlaskClient) -> int:
    found = _BADGE.search(client.get("/").get_data(as_text=True))
    return int(found.group(1)) if found else 0


# --- what creates notifications ---------------------------------------------------------


def test_submission_and_status_changes_notify_the_authoritys_requesters(
    scene: Scene, db: Session
) -> None:
    code = scene.rfa_code
    # The submitter is not told of their own move; a colleague is; another authority is not.
    assert subjects(db, scene.requester) == []
    assert subjects(db, scene.colleague) == [f"Request {code} is now submitted"]
    assert subjects(db, scene.stranger) == []

    rfa = db.scalar(select(Rfa).where(Rfa.code == code))
    officer = db.get(User, scene.officer.user_id)
    assert rfa is not None and officer is not None
    transition(db, rfa, "in_review", by=officer)
    transition(db, rfa, "clarification_requested", by=officer)
    db.commit()
    assert subjects(db, scene.requester) == [
        f"Request {code} is now in review",
        f"Request {code} is now clarification requested",
    ]
    assert subjects(db, scene.officer) == []


def test_a_message_notifies_the_other_side_only(app: Flask, scene: Scene, db: Session) -> None:
    officer = signed_in(app, scene.officer)
    assert post_message_as(officer, scene.rfa_code, MESSAGE_BODY) == 303
    expected = f"New message on request {scene.rfa_code}"
    assert expected in subjects(db, scene.requester)
    assert expected in subjects(db, scene.colleague)
    assert subjects(db, scene.stranger) == []
    assert subjects(db, scene.officer) == []

    requester = signed_in(app, scene.requester)
    assert post_message_as(requester, scene.rfa_code, "The primary school.") == 303
    assert subjects(db, scene.officer) == [expected]
    assert subjects(db, scene.requester) == [expected]  # not told of their own message


def test_the_assigned_officer_alone_hears_of_a_message(
    app: Flask, scene: Scene, db: Session
) -> None:
    other_officer = make_user(db, "legal_officer")
    rfa = db.scalar(select(Rfa).where(Rfa.code == scene.rfa_code))
    author = db.get(User, scene.requester.user_id)
    assert rfa is not None and author is not None
    rfa.assigned_to_id = scene.officer.user_id
    post_message(db, rfa, author, "A question.")
    db.commit()
    assert subjects(db, scene.officer) == [f"New message on request {rfa.code}"]
    assert subjects(db, other_officer) == []
    assert {u.id for u in recipients_for_rfa(db, rfa)} == {
        scene.requester.user_id,
        scene.colleague.user_id,
        scene.officer.user_id,
    }


def _consent_request(db: Session, rfa: Rfa, provider_code: str) -> tuple[ConsentRequest, Item]:
    provider = db.scalar(select(Provider).where(Provider.code == provider_code))
    assert provider is not None
    item = make.item(db, provider, "ITM-NOTE-1", title="Statement of a fictional witness")
    request = ConsentRequest(rfa_id=rfa.id, provider_id=provider.id, authority_id=rfa.authority_id)
    db.add(request)
    db.flush()
    db.add(ConsentRequestItem(consent_request_id=request.id, item_id=item.id))
    db.flush()
    return request, item


def test_a_consent_answer_notifies_the_legal_officers(scene: Scene, db: Session) -> None:
    rep = make_user(db, "provider", provider_code="PRV-N")
    other_rep = make_user(db, "provider", provider_code="PRV-O")
    rfa = db.scalar(select(Rfa).where(Rfa.code == scene.rfa_code))
    provider_user = db.get(User, rep.user_id)
    assert rfa is not None and provider_user is not None
    request, item = _consent_request(db, rfa, "PRV-N")
    consent_requested(db, request)
    db.commit()
    assert subjects(db, rep) == ["New consent request"]
    assert subjects(db, other_rep) == []
    assert [u.id for u in recipients_for_provider(db, request.provider_id)] == [rep.user_id]

    answer_request(db, request, action="grant", item_ids=[item.id], by=provider_user)
    db.commit()
    assert subjects(db, scene.officer) == [f"Consent answer received for request {rfa.code}"]
    assert subjects(db, rep) == ["New consent request"]  # not told of their own answer


def test_links_point_at_the_pages_they_name(app: Flask, scene: Scene, db: Session) -> None:
    rfa = db.scalar(select(Rfa).where(Rfa.code == scene.rfa_code))
    make_user(db, "provider", provider_code="PRV-N")
    author = db.get(User, scene.requester.user_id)
    assert rfa is not None and author is not None
    request, _item = _consent_request(db, rfa, "PRV-N")
    with app.test_request_context():
        assert rfa_link(rfa) == url_for("requests.detail", rfa_code=rfa.code)
        (answered,) = consent_answered(db, request, by=author)
        assert answered.link == url_for("eligibility.request_detail", rfa_id=rfa.id)
        (asked,) = consent_requested(db, request)
        assert asked.link == url_for("consent.index")
    db.rollback()


def test_notify_refuses_bad_subjects_and_skips_inactive_and_repeated_users(
    scene: Scene, db: Session
) -> None:
    user = db.get(User, scene.requester.user_id)
    gone = db.get(User, scene.colleague.user_id)
    assert user is not None and gone is not None
    for subject in ("", "   ", "x" * 201):
        with pytest.raises(ValueError, match="subject"):
            notify(db, [user], subject, None)
    gone.is_active = False
    made = notify(db, [user, user, gone], "Something happened", None)
    assert [n.user_id for n in made] == [user.id]


# --- inbox, mark read, badge ------------------------------------------------------------


def test_inbox_shows_only_ones_own_and_marks_read(app: Flask, scene: Scene, db: Session) -> None:
    officer = signed_in(app, scene.officer)
    assert post_message_as(officer, scene.rfa_code, MESSAGE_BODY) == 303
    requester = signed_in(app, scene.requester)
    stranger = signed_in(app, scene.stranger)
    subject = f"New message on request {scene.rfa_code}"

    assert badge(requester) == 1
    assert badge(stranger) == 0
    page = requester.get("/inbox")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert subject in text and "notification--unread" in text
    assert MESSAGE_BODY not in text  # the inbox shows what happened, not what was said
    assert subject not in stranger.get("/inbox").get_data(as_text=True)

    mine = db.scalar(select(Notification).where(Notification.user_id == scene.requester.user_id))
    assert mine is not None
    # Someone else's notification is not found, and stays unread.
    response = stranger.post(
        f"/inbox/{mine.id}/read", data={"csrf_token": csrf_token(stranger.get("/inbox"))}
    )
    assert response.status_code == 404
    db.expire_all()
    db.refresh(mine)
    assert mine.read_at is None

    # Opening it marks it read and goes to the page it is about.
    response = requester.post(f"/inbox/{mine.id}/read", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/requests/{scene.rfa_code}"
    assert badge(requester) == 0
    assert "notification--unread" not in requester.get("/inbox").get_data(as_text=True)
    # Without a CSRF token nothing happens.
    assert requester.post(f"/inbox/{mine.id}/read").status_code == 400


def test_mark_all_read(app: Flask, scene: Scene, db: Session) -> None:
    colleague = signed_in(app, scene.colleague)
    user = db.get(User, scene.colleague.user_id)
    assert user is not None
    notify(db, [user], "Something else happened", None)
    db.commit()
    assert badge(colleague) == 2
    page = colleague.get("/inbox")
    response = colleague.post("/inbox/read-all", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303
    assert badge(colleague) == 0
    assert mark_all_read(db, user) == 0
    with pytest.raises(NotificationNotFound):
        mark_read(db, user, 10**9)


def test_unread_count_is_per_user(scene: Scene, db: Session) -> None:
    colleague = db.get(User, scene.colleague.user_id)
    requester = db.get(User, scene.requester.user_id)
    assert colleague is not None and requester is not None
    assert unread_count(db, colleague) == 1
    assert unread_count(db, requester) == 0


# --- e-mail -----------------------------------------------------------------------------


@pytest.fixture
def mail_app(make_app: Callable[..., Flask], smtp_sink: Sink) -> Flask:
    return make_app(
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        smtp_from="portal@mechanism.example",
        base_url="https://portal.mechanism.example/",
    )


def test_email_says_only_that_there_is_something_new(mail_app: Flask, smtp_sink: Sink) -> None:
    scene = _scene(mail_app)
    smtp_sink.done.wait(5)  # the colleague is mailed about the submission
    smtp_sink.messages.clear()
    smtp_sink.envelopes.clear()
    smtp_sink.done.clear()
    officer = signed_in(mail_app, scene.officer)
    assert post_message_as(officer, scene.rfa_code, MESSAGE_BODY) == 303
    assert smtp_sink.done.wait(5)

    with portal_state(mail_app).sessions() as db:
        people = db.scalars(select(User)).all()
        names = [p.display_name for p in people]
        authority_names = list(db.scalars(select(Authority.name)))
    assert sorted(r for _, rcpts in smtp_sink.envelopes for r in rcpts) == sorted(
        [scene.requester.email, scene.colleague.email]
    )
    for mail in smtp_sink.messages:
        raw = mail.as_string()
        body = mail.get_content()
        assert MAIL_SENTENCE in body
        assert "https://portal.mechanism.example/" in body
        assert mail["From"] == "portal@mechanism.example"
        for secret in [scene.rfa_code, MESSAGE_BODY, "New message", *names, *authority_names]:
            assert secret not in raw, secret
            assert secret not in str(mail["Subject"])


def test_nothing_is_mailed_for_a_rolled_back_transaction(
    app: Flask, smtp_sink: Sink, scene: Scene
) -> None:
    state = portal_state(app)
    settings = state.settings.with_overrides(smtp_host=smtp_sink.host, smtp_port=smtp_sink.port)
    sessions = make_session_factory(state.engine)  # the app's factory already has a mailer
    install(sessions, settings)
    with sessions() as db:
        user = db.get(User, scene.requester.user_id)
        assert user is not None
        notify(db, [user], "Dropped", None)
        db.rollback()
        db.commit()
        assert smtp_sink.messages == []
        notify(db, [user], "Kept", None)
        db.commit()
    assert smtp_sink.done.wait(5)
    assert [to for _, rcpts in smtp_sink.envelopes for to in rcpts] == [scene.requester.email]


def test_smtp_down_still_sends_the_message_and_logs_no_content(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(smtp_host="127.0.0.1", smtp_port=_closed_port())
    with caplog.at_level(logging.WARNING, logger="portal.notifications.mailer"):
        scene = _scene(app)
        officer = signed_in(app, scene.officer)
        assert post_message_as(officer, scene.rfa_code, MESSAGE_BODY) == 303
    with portal_state(app).sessions() as db:
        assert db.scalar(select(func.count()).select_from(Message)) == 1
        assert f"New message on request {scene.rfa_code}" in subjects(db, scene.requester)
    records = [r for r in caplog.records if r.name == "portal.notifications.mailer"]
    assert records, "the failure is logged"
    logged = " ".join(r.getMessage() for r in records)
    assert "SMTP server unavailable" in logged
    for secret in [scene.rfa_code, scene.requester.email, scene.colleague.email, MESSAGE_BODY]:
        assert secret not in logged
