"""Tests for ``portal import`` (portal.importing.bundle) on both database backends, with a real blob
store, real files and the real gpg for recipient keys.

The good bundle holds one record of each type (and a few more); each test breaks it in one way
and checks the exact line reported, or imports it and checks what was stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit import AuditEvent
from portal.consent.models import Consent
from portal.importing.bundle import BundleRejected, ImportReport, LineError, import_bundle
from portal.models import Base
from portal.registry.mark_terms import term_of
from portal.registry.models import (
    Assessment,
    Authority,
    Item,
    ItemPerson,
    Person,
    Provider,
    RecipientKey,
    RedactionMark,
    RedactionMarkEvent,
)
from portal.rfa.models import Assurance, Message, Rfa, RfaItem, RfaStatusChange
from portal.sealing import Sealer
from portal.storage import FileBlobStore

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_KEYS = REPO / "keys_example"
FINGERPRINTS: dict[str, str] = json.loads((EXAMPLE_KEYS / "fingerprints.json").read_text())
NWU_FPR = FINGERPRINTS["NWU-NL"]

STATEMENT = b"Statement of witness W-1.\nI saw the convoy near the northern checkpoint.\n"
PHOTO = bytes(range(256)) * 64  # stands in for image bytes: the importer does not decode them
REPORT = b"%PDF-1.7\n% fictional analytical report\n%%EOF\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / "items").mkdir(parents=True)
    (root / "keys").mkdir()
    (root / "items" / "statement.txt").write_bytes(STATEMENT)
    (root / "items" / "photo.jpg").write_bytes(PHOTO)
    (root / "items" / "report.pdf").write_bytes(REPORT)
    shutil.copy(EXAMPLE_KEYS / "NWU-NL.pub.asc", root / "keys" / "NWU-NL.pub.asc")
    shutil.copy(EXAMPLE_KEYS / "SPR-ES.pub.asc", root / "keys" / "SPR-ES.pub.asc")
    return root


def good_records() -> list[dict[str, Any]]:
    """One record of every type (line numbers are list index + 1)."""
    return [
        {  # 1
            "type": "provider",
            "code": "PRV-ALPHA",
            "name": "Alpha Documentation Centre",
            "kind": "ngo",
            "public_name": "Provider A",
        },
        {  # 2
            "type": "authority",
            "code": "NWU-NL",
            "name": "Northland War Crimes Unit",
            "kind": "war_crimes_unit",
            "country": "NL",
        },
        {  # 3
            "type": "assessment",
            "code": "ASM-2026-01",
            "authority": "NWU-NL",
            "criterion": "fair_trial",
            "finding": "satisfied",
            "basis": "Independent courts; fictional monitoring report 2025.",
            "assessed_at": "2026-01-10T09:00:00+01:00",
            "valid_until": "2027-01-10T08:00:00Z",
            "assessed_by": "Legal Officer One",
        },
        {  # 4
            "type": "recipient_key",
            "authority": "NWU-NL",
            "key_file": "keys/NWU-NL.pub.asc",
            "fingerprint": NWU_FPR,
            "verified_by": "Admin One",
            "verified_at": "2026-01-12T10:00:00Z",
            "verification_method": "fingerprint read back by telephone",
        },
        {  # 5
            "type": "person",
            "code": "PER-0001",
            "pseudonym": "Witness W-1",
            "role": "witness",
            "at_risk": True,
        },
        {  # 6
            "type": "item",
            "code": "ITM-000001",
            "provider": "PRV-ALPHA",
            "kind": "witness_statement",
            "title": "Statement of W-1",
            "description": "Interview transcript.",
            "media_type": "text/plain",
            "file": "items/statement.txt",
            "sha256": sha(STATEMENT),
            "size": len(STATEMENT),
            "collected_at": "2025-11-02",
            "place": "Northern district",
            "sensitivity": "high",
            "tags": ["detention", "convoy"],
            "persons": ["PER-0001"],
        },
        {  # 7
            "type": "item",
            "code": "ITM-000002",
            "provider": "PRV-ALPHA",
            "kind": "photo",
            "title": "Checkpoint photograph",
            "media_type": "image/jpeg",
            "file": "items/photo.jpg",
            "sha256": sha(PHOTO).upper(),
            "sensitivity": "medium",
            "cleared_as_is": False,
        },
        {  # 8
            "type": "redaction_mark",
            "item": "ITM-000001",
            "code": "M-1",
            "kind": "term",
            "term": "Amar Fictus",
            "reason": "names the witness",
            "applies": "without_protection",
            "person": "PER-0001",
        },
        {  # 9
            "type": "redaction_mark",
            "item": "ITM-000002",
            "code": "M-1",
            "kind": "image_box",
            "box": [0.1, 0.2, 0.35, 0.5],
            "reason": "face of a bystander",
            "applies": "always",
            "review": "pending",
        },
        {  # 10
            "type": "consent",
            "code": "CNS-0001",
            "provider": "PRV-ALPHA",
            "item": "ITM-000001",
            "authority": "NWU-NL",
            "event": "grant",
            "purpose": "criminal_proceedings",
            "conditions": "Not to be disclosed to the defence before trial.",
            "expires_at": "2027-06-30T00:00:00Z",
            "recorded_at": "2026-01-15T12:00:00Z",
        },
        {  # 11
            "type": "consent",
            "code": "CNS-0002",
            "provider": "PRV-ALPHA",
            "authority": "NWU-NL",
            "event": "decline",
            "reason": "No standing consent; ask per item.",
            "recorded_at": "2026-01-16T12:00:00Z",
        },
        {  # 12
            "type": "rfa",
            "code": "RFA-2026-0001",
            "authority": "NWU-NL",
            "status": "in_review",
            "their_reference": "NWU/2026/017",
            "legal_basis": "Fictional Mutual Legal Assistance Act, s. 4",
            "proceedings_type": "investigation",
            "offences": ["war crime of outrages upon personal dignity"],
            "persons_concerned": "Unknown members of a checkpoint unit",
            "summary_of_facts": "Detentions at the northern checkpoint in 2025.",
            "assistance_sought": "Witness statements and photographs.",
            "period_from": "2025-01-01",
            "period_to": "2025-12-31",
            "places": "Northern district",
            "urgency": "urgent",
            "urgency_justification": "Suspect due to leave the jurisdiction.",
            "deadline": "2026-03-31",
            "confidentiality": "Do not notify the persons concerned.",
            "submitted_at": "2026-01-20T08:30:00Z",
            "items": ["ITM-000002", "ITM-000001"],
            "assurances": [
                {
                    "given_by": "Prosecutor General of Northland",
                    "given_at": "2026-01-19",
                    "text": "The death penalty will not be sought or imposed.",
                }
            ],
            "messages": [
                {"body": "Please specify the period.", "created_at": "2026-01-21T10:00:00Z"}
            ],
            "history": [
                {"status": "submitted", "at": "2026-01-20T08:30:00Z"},
                {"status": "in_review", "at": "2026-01-21T09:00:00Z", "note": "triaged"},
            ],
        },
    ]


#: The portal's sealing key in these tests (term marks are sealed with it).
SEALER = Sealer.random()


def lines_of(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(record) for record in records]


def write_bundle(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(lines_of(records)) + "\n", encoding="utf-8")
    return path


def run_import(
    session: Session,
    blobs: FileBlobStore,
    bundle: Path | list[str],
    files: Path | None,
    *,
    demo_or_test: bool = True,
    sealer: Sealer | None = SEALER,
) -> ImportReport:
    return import_bundle(
        session, blobs, bundle, files, actor="cli:test", demo_or_test=demo_or_test, sealer=sealer
    )


def rejected(
    session: Session,
    blobs: FileBlobStore,
    bundle: Path | list[str],
    files: Path | None,
    **kwargs: Any,
) -> list[LineError]:
    with pytest.raises(BundleRejected) as caught:
        run_import(session, blobs, bundle, files, **kwargs)
    session.rollback()
    return caught.value.errors


def dump(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary key order."""
    tables = {}
    for table in Base.metadata.sorted_tables:
        query = select(table).order_by(*table.primary_key.columns)
        tables[table.name] = [tuple(row) for row in session.execute(query)]
    return tables


def audit_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


# --------------------------------------------------------------------------- a good bundle


def test_good_bundle_imports_every_type(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "repository.jsonl", good_records())
    report = run_import(session, blobs, bundle, files)
    session.commit()

    assert report.created == {
        "provider": 1,
        "authority": 1,
        "assessment": 1,
        "recipient_key": 1,
        "person": 1,
        "item": 2,
        "redaction_mark": 2,
        "consent": 2,
        "rfa": 1,
    }
    assert not any(report.unchanged.values())
    assert report.records == 12
    assert report.new_blobs == 2
    assert report.bundle_sha256 == sha(bundle.read_bytes())
    assert "repository.jsonl" in report.summary() and "2 created" in report.summary()

    provider = session.scalars(select(Provider)).one()
    assert (provider.code, provider.public_name, provider.kind) == (
        "PRV-ALPHA",
        "Provider A",
        "ngo",
    )
    authority = session.scalars(select(Authority)).one()
    assert (authority.code, authority.country) == ("NWU-NL", "NL")

    assessment = session.scalars(select(Assessment)).one()
    assert assessment.authority_id == authority.id
    assert assessment.assessed_at == datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
    assert assessment.valid_until == datetime(2027, 1, 10, 8, 0, tzinfo=UTC)

    key = session.scalars(select(RecipientKey)).one()
    assert key.fingerprint == NWU_FPR
    assert key.armored.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert key.algorithm == "ed25519"
    assert "Northland" in key.uid
    assert key.verified_by == "Admin One"
    assert key.verification_method == "fingerprint read back by telephone"

    statement = session.scalars(select(Item).where(Item.code == "ITM-000001")).one()
    assert statement.provider_id == provider.id
    assert statement.sha256 == sha(STATEMENT)
    assert statement.size_bytes == len(STATEMENT)
    assert statement.original_filename == "statement.txt"
    assert statement.collected_at == date(2025, 11, 2)
    assert statement.tags == ["detention", "convoy"]
    assert [person.code for person in statement.persons] == ["PER-0001"]
    assert blobs.read_bytes(statement.blob_key) == STATEMENT
    photo = session.scalars(select(Item).where(Item.code == "ITM-000002")).one()
    assert photo.sha256 == sha(PHOTO)  # given in capitals, stored lowercase
    assert blobs.read_bytes(photo.sha256) == PHOTO
    assert photo.persons == [] and photo.place == "" and photo.description == ""

    marks = {(m.item.code, m.code): m for m in session.scalars(select(RedactionMark))}
    term = marks[("ITM-000001", "M-1")]
    assert term.term_sealed and "Amar" not in term.term_sealed  # sealed at rest
    assert (term.kind, term_of(SEALER, term, "ITM-000001"), term.applies, term.review) == (
        "term",
        "Amar Fictus",
        "without_protection",
        "pending",  # marks arrive pending: a second officer confirms them in the portal
    )
    assert term.proposed_by_id is None and term.version == 1
    history = session.scalars(
        select(RedactionMarkEvent.action).where(RedactionMarkEvent.item_id == term.item_id)
    ).all()
    assert history == ["imported"]
    assert term.person_id == session.scalars(select(Person.id)).one()
    box = marks[("ITM-000002", "M-1")]
    assert (box.x0, box.y0, box.x1, box.y1) == (0.1, 0.2, 0.35, 0.5)
    assert box.review == "pending" and box.person_id is None

    consents = {c.code: c for c in session.scalars(select(Consent))}
    assert consents["CNS-0001"].item_id == statement.id
    assert consents["CNS-0001"].expires_at == datetime(2027, 6, 30, tzinfo=UTC)
    assert consents["CNS-0002"].item_id is None  # standing: all the provider's items
    assert consents["CNS-0002"].reason == "No standing consent; ask per item."

    rfa = session.scalars(select(Rfa)).one()
    assert (rfa.status, rfa.urgency, rfa.authority_id) == ("in_review", "urgent", authority.id)
    assert rfa.offences == ["war crime of outrages upon personal dignity"]
    assert rfa.period_to == date(2025, 12, 31) and rfa.deadline == date(2026, 3, 31)
    assert rfa.submitted_at == datetime(2026, 1, 20, 8, 30, tzinfo=UTC)
    rfa_items = session.scalars(select(RfaItem.item_id).where(RfaItem.rfa_id == rfa.id)).all()
    assert sorted(rfa_items) == sorted([statement.id, photo.id])
    assurance = session.scalars(select(Assurance)).one()
    assert (assurance.kind, assurance.given_at) == ("death_penalty", date(2026, 1, 19))
    assert session.scalars(select(Message.body)).one() == "Please specify the period."
    steps = session.scalars(select(RfaStatusChange).order_by(RfaStatusChange.changed_at)).all()
    assert [(s.from_status, s.to_status, s.note) for s in steps] == [
        (None, "submitted", ""),
        ("submitted", "in_review", "triaged"),
    ]

    event = session.scalars(select(AuditEvent)).one()
    assert (event.actor, event.action, event.target) == (
        "cli:test",
        "import.bundle",
        "repository.jsonl",
    )
    details = json.loads(event.details)
    assert details["bundle_sha256"] == report.bundle_sha256
    assert details["created"]["item"] == 2


def test_marks_cannot_be_imported_confirmed(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    """One operator must not insert confirmed redactions: a bundle saying so is refused,
    naming the rule; a mark a second officer confirmed since stays as reviewed when the
    same bundle is imported again."""
    records: list[Any] = good_records()
    records[7]["review"] = "confirmed"
    errors = rejected(session, blobs, write_bundle(tmp_path / "b.jsonl", records), files)
    assert "imported marks arrive pending" in str(errors[0])
    assert "Amar" not in str(errors[0])

    del records[7]["review"]
    bundle = write_bundle(tmp_path / "b.jsonl", records)
    run_import(session, blobs, bundle, files)
    mark = session.scalars(select(RedactionMark).where(RedactionMark.code == "M-1")).first()
    assert mark is not None
    mark.review = "confirmed"
    session.commit()
    report = run_import(session, blobs, bundle, files)
    assert not report.changed
    session.refresh(mark)
    assert mark.review == "confirmed"


def test_reimport_of_identical_bundle_changes_nothing(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "repository.jsonl", good_records())
    run_import(session, blobs, bundle, files)
    session.commit()
    before = dump(session)
    blobs_before = list(blobs.keys())
    audits = audit_count(session)

    report = run_import(session, blobs, bundle, files)
    assert not session.new and not session.dirty
    session.commit()

    assert not report.changed
    assert report.unchanged["item"] == 2 and report.unchanged["rfa"] == 1
    assert sum(report.unchanged.values()) == 12
    assert report.new_blobs == 0
    assert "nothing to do" in report.summary()
    session.expire_all()
    assert dump(session) == before
    assert audit_count(session) == audits == 1
    assert list(blobs.keys()) == blobs_before


def test_a_changed_term_is_refused_and_terms_need_the_key(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    """The stored term is opened to compare it with the bundle's; an import without the
    portal's key cannot seal or compare terms and is refused, naming neither term."""
    run_import(session, blobs, write_bundle(tmp_path / "a.jsonl", good_records()), files)
    session.commit()
    changed = good_records()
    mark = next(r for r in changed if r["type"] == "redaction_mark" and r["kind"] == "term")
    mark["term"] = "Someone Else"
    errors = rejected(session, blobs, write_bundle(tmp_path / "b.jsonl", changed), files)
    assert [e.reason for e in errors] == [
        "redaction mark M-1 of item ITM-000001: already exists with different term"
    ]
    for bundle in (good_records(), changed):
        errors = rejected(
            session, blobs, write_bundle(tmp_path / "c.jsonl", bundle), files, sealer=None
        )
        [error] = errors
        assert "sealed with the portal's key, and this import was given none" in error.reason
        assert "Amar" not in error.reason and "Someone" not in error.reason
    other_key = rejected(
        session, blobs, write_bundle(tmp_path / "d.jsonl", good_records()), files,
        sealer=Sealer.random(),
    )  # fmt: skip
    [error] = other_key
    assert "sealed under another key" in error.reason and "Amar" not in error.reason


def test_bundle_adding_to_existing_records_creates_only_the_new_ones(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    run_import(session, blobs, write_bundle(tmp_path / "a.jsonl", good_records()), files)
    session.commit()
    more = [
        {
            "type": "redaction_mark",
            "item": "ITM-000001",  # refers to a stored item
            "code": "M-2",
            "kind": "text_span",
            "span": [10, 25],
            "reason": "place of residence",
            "applies": "always",
        },
        {
            "type": "item",
            "code": "ITM-000003",
            "provider": "PRV-ALPHA",
            "kind": "analytical_report",
            "title": "Report on the checkpoint",
            "media_type": "application/pdf",
            "file": "items/report.pdf",
            "sha256": sha(REPORT),
            "sensitivity": "low",
        },
        {
            "type": "redaction_mark",
            "item": "ITM-000003",
            "code": "M-1",
            "kind": "pdf_box",
            "page": 1,
            "box": [0, 0, 1, 0.25],
            "reason": "letterhead",
            "applies": "always",
        },
        {
            "type": "consent",
            "code": "CNS-0003",
            "provider": "PRV-ALPHA",
            "item": "ITM-000001",
            "authority": "NWU-NL",
            "event": "revoke",
            "reason": "The witness withdrew.",
            "recorded_at": "2026-02-01T00:00:00Z",
        },
        {
            "type": "rfa",
            "code": "RFA-2026-0002",
            "authority": "NWU-NL",
            "status": "draft",
            "their_reference": "NWU/2026/020",
            "proceedings_type": "prosecution",
        },
        {
            "type": "rfa",
            "code": "RFA-2026-0003",
            "authority": "NWU-NL",
            "status": "approved",
            "their_reference": "NWU/2026/021",
            "proceedings_type": "trial",
            "submitted_at": "2026-01-05T00:00:00Z",
        },
    ]
    report = run_import(session, blobs, write_bundle(tmp_path / "b.jsonl", more), files)
    session.commit()
    assert report.created == {
        "provider": 0,
        "authority": 0,
        "assessment": 0,
        "recipient_key": 0,
        "person": 0,
        "item": 1,
        "redaction_mark": 2,
        "consent": 1,
        "rfa": 2,
    }
    span = session.scalars(select(RedactionMark).where(RedactionMark.code == "M-2")).one()
    assert (span.span_start, span.span_end) == (10, 25)
    draft = session.scalars(select(Rfa).where(Rfa.code == "RFA-2026-0002")).one()
    assert draft.submitted_at is None and draft.urgency == "normal"
    steps = session.scalars(select(RfaStatusChange).where(RfaStatusChange.rfa_id == draft.id))
    assert [s.to_status for s in steps] == ["draft"]
    approved = session.scalars(select(Rfa).where(Rfa.code == "RFA-2026-0003")).one()
    steps = session.scalars(
        select(RfaStatusChange)
        .where(RfaStatusChange.rfa_id == approved.id)
        .order_by(RfaStatusChange.changed_at)
    )
    # The current status is recorded; unknown steps in between are not invented.
    assert [(s.from_status, s.to_status) for s in steps] == [
        (None, "submitted"),
        ("submitted", "approved"),
    ]
    assert audit_count(session) == 2


def test_existing_code_with_different_content_is_rejected(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    run_import(session, blobs, write_bundle(tmp_path / "a.jsonl", good_records()), files)
    session.commit()
    before = dump(session)
    records = good_records()
    records[5]["title"] = "Statement of W-1 (revised)"
    records[5]["tags"] = ["detention"]
    records[9]["conditions"] = "none"  # the consent ledger is append-only
    records[11]["status"] = "approved"
    records[11]["history"].append({"status": "approved", "at": "2026-02-01T00:00:00Z"})
    errors = rejected(session, blobs, write_bundle(tmp_path / "b.jsonl", records), files)
    assert [(e.line, e.reason) for e in errors] == [
        (6, "item ITM-000001: already exists with different title, tags"),
        (10, "consent CNS-0001: already exists with different conditions"),
        (12, "rfa RFA-2026-0001: already exists with different status, history"),
    ]
    assert dump(session) == before


# --------------------------------------------------------------------------- bad lines


def _replace(index: int, **changes: Any) -> Callable[[list[Any], Path], None]:
    def edit(records: list[Any], _files: Path) -> None:
        for name, value in changes.items():
            if value is None:
                records[index].pop(name, None)
            else:
                records[index][name] = value

    return edit


def _raw_line(index: int, text: str) -> Callable[[list[Any], Path], None]:
    def edit(records: list[Any], _files: Path) -> None:
        records[index] = text

    return edit


def _person_after_item(records: list[Any], _files: Path) -> None:
    records.insert(5, records.pop(4))  # the person now comes after the item naming it


def _symlink_outside(records: list[Any], files: Path) -> None:
    outside = files.parent / "outside.txt"
    outside.write_bytes(STATEMENT)
    (files / "items" / "link.txt").symlink_to(outside)
    records[5]["file"] = "items/link.txt"


def _symlinked_dir_outside(records: list[Any], files: Path) -> None:
    elsewhere = files.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "statement.txt").write_bytes(STATEMENT)
    (files / "more").symlink_to(elsewhere)
    records[5]["file"] = "more/statement.txt"


def _not_regular(records: list[Any], files: Path) -> None:
    os.mkfifo(files / "items" / "pipe")
    records[5]["file"] = "items/pipe"


BAD_LINES = {
    "unknown type": (_replace(4, type="witness"), 5, "unknown type 'witness'", {6, 8}),
    "users are invited": (
        _replace(0, type="user"),
        1,
        "users are not imported: invite them",
        {6, 7, 10, 11},
    ),
    "malformed JSON": (_raw_line(2, '{"type": "assessment", "code": '), 3, "not valid JSON"),
    "not an object": (_raw_line(2, '["provider"]'), 3, "not a JSON object"),
    "duplicate JSON key": (
        _raw_line(0, '{"type": "provider", "code": "A", "code": "B"}'),
        1,
        "field 'code' appears twice",
        {6, 7, 10, 11},
    ),
    "missing type": (_replace(4, type=None), 5, "missing required field 'type'", {6, 8}),
    "missing field": (
        _replace(5, title=None),
        6,
        "item ITM-000001: missing required field 'title'",
    ),
    "unknown field": (_replace(4, nickname="W"), 5, "person PER-0001: unknown field 'nickname'"),
    "bad enum": (
        _replace(5, sensitivity="secret"),
        6,
        "field 'sensitivity': must be one of low, medium, high, very_high (got 'secret')",
    ),
    "wrong type": (_replace(4, at_risk="yes"), 5, "field 'at_risk': must be true or false"),
    "naive datetime": (
        _replace(9, recorded_at="2026-01-15T12:00:00"),
        10,
        "has no time zone",
    ),
    "bad date": (_replace(5, collected_at="2025-02-30"), 6, "'2025-02-30' is not a valid date"),
    "bad digest": (_replace(5, sha256="abc"), 6, "field 'sha256': must be 64 hexadecimal digits"),
    "wrong hash": (
        _replace(5, sha256=sha(b"something else")),
        6,
        f"has sha256 {sha(STATEMENT)}, not the sha256 given",
    ),
    "wrong size": (
        _replace(5, size=len(STATEMENT) - 1),
        6,
        f"is {len(STATEMENT)} bytes, not the size given ({len(STATEMENT) - 1})",
    ),
    "unknown reference": (_replace(5, provider="PRV-NOBODY"), 6, "unknown provider PRV-NOBODY"),
    "unknown person in list": (
        _replace(5, persons=["PER-0001", "PER-9999"]),
        6,
        "unknown person PER-9999",
    ),
    "forward reference": (
        _person_after_item,
        5,
        "refers to person PER-0001, which comes only later (line 6)",
    ),
    "duplicate code (the second line's references fail too)": (
        _replace(6, code="ITM-000001"),
        7,
        "item ITM-000001: duplicate: already on line 6",
        {9, 12},
    ),
    "duplicate mark": (
        _replace(8, item="ITM-000001", kind="term", box=None, term="x"),
        9,
        "redaction mark M-1 of item ITM-000001: duplicate: already on line 8",
    ),
    "path with ..": (_replace(5, file="../outside.txt"), 6, "contains '..'"),
    "path with .. inside": (
        _replace(5, file="items/../../outside.txt"),
        6,
        "contains '..'",
    ),
    "absolute path": (_replace(5, file="/etc/passwd"), 6, "is an absolute path"),
    "missing file": (
        _replace(5, file="items/nothing.txt"),
        6,
        "not found in the --files directory",
    ),
    "symlink outside": (_symlink_outside, 6, "resolves outside the --files directory"),
    "symlinked directory outside": (
        _symlinked_dir_outside,
        6,
        "resolves outside the --files directory",
    ),
    "not a regular file": (_not_regular, 6, "is not a regular file"),
    "wrong fingerprint": (
        _replace(3, fingerprint=FINGERPRINTS["SPR-ES"]),
        4,
        f"has fingerprint {NWU_FPR}, not {FINGERPRINTS['SPR-ES']}",
    ),
    "not a key": (_replace(3, key_file="items/statement.txt"), 4, "key_file: not an OpenPGP"),
    "half a verification": (
        _replace(3, verified_at=None),
        4,
        "verified_by, verified_at and verification_method go together; missing verified_at",
    ),
    "consent for another provider's item": (
        lambda records, _files: (
            records.insert(
                1,
                {
                    "type": "provider",
                    "code": "PRV-BETA",
                    "name": "B",
                    "kind": "state",
                    "public_name": "B",
                },
            )
            or records[10].update(provider="PRV-BETA")
        ),
        11,
        "item ITM-000001 belongs to provider PRV-ALPHA, not PRV-BETA",
    ),
    "expiry on a decline": (
        _replace(10, expires_at="2027-01-01T00:00:00Z"),
        11,
        "only a grant can expire",
    ),
    "mark fields of another kind": (
        _replace(8, page=2),
        9,
        "field 'page' does not apply to a image_box mark",
    ),
    "box outside the unit square": (_replace(8, box=[0.5, 0.5, 1.2, 0.9]), 9, "between 0 and 1"),
    "pdf box on a photo": (
        _replace(8, kind="pdf_box", page=1),
        9,
        "a pdf_box mark needs a PDF item, not image/jpeg",
    ),
    "mark person not on the item": (
        _replace(8, person="PER-0001"),
        9,
        "person PER-0001 is not among the persons of item ITM-000002",
    ),
    "submitted request without submitted_at": (
        _replace(11, submitted_at=None),
        12,
        "a request with status in_review needs submitted_at",
    ),
    "history not ending at the status": (
        _replace(11, status="submitted"),
        12,
        "history must end with the current status submitted",
    ),
    "assurance without text": (
        _replace(11, assurances=[{"given_by": "X", "given_at": "2026-01-01"}]),
        12,
        "field 'assurances': entry 1: missing required field 'text'",
    ),
    "lone surrogate": (_replace(5, title="W-1 \ud800"), 6, "invalid Unicode escape"),
    "NUL character": (_replace(4, pseudonym="W\x001"), 5, "must not contain NUL characters"),
    "integer too large for the database": (
        _replace(7, kind="text_span", term=None, span=[0, 2**40]),
        8,
        "offsets must be at most 2147483647",
    ),
    "lower-case country": (_replace(1, country="nl"), 2, "two-letter ISO 3166 country code"),
}


@pytest.mark.parametrize("case", list(BAD_LINES), ids=list(BAD_LINES))
def test_bad_line_is_reported_with_its_number(
    case: str, session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    edit, line, reason, *also = BAD_LINES[case]
    records: list[Any] = good_records()
    edit(records, files)
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"
    bundle = tmp_path / "bad.jsonl"
    bundle.write_text(text, encoding="utf-8")

    errors = rejected(session, blobs, bundle, files)

    assert any(e.line == line and reason in e.reason for e in errors), errors
    # Nothing else is blamed, except lines naming a record the bad line failed to define.
    assert {e.line for e in errors} == {line, *(also[0] if also else ())}, errors
    assert list(blobs.keys()) == []
    assert all(not rows for rows in dump(session).values())


def test_several_bad_lines_are_all_reported_and_nothing_is_stored(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    # Something already stored, which the rejected bundle must leave alone.
    run_import(session, blobs, lines_of(good_records()[:1]), None)
    session.commit()
    before = dump(session)
    audits = audit_count(session)

    records: list[Any] = good_records()
    records[2] = '{"type": "assessment", '  # line 3: malformed
    records[4]["role"] = "bystander"  # line 5: bad enum
    records[6]["file"] = "../../etc/hostname"  # line 7: escapes --files
    records[10]["provider"] = "PRV-GHOST"  # line 11: unknown reference
    records.append(
        {"type": "person", "code": "PER-0001", "pseudonym": "X", "role": "victim", "at_risk": False}
    )
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records)
    bundle = tmp_path / "several.jsonl"
    bundle.write_text(text, encoding="utf-8")

    with pytest.raises(BundleRejected) as caught:
        run_import(session, blobs, bundle, files)
    session.rollback()

    assert caught.value.bad_lines == [3, 5, 7, 11, 13]
    report = caught.value.report()
    assert report.splitlines()[0].startswith("several.jsonl: rejected, nothing was imported")
    assert "on 5 lines" in report.splitlines()[0]
    for expected in (
        "line 3: not valid JSON: Expecting property name enclosed in double quotes at character 25",
        "line 5: person PER-0001: field 'role': must be one of",
        "line 7: item ITM-000002: field 'file': '../../etc/hostname' contains '..'",
        "line 11: consent CNS-0002: unknown provider PRV-GHOST",
        "line 13: person PER-0001: duplicate: already on line 5",
    ):
        assert expected in report, report
    assert dump(session) == before
    assert audit_count(session) == audits
    assert list(blobs.keys()) == []


def test_blobs_written_before_a_late_bad_file_are_removed(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    # The photo is already stored (an earlier import of another bundle): it must stay.
    existing = blobs.put_bytes(PHOTO)
    records = good_records()
    # The last line's file is wrong: it is only found while streaming, after the statement
    # and the photo went into the store.
    records.append(
        {
            "type": "item",
            "code": "ITM-000003",
            "provider": "PRV-ALPHA",
            "kind": "analytical_report",
            "title": "Report",
            "media_type": "application/pdf",
            "file": "items/report.pdf",
            "sha256": sha(b"not the report"),
            "sensitivity": "low",
        }
    )
    errors = rejected(session, blobs, write_bundle(tmp_path / "late.jsonl", records), files)
    assert [e.line for e in errors] == [13]
    assert list(blobs.keys()) == [existing.sha256]
    assert blobs.read_bytes(existing.sha256) == PHOTO
    assert list((blobs.root / "tmp").iterdir()) == []
    assert all(not rows for rows in dump(session).values())


def test_example_keys_are_refused_outside_demo_and_test(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "prod.jsonl", good_records())
    errors = rejected(session, blobs, bundle, files, demo_or_test=False)
    assert [e.line for e in errors] == [4]
    assert "fictional example key" in errors[0].reason


def test_items_need_a_files_directory(
    session: Session, blobs: FileBlobStore, tmp_path: Path
) -> None:
    errors = rejected(session, blobs, lines_of(good_records()), None)
    assert {e.line for e in errors} == {4, 6, 7}
    assert all("no --files directory was given" in e.reason for e in errors)
    missing = tmp_path / "nowhere"
    errors = rejected(session, blobs, lines_of(good_records()), missing)
    assert all("is not a directory" in e.reason for e in errors)


def test_unreadable_lines_are_reported(
    session: Session, blobs: FileBlobStore, tmp_path: Path
) -> None:
    bundle = tmp_path / "binary.jsonl"
    provider = json.dumps(good_records()[0]).encode()
    bundle.write_bytes(provider + b"\n\n   \n" + b'{"type": "\xff"}\n' + b"x" * 2_000_000 + b"\n")
    errors = rejected(session, blobs, bundle, None)
    assert [(e.line, e.reason) for e in errors] == [
        (4, "not valid UTF-8 (byte 11)"),
        (5, "line is longer than 1048576 bytes"),
    ]


def test_empty_bundle_imports_nothing(session: Session, blobs: FileBlobStore) -> None:
    report = run_import(session, blobs, [], None)
    assert report.records == 0 and not report.changed
    assert audit_count(session) == 0


# --------------------------------------------------------------------------- large files


def _write_generated(path: Path, size: int) -> str:
    """Write ``size`` bytes of generated (non-repeating per MiB) data; return their sha256."""
    digest = hashlib.sha256()
    block = 1024 * 1024
    with path.open("wb") as out:
        for index in range(size // block):
            chunk = hashlib.sha256(index.to_bytes(8, "big")).digest() * (block // 32)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def test_large_file_streams_with_flat_memory(
    session: Session, blobs: FileBlobStore, files: Path
) -> None:
    size = 50 * 1024 * 1024
    digest = _write_generated(files / "items" / "video.mp4", size)
    records = [
        good_records()[0],
        {
            "type": "item",
            "code": "ITM-VIDEO",
            "provider": "PRV-ALPHA",
            "kind": "video",
            "title": "Long recording",
            "media_type": "video/mp4",
            "file": "items/video.mp4",
            "sha256": digest,
            "size": size,
            "sensitivity": "high",
        },
    ]
    tracemalloc.start()
    try:
        report = run_import(session, blobs, lines_of(records), files)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    session.commit()
    assert report.created["item"] == 1
    assert peak < 10 * 1024 * 1024, f"peak Python memory {peak} bytes"
    assert blobs.size(digest) == size
    assert session.scalars(select(Item.size_bytes)).one() == size
    assert session.scalar(select(func.count()).select_from(ItemPerson)) == 0


# --------------------------------------------------------------------------- the documentation


def test_documented_example_bundle_imports(
    session: Session, blobs: FileBlobStore, tmp_path: Path
) -> None:
    doc = (REPO / "docs" / "import-format.md").read_text(encoding="utf-8")
    example = doc.split("```jsonl\n", 1)[1].split("```", 1)[0]
    files = tmp_path / "files"
    (files / "items").mkdir(parents=True)
    (files / "keys").mkdir()
    (files / "items" / "statement.txt").write_bytes(b"Statement of witness W-1 (fictional).\n")
    shutil.copy(EXAMPLE_KEYS / "NWU-NL.pub.asc", files / "keys" / "NWU-NL.pub.asc")
    bundle = tmp_path / "repository.jsonl"
    bundle.write_text(example, encoding="utf-8")

    report = run_import(session, blobs, bundle, files)

    assert {name for name, count in report.created.items() if count == 1} == set(report.created)
    assert report.summary().startswith("repository.jsonl (sha256 ")


@pytest.mark.parametrize("declared", [len(STATEMENT) + 1, len(STATEMENT) - 1])
def test_a_wrong_declared_size_is_refused_and_leaves_no_blob(
    session: Session, blobs: FileBlobStore, files: Path, tmp_path: Path, declared: int
) -> None:
    """The file is what its sha256 says, but not the size declared: refused, and nothing of
    it stays in the store (a declared size larger than the file used to leave the blob)."""
    records = good_records()
    statement = next(r for r in records if r.get("file") == "items/statement.txt")
    statement["size"] = declared
    errors = rejected(session, blobs, write_bundle(tmp_path / "b.jsonl", records), files)
    assert any(f"not the size given ({declared})" in error.reason for error in errors), errors
    assert hashlib.sha256(STATEMENT).hexdigest() not in set(blobs.keys())
