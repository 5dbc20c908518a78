"""Recipient key pages (legal officers and admins): every authority's keys, import (paste or
.asc upload), the key page with its full fingerprint, the out-of-band verification record,
and revocation.

Thin views over :mod:`portal.registry.keys`; a :class:`~portal.registry.keys.KeyActionRefused`
becomes a message on the page with what was typed kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404, scoped
from portal.db import db, utcnow
from portal.pages.forms import TokenForm
from portal.registry.keys import (
    KEY_STATUS_LABELS,
    MAX_KEY_BYTES,
    VERIFICATION_METHODS,
    KeyActionRefused,
    Verification,
    import_key,
    key_status,
    key_uids,
    organisation_warnings,
    revoke_key,
    verify_key,
)
from portal.registry.models import Authority, RecipientKey
from portal.state import portal_state

bp = Blueprint("keys", __name__, url_prefix="/keys")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "key_status_labels": KEY_STATUS_LABELS,
        "verification_methods": VERIFICATION_METHODS,
    }


def _render_index(
    *, error: str | None = None, typed: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    me = signed_in_user()
    authorities = list(db().scalars(scoped(Authority, me).order_by(Authority.name)))
    keys = list(db().scalars(scoped(RecipientKey, me).order_by(RecipientKey.created_at)))
    now = utcnow()
    by_authority: dict[int, list[tuple[RecipientKey, str]]] = {}
    for key in keys:
        by_authority.setdefault(key.authority_id, []).append((key, key_status(key, now)))
    page = render_template(
        "registry/keys/index.html",
        authorities=authorities,
        by_authority=by_authority,
        error=error,
        typed=typed or {},
        max_kb=MAX_KEY_BYTES // 1024,
        form=TokenForm(),
    )
    return page, status


@bp.get("")
@requires("keys.view")
def index() -> tuple[str, int]:
    return _render_index()


def _uploaded_text() -> str:
    """The pasted key, or the uploaded .asc file (read at most one byte over the cap)."""
    upload = request.files.get("key_file")
    if upload is not None and upload.filename:
        data = upload.stream.read(MAX_KEY_BYTES + 1)
        if len(data) > MAX_KEY_BYTES:
            raise KeyActionRefused(
                f"The file is larger than {MAX_KEY_BYTES // 1024} KB; send the public key alone."
            )
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            raise KeyActionRefused(
                "The file is not an ASCII-armored key (.asc); export the key with --armor."
            ) from None
    return request.form.get("armored", "")


@bp.post("")
@requires("keys.manage")
def import_new() -> BaseResponse | tuple[str, int]:
    typed = {"authority": request.form.get("authority", ""), "armored": ""}
    if not TokenForm().validate_on_submit():
        return _render_index(error="The form has expired; nothing was imported.", status=400)
    me = signed_in_user()
    code = typed["authority"].strip()
    authority = db().scalar(scoped(Authority, me).where(Authority.code == code)) if code else None
    if authority is None:
        return _render_index(
            error="Choose the authority the key belongs to.", typed=typed, status=400
        )
    settings = portal_state().settings
    try:
        key = import_key(
            db(), authority, _uploaded_text(), by=me, demo_or_test=settings.demo_or_test
        )
    except KeyActionRefused as exc:
        db().rollback()
        return _render_index(error=str(exc), typed=typed, status=400)
    db().commit()
    flash(
        f"The key was imported for {authority.name}. A legal officer other than you must confirm "
        "its fingerprint with the authority outside the portal and record how; until then it is "
        "not used.",
        "success",
    )
    return redirect(url_for("keys.detail", key_id=key.id), 303)


def _key_or_404(key_id: int) -> RecipientKey:
    return get_scoped_or_404(db(), RecipientKey, signed_in_user(), id=key_id)


def _render_detail(
    key: RecipientKey,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    names = {
        u.id: u.display_name
        for u in db().scalars(
            select(User).where(
                User.id.in_(
                    [
                        i
                        for i in (key.imported_by_id, key.verified_by_id, key.revoked_by_id)
                        if i is not None
                    ]
                    or [0]
                )
            )
        )
    }
    authority = db().get(Authority, key.authority_id)
    assert authority is not None  # noqa: S101 - a foreign key
    me = signed_in_user()
    page = render_template(
        "registry/keys/detail.html",
        key=key,
        authority=authority,
        uids=key_uids(key),
        warnings=organisation_warnings(db(), key, authority) if key.verified_at is None else [],
        own_import=key.imported_by_id == me.id,
        status_code=key_status(key),
        names=names,
        error=error,
        typed=typed or {},
        today=utcnow().strftime("%Y-%m-%dT%H:%M"),
        form=TokenForm(),
    )
    return page, status


@bp.get("/<int:key_id>")
@requires("keys.view")
def detail(key_id: int) -> tuple[str, int]:
    return _render_detail(_key_or_404(key_id))


def _confirmed_at(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise KeyActionRefused(
            "Enter when the fingerprint was confirmed (date and time)."
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@bp.post("/<int:key_id>/verify")
@requires("keys.verify")
def verify(key_id: int) -> BaseResponse | tuple[str, int]:
    key = _key_or_404(key_id)
    typed = {k: request.form.get(k, "") for k in ("confirmed_by", "method", "details", "when")}
    if not TokenForm().validate_on_submit():
        return _render_detail(key, error="The form has expired; nothing was recorded.", status=400)
    if request.form.get("fingerprint_matches") != "yes":
        return _render_detail(
            key,
            error="Confirm that the fingerprint read to you matches the one on this page.",
            typed=typed,
            status=400,
        )
    try:
        verification = Verification(
            confirmed_by=typed["confirmed_by"],
            method=typed["method"],
            details=typed["details"],
            confirmed_at=_confirmed_at(typed["when"]),
        )
        verify_key(db(), key, verification, by=signed_in_user())
    except KeyActionRefused as exc:
        db().rollback()
        return _render_detail(_key_or_404(key_id), error=str(exc), typed=typed, status=400)
    db().commit()
    flash("The verification is recorded; the key will be used for new packages.", "success")
    return redirect(url_for("keys.detail", key_id=key.id), 303)


@bp.post("/<int:key_id>/revoke")
@requires("keys.manage")
def revoke(key_id: int) -> BaseResponse | tuple[str, int]:
    key = _key_or_404(key_id)
    typed = {"reason": request.form.get("reason", "")}
    if not TokenForm().validate_on_submit():
        return _render_detail(key, error="The form has expired; nothing was changed.", status=400)
    try:
        revoke_key(db(), key, reason=typed["reason"], by=signed_in_user())
    except KeyActionRefused as exc:
        db().rollback()
        return _render_detail(_key_or_404(key_id), error=str(exc), typed=typed, status=400)
    db().commit()
    flash("The key is revoked: no new package will be encrypted to it.", "success")
    return redirect(url_for("keys.detail", key_id=key.id), 303)
