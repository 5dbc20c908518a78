"""The signed release statement: who assembled a package and who released it, when, for
which authority, and the SHA-256 of the very file released.

The second legal officer's release (:func:`portal.packages.lifecycle.release_package`)
appears in no file of the package, which was signed before it; this statement, clearsigned
by the mechanism's signing key, carries it. The worker makes it (the ``issue_release_
statements`` job, queued after the release commits: :func:`portal.packages.assembly.jobs.
queue_release_statements`), never the web process, as recall notices are made. Should that
fail (no key, gpg or the queue down) the recipient's package page queues it again, and says
it is being prepared until then: a release never waits for the worker. A statement is never
replaced once issued.

The recipient downloads it beside the package as ``<code>.tar.gpg.release.asc``;
``portal-verify`` finds it there (or takes ``--release-statement``) and checks its signature
against the pinned key and that it names this package's code and file SHA-256
(:mod:`portal.verify.release`, which reads the ``Key: value`` lines written here).
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.canonical import format_datetime
from portal.db import aware_utc
from portal.packages.assembly.facts import MECHANISM_NAME
from portal.packages.models import Package
from portal.packages.signed_once import sign_and_store_once
from portal.registry.models import Authority
from portal.registry.openpgp import refuse_example_key
from portal.rfa.models import Rfa
from portal.state import PortalState

if TYPE_CHECKING:
    from portal.packages.assembly.gpgstream import Signer

__all__ = [
    "HEADING",
    "SUFFIX",
    "StatementError",
    "download_name",
    "issue_pending_statements",
    "issue_statement",
    "statement_text",
]

logger = logging.getLogger(__name__)

HEADING = "RELEASE STATEMENT"
#: The statement's file name is the package's plus this (``portal-verify`` looks for it).
SUFFIX = ".release.asc"
STATEMENT_FORMAT = "1"
_TIME_SOURCE = "portal clock (NTP-synchronised host)"


class StatementError(Exception):
    """The statement could not be made, signed or stored, or is not issued yet."""


def download_name(package: Package) -> str:
    return f"{package.code}.tar.gpg{SUFFIX}"


def _line(text: str) -> str:
    """One line of text: control characters (line breaks among them) become spaces, so a
    value can never start a line of its own."""
    cleaned = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return " ".join(unicodedata.normalize("NFC", cleaned).split())


def statement_text(
    *,
    package_code: str,
    package_sha256: str,
    package_size: int,
    authority: str,
    rfa_reference: str,
    decision_id: str,
    assembled_by: str,
    assembled_at: datetime,
    released_by: str,
    released_at: datetime,
    expires_at: datetime,
    signer_fingerprint: str,
    issued_at: datetime,
    mechanism_name: str = MECHANISM_NAME,
) -> str:
    """The statement's text, for the caller to clearsign (every line without trailing
    spaces: a clearsigned text ignores them, so what is signed is what is shown)."""
    issuer = mechanism_name[:1].upper() + mechanism_name[1:]
    fields = [
        ("Statement format", STATEMENT_FORMAT),
        ("Package", package_code),
        ("Package SHA-256", package_sha256),
        ("Package size", f"{package_size} bytes"),
        ("Authority", authority),
        ("Request", rfa_reference),
        ("Decision", decision_id),
        ("Assembled by", assembled_by),
        ("Assembled at", format_datetime(assembled_at)),
        ("Released by", released_by),
        ("Released at", format_datetime(released_at)),
        ("Expires at", format_datetime(expires_at)),
        ("Signing key", signer_fingerprint),
        ("Issued at", format_datetime(issued_at)),
        ("Time source", _TIME_SOURCE),
    ]
    lines = [HEADING, ""]
    lines += [f"{name + ':':<18}{_line(value)}" for name, value in fields]
    code, released = _line(package_code), _line(released_by)
    lines += [
        "",
        f"{issuer} states that it released package {code}, the encrypted file",
        "whose SHA-256 is given above, to the authority named above. The package was",
        f"assembled by {_line(assembled_by)} and released by {released},",
        "a second legal officer: no package leaves on one officer's word alone.",
        "",
        "Check this statement's signature with the Mechanism's signing key and the",
        f"package file with: sha256sum {code}.tar.gpg (or: portal-verify, which checks both).",
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _assembled_at(db: Session, package: Package) -> datetime:
    """When the package was last assembled (its audit event), at the latest its release."""
    found = db.scalar(
        select(audit.AuditEvent.occurred_at)
        .where(
            audit.AuditEvent.action == "package.assembled",
            audit.AuditEvent.target == f"package:{package.code}",
        )
        .order_by(audit.AuditEvent.seq.desc())
        .limit(1)
    )
    return aware_utc(found or package.released_at)


def _text_for(db: Session, package: Package, fingerprint: str, moment: datetime) -> str:
    authority = db.get(Authority, package.authority_id)
    rfa = db.get(Rfa, package.rfa_id)
    assembler = db.get(User, package.assembled_by_id)
    releaser = db.get(User, package.released_by_id) if package.released_by_id else None
    if (
        authority is None
        or rfa is None
        or assembler is None
        or releaser is None
        or package.released_at is None
        or package.expires_at is None
        or package.file_sha256 is None
        or package.file_size is None
    ):
        raise StatementError(f"{package.code} has not been released; there is nothing to state")
    return statement_text(
        package_code=package.code,
        package_sha256=package.file_sha256,
        package_size=package.file_size,
        authority=f"{authority.name} ({authority.code}, {authority.country})",
        rfa_reference=rfa.code,
        decision_id=package.decision_id,
        assembled_by=assembler.display_name,
        assembled_at=_assembled_at(db, package),
        released_by=releaser.display_name,
        released_at=aware_utc(package.released_at),
        expires_at=aware_utc(package.expires_at),
        signer_fingerprint=fingerprint,
        issued_at=moment,
    )


def issue_statement(
    state: PortalState, db: Session, package: Package, *, now: datetime | None = None
) -> str:
    """Make, sign and store the package's release statement; its blob key (the existing one
    when already issued). Flushes; the caller commits. Raises :class:`StatementError`."""
    if package.release_statement_sha256:
        return package.release_statement_sha256
    settings = state.settings
    if settings.signing_key_file is None:
        raise StatementError("the Mechanism's signing key is not configured (PORTAL_SIGNING_KEY)")
    moment = aware_utc(now)

    def text_for(signer: Signer) -> str:
        refuse_example_key(signer.fingerprint, demo_or_test=settings.demo_or_test)
        return _text_for(db, package, signer.fingerprint, moment)

    issued = sign_and_store_once(
        state, db, package, Package.release_statement_sha256, text_for,
        what="release statement", error=StatementError,
    )  # fmt: skip
    if not issued.ours:
        return issued.key
    key = issued.key
    audit.record(
        db,
        audit.SYSTEM_ACTOR,
        "package.release_statement_issued",
        f"package:{package.code}",
        {"statement_sha256": key, "signer": issued.signer},
        now=moment,
    )
    return key


def issue_pending_statements(state: PortalState) -> int:
    """Issue every missing statement of a released package, one transaction each; how many
    were issued. Never raises: the recipient's page queues the job again."""
    issued = 0
    with state.sessions() as db:
        ids = db.scalars(
            select(Package.id)
            .where(Package.released_at.is_not(None), Package.release_statement_sha256.is_(None))
            .order_by(Package.id)
        ).all()
    for package_id in ids:
        with state.sessions() as db:
            package = db.get(Package, package_id)
            if package is None or package.release_statement_sha256:
                continue
            try:
                issue_statement(state, db, package)
                db.commit()
                issued += 1
            except StatementError as exc:
                db.rollback()
                logger.warning("release statement of %s not issued yet: %s", package_id, exc)
            except Exception:  # best effort after the release committed; the page asks again
                db.rollback()
                logger.exception("release statement of package %s not issued", package_id)
    return issued
