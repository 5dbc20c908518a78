"""Example package facts (portal.packages.assembly.facts) for tests of the manifest and documents.

Fictional throughout. The facts describe redactions by kind, reason and count only: the
protected term below is the text such redactions removed, and it is given to nothing here,
so tests can check it appears in no output.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from portal.packages.assembly.facts import (
    ConsentFacts,
    CustodyEvent,
    DocumentEntry,
    ItemEntry,
    PackageFacts,
    RecordFile,
    Records,
    RedactionSummary,
)

PROTECTED_TERM = "Samira Haddad-Okonjo"  # what a redaction removed; in no fact below
REDACTION_REASON = "Identifies a witness at risk (protective measures, rule 4)"
SIGNER = "3B9A7E2C5D1F4A6B8C0E2D4F6A8B0C2E4F6A8B0C"
RECIPIENTS = (
    "C0FFEE00112233445566778899AABBCCDDEEFF00",
    "1234567890ABCDEF1234567890ABCDEF12345678",
)
CREATED = datetime(2026, 3, 4, 9, 30, 15, 123456, tzinfo=UTC)


def digest(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def example_package(**changes: Any) -> PackageFacts:
    package = PackageFacts(
        code="PKG-2026-0001",
        created_at=CREATED,
        rfa_reference="RFA-2026-0007",
        authority_reference="NWU/2026/117-B",
        authority_code="NWU-NL",
        authority_name="National War Crimes Unit (Netherlands)",
        authority_country="NL",
        decision_id="7d0c6a52-0f4e-4b8e-9a55-3f7b8c1d2e90",
        policy_id="mechanism-default",
        policy_revision=digest("policy"),
        engine_version="1.2.0",
        decided_at=CREATED - timedelta(days=2),
        signer_fingerprint=SIGNER,
        recipient_fingerprints=RECIPIENTS,
        assembled_by="Aisha Legal-Officer",
    )
    return replace(package, **changes)


def example_item(number: int = 1, **changes: Any) -> ItemEntry:
    code = f"ITM-{number:06d}"
    item = ItemEntry(
        code=code,
        title=f"Witness statement no. {number} on the events at the northern checkpoint",
        kind="document",
        provider="Syrian Archive Collective",
        source_sha256=digest(f"source {number}"),
        source_media_type="text/plain",
        rendition="redacted",
        path=f"data/items/{code}/statement.pdf",
        sha256=digest(f"rendition {number}"),
        size=48_213 + number,
        media_type="application/pdf",
        redactions=(
            RedactionSummary(kind="term", reason=REDACTION_REASON, count=3),
            RedactionSummary(kind="text_span", reason="Home address of a victim", count=1),
        ),
        consent=ConsentFacts(
            event_code=f"CON-{number:04d}",
            kind="item",
            granted_at=CREATED - timedelta(days=10),
            expires_at=CREATED + timedelta(days=365),
            conditions="Use in criminal proceedings only; no disclosure to the media.",
        ),
        custody=(
            CustodyEvent(CREATED - timedelta(days=400), "collected", "Field team Lima"),
            CustodyEvent(
                CREATED - timedelta(days=390), "registered", "Registry", "checksum verified"
            ),
            CustodyEvent(CREATED, "redacted", "Aisha Legal-Officer", "5 marks applied"),
        ),
    )
    return replace(item, **changes)


def example_documents() -> tuple[DocumentEntry, ...]:
    return (
        DocumentEntry(
            "data/transmittal-letter.pdf",
            "Transmittal letter",
            digest("letter"),
            30_001,
            "application/pdf",
        ),
        DocumentEntry(
            "data/custody-and-redaction-log.pdf",
            "Custody and redaction log",
            digest("log"),
            12_345,
            "application/pdf",
        ),
    )


def example_records() -> Records:
    """What a manifest says of the decision record and item index (digests made up)."""
    return Records(
        decision=RecordFile(
            "data/decision-record.json", digest("record"), 2_345, "application/json"
        ),
        decision_signature_path="data/decision-record.json.asc",
        index_csv=RecordFile("data/item-index.csv", digest("csv"), 456, "text/csv"),
        index_json=RecordFile("data/item-index.json", digest("json"), 789, "application/json"),
    )
