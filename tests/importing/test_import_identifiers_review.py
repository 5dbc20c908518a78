"""Protected identifiers in bundles, after the security review of issue 14: a large import
unseals each stored identifier once (not once per record), and problems with a protected
identifier record never echo what the bundle holds, even when its fields are swapped."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit import CLI_ACTOR
from portal.importing.bundle import BundleRejected, ImportReport, import_bundle
from portal.registry.identifiers import NewIdentifier, add_identifiers
from portal.registry.models import Person, ProtectedIdentifier
from portal.sealing import KEY_BYTES, Sealer
from portal.storage import FileBlobStore
from tests.support.identifiers import ARABIC_NAME, LATIN_NAME

PERSON = {"type": "person", "code": "PER-0001", "pseudonym": "Witness W-1", "role": "witness",
          "at_risk": True}  # fmt: skip


class CountingSealer(Sealer):
    """A sealer with a random key that counts how many values it unseals."""

    def __init__(self) -> None:
        key = secrets.token_bytes(KEY_BYTES)
        super().__init__(lambda: key)
        self.unsealed = 0

    def unseal(self, sealed: str, purpose: str) -> str:
        self.unsealed += 1
        return super().unseal(sealed, purpose)


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def _import(
    session: Session, blobs: FileBlobStore, records: list[dict[str, Any]], sealer: Sealer
) -> ImportReport:
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    return import_bundle(
        session, blobs, lines, None, actor="cli:test", demo_or_test=True, sealer=sealer
    )


def _identifier(number: int) -> dict[str, Any]:
    return {"type": "protected_identifier", "person": "PER-0001", "kind": "phone",
            "value": f"+679 555 {number:05d}"}  # fmt: skip


def test_a_large_import_unseals_each_stored_identifier_once(
    session: Session, blobs: FileBlobStore
) -> None:
    sealer = CountingSealer()
    _import(session, blobs, [PERSON], sealer)
    person = session.scalars(select(Person)).one()
    stored = 300
    add_identifiers(
        session,
        sealer,
        [NewIdentifier(person, "phone", _identifier(n)["value"]) for n in range(stored)],
        actor=CLI_ACTOR,
    )
    session.commit()
    sealer.unsealed = 0

    # The stored ones again (unchanged) and as many new ones: 2 x 300 records, each checked
    # against the person's identifiers, then the new ones added.
    records = [PERSON] + [_identifier(n) for n in range(2 * stored)]
    report = _import(session, blobs, records, sealer)
    session.commit()

    assert report.unchanged["protected_identifier"] == stored
    assert report.created["protected_identifier"] == stored
    assert sealer.unsealed == stored  # once each, not once per record
    count = select(func.count()).select_from(ProtectedIdentifier)
    assert session.scalar(count) == 2 * stored

    sealer.unsealed = 0  # a later import (a new transaction) reads them afresh, once each
    assert _import(session, blobs, records, sealer).unchanged["protected_identifier"] == 2 * stored
    assert sealer.unsealed == 2 * stored


def test_2000_identifiers_for_one_person_import_in_one_pass(
    session: Session, blobs: FileBlobStore
) -> None:
    sealer = CountingSealer()
    records = [PERSON] + [_identifier(n) for n in range(2000)]
    assert _import(session, blobs, records, sealer).created["protected_identifier"] == 2000
    session.commit()
    sealer.unsealed = 0
    assert _import(session, blobs, records, sealer).unchanged["protected_identifier"] == 2000
    assert sealer.unsealed == 2000


def _report(
    session: Session, blobs: FileBlobStore, records: list[dict[str, Any]], sealer: Sealer
) -> str:
    with pytest.raises(BundleRejected) as caught:
        _import(session, blobs, records, sealer)
    session.rollback()
    return caught.value.report()


def test_swapped_fields_never_echo_the_value(session: Session, blobs: FileBlobStore) -> None:
    records = [
        PERSON,
        {"type": "protected_identifier", "person": "PER-0001", "kind": LATIN_NAME,
         "value": "name"},
        {"type": "protected_identifier", "person": ARABIC_NAME, "kind": "name",
         "value": "PER-0001"},
        {"type": "protected_identifier", "person": "PER-0001", "kind": "name",
         "value": "Witness W-1", LATIN_NAME: True},
        {"type": "protected_identifier", "person": "PER-0001", "kind": ["Orlanda"],
         "value": 7},
    ]  # fmt: skip
    report = _report(session, blobs, records, Sealer.random())
    for shown in (LATIN_NAME, ARABIC_NAME, "Orlanda"):
        assert shown not in report
    assert (
        "line 2: protected identifier of person PER-0001: field 'kind': must be one of name,"
        in report
    )
    assert "line 3: protected identifier: field 'person': is not a code" in report
    assert "line 4: protected identifier of person PER-0001: 1 unknown field(s)" in report
    assert "line 5: protected identifier: field 'kind': must be one of name," in report
    assert "field 'value': must be a string, not a number" in report


def test_other_records_still_show_the_bad_value(session: Session, blobs: FileBlobStore) -> None:
    bad = dict(PERSON, role="bystander", extra=1)
    report = _report(session, blobs, [bad], Sealer.random())
    assert "(got 'bystander')" in report
    assert "unknown field 'extra'" in report
