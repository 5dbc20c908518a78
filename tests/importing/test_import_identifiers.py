"""Protected identifiers in import bundles, on both databases: sealed as they are imported,
idempotent, and every problem reported without the value; also through `portal import`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import AuditEvent
from portal.importing.bundle import BundleRejected, ImportReport, import_bundle
from portal.registry.identifiers import identifiers_of, retire_identifier
from portal.registry.models import Person
from portal.sealing import Sealer
from portal.storage import FileBlobStore
from tests.support import factories as make
from tests.support.identifiers import ARABIC_NAME, BURMESE_NAME, LATIN_NAME, PHONE, stored_text

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

VALUES = (LATIN_NAME, ARABIC_NAME, BURMESE_NAME, PHONE)


def _records() -> list[dict[str, Any]]:
    return [
        {"type": "person", "code": "PER-0001", "pseudonym": "Witness W-1", "role": "witness",
         "at_risk": True},
        {"type": "person", "code": "PER-0002", "pseudonym": "Source S-2", "role": "source",
         "at_risk": False},
        {"type": "protected_identifier", "person": "PER-0001", "kind": "name", "value": LATIN_NAME},
        {"type": "protected_identifier", "person": "PER-0001", "kind": "transliteration",
         "value": ARABIC_NAME},
        {"type": "protected_identifier", "person": "PER-0001", "kind": "alias",
         "value": BURMESE_NAME},
        {"type": "protected_identifier", "person": "PER-0001", "kind": "phone", "value": PHONE},
    ]  # fmt: skip


def _lines(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(record, ensure_ascii=False) for record in records]


@pytest.fixture
def sealer() -> Sealer:
    return Sealer.random()


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def _import(
    session: Session,
    blobs: FileBlobStore,
    records: list[dict[str, Any]],
    sealer: Sealer | None,
) -> ImportReport:
    return import_bundle(
        session, blobs, _lines(records), None, actor="cli:test", demo_or_test=True, sealer=sealer
    )


def _problems(
    session: Session, blobs: FileBlobStore, records: list[dict[str, Any]], sealer: Sealer | None
) -> str:
    with pytest.raises(BundleRejected) as caught:
        _import(session, blobs, records, sealer)
    session.rollback()
    report = caught.value.report()
    for value in VALUES:
        assert value not in report
    return report


def test_identifiers_are_sealed_on_import(
    session: Session, blobs: FileBlobStore, sealer: Sealer
) -> None:
    report = _import(session, blobs, _records(), sealer)
    session.commit()
    assert report.created["protected_identifier"] == 4
    assert "protected_identifier       4 created" in report.summary()
    stored = stored_text(session)
    assert not any(value in stored for value in VALUES)
    person = session.scalars(select(Person).where(Person.code == "PER-0001")).one()
    listed = identifiers_of(session, sealer, person)
    assert {(entry.row.kind, entry.value) for entry in listed} == {
        ("name", LATIN_NAME),
        ("transliteration", ARABIC_NAME),
        ("alias", BURMESE_NAME),
        ("phone", PHONE),
    }
    assert {entry.row.created_by for entry in listed} == {"cli:test"}
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    added = [event for event in events if event.action == "identifier.add"]
    assert len(added) == 4 and {event.target for event in added} == {"person:PER-0001"}
    bundle_event = events[-1]
    assert bundle_event.action == "import.bundle"
    assert json.loads(bundle_event.details)["created"]["protected_identifier"] == 4
    for event in events:
        assert not any(value in event.details for value in VALUES)


def test_a_bundle_without_identifiers_reports_as_before(
    session: Session, blobs: FileBlobStore
) -> None:
    report = _import(session, blobs, _records()[:2], None)
    assert "protected_identifier" not in report.created
    assert "protected_identifier" not in report.summary()


def test_importing_again_changes_nothing(
    session: Session, blobs: FileBlobStore, sealer: Sealer
) -> None:
    _import(session, blobs, _records(), sealer)
    session.commit()
    person = session.scalars(select(Person).where(Person.code == "PER-0001")).one()
    retired = identifiers_of(session, sealer, person)[0].row
    retire_identifier(session, retired, by=make.user(session))
    session.commit()
    again = _records()
    again[2]["value"] = f"  {LATIN_NAME.upper()} "  # reads the same
    report = _import(session, blobs, again, sealer)
    assert report.unchanged["protected_identifier"] == 4 and not report.changed
    session.refresh(retired)
    assert retired.retired_at is not None  # an import does not undo a retirement

    again[3]["kind"] = "alias"
    problems = _problems(session, blobs, again, sealer)
    assert (
        "line 4: protected identifier of person PER-0001: already exists with different kind"
        in (problems)
    )


def test_problems_never_show_the_value(
    session: Session, blobs: FileBlobStore, sealer: Sealer
) -> None:
    records = _records()
    records[2]["value"] = "J."  # too short
    records[4]["value"] = records[3]["value"]  # the same value twice
    records.append(
        {"type": "protected_identifier", "person": "PER-0002", "kind": "name", "value": PHONE}
    )
    records.append(
        {"type": "protected_identifier", "person": "PER-9", "kind": "name", "value": LATIN_NAME}
    )
    report = _problems(session, blobs, records, sealer)
    assert (
        "line 3: protected identifier of person PER-0001: The name for PER-0001 needs at least 3"
        in (report)
    )
    assert "J." not in report
    assert "line 5: protected identifier of person PER-0001: duplicate: already on line 4" in report
    assert "line 7: protected identifier of person PER-0002: PER-0002 is not flagged at risk" in (
        report
    )
    assert "line 8: protected identifier of person PER-9: unknown person PER-9" in report


def test_without_the_key_nothing_is_imported(
    session: Session, blobs: FileBlobStore, sealer: Sealer
) -> None:
    _import(session, blobs, _records(), sealer)
    session.commit()
    assert "given none" in _problems(session, blobs, _records(), None)
    assert "sealed under another key" in _problems(session, blobs, _records(), Sealer.random())


def test_portal_import_seals_with_the_key_file(portal: Any, tmp_path: Path) -> None:
    assert portal("init").exit_code == 0
    bundle = tmp_path / "identifiers.jsonl"
    bundle.write_text("\n".join(_lines(_records())) + "\n", encoding="utf-8")
    first = portal("import", str(bundle))
    assert first.exit_code == 0, first.output
    assert "protected_identifier       4 created" in first.output
    again = portal("import", str(bundle))
    assert again.exit_code == 0 and "nothing to do" in again.output
    for value in VALUES:
        assert value not in first.output + again.output
