"""E-mail for notifications, when SMTP is configured: a fixed sentence and the portal's
address, nothing else — never the subject of a notification, a request code or a name.
The sentence is in the language the user chose on the account page (English without one:
a mail has no browser to ask), from the compiled catalogs, so workers send it too.

:func:`install` hooks a session factory: after each commit the addresses that
portal.notifications.service queued in that transaction are mailed; a rollback drops them.
Sending failures are logged without addresses or content and never undo the commit.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from email.message import EmailMessage

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.notifications.service import OUTBOX
from portal.pages.i18n import DEFAULT_LOCALE, N_, say

logger = logging.getLogger(__name__)

MAIL_SUBJECT = N_("Sharing Portal notification")
MAIL_SENTENCE = N_("You have a new message in the Sharing Portal.")
MAIL_LINK = N_("Sign in to read it: %(url)s")
SMTP_TIMEOUT_SECONDS = 10


def compose(settings: Settings, to: str, locale: str = DEFAULT_LOCALE) -> EmailMessage:
    """The one message the portal sends, in ``locale``."""
    message = EmailMessage()
    message["Subject"] = say(locale, MAIL_SUBJECT)
    message["From"] = settings.smtp_from or "sharing-portal@localhost"
    message["To"] = to
    body = say(locale, MAIL_SENTENCE)
    if settings.base_url:
        body += "\n\n" + say(locale, MAIL_LINK, url=settings.base_url) + "\n"
    message.set_content(body)
    return message


def _recipients(addresses: Iterable[str | tuple[str, str]]) -> list[tuple[str, str]]:
    """(address, language) once per address (a bare address reads English)."""
    chosen: dict[str, str] = {}
    for entry in addresses:
        address, locale = (entry, DEFAULT_LOCALE) if isinstance(entry, str) else entry
        chosen.setdefault(address, locale)
    return sorted(chosen.items())


def send(settings: Settings, addresses: Iterable[str | tuple[str, str]]) -> int:
    """Mail each address the fixed sentence (in its language, when given as
    ``(address, locale)``) over one SMTP connection; returns how many were accepted.
    Errors are logged (kind only) and swallowed."""
    unique = _recipients(addresses)
    if not settings.smtp_host or not unique:
        return 0
    sent = 0
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            for address, locale in unique:
                try:
                    smtp.send_message(compose(settings, address, locale))
                    sent += 1
                except smtplib.SMTPException as exc:
                    logger.warning("notification e-mail refused (%s)", type(exc).__name__)
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning(
            "notification e-mail not sent: SMTP server unavailable (%s)", type(exc).__name__
        )
    return sent


ENROLMENT_SUBJECT = "Your Sharing Portal enrolment link"


def compose_enrolment(settings: Settings, to: str, link: str) -> EmailMessage:
    """The enrolment link for the invitee: the only mail that carries a secret, and only to
    the person it is for (the inviting admin never sees the link outside demo mode)."""
    message = EmailMessage()
    message["Subject"] = ENROLMENT_SUBJECT
    message["From"] = settings.smtp_from or "sharing-portal@localhost"
    message["To"] = to
    message.set_content(
        "You have been invited to the Sharing Portal.\n\n"
        f"Follow this link within 48 hours to choose a password and set up an authenticator "
        f"app:\n\n{link}\n\nThe link works once. If you did not expect it, ignore this "
        "message.\n"
    )
    return message


def send_enrolment_link(settings: Settings, to: str, link: str) -> bool:
    """Mail ``link`` to ``to``; True when the server accepted it. Failures are logged
    (kind only, never the link or address) and reported by returning False."""
    if not settings.smtp_host:
        return False
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            smtp.send_message(compose_enrolment(settings, to, link))
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("enrolment e-mail not sent (%s)", type(exc).__name__)
        return False
    return True


def install(sessions: sessionmaker[Session], settings: Settings) -> None:
    """Mail queued notifications after commit on sessions of ``sessions``."""

    def after_commit(session: Session) -> None:
        addresses: list[tuple[str, str]] = session.info.pop(OUTBOX, [])
        if not addresses:
            return
        try:
            send(settings, addresses)
        except Exception as exc:  # mail must never break a committed request
            logger.warning("notification e-mail failed (%s)", type(exc).__name__)

    def after_rollback(session: Session) -> None:
        session.info.pop(OUTBOX, None)

    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_rollback", after_rollback)
