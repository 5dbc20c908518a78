"""The JSON the API sends (described in :mod:`portal.api.openapi`) and the request body it
reads for a new request for assistance.

Outward: plain dicts from rows, ISO 8601 dates and UTC timestamps. Inward:
:func:`rfa_fields` turns a JSON object into :class:`~portal.rfa.drafting.RfaFields`, so
the API validates with the very function the form uses; it only checks JSON types first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from portal.accounts.models import User
from portal.db import stored_utc
from portal.packages import downloads
from portal.packages.models import Package, Recall
from portal.rfa.drafting import RfaFields, ValidationFailed
from portal.rfa.models import Message, Rfa
from portal.rfa.status import LABELS

DATE_FIELDS = ("period_from", "period_to", "deadline")
LIST_FIELDS = ("offences",)
TEXT_FIELDS = tuple(f.name for f in fields(RfaFields) if f.name not in DATE_FIELDS + LIST_FIELDS)
MAX_OFFENCES = 100


def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return stored_utc(moment).isoformat().replace("+00:00", "Z")


def day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- requests ------------------------------------------------------------------------------


def rfa_summary(rfa: Rfa) -> dict[str, Any]:
    return {
        "code": rfa.code,
        "status": rfa.status,
        "status_label": LABELS.get(rfa.status, rfa.status),
        "their_reference": rfa.their_reference,
        "urgency": rfa.urgency,
        "created_at": timestamp(rfa.created_at),
        "submitted_at": timestamp(rfa.submitted_at),
        "updated_at": timestamp(rfa.updated_at),
    }


def rfa_detail(rfa: Rfa) -> dict[str, Any]:
    entries = RfaFields.of(rfa)
    body = rfa_summary(rfa)
    for name in TEXT_FIELDS:
        body[name] = getattr(entries, name) or ""
    body["offences"] = list(entries.offences or [])
    for name in DATE_FIELDS:
        body[name] = day(getattr(entries, name))
    return body


def message(item: Message, author: User | None) -> dict[str, Any]:
    return {
        "id": item.id,
        "body": item.body,
        "created_at": timestamp(item.created_at),
        "author": author.display_name if author is not None else None,
        "author_role": author.role if author is not None else None,
    }


def rfa_fields(data: Mapping[str, Any]) -> RfaFields:
    """The entries of a JSON request body; wrong JSON types and unknown members raise
    :class:`ValidationFailed` with messages per field, like the form."""
    errors: dict[str, list[str]] = {}
    known = set(TEXT_FIELDS + DATE_FIELDS + LIST_FIELDS)
    for name in sorted(set(data) - known):
        errors.setdefault(name[:100], []).append("This field is not part of a request.")
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.setdefault(name, []).append("This field must be a string.")
        else:
            values[name] = value
    for name in DATE_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        parsed = _date(value)
        if parsed is None:
            errors.setdefault(name, []).append("Enter a date as YYYY-MM-DD.")
        else:
            values[name] = parsed
    offences = data.get("offences")
    if offences is not None:
        if (
            not isinstance(offences, list)
            or len(offences) > MAX_OFFENCES
            or not all(isinstance(o, str) for o in offences)
        ):
            errors.setdefault("offences", []).append(
                f"Offences must be a list of at most {MAX_OFFENCES} strings."
            )
        else:
            values["offences"] = list(offences)
    if errors:
        raise ValidationFailed(errors)
    return RfaFields(**values)


def _date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# --- packages and recalls --------------------------------------------------------------------


def package(item: Package, rfa_code: str | None, counted: int) -> dict[str, Any]:
    return {
        "code": item.code,
        "status": downloads.effective_status(item),
        "rfa": rfa_code,
        "released_at": timestamp(item.released_at),
        "expires_at": timestamp(item.expires_at),
        "file_size": item.file_size,
        "file_sha256": item.file_sha256,
        "signature_sha256": item.signature_sha256,
        "signer_fingerprint": item.signer_fingerprint,
        "download_limit": item.download_limit,
        "downloads_counted": counted,
        "acknowledged_at": timestamp(item.acknowledged_at),
    }


def recall(item: Recall, package_code: str, notice: str | None) -> dict[str, Any]:
    details = item.details or {}
    disposition = details.get("disposition")
    return {
        "id": item.id,
        "package": package_code,
        "reason": item.reason,
        "created_at": timestamp(item.created_at),
        "notice": notice,
        "acknowledged_at": timestamp(item.acknowledged_at),
        "disposition": disposition if isinstance(disposition, str) else None,
    }
