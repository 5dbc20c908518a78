"""In-app notifications, one row per user, and who should get them.

A subject names what happened and, at most, a request code; never a person's name or
anything a request, message or consent says. Those stay behind the link, where the
usual access checks apply. E-mail (portal.notifications.mailer) carries even less: a fixed sentence.

Functions take the session explicitly and flush but never commit. :func:`notify` also
queues the recipients' addresses in ``db.info`` so that a mailer installed on the
session factory can send its fixed sentence once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.orm import Session

from portal.accounts.approval import where_approved
from portal.accounts.models import User
from portal.authz.roles import (
    is_requester,
    where_admin,
    where_legal_officer,
    where_provider_user_of,
    where_recipient_of,
    where_requester_of,
)
from portal.consent.models import ConsentRequest
from portal.db import utcnow
from portal.notifications.models import Notification, phrase_to_json
from portal.packages.models import Package
from portal.pages.i18n import N_, Phrase, user_locale
from portal.registry.models import Item
from portal.rfa.models import Rfa, RfaItem

#: Key in ``Session.info`` of the (address, language) pairs to e-mail after the next commit.
OUTBOX = "portal.notifications.service.outbox"
#: Set in ``Session.info`` when this session created notifications or marked some read:
#: the count loaded with the sign-in session (``ActiveSession.unread``) is then out of date.
CHANGED = "portal.notifications.service.changed"
SUBJECT_MAX = 200


class NotificationNotFound(LookupError):
    """No such notification for this user (someone else's counts as none)."""


def notify(
    db: Session,
    users: Iterable[User],
    subject: str,
    link: str | None = None,
    *,
    topic: str | None = None,
) -> list[Notification]:
    """One unread notification per distinct active user; queues their addresses (with the
    language each reads) for e-mail. A ``subject`` made with ``N_(..., **params)`` is also
    stored as its catalog id and arguments, so each reader sees it in their language.
    ``topic`` names the step it waits on: :func:`settle` marks it read once someone acts."""
    phrase = phrase_to_json(subject) if isinstance(subject, Phrase) else None
    subject = subject.strip()
    if not subject or len(subject) > SUBJECT_MAX:
        raise ValueError(f"a notification subject has 1 to {SUBJECT_MAX} characters")
    moment = utcnow()
    created: list[Notification] = []
    seen: set[int] = set()
    outbox: list[tuple[str, str]] = db.info.setdefault(OUTBOX, [])
    for user in users:
        if user.id in seen or not user.is_active:
            continue
        seen.add(user.id)
        created.append(
            Notification(
                user_id=user.id,
                subject=subject,
                subject_phrase=phrase,
                link=link,
                topic=topic,
                created_at=moment,
            )
        )
        outbox.append((user.email, user_locale(user)))
    db.add_all(created)
    db.flush()
    db.info[CHANGED] = True
    return created


def inbox(db: Session, user: User, *, limit: int = 200) -> Sequence[Notification]:
    """The user's own notifications, newest first."""
    return db.scalars(
        select(Notification)
        .where(Notification.user_id == user.id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    ).all()


def changed_here(db: Session) -> bool:
    """Did this session create notifications or mark some read?"""
    return bool(db.info.get(CHANGED))


def unread_count(db: Session, user: User) -> int:
    count = db.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
    )
    return int(count or 0)


def mark_read(
    db: Session, user: User, notification_id: int, *, now: datetime | None = None
) -> Notification:
    """Mark one of the user's own notifications read (again is harmless)."""
    found = db.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user.id
        )
    )
    if found is None:
        raise NotificationNotFound(notification_id)
    if found.read_at is None:
        found.read_at = now or utcnow()
        db.flush()
        db.info[CHANGED] = True
    return found


def mark_all_read(db: Session, user: User, *, now: datetime | None = None) -> int:
    """Mark every unread notification of the user read; returns how many."""
    result = db.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    db.info[CHANGED] = True
    db.expire_all()
    return int(getattr(result, "rowcount", 0) or 0)


def settle(
    db: Session, topic: str, *, user: User | None = None, now: datetime | None = None
) -> int:
    """Someone took the step ``topic`` waits on: mark its unread notifications read (of every
    user it was sent to, or of ``user`` only). Returns how many."""
    conditions = [Notification.topic == topic, Notification.read_at.is_(None)]
    if user is not None:
        conditions.append(Notification.user_id == user.id)
    result = db.execute(
        update(Notification)
        .where(*conditions)
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    db.info[CHANGED] = True
    return int(getattr(result, "rowcount", 0) or 0)


def _unread_topic_holders(topic: str) -> Select[int]:
    return select(Notification.user_id).where(
        Notification.topic == topic, Notification.read_at.is_(None)
    )


# --- topics: the steps that wait on someone ---------------------------------------------


def release_topic(package_code: str) -> str:
    """A package assembled by one officer waits for a second one to release it."""
    return f"release:{package_code}"


def marks_topic(item_code: str) -> str:
    """Redaction marks of an item (or their removal) wait for another officer's confirmation."""
    return f"marks:{item_code}"


def consent_topic(consent_request_id: int) -> str:
    """A consent request waits for the provider's answer."""
    return f"consent:{consent_request_id}"


def recheck_topic(rfa_code: str) -> str:
    """Consent answers or a revocation wait for the officer to run the eligibility check again."""
    return f"recheck:{rfa_code}"


def thread_topic(rfa_code: str, side: str) -> str:
    """Messages in a request's thread wait for an answer from ``side`` (``requester`` or
    ``officer``); a clarification request waits on the requester the same way."""
    return f"thread:{rfa_code}:{side}"


# --- who hears about what -------------------------------------------------------------


def _active(db: Session, *conditions: ColumnElement[bool]) -> list[User]:
    return list(
        db.scalars(
            select(User)
            .where(User.is_active.is_(True), where_approved(), *conditions)
            .order_by(User.id)
        )
    )


def requesters_of(db: Session, rfa: Rfa) -> list[User]:
    """Active requesters of the request's authority."""
    return _active(db, where_requester_of(rfa.authority_id))


def officers_for(db: Session, rfa: Rfa) -> list[User]:
    """The assigned legal officer when active, otherwise every active legal officer."""
    if rfa.assigned_to_id is not None:
        assigned = _active(db, User.id == rfa.assigned_to_id, where_legal_officer())
        if assigned:
            return assigned
    return _active(db, where_legal_officer())


def recipients_for_rfa(db: Session, rfa: Rfa) -> list[User]:
    """Both sides of a request: its authority's requesters and its legal officer(s)."""
    return requesters_of(db, rfa) + officers_for(db, rfa)


def recipients_of_authority(db: Session, authority_id: int) -> list[User]:
    """Active recipients of an authority (who receive its packages and recalls)."""
    return _active(db, where_recipient_of(authority_id))


def recipients_for_provider(db: Session, provider_id: int) -> list[User]:
    """Active users of the provider."""
    return _active(db, where_provider_user_of(provider_id))


def _except(users: Iterable[User], actor: User | None) -> list[User]:
    return [u for u in users if actor is None or u.id != actor.id]


def rfa_link(rfa: Rfa) -> str:
    """The request's page (portal.rfa.requester_views ``detail``)."""
    return f"/requests/{rfa.code}"


# --- the events the portal notifies ----------------------------------------------------


def message_posted(db: Session, rfa: Rfa, author: User) -> list[Notification]:
    """A message in the thread: tell the other side."""
    if is_requester(author):
        others, waits_on, answered = officers_for(db, rfa), "officer", "requester"
    else:
        others, waits_on, answered = requesters_of(db, rfa), "requester", "officer"
    settle(db, thread_topic(rfa.code, answered))  # writing in the thread answers it
    return notify(
        db,
        _except(others, author),
        N_("New message on request %(code)s", code=rfa.code),
        rfa_link(rfa),
        topic=thread_topic(rfa.code, waits_on),
    )


def status_changed(db: Session, rfa: Rfa, by: User | None, label: str) -> list[Notification]:
    """Every status change (to the state named ``label``, a catalog id): tell the
    authority's requesters.
    A clarification request waits on them (settled when one of them writes in the thread)."""
    waits = rfa.status == "clarification_requested"
    return notify(
        db,
        _except(requesters_of(db, rfa), by),
        N_("Request %(code)s is now %(status)s", code=rfa.code, status=Phrase(label, {})),
        rfa_link(rfa),
        topic=thread_topic(rfa.code, "requester") if waits else None,
    )


def consent_answered(db: Session, consent_request: ConsentRequest, by: User) -> list[Notification]:
    """A provider answered a consent request: once every item is answered, the provider's
    notifications of it are settled; the request's legal officer(s) are told to check the
    request again (settled by the next eligibility check: :func:`checked`)."""
    if consent_request.status == "answered":  # every item has its answer
        settle(db, consent_topic(consent_request.id))
    rfa = db.get(Rfa, consent_request.rfa_id)
    if rfa is None:  # pragma: no cover - foreign key
        return []
    return notify(
        db,
        _except(officers_for(db, rfa), by),
        N_("Consent answer received for request %(code)s", code=rfa.code),
        f"/eligibility/requests/{rfa.id}",
        topic=recheck_topic(rfa.code),
    )


def checked(db: Session, rfa: Rfa) -> int:
    """An eligibility check ran on the request: what waited on a re-check is settled."""
    return settle(db, recheck_topic(rfa.code))


def consent_requested(db: Session, consent_request: ConsentRequest) -> list[Notification]:
    """A new consent request: tell the provider's users (no request code: the provider
    learns the code on the consent page)."""
    return notify(
        db,
        recipients_for_provider(db, consent_request.provider_id),
        N_("New consent request"),
        "/consent",
        topic=consent_topic(consent_request.id),
    )


def consent_withdrawn(db: Session, rfa: Rfa, releasers: Iterable[int]) -> list[Notification]:
    """A provider revoked consent for material of the request: tell its legal officer(s)
    and the officers who released its packages the revocation changed, at once (never the
    provider, the item or the reason: those are behind the link)."""
    extra = _active(db, User.id.in_(list(releasers)), where_legal_officer()) if releasers else []
    return notify(
        db,
        [*officers_for(db, rfa), *extra],
        N_("Consent withdrawn for material of request %(code)s: check it again", code=rfa.code),
        f"/triage/{rfa.code}",
        topic=recheck_topic(rfa.code),
    )


def package_awaits_release(db: Session, package_id: int) -> list[Notification]:
    """A package is assembled: every other active legal officer may release it (four-eyes:
    never the officer who assembled it). Settled by the release (:func:`released`)."""
    package = db.get(Package, package_id)
    if package is None:  # pragma: no cover - the caller just updated it
        return []
    officers = _active(db, where_legal_officer(), User.id != package.assembled_by_id)
    return notify(
        db,
        officers,
        f"Package {package.code} awaits release by a second legal officer",
        f"/packages/{package.code}",
        topic=release_topic(package.code),
    )


def released(db: Session, package_code: str) -> int:
    """The package was released: its "awaits release" notifications are read for everyone."""
    return settle(db, release_topic(package_code))


def no_longer_releasable(db: Session, package_code: str) -> int:
    """The package was blocked or withdrawn before release: nobody is waited on any more."""
    return released(db, package_code)


def marks_await_confirmation(db: Session, item: Item, by: User | None) -> int:
    """A mark of ``item`` was proposed or changed, or its removal asked for, by ``by``; or
    marks of it arrived by import (``by`` None: an import has no proposer, so any legal
    officer may confirm them). Every active legal officer other than ``by`` who has no unread
    notice of the item yet is told (one notice per item, not one per mark or per import).
    The link is the item's review page under its most recently changed request (none when it
    is no request's candidate). Settled when nothing of the item waits any more
    (:func:`marks_settled`)."""
    topic = marks_topic(item.code)
    not_told: list[ColumnElement[bool]] = [User.id.not_in(_unread_topic_holders(topic))]
    if by is not None:
        not_told.append(User.id != by.id)
    officers = _active(db, where_legal_officer(), *not_told)
    rfa_code = db.scalar(
        select(Rfa.code)
        .join(RfaItem, RfaItem.rfa_id == Rfa.id)
        .where(RfaItem.item_id == item.id)
        .order_by(Rfa.updated_at.desc(), Rfa.id.desc())
        .limit(1)
    )
    link = f"/review/{rfa_code}/items/{item.code}" if rfa_code else None
    subject = f"Redaction marks of {item.code} await confirmation by a second legal officer"
    return len(notify(db, officers, subject, link, topic=topic))


def marks_settled(db: Session, item: Item) -> int:
    """Nothing of ``item`` waits for a confirmation any more: its notices are read."""
    return settle(db, marks_topic(item.code))


def blob_damaged(db: Session, what: str) -> list[Notification]:
    """A stored file failed its sha256 check (bit rot, tampering): every admin, at once.
    ``what`` names the first use by its code (e.g. "item ITM-2026-0001"); the blob and all
    its uses are in the audit log (``portal audit``, action ``blob.damaged``)."""
    return notify(
        db,
        _active(db, where_admin()),
        f"Stored file of {what} is damaged: restore it from a backup",
    )


STORAGE_FULL = "The portal's storage is full: free space or add storage"


def storage_full(db: Session) -> list[Notification]:
    """A write failed for want of space: every admin who has not yet read the same notice."""
    told = select(Notification.user_id).where(
        Notification.subject == STORAGE_FULL, Notification.read_at.is_(None)
    )
    return notify(db, _active(db, where_admin(), User.id.not_in(told)), STORAGE_FULL)


def key_added(db: Session, authority_id: int, fingerprint: str, *, verified: bool) -> None:
    """A key was imported for (or verified and now used by) the authority: tell its recipients,
    who can object if they do not know the key (the fingerprint is public, not a secret)."""
    subject = (
        N_(
            "A key for your authority was verified and is now used: fingerprint "
            "%(fingerprint)s. Tell the Mechanism at once if you do not know it",
            fingerprint=fingerprint,
        )
        if verified
        else N_(
            "A key for your authority was imported (not used until verified): fingerprint "
            "%(fingerprint)s. Tell the Mechanism at once if you do not know it",
            fingerprint=fingerprint,
        )
    )
    notify(db, recipients_of_authority(db, authority_id), subject)


def account_added(db: Session, user: User) -> None:
    """A recipient account of an authority took effect: tell its other recipients."""
    if user.authority_id is None:
        return
    notify(
        db,
        _except(recipients_of_authority(db, user.authority_id), user),
        N_(
            "New recipient of your authority's packages: %(name)s. Tell the Mechanism at "
            "once if you do not know them",
            name=_short(user.display_name),
        ),
    )


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
