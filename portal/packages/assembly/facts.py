"""What a package says about itself: plain, frozen facts, filled from the database.

The assembler reads the database and builds these; the manifest, the transmittal letter and
the custody log are made from them alone, and the recipient's verifier reads them back. So
this module imports nothing but the standard library.

The facts never carry redacted text: a redaction is described by its kind, its reason and
how often it was applied, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: How documents name the sender (the letter, the custody log, recall notices).
MECHANISM_NAME = "the Mechanism"
#: The reason of redactions of registered protected identifiers (their marks are named by the
#: identifier's code, e.g. "PID-2026-00012"; the value is never in the facts).
PROTECTED_IDENTIFIER_REASON = "protected identifier"

__all__ = [
    "MECHANISM_NAME",
    "PROTECTED_IDENTIFIER_REASON",
    "ConsentFacts",
    "CustodyEvent",
    "DocumentEntry",
    "ItemEntry",
    "PackageFacts",
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
    custody: tuple[CustodyEvent, ...]


@dataclass(frozen=True)
class DocumentEntry:
    """A document of the package itself (transmittal letter, custody and redaction log)."""

    path: str
    title: str
    sha256: str
    size: int
    media_type: str
