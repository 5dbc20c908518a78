"""The assembly pipeline: a queued package becomes one signed, encrypted file in the blob store.

Stages (each recorded on the package as ``stage`` and ``progress`` in short transactions, so
the package page shows them): load the facts and keys → a private staging directory → one
rendition per item (truly redacted by :func:`portal.redaction.renditions.redact`, or the
registered file as-is) → the format-aware leak check (PDF text, objects and metadata; image
metadata) of the payload files that have any → one pass over the payload bytes: the bag,
streamed as a tar through ``gpg --sign --encrypt`` (one keyring for the whole package),
hashed and searched for protected terms (raw bytes) as it passes, with a detached signature
over the ciphertext made from its hash kept as gpg writes it → meanwhile, in a worker process
forked for the package, the transmittal letter and the custody log → at the end of the tar the
documents, ``manifest.json`` and its detached signature (all leak-checked) → both files into
the blob store → one transaction that marks the package assembled. A leak-check hit anywhere
(payload, documents, manifest) stops the stream before gpg completes: gpg is killed, nothing is
kept or signed, and the package is blocked naming the files and mark codes (and the files
that could not be read). With no protected terms there is nothing to search and the report
says 0 files, 0 terms.

Protected identifiers: every package is also checked against the register, for the
identifiers withheld from its authority (``identifiers_withheld_from`` in
:mod:`portal.registry.identifiers`; unsealed here in the worker, never logged). They are
redacted from every text and PDF item like confirmed term marks (a mark named by the
identifier's code, reason "protected identifier"): from the items redacted anyway, and from
items planned as-is whose text names one, which are then redacted instead. They are also
leak-check terms for every file of the bag, so a file that cannot be redacted and names one
blocks the package, naming the file and the code. Their matcher is compiled once per package
(``_Job.identifiers``) and passed to every redactor. An item whose file name names one of them
(or a term of a mark in the package) goes into the bag as ``data/items/<item code>/item.<ext>``
(:mod:`portal.packages.assembly.payload_names`), so no member name, manifest entry, document,
reason or audit detail carries it.

Images shared as they are (JPEG and PNG with no box) whose metadata (EXIF, XMP, IPTC,
comments, PNG text) or bytes name a withheld identifier are released redacted instead: a new
image made from the pixels only (:mod:`portal.redaction.image` with no box). So are those
whose metadata carries a position or a place (EXIF GPS, XMP, IPTC, in any format Pillow reads:
:mod:`portal.redaction.positions`), when the package withholds any identifier: a position can
locate a person at risk, and no register entry can name it. Every redacted rendition, of any
format, is written without metadata. What was done to each item (marks and counts, per page
for PDFs; identifiers found; what was stripped; what blocked) is recorded on the package
item (:mod:`portal.packages.assembly.item_report`); the codes of the identifiers checked are
in the package's leak check (``identifiers``).

Concurrency and restarts: :func:`assemble_package` first *claims* the package (status
``assembling``, version + 1). Every later write is conditional on that version and status, so
a consent revocation that blocks the package meanwhile (or another worker that claimed it
again) wins: the run stops, leaves the package as it is and deletes the blobs it added. The
staging directory is always removed; blob store writes are atomic; the package is marked
assembled only in the last transaction, so a crash anywhere leaves nothing visible and a rerun
starts from scratch. A package already assembled (or released, blocked, ...) is left alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.consent.models import Consent
from portal.db import aware_utc, transaction, utcnow
from portal.eligibility.decisions import load_result
from portal.eligibility.models import Decision
from portal.integrity.damage import record_damage
from portal.integrity.full import ASSEMBLY_REASON as STORAGE_FULL_REASON
from portal.integrity.full import no_space
from portal.integrity.full import tell_admins as tell_admins_storage_full
from portal.integrity.uses import blob_uses
from portal.notifications import service as notifications
from portal.notifications.service import recipients_of_authority
from portal.packages import release_previews
from portal.packages.assembly.bag import (
    BagDigestMismatch,
    BagEntry,
    BagError,
    FileObserver,
    write_bag_tar,
)
from portal.packages.assembly.document_worker import Forked, document_pool
from portal.packages.assembly.evidence import Evidence, enrich, load_evidence, write_records
from portal.packages.assembly.facts import (
    MECHANISM_NAME,
    PROTECTED_IDENTIFIER_REASON,
    TIME_PROVIDER_DECLARED,
    ConsentFacts,
    CustodyEvent,
    DocumentEntry,
    ItemEntry,
    PackageFacts,
    RedactionSummary,
    Replacement,
)
from portal.packages.assembly.gpgstream import (
    GpgError,
    Recipient,
    Sealer,
    Signer,
    sealer,
)
from portal.packages.assembly.item_report import (
    GPS_REMOVED,
    ItemReport,
    MarkCount,
    stripped_for,
)
from portal.packages.assembly.payload_names import names_a_term, neutral_path
from portal.packages.assembly.timestamp import TimestampFailed, Tsa, load_tsa, time_stamp_files
from portal.packages.lifecycle import SHARED_OUTCOMES, STALLED_AFTER, replacing
from portal.packages.models import Package, PackageItem
from portal.pages.i18n import readers_language
from portal.redaction.leakcheck import (
    OCR_DOUBT,
    LeakFound,
    LeakHit,
    LeakReport,
    PixelReading,
    StreamingCheck,
    check_files,
)
from portal.redaction.matcher import MIN_TERM_LENGTH, Matcher
from portal.redaction.normalise import fold
from portal.redaction.ocr import OcrCache
from portal.redaction.positions import carries_position
from portal.redaction.renditions import (
    CannotRedact,
    MarkSpec,
    RedactionOutcome,
    base_media_type,
    redact,
)
from portal.registry.identifiers import identifiers_withheld_from
from portal.registry.keys import usable_keys
from portal.registry.mark_terms import term_of
from portal.registry.models import (
    Authority,
    Item,
    ItemPerson,
    Person,
    Provider,
    RedactionMark,
)
from portal.registry.openpgp import KeyRejected, inspect_public_key, refuse_example_key
from portal.registry.signing_keys import SigningKeyError, load_mechanism_signer
from portal.rfa.models import Rfa
from portal.sealing import Sealer as SecretSealer  # (gpgstream has a Sealer of its own)
from portal.sealing import SealingError
from portal.storage import BlobNotFound, DigestMismatch, file_sha256

if TYPE_CHECKING:
    from portal.state import PortalState
    from portal.transparency import EvidenceFile

__all__ = [
    "IMAGE_MEDIA_TYPES",
    "LETTER_PATH",
    "LOG_PATH",
    "REDACTED_WHEN_NAMED",
    "AssemblyFailed",
    "CannotPrepare",
    "assemble_package",
    "item_marks",
    "marks_of",
    "ocr_cache",
    "redaction_marks",
    "searchable",
    "withheld_marks",
]

logger = logging.getLogger(__name__)

LETTER_PATH = "data/transmittal-letter.pdf"
LOG_PATH = "data/custody-and-redaction-log.pdf"
_RESTARTABLE = ("queued", "failed", "assembling")
_STAGE_LENGTH = 64
_STREAM_STAGE = "bagging, signing and encrypting"
_DOCUMENTS_STAGE = "adding the letter, custody log and manifest"
_DOCUMENT_KINDS: tuple[Literal["letter", "log"], ...] = ("letter", "log")  # _document_files
_PROGRESS_INTERVAL = 1.0  # seconds between progress writes while streaming
#: Media types whose text the redactor searches for terms (protected identifiers included).
_TEXT_MEDIA_TYPES = ("text/plain", "application/pdf")
#: Media types shared as-is that are made again from their pixels when their metadata or
#: bytes name a withheld identifier (or, when any is withheld, they carry a GPS position).
_IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png")
_WITNESS_PROTECTION_RULE = "witness-protection"
#: Media types planned as-is that are redacted instead when they name a withheld identifier.
REDACTED_WHEN_NAMED = frozenset((*_TEXT_MEDIA_TYPES, *_IMAGE_MEDIA_TYPES))
#: Media types planned as-is that are made again from their pixels when they carry a position
#: (only when the package withholds identifiers).
IMAGE_MEDIA_TYPES = frozenset(_IMAGE_MEDIA_TYPES)


class AssemblyFailed(Exception):
    """The package ended failed or blocked; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Failure(Exception):
    """A stated reason to mark the package failed (with what was done to each item, when
    that is what the officer must act on)."""

    def __init__(self, reason: str, reports: dict[int, ItemReport] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reports = reports


class CannotPrepare(_Failure):
    """The marks of an item or the protected identifiers cannot be used as assembly uses them
    (a term that cannot be opened, a mark gone since the decision); ``reason`` says why, by
    codes only. Assembly marks the package failed with it; a preview records it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


class _Damaged(_Failure):
    """A stored source file no longer hashes to the sha256 registered for it (bit rot,
    tampering): nothing made from it may be signed or sent, and the admins must know."""

    def __init__(self, item_code: str, sha256: str) -> None:
        super().__init__(
            f"The stored file of {item_code} is damaged: its bytes no longer match the sha256 "
            "registered for it, so nothing made from it was signed or sent. The administrators "
            "have been alerted; the file must be restored from a backup before it is shared."
        )
        self.item_code = item_code
        self.sha256 = sha256


class _StorageFull(_Failure):
    """A write met a full disk or quota (see :mod:`portal.integrity.full`): not retried."""

    def __init__(self) -> None:
        super().__init__(STORAGE_FULL_REASON)


def _failure_of(exc: Exception) -> _Failure | None:
    """How ``exc`` fails the package: a full disk (however it was wrapped) as
    :class:`_StorageFull`, a reported failure as itself; None for the unexpected (retried)."""
    if no_space(exc):
        return _StorageFull()
    return exc if isinstance(exc, _Failure) else None


class _Stopped(Exception):
    """The package is no longer ours (blocked by a revocation, or claimed again)."""


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class _ItemJob:
    package_item_id: int
    code: str
    title: str
    kind: str
    provider: str
    media_type: str
    source_sha256: str
    rendition: str
    path: str
    marks: tuple[MarkSpec, ...]
    consent: ConsentFacts | None
    registered_at: datetime
    collected_on: date | None
    original_filename: str = ""
    # codes of the item's term marks a legal officer checked by eye (they may match nothing)
    checked_by_eye: frozenset[str] = frozenset()
    # a legal officer read the item where OCR cannot be trusted (its doubts are accepted)
    pixels_checked: bool = False
    # the item names a person at risk no mark of it protects: only the register does
    only_register: bool = False


@dataclass(frozen=True)
class _Job:
    package_id: int
    version: int
    code: str
    facts: PackageFacts
    items: tuple[_ItemJob, ...]
    recipients: tuple[Recipient, ...]
    signer: Signer
    moment: datetime
    evidence: Evidence  # the decision record's facts, mark officers, index facts
    # Registered identifiers that must not reach the authority, as term marks (the value is
    # the term: kept in memory only), and their matcher, compiled once for the package (None
    # when there are none).
    withheld: tuple[MarkSpec, ...] = ()
    identifiers: Matcher | None = None
    tsa: Tsa | None = None  # time-stamps the manifest signature when configured


@dataclass
class _Built:
    """What the run has made so far."""

    entries: list[BagEntry] = field(default_factory=list)
    items: list[ItemEntry] = field(default_factory=list)
    terms: list[tuple[str, str]] = field(default_factory=list)
    # (package item id, rendition sha256, path, redactions, rendition)
    item_updates: list[tuple[int, str, str, int, str]] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    # package item id -> what was done to it; bag path -> package item id
    reports: dict[int, ItemReport] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)
    # package item id -> pages (frames) of its rendition whose terms were found with OCR
    read_with_ocr: dict[int, tuple[int, ...]] = field(default_factory=dict)


def _mark_spec(sealer: SecretSealer, mark: RedactionMark, item_code: str) -> MarkSpec:
    """The mark as the redactor takes it, its term opened (in this worker, never logged)."""
    try:
        term = term_of(sealer, mark, item_code)
    except SealingError as exc:  # names the mark's purpose and the key file, never the term
        raise CannotPrepare(
            f"The term of mark {mark.code} of {item_code} cannot be read: {exc}."
        ) from None
    box = None
    if mark.x0 is not None and mark.y0 is not None and mark.x1 is not None and mark.y1 is not None:
        box = (mark.x0, mark.y0, mark.x1, mark.y1)
    span = None
    if mark.span_start is not None and mark.span_end is not None:
        span = (mark.span_start, mark.span_end)
    return MarkSpec(
        code=mark.code,
        kind=mark.kind,  # type: ignore[arg-type]  # checked by the table's constraint
        reason=mark.reason,
        term=term,
        span=span,
        page=mark.page,
        box=box,
    )


def marks_of(
    sealer: SecretSealer,
    item_code: str,
    codes: Sequence[str],
    marks: Mapping[str, RedactionMark],
) -> tuple[MarkSpec, ...]:
    """The marks ``codes`` (a decision's marks for the item, in its order) of the item's
    ``marks`` (by code) as the redactor takes them; CannotPrepare when one no longer exists or
    its term cannot be read."""
    missing = [code for code in codes if code not in marks]
    if missing:
        raise CannotPrepare(
            f"Redaction mark {missing[0]} of {item_code} no longer exists; run the "
            "eligibility check again."
        )
    return tuple(_mark_spec(sealer, marks[code], item_code) for code in codes)


def item_marks(
    db: Session, sealer: SecretSealer, decision: Decision, item: Item
) -> tuple[MarkSpec, ...]:
    """The item's own marks that assembly applies under ``decision`` (without the withheld
    identifiers: see :func:`redaction_marks`); CannotPrepare when the decision does not share
    the item, or as :func:`marks_of`."""
    result = next((r for r in load_result(decision).items if r.item_id == item.id), None)
    if result is None or result.outcome not in SHARED_OUTCOMES:
        raise CannotPrepare(f"The decision does not share {item.code}.")
    marks = {
        mark.code: mark
        for mark in db.scalars(select(RedactionMark).where(RedactionMark.item_id == item.id))
    }
    return marks_of(sealer, item.code, result.marks, marks)


def _load_signer(state: PortalState) -> Signer:
    settings = state.settings
    if settings.signing_key_file is None:
        raise _Failure(
            "No signing key is configured (set PORTAL_SIGNING_KEY and "
            "PORTAL_SIGNING_PASSPHRASE_FILE); packages cannot be signed."
        )
    try:
        with state.sessions() as db:  # the history decides which key signs (after rotations)
            return load_mechanism_signer(settings, db)
    except SigningKeyError as exc:
        raise _Failure(f"The signing key cannot be used: {exc}") from None


def _recipients(
    state: PortalState, db: Session, authority: Authority, moment: datetime
) -> tuple[Recipient, ...]:
    demo_or_test = state.settings.demo_or_test
    recipients = []
    for key in usable_keys(db, authority.id, moment):
        try:
            refuse_example_key(key.fingerprint, demo_or_test=demo_or_test)
        except KeyRejected:
            continue
        recipients.append(Recipient(key.fingerprint, key.armored))
    if not recipients:
        raise _Failure(
            f"{authority.name} has no verified, current OpenPGP key; import its key and record "
            "the out-of-band verification first."
        )
    archive = state.settings.archive_key_file
    if archive is not None:
        try:
            armored = archive.read_text(encoding="utf-8")
            info = inspect_public_key(armored, now=moment)
            refuse_example_key(info.fingerprint, demo_or_test=demo_or_test)
        except OSError as exc:
            raise _Failure(f"The archive key file cannot be read: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, KeyRejected) else "not an armored key"
            raise _Failure(f"The archive key cannot be used: {reason}") from None
        if info.fingerprint not in {r.fingerprint for r in recipients}:
            recipients.append(Recipient(info.fingerprint, armored))
    return tuple(recipients)


def _consents(db: Session, ids: set[int]) -> dict[int, ConsentFacts]:
    found = {}
    for consent in db.scalars(select(Consent).where(Consent.id.in_(ids or {0}))):
        found[consent.id] = ConsentFacts(
            event_code=consent.code,
            kind="standing" if consent.item_id is None else "item",
            granted_at=consent.recorded_at,
            expires_at=consent.expires_at,
            conditions=consent.conditions or "",
        )
    return found


def _item_jobs(
    db: Session, sealer: SecretSealer, package: Package, decision: Decision
) -> tuple[_ItemJob, ...]:
    results = {result.item_id: result for result in load_result(decision).items}
    rows = db.execute(
        select(PackageItem, Item, Provider)
        .join(Item, Item.id == PackageItem.item_id)
        .join(Provider, Provider.id == Item.provider_id)
        .where(PackageItem.package_id == package.id)
        .order_by(Item.code)
    ).all()
    if not rows:
        raise _Failure("The package has no items.")
    marks: dict[int, dict[str, RedactionMark]] = defaultdict(dict)
    for mark in db.scalars(
        select(RedactionMark).where(RedactionMark.item_id.in_([item.id for _, item, _ in rows]))
    ):
        marks[mark.item_id][mark.code] = mark
    consents = _consents(db, {pi.consent_id for pi, _, _ in rows if pi.consent_id is not None})
    at_risk: dict[int, set[int]] = defaultdict(set)
    for item_id, person_id in db.execute(
        select(ItemPerson.item_id, ItemPerson.person_id)
        .join(Person, Person.id == ItemPerson.person_id)
        .where(Person.at_risk, ItemPerson.item_id.in_([item.id for _, item, _ in rows]))
    ):
        at_risk[item_id].add(person_id)
    jobs = []
    for package_item, item, provider in rows:
        result = results.get(item.id)
        if result is None or result.outcome not in SHARED_OUTCOMES:
            raise _Failure(f"The decision no longer shares {item.code}; make a new package.")
        specs = marks_of(sealer, item.code, result.marks, marks[item.id])
        jobs.append(
            _ItemJob(
                package_item_id=package_item.id,
                code=item.code,
                title=item.title,
                kind=item.kind,
                provider=provider.name_for_authorities,
                media_type=item.media_type,
                source_sha256=item.sha256,
                rendition=package_item.rendition,
                path=package_item.path,
                marks=specs,
                checked_by_eye=frozenset(
                    code for code in result.marks if marks[item.id][code].checked_by_eye_at
                ),
                pixels_checked=item.pixels_checked_at is not None,
                only_register=bool(
                    at_risk[item.id] - {marks[item.id][code].person_id for code in result.marks}
                ),
                consent=consents.get(package_item.consent_id or 0),
                registered_at=item.created_at,
                collected_on=item.collected_at,
                original_filename=item.original_filename,
            )
        )
    return tuple(jobs)


def withheld_marks(
    state: PortalState, db: Session, authority: Authority, moment: datetime
) -> tuple[MarkSpec, ...]:
    """The identifiers withheld from ``authority``, as term marks (see the module notes);
    capacity is judged now, with the witness-protection rule's ``max_age``."""
    try:
        max_age = state.policy.rule(_WITNESS_PROTECTION_RULE).params.get("max_age")
    except KeyError:
        max_age = None
    try:
        withheld = identifiers_withheld_from(
            db,
            state.sealer,
            authority,
            now=moment,
            max_age=max_age if isinstance(max_age, timedelta) else None,
        )
    except SealingError as exc:  # names the key file or a code, never a value
        raise CannotPrepare(f"The protected identifiers could not be read: {exc}.") from None
    return tuple(
        MarkSpec(code=code, kind="term", reason=PROTECTED_IDENTIFIER_REASON, term=value)
        for code, value in withheld
    )


def _load(state: PortalState, package_id: int, version: int, moment: datetime) -> _Job:
    signer = _load_signer(state)
    try:
        tsa = load_tsa(state.settings)
    except TimestampFailed as exc:
        raise _Failure(exc.reason) from None
    with transaction(state.sessions) as db:
        package = db.get(Package, package_id)
        if package is None:
            raise _Failure("The package no longer exists.")
        rfa = db.get(Rfa, package.rfa_id)
        authority = db.get(Authority, package.authority_id)
        decision = db.get(Decision, package.decision_id)
        officer = db.get(User, package.assembled_by_id)
        if rfa is None or authority is None or decision is None or officer is None:
            raise _Failure("The package's request, authority, decision or officer is missing.")
        recipients = _recipients(state, db, authority, moment)
        withheld = withheld_marks(state, db, authority, moment)
        items = _item_jobs(db, state.sealer, package, decision)
        facts = PackageFacts(
            code=package.code,
            created_at=package.created_at,
            rfa_reference=rfa.code,
            authority_reference=rfa.their_reference,
            authority_code=authority.code,
            authority_name=authority.name,
            authority_country=authority.country,
            decision_id=decision.id,
            policy_id=decision.policy_id,
            policy_revision=decision.policy_revision,
            engine_version=decision.engine_version,
            decided_at=decision.created_at,
            signer_fingerprint=signer.fingerprint,
            recipient_fingerprints=tuple(r.fingerprint for r in recipients),
            assembled_by=officer.display_name,
            mechanism_name=MECHANISM_NAME,
            replaces=_replacement(db, package),
            language=readers_language(recipients_of_authority(db, authority.id)),
        )
        identifiers = searchable(withheld)
        items = _unnamed(items, identifiers)
        hidden = [identifiers, searchable([mark for item in items for mark in item.marks])]
        evidence = load_evidence(db, package.code, decision, [i.code for i in items], hidden)
        return _Job(
            package_id,
            version,
            package.code,
            facts,
            items,
            recipients,
            signer,
            moment,
            evidence,
            withheld,
            identifiers,
            tsa,
        )


def _replacement(db: Session, package: Package) -> Replacement | None:
    """What the manifest says of the package this one replaces (None: it replaces none)."""
    found = replacing(db, package)
    if found is None:
        return None
    return Replacement(found.replaced.code, found.items_left_out)


def searchable(marks: Sequence[MarkSpec]) -> Matcher | None:
    """One matcher of the term marks long enough to search for (None when there are none):
    a term too short is refused later, by the redactor or the leak check, naming its code."""
    terms = [
        (mark.code, mark.term)
        for mark in marks
        if mark.kind == "term" and mark.term and len(fold(mark.term)) >= MIN_TERM_LENGTH
    ]
    return Matcher(terms) if terms else None


def _unnamed(items: tuple[_ItemJob, ...], identifiers: Matcher | None) -> tuple[_ItemJob, ...]:
    """The items, those whose file name names a withheld identifier or a term of a mark in
    the package renamed after their item code (see :mod:`.payload_names`)."""
    matchers = [identifiers, searchable([mark for item in items for mark in item.marks])]
    found = [matcher for matcher in matchers if matcher is not None]
    if not found:
        return items
    renamed = []
    for item in items:
        names = (item.original_filename, item.path.rpartition("/")[2])
        for matcher in found:
            if names_a_term(matcher, *names):
                item = replace(item, path=neutral_path(matcher, item.path, item.code))
        renamed.append(item)
    return tuple(renamed)


# --------------------------------------------------------------------------- package row


def _alive(state: PortalState, updated_at: datetime) -> bool:
    """Whether a run "assembling" showed a sign of life within the watcher's grace (see
    :mod:`portal.packages.assembly.watch`): a duplicate job (a lost job queued again) leaves
    it alone; only the watcher takes over a run that missed its heartbeats."""
    from portal.packages.assembly.watch import MISSED_BEATS

    grace = timedelta(seconds=MISSED_BEATS * state.settings.worker_heartbeat)
    return aware_utc(updated_at) > utcnow() - grace


def _let_go(state: PortalState, package_id: int, version: int) -> None:
    """After an unexpected error: this run is over, so its heartbeat no longer holds the
    package (Huey's retry, or the watcher, may claim it at once)."""
    from portal.packages.assembly.watch import MISSED_BEATS

    gone = utcnow() - timedelta(seconds=(MISSED_BEATS + 1) * state.settings.worker_heartbeat)
    try:
        with transaction(state.sessions) as db:
            db.execute(
                update(Package)
                .where(_ours(package_id, version))
                .values(stage="stopped by an unexpected error", updated_at=gone)
                .execution_options(synchronize_session=False)
            )
    except Exception:  # the database may be what failed: the watcher finds the run later
        logger.warning("Could not let go of package %s after an error", package_id)


def _claim(state: PortalState, package_id: int) -> int | None:
    """Take the package for this run (version + 1); None when there is nothing to do."""
    with transaction(state.sessions) as db:
        row = db.execute(
            select(Package.status, Package.version, Package.code, Package.updated_at).where(
                Package.id == package_id
            )
        ).one_or_none()
        if row is None:
            raise AssemblyFailed(f"There is no package with id {package_id}.")
        status, version, code, updated_at = row
        if status not in _RESTARTABLE or (status == "assembling" and _alive(state, updated_at)):
            return None  # done, or another run is alive: a second job must not restart it
        audit.lock_chain(db)  # one lock order everywhere: chain, then package row (issue 8)
        result = db.execute(
            update(Package)
            .where(Package.id == package_id, Package.version == version, Package.status == status)
            .values(
                status="assembling",
                stage="starting",
                progress=0,
                failure_reason=None,
                leak_check=None,
                file_sha256=None,
                file_size=None,
                signer_fingerprint=None,
                signature_sha256=None,
                version=version + 1,
                attempts=Package.attempts + 1,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            return None
        db.execute(  # what an earlier run did is not what this one will do
            update(PackageItem)
            .where(PackageItem.package_id == package_id)
            .values(report=None)
            .execution_options(synchronize_session=False)
        )
        audit.record(
            db, audit.SYSTEM_ACTOR, "package.assembly_started", f"package:{code}", {"was": status}
        )
        return int(version) + 1


def _ours(package_id: int, version: int) -> Any:
    return (
        (Package.id == package_id) & (Package.version == version) & (Package.status == "assembling")
    )


def _progress(state: PortalState, job_id: int, version: int, stage: str, percent: int) -> None:
    """Record the stage and the time (no version change, so concurrent revocations are never
    refused); raise _Stopped when the package is no longer ours."""
    with transaction(state.sessions) as db:
        result = db.execute(
            update(Package)
            .where(_ours(job_id, version))
            # updated_at doubles as the heartbeat that tells a live run from a lost one
            # (portal.packages.lifecycle.stalled).
            .values(
                stage=stage[:_STAGE_LENGTH],
                progress=max(0, min(percent, 99)),
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            raise _Stopped


def _end(
    state: PortalState,
    package_id: int,
    version: int,
    status: str,
    reason: str,
    leak_check: dict[str, Any] | None = None,
    reports: dict[int, ItemReport] | None = None,
) -> bool:
    """Mark the package failed or blocked (only if still ours), with what was done to each
    item when known; audited."""
    with transaction(state.sessions) as db:
        audit.lock_chain(db)  # chain, then package row (see _claim)
        result = db.execute(
            update(Package)
            .where(_ours(package_id, version))
            .values(
                status=status,
                stage=status if status == "failed" else "blocked: leak check",
                failure_reason=reason[:2000],
                leak_check=leak_check,
                version=version + 1,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            return False
        _write_reports(db, reports or {})
        code = db.scalar(select(Package.code).where(Package.id == package_id))
        details: dict[str, object] = {"reason": reason[:500]}
        if leak_check is not None:
            details["leak_check"] = leak_check
        audit.record(db, audit.SYSTEM_ACTOR, f"package.{status}", f"package:{code}", details)
        return True


def _status(state: PortalState, package_id: int) -> str | None:
    with transaction(state.sessions) as db:
        return db.scalar(select(Package.status).where(Package.id == package_id))


# --------------------------------------------------------------------------- the work


def _summaries(outcome: RedactionOutcome) -> tuple[RedactionSummary, ...]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for applied in outcome.applied:
        counts[(applied.kind, applied.reason)] += applied.occurrences
    return tuple(
        RedactionSummary(kind=kind, reason=reason, count=count)
        for (kind, reason), count in counts.items()
        if count > 0
    )


def _custody(
    job: _Job, item: _ItemJob, redactions: int, rendition: str
) -> tuple[CustodyEvent, ...]:
    events = []
    if item.collected_on is not None:
        collected = datetime.combine(item.collected_on, clock_time(), tzinfo=UTC)
        events.append(
            CustodyEvent(collected, "collected", item.provider, time_source=TIME_PROVIDER_DECLARED)
        )
    events.append(
        CustodyEvent(
            item.registered_at,
            "registered",
            job.facts.mechanism_name,
            f"sha256 {item.source_sha256}",
        )
    )
    if item.consent is not None:
        events.append(
            CustodyEvent(
                item.consent.granted_at,
                "consent to share granted",
                item.provider,
                f"consent {item.consent.event_code}",
            )
        )
    if rendition == "redacted":
        events.append(
            CustodyEvent(
                job.moment,
                "redacted rendition made",
                "the portal (automatic true redaction)",
                f"{redactions} redaction(s) applied",
            )
        )
    events.append(
        CustodyEvent(job.moment, "packaged", job.facts.assembled_by, f"package {job.code}")
    )
    return tuple(events)


def _rendition_path(path: str, suffix: str) -> str:
    directory, _, name = path.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{directory}/{stem or 'rendition'}{suffix}"


def _found_before(state: PortalState, job: _Job) -> dict[str, tuple[tuple[str, str], ...]]:
    """The items planned as-is that are text, PDFs or images naming a withheld identifier
    (they are redacted instead): item code -> (identifier code, layer) found; one
    leak-check pass over all of them."""
    kinds = (*_TEXT_MEDIA_TYPES, *_IMAGE_MEDIA_TYPES)
    candidates = {
        item.path: item
        for item in job.items
        if item.rendition == "as_is" and base_media_type(item.media_type) in kinds
    }
    if not job.withheld or not candidates:
        return {}
    files = [(path, state.blobs.path(item.source_sha256)) for path, item in candidates.items()]
    try:
        found = check_files(
            files,
            [(mark.code, mark.term or "") for mark in job.withheld],
            pixels=PixelReading(
                ocr_cache(state),
                frozenset(path for path, item in candidates.items() if item.pixels_checked),
            ),
        )
    except ValueError as exc:
        raise _Failure(f"The leak check could not run: {exc}") from None
    by_item: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for hit in found.hits:
        by_item[candidates[hit.path].code].add((hit.mark_code, hit.where))
    return {code: tuple(sorted(hits)) for code, hits in by_item.items()}


def _gps_withheld(job: _Job, item: _ItemJob, source: Path) -> bool:
    """Whether an image planned as-is carries a position or place (EXIF GPS, XMP, IPTC: see
    :mod:`portal.redaction.positions`) that must not leave: only when the package withholds
    identifiers (see the module notes)."""
    return (
        bool(job.withheld)
        and item.rendition == "as_is"
        and base_media_type(item.media_type) in _IMAGE_MEDIA_TYPES
        and carries_position(source)
    )


def _refuse_position_kept(job: _Job, item: _ItemJob, source: Path) -> None:
    """Fail the package when an image the portal cannot remake (TIFF, WebP...: only JPEG and
    PNG are) is shared as-is with a position or place in its metadata while the package
    withholds identifiers: its position would leave with it."""
    media_type = base_media_type(item.media_type)
    if (
        job.withheld
        and item.rendition == "as_is"
        and media_type.startswith("image/")
        and media_type not in _IMAGE_MEDIA_TYPES
        and carries_position(source)
    ):
        raise _Failure(
            f"{item.code} ({media_type}) carries a position or place in its metadata, which "
            "must not reach this authority, and the portal cannot remake that format without "
            "it: register a JPEG or PNG copy of the image instead."
        )


def _item_report(
    job: _Job,
    item: _ItemJob,
    outcome: RedactionOutcome | None,
    found: tuple[tuple[str, str], ...],
    gps: bool,
) -> ItemReport:
    """What was done to the item: marks applied (the item's own, and the withheld
    identifiers that were found), identifiers found before, what the rendition strips."""
    if outcome is None:
        return ItemReport(found=found, pixels_checked_by_eye=item.pixels_checked)
    stripped = stripped_for(base_media_type(item.media_type))
    withheld = {mark.code for mark in job.withheld}
    marks = tuple(
        MarkCount(applied.code, applied.kind, applied.reason, applied.occurrences, applied.pages)
        for applied in outcome.applied
        if applied.occurrences > 0 or applied.code not in withheld
    )
    own_terms = {mark.code for mark in item.marks if mark.kind == "term"}
    nothing = [a.code for a in outcome.applied if a.code in own_terms and a.occurrences == 0]
    unmatched = tuple(code for code in nothing if code not in item.checked_by_eye)
    return ItemReport(
        marks=marks,
        found=found,
        stripped=(*stripped, GPS_REMOVED) if gps else stripped,
        blocked=tuple(f"mark {code} matched nothing: {_CHECK_BY_EYE}" for code in unmatched),
        unmatched=unmatched,
        checked_by_eye=tuple(code for code in nothing if code in item.checked_by_eye),
        pixels_checked_by_eye=item.pixels_checked,
    )


_CHECK_BY_EYE = "a legal officer must read the item and record that the term does not occur in it"


def _refuse_unmatched_marks(job: _Job, built: _Built) -> None:
    """Fail the package when a confirmed term mark of an item matched nothing in it and no
    legal officer has checked by eye: the term may be written in a way the matcher does not
    see (a scan, a spelling), and a redaction that silently did nothing must not ship."""
    codes = {item.package_item_id: item.code for item in job.items}
    missed = [
        f"mark {mark} was not found in {codes[package_item_id]}"
        for package_item_id, item_report in built.reports.items()
        for mark in item_report.unmatched
    ]
    if missed:
        raise _Failure(
            "Confirmed redaction marks matched nothing: "
            + "; ".join(missed)
            + ". Read each item, record a check by eye for each mark on this page, then retry.",
            dict(built.reports),
        )


def _refuse_unread_ocr_protection(job: _Job, built: _Built) -> None:
    """Fail the package when an item names a person at risk whom no mark of it protects (the
    eligibility decision let the register protect them) and some of its pages were searched
    with OCR, until a legal officer has read the item: OCR can misread a name, and the leak
    check reads with the same OCR, so nothing else would notice."""
    unread = [
        (item, built.read_with_ocr[item.package_item_id])
        for item in job.items
        if job.withheld
        and item.only_register
        and not item.pixels_checked
        and item.package_item_id in built.read_with_ocr
    ]
    if not unread:
        return
    for item, pages in unread:
        shown = ", ".join(map(str, pages[:10])) + (" ..." if len(pages) > 10 else "")
        line = (
            f"{OCR_DOUBT} pages {shown}: they name a person at risk whom only the register "
            "protects; a legal officer must read them"
        )
        report = built.reports[item.package_item_id]
        built.reports[item.package_item_id] = replace(
            report, blocked=(*report.blocked, line), ocr_doubt=True
        )
    raise _Failure(
        "Read with OCR, which can miss a name, and protected by the register only: "
        + ", ".join(item.code for item, _ in unread)
        + ". Read each item, record a check by eye on this page, then retry.",
        dict(built.reports),
    )


def _refuse_doubtful_pixels(built: _Built, leak: LeakReport) -> None:
    """Fail the package (a retry can follow) when all the leak check could not pass is pixels
    OCR cannot be trusted on, in items no legal officer has read yet: reading them by eye is
    the way forward, not a new package. Anything found, or unreadable otherwise, blocks."""
    doubts = [(path, reason) for path, reason in leak.unchecked if OCR_DOUBT in reason]
    if not doubts or leak.hits or len(doubts) < len(leak.unchecked):
        return
    named = sorted({path for path, _ in doubts})
    raise _Failure(
        "OCR cannot be trusted on some pixels of: "
        + ", ".join(named)
        + ". Read each item, record a check by eye on this page, then retry.",
        _blocked_reports(built, leak),
    )


def _item_marks(job: _Job, item: _ItemJob) -> tuple[MarkSpec, ...]:
    return redaction_marks(item.media_type, item.marks, job.withheld)


def redaction_marks(
    media_type: str, marks: tuple[MarkSpec, ...], withheld: tuple[MarkSpec, ...]
) -> tuple[MarkSpec, ...]:
    """What the redactor is given for an item: its own marks, and for text, PDFs and images
    (their pixels read with OCR) the withheld identifiers."""
    if base_media_type(media_type) in (*_TEXT_MEDIA_TYPES, *_IMAGE_MEDIA_TYPES):
        return marks + withheld
    return marks


def ocr_cache(state: PortalState) -> OcrCache:
    """Where pages read with OCR are kept, sealed with the portal's key."""
    return OcrCache(state.settings.ocr_cache_dir, state.sealer)


def _verify_source(state: PortalState, item: _ItemJob) -> None:
    """Re-hash the stored source of ``item`` before a rendition is made from it: a flipped bit
    would otherwise ship as verified evidence under the original's sha256."""
    try:
        state.blobs.verify(item.source_sha256)
    except DigestMismatch:
        raise _Damaged(item.code, item.source_sha256) from None
    except BlobNotFound:
        raise _Failure(f"The stored file of {item.code} is missing from the blob store.") from None


def _render_items(
    state: PortalState, job: _Job, stage: Path, built: _Built, report: Callable[[str, int], None]
) -> None:
    count = len(job.items)
    built.terms.extend((mark.code, mark.term or "") for mark in job.withheld)
    found_before = _found_before(state, job)
    for index, item in enumerate(job.items):
        report(f"rendering {item.code} ({index + 1}/{count})", 5 + (45 * index) // count)
        source = state.blobs.path(item.source_sha256)
        if not source.is_file():
            raise _Failure(f"The stored file of {item.code} is missing from the blob store.")
        found = found_before.get(item.code, ())
        _refuse_position_kept(job, item, source)
        gps = _gps_withheld(job, item, source)
        rendition = "redacted" if found or gps else item.rendition
        outcome: RedactionOutcome | None = None
        if rendition == "redacted":
            _verify_source(state, item)  # as-is files are checked as they stream into the bag
            dest = stage / "items" / item.code / "rendition"
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                outcome = redact(
                    source,
                    item.media_type,
                    _item_marks(job, item),
                    dest,
                    matcher=job.identifiers,
                    ocr_cache=ocr_cache(state),
                )
            except CannotRedact as exc:
                raise _Failure(f"{item.code} cannot be redacted: {exc.reason}") from None
            digest, size = file_sha256(dest)
            path = _rendition_path(item.path, outcome.suffix)
            redactions = _summaries(outcome)
            built.entries.append(BagEntry(path, dest, digest))
            built.terms.extend(outcome.protected_terms)
            media_type = outcome.media_type
        else:
            digest, size, path, redactions = (
                item.source_sha256,
                source.stat().st_size,
                item.path,
                (),
            )
            built.entries.append(BagEntry(path, source, item.source_sha256))
            built.terms.extend(
                (mark.code, mark.term) for mark in item.marks if mark.kind == "term" and mark.term
            )
            media_type = base_media_type(item.media_type)
        total = sum(summary.count for summary in redactions)
        built.item_updates.append((item.package_item_id, digest, path, total, rendition))
        built.reports[item.package_item_id] = _item_report(job, item, outcome, found, gps)
        if outcome is not None and outcome.read_with_ocr:
            built.read_with_ocr[item.package_item_id] = outcome.read_with_ocr
        built.paths[path] = item.package_item_id
        entry = ItemEntry(
            code=item.code,
            title=item.title,
            kind=item.kind,
            provider=item.provider,
            source_sha256=item.source_sha256,
            source_media_type=base_media_type(item.media_type),
            rendition=rendition,
            path=path,
            sha256=digest,
            size=size,
            media_type=media_type,
            redactions=redactions,
            consent=item.consent,
            custody=_custody(job, item, total, rendition),
        )
        report_ = built.reports[item.package_item_id]
        built.items.append(enrich(job.evidence, entry, report_, _item_marks(job, item)))


@dataclass(frozen=True)
class _Documents:
    """The letter, custody log, manifest and its signature, ready to go into the bag."""

    entries: tuple[BagEntry, ...]
    leak: LeakReport | None  # None when there are no protected terms to search for


def _documents(
    job: _Job,
    stage: Path,
    items: Sequence[ItemEntry],
    terms: Sequence[tuple[str, str]],
    seal: Sealer,
    rendered: Forked[list[str]],
    evidence: Sequence[EvidenceFile] = (),
) -> _Documents:
    """Wait for the letter and log (made by a worker process, see document_worker), build
    and sign the manifest, leak-check them all; the entries and the documents' leak report."""
    from portal.packages.assembly.manifest import (
        MANIFEST_PATH,
        SIGNATURE_PATH,
        ManifestInvalid,
        build_manifest,
        manifest_bytes,
    )
    from portal.redaction.leakcheck import check_files

    try:
        # A run waiting longer than this counts as lost anyway (lifecycle.stalled) and may
        # already have been retried: its worker is stopped and this run fails.
        titles = rendered.result(timeout=STALLED_AFTER.total_seconds())
    except (OSError, ValueError, RuntimeError) as exc:
        raise _Failure(f"The package documents could not be made: {exc}") from None
    documents, entries = [], []
    for (path, source), title in zip(_document_files(stage), titles, strict=True):
        digest, size = file_sha256(source)
        documents.append(DocumentEntry(path, title, digest, size, "application/pdf"))
        entries.append(BagEntry(path, source, digest))
    for extra in evidence:  # the transparency log's (portal.transparency)
        digest, size = file_sha256(extra.source)
        documents.append(DocumentEntry(extra.path, extra.title, digest, size, extra.media_type))
        entries.append(BagEntry(extra.path, extra.source, digest))
    try:
        records, record_files = write_records(stage, job.evidence, items, seal.detached_signature)
    except GpgError as exc:
        raise _Failure(f"The decision record could not be signed: {exc}") from None
    try:
        manifest = build_manifest(job.facts, items, documents, records)
    except ManifestInvalid as exc:
        raise _Failure("The manifest does not validate: " + "; ".join(exc.errors[:5])) from None
    manifest_file, signature_file = stage / "manifest.json", stage / "manifest.json.asc"
    manifest_file.write_bytes(manifest_bytes(manifest))
    try:
        signature_file.write_bytes(seal.detached_signature(manifest_file))
    except GpgError as exc:
        raise _Failure(f"The manifest could not be signed: {exc}") from None
    signed = [*record_files, (MANIFEST_PATH, manifest_file), (SIGNATURE_PATH, signature_file)]
    try:  # the TSA's reply over the signature, and its CA certificates (when configured)
        signed += time_stamp_files(job.tsa, signature_file, stage) if job.tsa else []
    except TimestampFailed as exc:
        raise _Failure(f"The manifest signature could not be time-stamped: {exc.reason}") from None
    entries.extend(BagEntry(path, source, file_sha256(source)[0]) for path, source in signed)
    checked = [*_document_files(stage), *signed, *((e.path, e.source) for e in evidence)]
    return _Documents(tuple(entries), check_files(checked, terms) if terms else None)


def _transparency(state: PortalState, job: _Job, seal: Sealer, stage: Path) -> list[EvidenceFile]:
    """The package's events in the transparency log, under a checkpoint signed here."""
    from portal.transparency import CheckpointSigner, TransparencyError, package_evidence

    signer = CheckpointSigner(job.signer.fingerprint, seal.detached_signature)
    try:
        return package_evidence(state, job.code, job.facts.decision_id, signer, stage)
    except TransparencyError as exc:
        raise _Failure(f"The transparency log evidence could not be made: {exc}") from None


def _document_files(stage: Path) -> list[tuple[str, Path]]:
    return [
        (LETTER_PATH, stage / "transmittal-letter.pdf"),
        (LOG_PATH, stage / "custody-and-redaction-log.pdf"),
    ]


class _DocumentsLeak(Exception):
    """A package document holds a protected term (or could not be read): stop the stream."""


def _streaming_check(state: PortalState, job: _Job, built: _Built) -> StreamingCheck:
    """The payload's leak check: format-aware layers (pixels included) now, raw bytes during
    the stream."""
    read = {item.package_item_id for item in job.items if item.pixels_checked}
    checked = frozenset(path for path, pi_id in built.paths.items() if pi_id in read)
    try:
        check = StreamingCheck(built.terms, pixels=PixelReading(ocr_cache(state), checked))
    except ValueError as exc:
        raise _Failure(f"The leak check could not run: {exc}") from None
    for entry in built.entries:
        check.prepare(entry.path, entry.source)
    return check


def _combined(first: LeakReport, *others: LeakReport | None) -> LeakReport:
    for other in others:
        if other is not None:
            first = LeakReport(
                files_checked=first.files_checked + other.files_checked,
                terms_checked=max(first.terms_checked, other.terms_checked),
                hits=first.hits + other.hits,
                unchecked=first.unchecked + other.unchecked,
            )
    return first


class _ProgressOut:
    """Wraps the tar stream: counts bytes and reports progress at most once a second."""

    def __init__(self, out: BinaryIO, total: int, report: Callable[[str, int], None]) -> None:
        self.out, self.total, self.report = out, max(total, 1), report
        self.done = 0
        self.last = time.monotonic()

    def write(self, data: bytes) -> int:
        written = self.out.write(data)
        self.done += len(data)
        now = time.monotonic()
        if now - self.last >= _PROGRESS_INTERVAL:
            self.last = now
            percent = 55 + (35 * min(self.done, self.total)) // self.total
            self.report(_STREAM_STAGE, percent)
        return written if written is not None else len(data)

    def flush(self) -> None:
        self.out.flush()


def _bag_info(job: _Job) -> dict[str, str]:
    return {
        "Bagging-Date": job.moment.date().isoformat(),
        "Source-Organization": job.facts.mechanism_name,
        "External-Identifier": job.code,
        "Internal-Sender-Identifier": job.facts.rfa_reference,
        "External-Description": f"Evidence package {job.code} for {job.facts.authority_code}",
    }


def _encrypt(
    job: _Job,
    stage: Path,
    built: _Built,
    report: Callable[[str, int], None],
    seal: Sealer,
    check: StreamingCheck,
    documents: Callable[[], Sequence[BagEntry]],
) -> tuple[Path, str, int, bytes]:
    """Stream the bag as a tar through gpg (sign + encrypt, detached signature as it goes):
    payload files first, leak-checked as they pass, then the ``documents``."""
    total = sum(entry.source.stat().st_size for entry in built.entries)
    out_path = stage / f"{job.code}.tar.gpg"
    payload = {entry.path for entry in built.entries}  # the documents were checked whole

    def observe(entry: BagEntry) -> FileObserver | None:
        return check.observe(entry.path) if entry.path in payload else None

    def write_tar(out: BinaryIO) -> None:
        progress = _ProgressOut(out, total, report)
        write_bag_tar(
            progress,  # type: ignore[arg-type]
            job.code,
            built.entries,
            _bag_info(job),
            observe=observe,
            more=documents,
        )

    try:
        _, digest, size, signature = seal.sign_encrypt_and_detach(write_tar, out_path)
    except BagDigestMismatch as exc:
        code = next((item.code for item in built.items if item.path == exc.path), exc.path)
        raise _Damaged(code, exc.expected) from None
    except BagError as exc:
        raise _Failure(f"The bag could not be written: {exc}") from None
    except GpgError as exc:
        raise _Failure(f"Signing and encrypting failed: {exc}") from None
    return out_path, digest, size, signature


def _store(state: PortalState, path: Path, digest: str, built: _Built) -> None:
    """Move a finished staging file into the blob store under the digest computed while it
    was written (one pass: renamed, not read again)."""
    built.blobs.append(digest)
    state.blobs.put_file(path, digest)


def _discard(state: PortalState, keys: Sequence[str]) -> None:
    """Delete blobs this run added, unless something refers to them."""
    if not keys:
        return
    try:
        with transaction(state.sessions) as db:
            for key in keys:
                used = db.scalar(
                    select(
                        exists().where(
                            or_(Package.file_sha256 == key, Package.signature_sha256 == key)
                        )
                    )
                ) or db.scalar(select(exists().where(Item.sha256 == key)))
                if not used:
                    state.blobs.delete(key)
    except Exception:  # never hide the original error behind a cleanup error
        logger.exception("could not discard the blobs of an abandoned assembly")


def _finish(
    state: PortalState,
    job: _Job,
    built: _Built,
    file: tuple[str, int],
    signature_sha256: str,
    leak_check: dict[str, Any],
) -> None:
    with transaction(state.sessions) as db:
        audit.lock_chain(db)  # chain, then package row (see _claim)
        result = db.execute(
            update(Package)
            .where(_ours(job.package_id, job.version))
            .values(
                status="assembled",
                stage="assembled",
                progress=100,
                failure_reason=None,
                leak_check=leak_check,
                file_sha256=file[0],
                file_size=file[1],
                signer_fingerprint=job.signer.fingerprint,
                signature_sha256=signature_sha256,
                version=job.version + 1,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            raise _Stopped
        for package_item_id, digest, path, count, rendition in built.item_updates:
            db.execute(
                update(PackageItem)
                .where(PackageItem.id == package_item_id)
                .values(
                    rendition_sha256=digest,
                    path=path,
                    redaction_count=count,
                    rendition=rendition,
                    report=built.reports[package_item_id].to_json(),
                )
                .execution_options(synchronize_session=False)
            )
        audit.record(
            db,
            audit.SYSTEM_ACTOR,
            "package.assembled",
            f"package:{job.code}",
            {
                "file_sha256": file[0],
                "file_size": file[1],
                "signature_sha256": signature_sha256,
                "signer": job.signer.fingerprint,
                "recipients": list(job.facts.recipient_fingerprints),
                "items": len(built.items),
                "redactions": sum(update_[3] for update_ in built.item_updates),
            },
        )
        notifications.package_awaits_release(db, job.package_id)


def _make_stage(state: PortalState, code: str, version: int) -> Path:
    """A private directory for this run, named after the package and the run's version so
    that the janitor can tell a live run's from a dead one's (see portal.integrity.janitor)."""
    root = state.settings.data_dir / "staging"
    root.mkdir(parents=True, exist_ok=True)
    stage = root / stage_name(code, version, secrets.token_hex(6))
    stage.mkdir(mode=0o700)
    os.chmod(stage, 0o700)
    return stage


def stage_name(code: str, version: int, token: str) -> str:
    return f"{code}-v{version}-{token}"


def _write_reports(db: Session, reports: dict[int, ItemReport]) -> None:
    for package_item_id, report in reports.items():
        db.execute(
            update(PackageItem)
            .where(PackageItem.id == package_item_id)
            .values(report=report.to_json())
            .execution_options(synchronize_session=False)
        )


def _leak_json(job: _Job, leak: LeakReport) -> dict[str, Any]:
    """The leak report as stored, with the codes of the identifiers checked."""
    return {**leak.to_json(), "identifiers": sorted({mark.code for mark in job.withheld})}


def _blocked_reports(built: _Built, leak: LeakReport) -> dict[int, ItemReport]:
    """Each item's report with what the leak check found in its file."""
    hits: dict[int, list[LeakHit]] = defaultdict(list)
    for hit in leak.hits:
        if hit.path in built.paths:
            hits[built.paths[hit.path]].append(hit)
    unread: dict[int, list[str]] = defaultdict(list)
    for path, reason in leak.unchecked:
        if path in built.paths:
            unread[built.paths[path]].append(reason)
    return {
        package_item_id: report.blocked_by(
            ((hit.mark_code, hit.where) for hit in hits[package_item_id]),
            unread[package_item_id],
        )
        for package_item_id, report in built.reports.items()
    }


def _blocked_by_leak(state: PortalState, job: _Job, built: _Built, leak: LeakReport) -> str:
    """Block the package, naming the files by their bag paths: ``data/items/<item code>/``
    and a name that names no protected term (see :func:`_unnamed`)."""
    named = sorted({f"{hit.path} ({hit.mark_code})" for hit in leak.hits})
    unread = sorted({path for path, _ in leak.unchecked})
    reason = "The leak check found protected terms in: " + ", ".join(named)
    if unread:
        reason = (
            (reason + "; " if named else "") + "The leak check could not read: " + ", ".join(unread)
        )
    reports = _blocked_reports(built, leak)
    if _end(state, job.package_id, job.version, "blocked", reason, _leak_json(job, leak), reports):
        return reason
    raise _Stopped


def _run(state: PortalState, job: _Job, stage: Path, built: _Built) -> str | None:
    """Do the work; return the leak-check failure reason when blocked, None when assembled.

    One pass over the payload bytes: the raw-bytes leak check and the bag's hashes are
    computed as the tar streams into gpg; the letter and the log are made meanwhile in a
    worker process, and go in at the end of the tar with the manifest (signed in the same
    keyring as the package).
    """

    def report(text: str, percent: int) -> None:
        _progress(state, job.package_id, job.version, text, percent)

    _render_items(state, job, stage, built, report)
    _refuse_unmatched_marks(job, built)
    _refuse_unread_ocr_protection(job, built)
    report("leak check", 50)
    check = _streaming_check(state, job, built)
    _refuse_doubtful_pixels(built, check.report())
    if not check.report().clean:
        return _blocked_by_leak(state, job, built, check.report())
    report(_STREAM_STAGE, 55)

    made: list[_Documents] = []
    try:
        # The worker is forked before gpg starts, so that it holds none of gpg's pipes; when
        # the block ends, what has not started is cancelled and a running worker waited for.
        with document_pool() as pool:
            files = [dest for _, dest in _document_files(stage)]
            rendered = pool.render(
                list(zip(_DOCUMENT_KINDS, files, strict=True)),
                job.facts,
                tuple(built.items),
                state.settings.templates_dir,
            )
            with sealer(job.signer, job.recipients) as seal:

                def documents() -> Sequence[BagEntry]:
                    report(_DOCUMENTS_STAGE, 90)
                    evidence = _transparency(state, job, seal, stage)
                    made.append(
                        _documents(job, stage, built.items, check.terms, seal, rendered, evidence)
                    )
                    if made[0].leak is not None and not made[0].leak.clean:
                        raise _DocumentsLeak
                    return made[0].entries

                out_path, digest, size, signature = _encrypt(
                    job, stage, built, report, seal, check, documents
                )
    except GpgError as exc:
        raise _Failure(f"Signing and encrypting failed: {exc}") from None
    except (LeakFound, _DocumentsLeak):
        documents_leak = made[0].leak if made else None
        return _blocked_by_leak(state, job, built, _combined(check.report(), documents_leak))
    leak = _combined(check.report(), made[0].leak)
    signature_path = stage / f"{job.code}.tar.gpg.sig"
    signature_path.write_bytes(signature)
    report("storing", 95)
    _store(state, out_path, digest, built)
    signature_sha256 = hashlib.sha256(signature).hexdigest()
    _store(state, signature_path, signature_sha256, built)
    _finish(state, job, built, (digest, size), signature_sha256, _leak_json(job, leak))
    return None


def _alert_damaged(state: PortalState, package_id: int, damaged: _Damaged) -> None:
    """Record the damaged blob in the audit log and tell every admin (content-free)."""
    with transaction(state.sessions) as db:
        package = db.get(Package, package_id)
        found_by = f"assembly of {package.code}" if package else "assembly"
        record_damage(db, damaged.sha256, blob_uses(db, damaged.sha256), found_by=found_by)


def assemble_package(state: PortalState, package_id: int, *, now: datetime | None = None) -> None:
    """Assemble package ``package_id`` (idempotent; see the module notes).

    Returns when the package is assembled (or was already past assembly, or another run took
    it over). Raises :class:`AssemblyFailed` when it ends failed or blocked, after recording
    that on the package.
    """
    moment = aware_utc(now)
    version = _claim(state, package_id)
    if version is None:
        logger.info("package %s: nothing to do (done, or another run holds it)", package_id)
        return
    # Which worker ran which package: with several nodes, their logs together account for
    # every run (package ids only, never content).
    logger.info("package %s: run %s claimed", package_id, version)
    with _heartbeat(state, package_id, version):
        _assemble_claimed(state, package_id, version, moment)


@contextmanager
def _heartbeat(state: PortalState, package_id: int, version: int) -> Iterator[None]:
    """Record a sign of life every ``worker_heartbeat`` seconds while this run lives, also
    within a long stage (the OCR of a 500-page scan): a package without one for a while lost
    its worker (see :mod:`portal.packages.assembly.watch`)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(state.settings.worker_heartbeat):
            try:
                with transaction(state.sessions) as db:
                    db.execute(
                        update(Package)
                        .where(_ours(package_id, version))
                        .values(updated_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
            except Exception:  # the next beat tries again; the run itself goes on
                logger.warning("Could not record the heartbeat of package %s", package_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{package_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _assemble_claimed(state: PortalState, package_id: int, version: int, moment: datetime) -> None:
    """The run of version ``version``, claimed: assembled, or failed/blocked with the reason
    (raised as AssemblyFailed); what it made is discarded unless kept."""
    release_previews.prune(state)  # this package's earlier ones, and any released since
    built = _Built()
    stage: Path | None = None
    try:
        job = _load(state, package_id, version, moment)
        stage = _make_stage(state, job.code, version)
        blocked = _run(state, job, stage, built)
        if blocked is None:  # assembled: the renditions stay for the releasing officer
            release_previews.keep(state, job.code, built.items, built.entries)
    except _Stopped:
        _discard(state, built.blobs)
        if _status(state, package_id) == "blocked":
            raise AssemblyFailed(
                "The package was blocked while it was being assembled (consent was revoked); "
                "nothing was kept."
            ) from None
        return  # another run claimed it again
    except Exception as exc:
        failure = _failure_of(exc)
        _discard(state, built.blobs)
        if failure is None:
            _let_go(state, package_id, version)
            raise
        _end(state, package_id, version, "failed", failure.reason, reports=failure.reports)
        if isinstance(failure, _Damaged):
            _alert_damaged(state, package_id, failure)
        if isinstance(failure, _StorageFull):
            tell_admins_storage_full(state, f"the assembly of package {package_id}")
        raise AssemblyFailed(failure.reason) from None
    except BaseException:
        _discard(state, built.blobs)
        _let_go(state, package_id, version)
        raise
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
    if blocked is not None:
        raise AssemblyFailed(blocked)
