"""The provider's consent pages: the inbox of consent requests, the consents given (with
revocation and standing consent), and where the provider's material went.

Views are thin over :mod:`portal.consent.ledger`; rows are loaded through the authz scopes, so
another provider's request or consent is a 404. Only providers use these pages; staff
read the ledger's effect on the eligibility pages.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404, scoped, visible
from portal.consent.ledger import (
    ConsentError,
    ConsentState,
    answer_request,
    answered_items,
    current_state,
    grant,
    request_items,
    set_naming,
    standing_state,
)
from portal.consent.models import Consent, ConsentRequest
from portal.consent.revocation import EFFECTS, consequences, revoke_consent
from portal.consent.validity import expiry_after, last_valid_day
from portal.db import db, utcnow
from portal.packages import release_previews
from portal.packages.assembly.jobs import queue_recall_notices
from portal.packages.models import Package, PackageItem, Recall
from portal.pages import labels
from portal.pages.i18n import N_, Translated, format_when, refusal
from portal.pages.numerals import whole_numbers
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Rfa
from portal.state import portal_state

bp = Blueprint("consent", __name__, url_prefix="/consent")

STATE_LABELS = labels.CONSENT_STATE
EVENT_LABELS = {"grant": N_("Granted"), "decline": N_("Declined"), "revoke": N_("Revoked")}
PACKAGE_LABELS = {
    "queued": N_("Being prepared"),
    "assembling": N_("Being prepared"),
    "assembled": N_("Awaiting release"),
    "blocked": N_("Blocked"),
    "failed": N_("Not sent (failed)"),
    "released": N_("Released"),
    "withdrawn": N_("Withdrawn before download"),
    "recalled": N_("Recalled"),
    "expired": N_("Expired"),
}


def _provider() -> Provider:
    """The signed-in provider's own provider row (a provider account always has one)."""
    me = signed_in_user()
    if me.provider_id is None:
        abort(404)
    return get_scoped_or_404(db(), Provider, me, id=me.provider_id)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "state_labels": Translated(STATE_LABELS),
        "event_labels": Translated(EVENT_LABELS),
        "package_labels": Translated(PACKAGE_LABELS),
        "valid_until": _valid_until,
    }


def _expiry(raw: str) -> datetime | None:
    """``YYYY-MM-DD`` (valid through that day, UTC) or empty; anything else is refused."""
    text = raw.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ConsentError(N_("the expiry date must be a date such as 2027-01-31")) from None
    return expiry_after(day)


def _valid_until(expires_at: datetime | None) -> Markup:
    """A grant's last valid day as the provider chose it (``2027-12-31``), not the stored
    exclusive end (``2028-01-01 00:00``); an en dash for a grant without end."""
    if expires_at is None:
        return Markup("\N{EN DASH}")
    day = last_valid_day(expires_at)
    shown = format_when(datetime.combine(day, time(0), tzinfo=UTC), date_only=True)
    return Markup('<time datetime="{}">{}</time>').format(day.isoformat(), shown)


def _back(endpoint: str, message: str, category: str = "error") -> BaseResponse:
    flash(message, category)
    return redirect(url_for(endpoint), 303)


# --- inbox -----------------------------------------------------------------------------------


@dataclass
class InboxEntry:
    request: ConsentRequest
    authority: Authority
    rfa_code: str
    items: list[Item]
    answers: dict[int, Consent]


@bp.get("")
@requires("consent.view")
def index() -> str:
    me = signed_in_user()
    requests = (
        db()
        .scalars(
            scoped(ConsentRequest, me)
            .where(ConsentRequest.status == "open")
            .order_by(ConsentRequest.created_at, ConsentRequest.id)
        )
        .all()
    )
    authorities = _authorities({r.authority_id for r in requests})
    # Only the mechanism's reference: the requester's own details stay confidential.
    codes = {
        rfa_id: code
        for rfa_id, code in db().execute(
            select(Rfa.id, Rfa.code).where(Rfa.id.in_({r.rfa_id for r in requests}))
        )
    }
    entries = [
        InboxEntry(
            request=r,
            authority=authorities[r.authority_id],
            rfa_code=codes.get(r.rfa_id, ""),
            items=request_items(db(), r),
            answers=answered_items(db(), r),
        )
        for r in requests
    ]
    return render_template("consent/index.html", entries=entries)


@bp.post("/requests/<int:request_id>")
@requires("consent.answer")
def answer(request_id: int) -> BaseResponse:
    me = signed_in_user()
    consent_request = get_scoped_or_404(db(), ConsentRequest, me, id=request_id)
    ids = whole_numbers(request.form.getlist("item"))
    if ids is None:
        return _back(
            "consent.index", gettext("The items selected could not be read. Nothing was saved.")
        )
    action = request.form.get("action", "")
    try:
        events = answer_request(
            db(),
            consent_request,
            action=action,
            item_ids=ids,
            by=me,
            conditions=request.form.get("conditions", ""),
            expires_at=_expiry(request.form.get("expires_on", "")) if action == "grant" else None,
            reason=request.form.get("reason", ""),
        )
        db().commit()
    except ConsentError as exc:
        db().rollback()
        return _back(
            "consent.index", gettext("Nothing was saved: %(reason)s.", reason=refusal(exc))
        )
    said = (
        gettext("Consent granted for %(num)s item(s).", num=len(events))
        if action == "grant"
        else gettext("Consent declined for %(num)s item(s).", num=len(events))
    )
    if consent_request.status == "answered":
        said += " " + gettext("The request is now answered.")
    return _back("consent.index", said, "success")


# --- consents given --------------------------------------------------------------------------


@dataclass
class AuthorityConsents:
    authority: Authority
    standing: ConsentState
    standing_event: Consent | None
    items: list[tuple[Item, ConsentState, Consent | None]] = field(default_factory=list)
    history: list[Consent] = field(default_factory=list)


@bp.get("/given")
@requires("consent.view")
def given() -> str:
    me = signed_in_user()
    provider = _provider()
    events = (
        db()
        .scalars(scoped(Consent, me).order_by(Consent.recorded_at.desc(), Consent.id.desc()))
        .all()
    )
    by_code = {e.code: e for e in events}
    asked = (
        db()
        .scalars(scoped(ConsentRequest, me).with_only_columns(ConsentRequest.authority_id))
        .all()
    )
    authorities = _authorities({e.authority_id for e in events} | set(asked))
    history: dict[int, list[Consent]] = defaultdict(list)
    item_ids: dict[int, set[int]] = defaultdict(set)
    for e in events:
        history[e.authority_id].append(e)
        if e.item_id is not None:
            item_ids[e.authority_id].add(e.item_id)
    all_items = {i for ids in item_ids.values() for i in ids}
    items = {
        item.id: item
        for item in db().scalars(scoped(Item, me).where(Item.id.in_(all_items)).order_by(Item.code))
    }
    groups = []
    for authority in sorted(authorities.values(), key=lambda a: a.name):
        standing = standing_state(db(), provider.id, authority.id)
        group = AuthorityConsents(
            authority=authority,
            standing=standing,
            standing_event=by_code.get(standing.consent_code or ""),
            history=history[authority.id],
        )
        states = current_state(db(), provider.id, authority.id, item_ids[authority.id])
        for item_id in sorted(states, key=lambda i: items[i].code if i in items else ""):
            if item_id in items:
                state = states[item_id]
                group.items.append((items[item_id], state, by_code.get(state.consent_code or "")))
        groups.append(group)
    return render_template(
        "consent/given.html", groups=groups, today=utcnow().date(), provider=provider
    )


def _revocable(consent_id: int) -> tuple[Consent, Item | None, Authority]:
    """The signed-in provider's grant ``consent_id`` (404 for anyone else's), its item (None
    for the standing consent) and its authority."""
    consent = get_scoped_or_404(db(), Consent, signed_in_user(), id=consent_id)
    authority = db().get(Authority, consent.authority_id)
    if authority is None:
        abort(404)
    item = None if consent.item_id is None else db().get(Item, consent.item_id)
    return consent, item, authority


def _confirmation(
    consent_id: int, *, error: str | None = None, reason: str = "", status: int = 200
) -> BaseResponse | tuple[str, int]:
    consent, item, authority = _revocable(consent_id)
    try:
        ahead = consequences(db(), consent)
    except ConsentError as exc:
        return _back(
            "consent.given", gettext("Nothing was changed: %(reason)s.", reason=refusal(exc))
        )
    page = render_template(
        "consent/revoke.html",
        consent=consent,
        item=item,
        authority=authority,
        ahead=ahead,
        effects=EFFECTS,
        error=error,
        reason=reason,
    )
    return page, status


@bp.get("/given/<int:consent_id>/revoke")
@requires("consent.manage")
def confirm_revoke(consent_id: int) -> BaseResponse | tuple[str, int]:
    """What revoking this grant would do, and the form that does it."""
    return _confirmation(consent_id)


@bp.post("/given/<int:consent_id>/revoke")
@requires("consent.manage")
def revoke(consent_id: int) -> BaseResponse | tuple[str, int]:
    me = signed_in_user()
    consent, _item, _authority = _revocable(consent_id)
    reason = request.form.get("reason", "")
    if not reason.strip():
        return _confirmation(
            consent_id,
            error=gettext("Give a reason for revoking. Nothing was changed."),
            status=400,
        )
    if request.form.get("confirm") != "yes":
        return _confirmation(
            consent_id,
            error=gettext(
                "Tick the box to confirm that you revoke this consent. Nothing was changed."
            ),
            reason=reason,
            status=400,
        )
    try:
        if request.form.get("seen") != consequences(db(), consent).digest:
            return _confirmation(
                consent_id,
                error=gettext(
                    "What this revocation would do has changed since you opened this page "
                    "(a package was made, released or downloaded). Read it again and confirm. "
                    "Nothing was changed."
                ),
                reason=reason,
                status=409,
            )
        # Revokes the scope the grant covers: its item, or the standing consent.
        done = revoke_consent(db(), consent, reason=reason, by=me)
        db().commit()
    except ConsentError as exc:
        db().rollback()
        return _back(
            "consent.given", gettext("Nothing was changed: %(reason)s.", reason=refusal(exc))
        )
    if done.recalled:  # the worker signs their notices, after the commit
        queue_recall_notices(current_app)
    release_previews.prune(portal_state())  # the blocked packages' kept renditions
    parts = [gettext("Consent revoked (%(code)s).", code=done.events[0].code)]
    if done.blocked or done.withdrawn or done.recalled:
        parts.append(
            gettext(
                "Packages blocked: %(blocked)s, withdrawn: %(withdrawn)s, recalled: %(recalled)s.",
                blocked=len(done.blocked),
                withdrawn=len(done.withdrawn),
                recalled=len(done.recalled),
            )
        )
    return _back("consent.given", " ".join(parts), "success")


@bp.post("/standing/<int:authority_id>")
@requires("consent.manage")
def standing(authority_id: int) -> BaseResponse:
    me = signed_in_user()
    provider = _provider()
    authority = db().get(Authority, authority_id)
    if authority is None:
        abort(404)
    if request.form.get("confirm") != "yes":
        return _back("consent.given", gettext("Tick the box to confirm the standing consent."))
    try:
        (event,) = grant(
            db(),
            provider,
            authority,
            items=None,
            conditions=request.form.get("conditions", ""),
            expires_at=_expiry(request.form.get("expires_on", "")),
            by=me,
        )
        db().commit()
    except ConsentError as exc:
        db().rollback()
        return _back(
            "consent.given", gettext("Nothing was saved: %(reason)s.", reason=refusal(exc))
        )
    return _back(
        "consent.given",
        gettext(
            "Standing consent %(code)s granted to %(authority)s.",
            code=event.code,
            authority=authority.name,
        ),
        "success",
    )


@bp.post("/naming")
@requires("consent.manage")
def naming() -> BaseResponse:
    """Whether authorities see the provider's public name, or no name at all."""
    me = signed_in_user()
    provider = _provider()
    choice = request.form.get("named", "")
    if choice not in ("yes", "no"):
        return _back(
            "consent.given", gettext("Choose how authorities see you. Nothing was changed.")
        )
    set_naming(db(), provider, named=choice == "yes", by=me)
    db().commit()
    said = (
        gettext("Authorities now see you as %(name)s.", name=provider.public_name)
        if provider.named_to_authorities
        else gettext("Authorities now see no name for you in the packages made from now on.")
    )
    return _back("consent.given", said, "success")


# --- where my material went ------------------------------------------------------------------


@dataclass
class PackageRow:
    package: Package
    authority: Authority
    items: list[Item]
    recalled: bool


@bp.get("/where")
@requires("consent.view")
def where() -> str:
    me = signed_in_user()
    rows = (
        db()
        .execute(
            select(Package, Item)
            .join(PackageItem, PackageItem.package_id == Package.id)
            .join(Item, Item.id == PackageItem.item_id)
            .where(visible(Item, me))
            .order_by(Package.created_at.desc(), Package.id.desc(), Item.code)
        )
        .all()
    )
    recalled = set(
        db().scalars(
            select(Recall.package_id).where(Recall.package_id.in_({p.id for p, _ in rows}))
        )
    )
    authorities = _authorities({p.authority_id for p, _ in rows})
    packages: dict[int, PackageRow] = {}
    for package, item in rows:
        entry = packages.get(package.id)
        if entry is None:
            entry = packages[package.id] = PackageRow(
                package=package,
                authority=authorities[package.authority_id],
                items=[],
                recalled=package.status == "recalled" or package.id in recalled,
            )
        entry.items.append(item)
    return render_template("consent/where.html", rows=list(packages.values()))


def _authorities(ids: set[int]) -> dict[int, Authority]:
    """Authorities named by the provider's own requests, consents or packages."""
    if not ids:
        return {}
    return {a.id: a for a in db().scalars(select(Authority).where(Authority.id.in_(ids)))}
