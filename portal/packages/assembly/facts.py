"""What a package says about itself: plain, frozen facts, filled from the database.

The assembler reads the database and builds these; the manifest, the transmittal letter and
the custody log are made from them alone, and the recipient's verifier reads them back. So
this module imports nothing but the standard library.

The facts never carry redacted text: a redaction is described by its kind, its reason and
how often it was applied, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

#: How documents name the sender (the letter, the custody log, recall notices).
MECHANISM_NAME = "the Mechanism"
#: The reason of redactions of registered protected identifiers (their marks are named by the
#: identifier's code, e.g. "PID-2026-00012"; the value is never in the facts).
PROTECTED_IDENTIFIER_REASON = "protected identifier"

#: Where the time of a custody event comes from (the manifest's ``time_source``, schema 3).
TIME_PORTAL_CLOCK = "portal-clock"  # the portal's host clock, NTP-synchronised
TIME_PROVIDER_DECLARED = "provider-declared"  # a date the provider gave (collection)
TIME_TSA = "tsa"  # an RFC 3161 time-stamp by a time-stamping authority
TIME_SOURCES = (TIME_PORTAL_CLOCK, TIME_PROVIDER_DECLARED, TIME_TSA)

__all__ = [
    "MECHANISM_NAME",
    "PROTECTED_IDENTIFIER_REASON",
    "TIME_PORTAL_CLOCK",
    "TIME_PROVIDER_DECLARED",
    "TIME_SOURCES",
    "TIME_TSA",
    "AppliedMark",
    "ConsentFacts",
    "CustodyEvent",
    "DocumentEntry",
    "ItemEntry",
    "PackageFacts",
    "RecordFile",
    "Records",
    "RedactionSummary",
]


@dataclass(frozen=True)
class Replacement:
    """The package a replacement replaces, and the items of it the replacement leaves out
    (their consent was withdrawn)."""

    code: str
    items_left_out: tuple[str, ...]


@dataclass(frozen=True)
class PackageFacts:
    """The package as a whole. Every datetime is timezone-aware (UTC)."""

    code: str  # "PKG-2026-0001"
    created_at: datetime
    rfa_reference: str  # the portal's reference, e.g. "RFA-2026-0007"
    authority_reference: str  # the authority's own reference of its request
    authority_code: str
    authority_name: str
    authority_country: str  # ISO 3166 alpha-2, e.g. "NL"
    decision_id: str
    policy_id: str
    policy_revision: str
    engine_version: str
    decided_at: datetime
    signer_fingerprint: str  # the mechanism's signing key, 40 (or 64) hex capitals
    recipient_fingerprints: tuple[str, ...]
    assembled_by: str  # display name of the legal officer
    mechanism_name: str = MECHANISM_NAME
    replaces: Replacement | None = None
    #: The language of the letter's words (portal.pages.i18n.LOCALES): see readers_language.
    language: str = "en"


@dataclass(frozen=True)
class RedactionSummary:
    """Redactions of one kind and reason applied to one item: never the redacted text."""

    kind: str  # "term" | "text_span" | "pdf_box" | "image_box"
    reason: str
    count: int


@dataclass(frozen=True)
class ConsentFacts:
    """The consent event an item's sharing rests on."""

    event_code: str
    kind: str  # "item" | "standing"
    granted_at: datetime
    expires_at: datetime | None
    conditions: str


@dataclass(frozen=True)
class CustodyEvent:
    """One step in an item's chain of custody (collected, registered, redacted, packaged...)."""

    at: datetime
    event: str
    by: str
    details: str = ""
    time_source: str = TIME_PORTAL_CLOCK  # one of TIME_SOURCES


@dataclass(frozen=True)
class AppliedMark:
    """One redaction mark applied to an item as shared: where, why, how often and by whose
    four eyes, never what it removed. A protected identifier of the register is a mark too
    (code ``PID-…``, no proposer or confirmer: the register's own review applies)."""

    code: str
    kind: str  # "term" | "text_span" | "pdf_box" | "image_box"
    reason: str
    hits: int  # occurrences removed (a box: 1 per page or frame it was burnt into)
    page: int | None = None  # the page a PDF box is on (1-based)
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 as page fractions
    pages: tuple[tuple[int, int], ...] = ()  # (page, hits) where the redactor knows pages
    proposed_by: str | None = None  # display names of the two legal officers
    confirmed_by: str | None = None


@dataclass(frozen=True)
class ItemEntry:
    """One item as shared in the package."""

    code: str
    title: str
    kind: str
    provider: str  # the provider's public name, as it agreed to be named
    source_sha256: str  # the source as registered
    source_media_type: str
    # "redacted" | "as_is" (an as-is text or PDF naming a withheld identifier is redacted)
    rendition: str
    path: str  # bag path, e.g. "data/items/ITM-000123/statement.pdf"
    sha256: str  # the shared rendition
    size: int
    media_type: str
    redactions: tuple[RedactionSummary, ...]
    consent: ConsentFacts | None
    custody: tuple[CustodyEvent, ...]  # in chronological order
    marks: tuple[AppliedMark, ...] = ()
    # For the item index (data/item-index.*): the date the provider gives for the item, the
    # place (blank when it would name a protected identifier) and its language (BCP 47).
    date: date | None = None
    place: str = ""
    language: str = ""


@dataclass(frozen=True)
class DocumentEntry:
    """A document of the package itself (transmittal letter, custody and redaction log)."""

    path: str
    title: str
    sha256: str
    size: int
    media_type: str


@dataclass(frozen=True)
class RecordFile:
    """A file of the bag the manifest refers to by path, digest and size (schema 3)."""

    path: str
    sha256: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Records:
    """The signed decision record (and the path of its detached signature) and the item
    index, as the manifest refers to them."""

    decision: RecordFile
    decision_signature_path: str
    index_csv: RecordFile
    index_json: RecordFile
