"""A registered name in an item's original filename never leaves (security review of issue
14, finding 1): the file is named after its item code (``data/items/<code>/item.<ext>``) in
the bag, the manifest and the documents, so the reasons, audit details and leak reports of a
blocked package, which name files by bag path, do not carry it either. Real files, the real
pipeline, real gpg, release over HTTP."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from portal import audit
from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
from portal.packages.assembly.bag import safe_payload_name
from portal.packages.assembly.manifest import MANIFEST_PATH, parse_manifest
from portal.packages.assembly.payload_names import names_a_term, neutral_path
from portal.packages.models import Package, PackageItem
from portal.redaction.matcher import Matcher
from portal.state import PortalState, portal_state
from tests.packages.test_gpgstream import decrypt
from tests.packages.test_hidden_identifiers import NEEDLES, SIGNING, _package, _world
from tests.support import factories as make
from tests.support.auth import csrf_token, login
from tests.support.hostile import file_texts
from tests.support.identifiers import LATIN_NAME, register
from tests.support.package_world import (
    _add_item,
    build_world,
    lapse_witness_protection,
    recheck,
)

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

# The registered name is "Orlanda Vesk Marrow": written with "_", "." and "-" between words
# (which the bag's safe names keep) and with accents (which they transliterate).
NAMED = {
    "ITM-N0001": ("text/plain", "Orlanda_Vesk-Marrow.statement.txt", b"A plain statement.\n"),
    "ITM-N0002": ("text/plain", "Orl\u00e1nda.V\u00e9sk.Marrow.txt", b"Another statement.\n"),
}


@pytest.mark.parametrize(
    "name",
    [
        "Orlanda_Vesk_Marrow.pdf",
        "orlanda.vesk.marrow.txt",
        "ORLANDA-VESK-MARROW-2.jpg",
        "Vesk_Marrow_notes.txt",  # a partial name
        "Orl\u00e1nda V\u00e9sk Marrow.pdf",
    ],
)
def test_a_file_name_that_names_a_term(name: str) -> None:
    """Searched as given and as the bag would name it (accents transliterated)."""
    assert names_a_term(Matcher([("PID-1", LATIN_NAME)]), name, safe_payload_name(name))


def test_a_file_name_that_names_nobody() -> None:
    matcher = Matcher([("PID-1", LATIN_NAME)])
    assert not names_a_term(matcher, "statement_2.txt", "", "marr.ow")


def test_the_neutral_name_keeps_only_a_harmless_extension() -> None:
    matcher = Matcher([("PID-1", LATIN_NAME), ("M-1", "Marrow")])
    path = "data/items/ITM-1/Orlanda_Vesk_Marrow.pdf"
    assert neutral_path(matcher, path, "ITM-1") == "data/items/ITM-1/item.pdf"
    assert neutral_path(matcher, "data/items/ITM-1/x.marrow", "ITM-1") == "data/items/ITM-1/item"
    assert neutral_path(matcher, "data/items/ITM-1/Orlanda", "ITM-1") == "data/items/ITM-1/item"


def _nowhere(text: str) -> None:
    folded = text.casefold()
    for needle in NEEDLES:
        assert needle not in folded, needle


def _audit_text(state: PortalState) -> str:
    """Every audit event's action, target and details, as one string."""
    with state.sessions() as session:
        events = session.scalars(select(audit.AuditEvent)).all()
        return json.dumps([[e.action, e.target, e.details] for e in events], ensure_ascii=False)


def test_a_named_file_leaves_under_its_item_code(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(**SIGNING)
    state = portal_state(app)
    world, _code = _world(state, NAMED)
    package_id, package_code = _package(state, world)

    assemble_package(state, package_id)

    second = app.test_client()
    login(second, world.second)
    page = second.get(f"/packages/{package_code}")
    released = second.post(
        f"/packages/{package_code}/release",
        data={"csrf_token": csrf_token(page), "reviewed": "yes", "expires_in_days": "7"},
    )
    assert released.status_code == 303
    with state.sessions() as session:
        package = session.scalars(select(Package).where(Package.id == package_id)).one()
        paths = list(
            session.scalars(select(PackageItem.path).where(PackageItem.package_id == package_id))
        )
        session.expunge(package)
    assert package.status == "released", package.failure_reason
    assert package.file_sha256 is not None

    plain = tmp_path / "package.tar"
    ok, _signer, status = decrypt(state.blobs.path(package.file_sha256), "NWU-NL", plain)
    assert ok, status
    with tarfile.open(plain) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "x", filter="data")
    bag = tmp_path / "x" / package.code
    for item_code in NAMED:
        assert any(n.startswith(f"{package_code}/data/items/{item_code}/item.") for n in names)
    _nowhere("\n".join(names))
    _nowhere("\n".join(paths))
    manifest_bytes = (bag / MANIFEST_PATH).read_bytes()
    _nowhere(manifest_bytes.decode("utf-8"))
    entries = {e["code"]: e for e in parse_manifest(manifest_bytes)["items"]}
    for item_code in NAMED:
        assert entries[item_code]["path"].startswith(f"data/items/{item_code}/item.")
    for path in sorted(bag.rglob("*")):
        if path.is_file():
            for text in file_texts(path):
                _nowhere(text)
    _nowhere(_audit_text(state))
    # an item whose name names nobody keeps it
    assert f"{package_code}/data/items/ITM-T0001/s1.txt" in names


def test_a_blocked_package_names_files_by_item_code(
    make_app: Callable[..., Flask],
) -> None:
    """The leak check blocks a cleared video whose bytes name the person; its original
    filename names them too: the reason, the leak report and the audit name its file
    after the item code."""
    app = make_app(**SIGNING)
    state = portal_state(app)
    video = (
        "video/mp4",
        "Orlanda Vesk Marrow - interview.mp4",
        b"\x00\x00\x00\x18ftypmp42 subtitle: Orlanda Vesk Marrow",
    )
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        code = register(session, state.sealer, make.person(session), LATIN_NAME).code
        _add_item(session, state.blobs, world, "ITM-V0009", *video, [], cleared=True)
        lapse_witness_protection(session, world)
        recheck(session, world)
        session.commit()
    package_id, _package_code = _package(state, world)

    with pytest.raises(AssemblyFailed, match="leak check") as failed:
        assemble_package(state, package_id)

    assert f"data/items/ITM-V0009/item.mp4 ({code})" in failed.value.reason
    _nowhere(failed.value.reason)
    with state.sessions() as session:
        package = session.scalars(select(Package).where(Package.id == package_id)).one()
        assert package.status == "blocked"
        _nowhere(package.failure_reason or "")
        _nowhere(json.dumps(package.leak_check))
        assert package.leak_check is not None
        hits = package.leak_check["hits"]
        assert isinstance(hits, list)
        assert {hit["path"] for hit in hits} == {"data/items/ITM-V0009/item.mp4"}
    _nowhere(_audit_text(state))
