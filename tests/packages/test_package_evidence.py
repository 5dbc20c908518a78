"""A package assembled by the portal carries its own evidence (issue 20), on both databases,
real gpg: the signed decision record (deciding officer, policy, per-item outcomes and rule
references), per item the marks applied with the officers who proposed and confirmed them,
custody in chronological order with the source of each time, the item index; after release
the worker signs a release statement naming both officers, and portal-verify checks it all.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from portal.config import Settings
from portal.db import utcnow
from portal.eligibility.policy.schema import POLICY_FILES
from portal.packages.assembly.assemble import assemble_package
from portal.packages.assembly.decision_record import (
    DECISION_RECORD_PATH,
    DECISION_SIGNATURE_PATH,
)
from portal.packages.assembly.gpgstream import verify_detached
from portal.packages.assembly.item_index import INDEX_CSV_PATH, INDEX_JSON_PATH
from portal.packages.assembly.manifest import MANIFEST_PATH, parse_manifest
from portal.packages.lifecycle import release_package
from portal.packages.models import Package
from portal.packages.release_statement import SUFFIX, issue_pending_statements
from portal.registry.models import Item, RedactionMark
from portal.state import PortalState, build_state
from tests.packages.test_assemble import KEYS, SIGNING, open_package, package_row
from tests.support.package_world import (
    PDF_TERM,
    SECRET_TERM,
    make_world,
    new_package,
    signing_settings,
    user,
)
from tests.support.packages import keyring


@pytest.fixture
def state(settings: Settings, engine: Engine) -> Iterator[PortalState]:
    yield build_state(signing_settings(settings), engine=engine)


def test_the_assembled_package_carries_the_decision_marks_custody_and_index(
    state: PortalState, tmp_path: Path
) -> None:
    world = make_world(state)
    with state.sessions() as session:
        session.execute(
            update(RedactionMark)
            .where(RedactionMark.code == "M-P2")
            .values(
                proposed_by_id=world.officer_id,
                proposed_at=utcnow(),
                confirmed_by_id=world.second_id,
                confirmed_at=utcnow(),
            )
        )
        session.execute(  # a place that names a protected person never reaches the index
            update(Item).where(Item.code == "ITM-T0002").values(place=f"Near {SECRET_TERM}")
        )
        session.execute(
            update(Item).where(Item.code == "ITM-T0001").values(place="Northtown", language="ar")
        )
        officer = user(session, world.officer_id).display_name
        second = user(session, world.second_id).display_name
        session.commit()
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    package = package_row(state, package_id)
    assert package.status == "assembled", package.failure_reason
    bag = open_package(state, package, tmp_path)
    public = (KEYS / "mechanism-signing.pub.asc").read_text()
    manifest = parse_manifest((bag / MANIFEST_PATH).read_bytes())

    # the decision record, signed by the signing key, named by the signed manifest
    record_bytes = (bag / DECISION_RECORD_PATH).read_bytes()
    verify_detached(
        bag / DECISION_RECORD_PATH, (bag / DECISION_SIGNATURE_PATH).read_bytes(), public, SIGNING
    )
    assert manifest["decision_record"]["path"] == DECISION_RECORD_PATH
    record = json.loads(record_bytes)
    assert record["package"] == package.code
    assert record["decision"]["id"] == manifest["decision"]["id"]
    assert record["decision"]["deciding_officers"] == [officer]
    assert record["policy"]["revision"] == manifest["decision"]["policy_revision"]
    assert set(record["policy"]["files"]) == set(POLICY_FILES)
    outcomes = {item["code"]: item for item in record["items"]}
    assert set(outcomes) == {item["code"] for item in manifest["items"]}
    assert outcomes["ITM-P0001"]["outcome"] == "share_redacted"
    assert outcomes["ITM-P0001"]["marks"] == ["M-P1", "M-P2"]
    assert all(rule["reference"] for rule in outcomes["ITM-P0001"]["rules"])
    assert record["items_not_in_package"] == {"withhold": 1}  # the declined item, by count
    for term in (SECRET_TERM, PDF_TERM):
        assert term.encode() not in record_bytes

    # marks, with who proposed and confirmed each; never the term
    entries = {item["code"]: item for item in manifest["items"]}
    marks = {mark["code"]: mark for mark in entries["ITM-P0001"]["marks"]}
    assert marks["M-P2"]["page"] == 2 and marks["M-P2"]["box"] == [0.1, 0.05, 0.6, 0.2]
    assert (marks["M-P2"]["proposed_by"], marks["M-P2"]["confirmed_by"]) == (officer, second)
    assert marks["M-P1"]["kind"] == "term" and marks["M-P1"]["hits"] >= 1
    assert PDF_TERM not in json.dumps(manifest)

    # custody in date order, each with the source of its time
    for entry in manifest["items"]:
        times = [event["at"] for event in entry["custody"]]
        assert times == sorted(times)
        assert all(event["time_source"] == "portal-clock" for event in entry["custody"])

    # the item index, CSV and JSON, the same rows
    rows = list(csv.DictReader(io.StringIO((bag / INDEX_CSV_PATH).read_text("utf-8"))))
    assert json.loads((bag / INDEX_JSON_PATH).read_bytes())["items"] == [
        dict(sorted(row.items())) for row in rows
    ]
    by_code = {row["item_code"]: row for row in rows}
    assert (by_code["ITM-T0001"]["place"], by_code["ITM-T0001"]["language"]) == ("Northtown", "ar")
    assert by_code["ITM-T0002"]["place"] == ""  # named a protected person
    assert by_code["ITM-T0002"]["original_or_redacted"] == "redacted"
    assert by_code["ITM-T0001"]["provider"] == "Teal NGO"
    assert by_code["ITM-P0001"]["shared_sha256"] == entries["ITM-P0001"]["sha256"]

    # released: the worker signs the statement; portal-verify checks the whole package
    with state.sessions() as session:
        row = session.get(Package, package_id)
        assert row is not None
        release_package(session, row, by=user(session, world.second_id))
        session.commit()
    assert issue_pending_statements(state) == 1
    assert issue_pending_statements(state) == 0  # never replaced once issued
    package = package_row(state, package_id)
    assert package.file_sha256 and package.signature_sha256 and package.release_statement_sha256
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = inbox / f"{package.code}.tar.gpg"
    shutil.copy(state.blobs.path(package.file_sha256), target)
    shutil.copy(state.blobs.path(package.signature_sha256), f"{target}.sig")
    shutil.copy(state.blobs.path(package.release_statement_sha256), f"{target}{SUFFIX}")
    with keyring(secret=("NWU-NL",), public=("mechanism-signing",)) as home:
        done = subprocess.run(
            [sys.executable, "-m", "portal.verify", str(target), "--sender-fingerprint", SIGNING,
             "--gnupghome", str(home), "--json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    assert checks["release_statement"]["ok"]
    assert (
        f"assembled by {officer} and released by {second}" in checks["release_statement"]["detail"]
    )
