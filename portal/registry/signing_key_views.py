"""The public signing-key page (no sign-in): the mechanism's current public signing key, its
fingerprint in groups of four, and every earlier key with the transition statement that handed
over from it, downloadable; the same as files under ``/.well-known/``.

Everything here comes from the ``signing_key`` table (public halves only): the web process never
holds a secret key.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, url_for
from sqlalchemy import select

from portal.authz.permissions import public
from portal.db import db
from portal.registry.models import SigningKey
from portal.registry.openpgp import grouped_fingerprint
from portal.registry.signing_keys import current_key, history

bp = Blueprint("signing_key", __name__)

WELL_KNOWN_KEY = "/.well-known/sharing-portal-signing-key.asc"
WELL_KNOWN_HISTORY = "/.well-known/sharing-portal-signing-keys.json"
_WHY = "recipients check packages against the mechanism's public signing key and its history"


def _when(row: SigningKey, field: str) -> str | None:
    value = getattr(row, field)
    return value.isoformat() if value is not None else None


def _entry(row: SigningKey) -> dict[str, Any]:
    transition = None
    if row.transition_statement is not None:
        transition = {
            "statement": url_for("signing_key.statement", fingerprint=row.fingerprint),
            "signatures": url_for("signing_key.statement_signature", fingerprint=row.fingerprint),
        }
    return {
        "fingerprint": row.fingerprint,
        "fingerprint_grouped": grouped_fingerprint(row.fingerprint),
        "algorithm": row.algorithm,
        "user_id": row.uid,
        "active_from": _when(row, "active_from"),
        "active_until": _when(row, "active_until"),
        "revoked_at": _when(row, "revoked_at"),
        "revocation_reason": row.revocation_reason,
        "public_key": url_for("signing_key.public_key", fingerprint=row.fingerprint),
        "transition": transition,
    }


@bp.get("/signing-key")
@public(_WHY)
def page() -> str:
    rows = history(db())
    entries = [_entry(row) for row in reversed(rows)]
    return render_template(
        "registry/signing_key/page.html",
        current=next((e for e in entries if e["active_until"] is None), None),
        entries=entries,
        well_known_key=WELL_KNOWN_KEY,
        well_known_history=WELL_KNOWN_HISTORY,
    )


@bp.get(WELL_KNOWN_KEY)
@public(_WHY)
def well_known_key() -> Response:
    row = current_key(db())
    if row is None:
        abort(404)
    return _download(row.public_key, "sharing-portal-signing-key.asc", "application/pgp-keys")


@bp.get(WELL_KNOWN_HISTORY)
@public(_WHY)
def well_known_history() -> Response:
    return jsonify(keys=[_entry(row) for row in history(db())])


def _row(fingerprint: str) -> SigningKey:
    row = db().scalar(select(SigningKey).where(SigningKey.fingerprint == fingerprint.upper()))
    if row is None:
        abort(404)
    return row


@bp.get("/signing-key/<fingerprint>.asc")
@public(_WHY)
def public_key(fingerprint: str) -> Response:
    row = _row(fingerprint)
    return _download(row.public_key, f"signing-key-{row.fingerprint}.asc", "application/pgp-keys")


@bp.get("/signing-key/transitions/<fingerprint>.json")
@public(_WHY)
def statement(fingerprint: str) -> Response:
    row = _row(fingerprint)
    if row.transition_statement is None:
        abort(404)
    name = f"signing-key-transition-{row.fingerprint}.json"
    return _download(row.transition_statement, name, "application/json")


@bp.get("/signing-key/transitions/<fingerprint>.json.asc")
@public(_WHY)
def statement_signature(fingerprint: str) -> Response:
    row = _row(fingerprint)
    if row.transition_signature is None:
        abort(404)
    name = f"signing-key-transition-{row.fingerprint}.json.asc"
    return _download(row.transition_signature, name, "application/pgp-signature")


def _download(text: str, name: str, media_type: str) -> Response:
    """The exact stored bytes (a statement's signatures cover them byte for byte)."""
    response = Response(text.encode("utf-8"), mimetype=media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
