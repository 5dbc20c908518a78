"""The assembly pipeline end to end, on both databases, with real files, real gpg and the
example keys: a genuine package decrypts with the authority's key, is signed by the signing
key, holds a valid bag and a valid, signed manifest, and carries no protected term; a leak
blocks it naming the file; failures leave nothing behind; reruns are idempotent; a consent
revocation committed during assembly leaves the package blocked.

The world is tests/support/package_world.py's :func:`make_world` (text items, a cleared video, a
declined item, a verified key, a PDF and a JPEG with marks, and a fresh decision).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import bagit
import pytest
from pdfminer.high_level import extract_text
from sqlalchemy import Engine, func, select, update

from portal.accounts.models import User
from portal.accounts.totp_key import ensure_totp_key
from portal.audit import AuditEvent
from portal.config import Settings
from portal.consent.models import Consent
from portal.consent.revocation import revoke_consent
from portal.db import utcnow
from portal.notifications import service as notifications
from portal.packages.assembly.assemble import (
    LETTER_PATH,
    LOG_PATH,
    AssemblyFailed,
    assemble_package,
)
from portal.packages.assembly.decision_record import (
    DECISION_RECORD_PATH,
    DECISION_SIGNATURE_PATH,
)
from portal.packages.assembly.gpgstream import verify_detached
from portal.packages.assembly.item_index import INDEX_CSV_PATH, INDEX_JSON_PATH
from portal.packages.assembly.manifest import MANIFEST_PATH, SIGNATURE_PATH, parse_manifest
from portal.packages.lifecycle import release_package, replaceable, replaced_by
from portal.packages.models import Download, Package, PackageItem
from portal.redaction.leakcheck import check_files
from portal.registry.models import UNNAMED_PROVIDER, Item, Provider, RecipientKey
from portal.sealing import ensure_sealing_key
from portal.state import PortalState, build_state
from portal.storage import FileBlobStore
from tests.packages.test_gpgstream import FPR, decrypt
from tests.support.auth import make_user
from tests.support.package_world import (
    EXIF_TERM,
    PDF_TERM,
    SECRET_TERM,
    World,
    flip_a_bit,
    make_world,
    new_package,
    recheck,
    signing_settings,
    user,
)

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"
SIGNING = FPR["mechanism-signing"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def state(settings: Settings, engine: Engine) -> Iterator[PortalState]:
    yield build_state(signing_settings(settings), engine=engine)


def package_row(state: PortalState, package_id: int) -> Package:
    with state.sessions() as session:
        package = session.get(Package, package_id)
        assert package is not None
        session.expunge(package)
        return package


def blob_keys(state: PortalState) -> set[str]:
    return set(state.blobs.keys())


def staging_leftovers(state: PortalState) -> list[Path]:
    root = state.settings.data_dir / "staging"
    return list(root.iterdir()) if root.exists() else []


def open_package(state: PortalState, package: Package, dest: Path) -> Path:
    """Decrypt with the authority's key (checking the signer) and extract; the bag dir."""
    assert package.file_sha256 is not None
    plain = dest / "package.tar"
    ok, signer, status = decrypt(state.blobs.path(package.file_sha256), "NWU-NL", plain)
    assert ok, status
    assert signer == SIGNING
    with tarfile.open(plain) as tar:
        tar.extractall(dest / "x", filter="data")
    return dest / "x" / package.code


# --------------------------------------------------------------------------- tests


def test_genuine_package(state: PortalState, tmp_path: Path) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    before = blob_keys(state)

    assemble_package(state, package_id)

    package = package_row(state, package_id)
    assert (package.status, package.stage, package.progress) == ("assembled", "assembled", 100)
    assert package.failure_reason is None
    assert package.signer_fingerprint == SIGNING
    assert package.file_sha256 and package.signature_sha256
    assert blob_keys(state) - before == {package.file_sha256, package.signature_sha256}
    assert state.blobs.size(package.file_sha256) == package.file_size
    assert package.leak_check is not None and package.leak_check["clean"] is True
    assert staging_leftovers(state) == []

    # the detached signature over the ciphertext, by the signing key
    ciphertext = state.blobs.path(package.file_sha256)
    signature = state.blobs.read_bytes(package.signature_sha256)
    public = (KEYS / "mechanism-signing.pub.asc").read_text()
    verify_detached(ciphertext, signature, public, SIGNING)

    bag_dir = open_package(state, package, tmp_path)
    bag = bagit.Bag(str(bag_dir))
    bag.validate()
    # payload first (streamed once, leak-checked as it passed), the documents at the end
    with tarfile.open(tmp_path / "package.tar") as tar:
        data_files = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()]
        data_files = [name for name in data_files if name.startswith("data/")]
    evidence = ["leaves.json", "checkpoint.txt", "checkpoint.txt.asc"]  # the transparency log's
    assert data_files[-11:] == [
        LETTER_PATH, LOG_PATH, *(f"data/transparency/{name}" for name in evidence),
        DECISION_RECORD_PATH, DECISION_SIGNATURE_PATH, INDEX_CSV_PATH, INDEX_JSON_PATH,
        MANIFEST_PATH, SIGNATURE_PATH,
    ]  # fmt: skip
    assert all(name.startswith("data/items/") for name in data_files[:-11])
    assert package.leak_check["files_checked"] == len(data_files)
    assert package.leak_check["terms_checked"] == 2  # M-1 and M-P1
    assert bag.info["External-Identifier"] == package.code

    manifest = parse_manifest((bag_dir / MANIFEST_PATH).read_bytes())
    verify_detached(
        bag_dir / MANIFEST_PATH, (bag_dir / SIGNATURE_PATH).read_bytes(), public, SIGNING
    )
    assert manifest["package"]["code"] == package.code
    assert manifest["signing_key_fingerprint"] == SIGNING
    assert manifest["recipient_fingerprints"] == [FPR["NWU-NL"]]
    assert {d["path"] for d in manifest["documents"]} == {
        LETTER_PATH, LOG_PATH, *(f"data/transparency/{name}" for name in evidence)
    }  # fmt: skip

    with state.sessions() as session:
        rows = {
            item.code: row
            for row, item in session.execute(
                select(PackageItem, Item)
                .join(Item, Item.id == PackageItem.item_id)
                .where(PackageItem.package_id == package_id)
            )
        }
    entries = {entry["code"]: entry for entry in manifest["items"]}
    assert set(entries) == set(rows)
    for code, row in rows.items():
        entry = entries[code]
        assert (row.path, row.rendition_sha256) == (entry["path"], entry["sha256"])
        assert row.redaction_count == sum(r["count"] for r in entry["redactions"])
        assert (bag_dir / entry["path"]).is_file()
    assert entries["ITM-P0001"]["media_type"] == "application/pdf"
    assert entries["ITM-P0001"]["rendition"] == "redacted"
    assert rows["ITM-P0001"].redaction_count >= 2
    assert entries["ITM-J0001"]["path"].endswith(".jpg")
    assert rows["ITM-T0002"].path.endswith(".pdf")  # the redacted text became a PDF
    # the as-is video is the registered file, byte for byte
    video = entries["ITM-T0003"]
    assert video["rendition"] == "as_is" and video["sha256"] == video["source_sha256"]

    # no protected term anywhere: the leak check, raw bytes and the PDF text layers
    files = [(str(p.relative_to(bag_dir)), p) for p in bag_dir.rglob("*") if p.is_file()]
    terms = [("M-1", SECRET_TERM), ("M-P1", PDF_TERM), ("X-EXIF", EXIF_TERM)]
    assert check_files(files, terms).clean
    for _, path in files:
        data = path.read_bytes().lower()
        for _, term in terms:
            assert term.lower().encode() not in data, path
    assert extract_text(bag_dir / rows["ITM-P0001"].path).strip() == ""

    with state.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target == f"package:{package.code}")
        ).all()
    assert "package.assembled" in actions


def test_the_recipient_verifier_accepts_it(state: PortalState, tmp_path: Path) -> None:
    from tests.support.packages import keyring

    world = make_world(state)
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    package = package_row(state, package_id)
    assert package.file_sha256 and package.signature_sha256
    target = tmp_path / f"{package.code}.tar.gpg"
    target.write_bytes(state.blobs.path(package.file_sha256).read_bytes())
    (tmp_path / f"{package.code}.tar.gpg.sig").write_bytes(
        state.blobs.read_bytes(package.signature_sha256)
    )
    with keyring(secret=("NWU-NL",), public=("mechanism-signing",)) as home:
        done = subprocess.run(
            [sys.executable, "-m", "portal.verify", str(target), "--sender-fingerprint",
            SIGNING,
             "--gnupghome", str(home), "--json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"] is True


def test_running_twice_is_idempotent(state: PortalState) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    first = package_row(state, package_id)
    keys = blob_keys(state)
    with state.sessions() as session:
        events = session.scalar(select(func.count()).select_from(AuditEvent))

    assemble_package(state, package_id)

    again = package_row(state, package_id)
    assert (again.status, again.version, again.file_sha256) == (
        "assembled",
        first.version,
        first.file_sha256,
    )
    assert blob_keys(state) == keys
    with state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_a_leak_blocks_the_package_and_names_the_file(state: PortalState) -> None:
    world = make_world(state, leaky=True)
    package_id = new_package(state, world)
    before = blob_keys(state)

    with pytest.raises(AssemblyFailed, match="leak check") as caught:
        assemble_package(state, package_id)

    package = package_row(state, package_id)
    assert package.status == "blocked"
    assert package.file_sha256 is None and package.signature_sha256 is None
    assert "data/items/ITM-V0002/leak.mp4" in caught.value.reason
    assert SECRET_TERM.lower() not in caught.value.reason.lower()
    assert package.leak_check is not None
    hits = package.leak_check["hits"]
    assert {(hit["path"], hit["mark_code"]) for hit in hits} == {
        ("data/items/ITM-V0002/leak.mp4", "M-1")
    }
    assert SECRET_TERM.lower() not in json.dumps(package.leak_check).lower()
    assert blob_keys(state) == before
    assert staging_leftovers(state) == []
    # blocked is final: running again changes nothing
    assemble_package(state, package_id)
    assert package_row(state, package_id).status == "blocked"


def test_a_protected_name_in_an_item_title_blocks_at_the_documents(state: PortalState) -> None:
    # the payload is clean, but the letter, the custody log and the manifest list the titles
    world = make_world(state)
    with state.sessions() as session:
        item = session.scalars(select(Item).where(Item.code == "ITM-P0001")).one()
        item.title = f"Interview with {PDF_TERM}"
        session.commit()
    package_id = new_package(state, world)
    before = blob_keys(state)

    with pytest.raises(AssemblyFailed, match="leak check") as caught:
        assemble_package(state, package_id)

    package = package_row(state, package_id)
    assert package.status == "blocked" and package.file_sha256 is None
    assert package.leak_check is not None
    named = {(hit["path"], hit["mark_code"]) for hit in package.leak_check["hits"]}
    assert {(LETTER_PATH, "M-P1"), (LOG_PATH, "M-P1"), (MANIFEST_PATH, "M-P1")} <= named
    assert all(not path.startswith("data/items/") for path, _ in named)
    assert LETTER_PATH in caught.value.reason and MANIFEST_PATH in caught.value.reason
    assert PDF_TERM.lower() not in caught.value.reason.lower()
    assert PDF_TERM.lower() not in json.dumps(package.leak_check).lower()
    assert blob_keys(state) == before
    assert staging_leftovers(state) == []


def test_a_file_the_leak_check_cannot_read_blocks_and_is_named(state: PortalState) -> None:
    world = make_world(state, broken=True)
    package_id = new_package(state, world)

    with pytest.raises(AssemblyFailed, match="could not read") as caught:
        assemble_package(state, package_id)

    package = package_row(state, package_id)
    assert package.status == "blocked" and package.file_sha256 is None
    assert package.leak_check is not None and package.leak_check["hits"] == []
    unchecked = [entry["path"] for entry in package.leak_check["unchecked"]]
    assert len(unchecked) == 1 and unchecked[0].startswith("data/items/ITM-P0009/")
    assert unchecked[0] in caught.value.reason
    assert staging_leftovers(state) == []


def _revoke_key(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        key = session.get(RecipientKey, world.key_id)
        assert key is not None
        key.revoked_at = utcnow()
        session.commit()


def test_no_usable_key_fails_with_a_reason_and_leaves_nothing(state: PortalState) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    _revoke_key(state, world)
    before = blob_keys(state)

    with pytest.raises(AssemblyFailed, match="no verified, current OpenPGP key"):
        assemble_package(state, package_id)

    package = package_row(state, package_id)
    assert package.status == "failed"
    assert package.failure_reason and "Northland War Crimes Unit" in package.failure_reason
    assert blob_keys(state) == before
    assert staging_leftovers(state) == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"signing_key_file": None}, "No signing key is configured"),
        ({"signing_passphrase_file": None}, "needs a passphrase"),
        ({"testing": False}, "fictional example key"),  # copied 0600 (below)
        ({"testing": False}, "readable by other users"),  # keys_example/ is 0644 from git
        ({"archive_key_file": REPO / "tests" / "data" / "keys" / "expired.pub.asc"}, "expired"),
        # the letter is made in a worker process: its failure comes back as a reason
        ({"templates_dir": REPO / "tests" / "data"}, "documents could not be made"),
    ],
)
def test_configuration_problems_fail_with_a_reason(
    settings: Settings, engine: Engine, overrides: dict[str, Any], reason: str, tmp_path: Path
) -> None:
    configured = signing_settings(settings).with_overrides(**overrides)
    if reason == "fictional example key":  # private copies, so the fingerprint is what fails
        private = {}
        for name in ("signing_key_file", "signing_passphrase_file"):
            source = getattr(configured, name)
            copy = tmp_path / source.name
            copy.write_bytes(source.read_bytes())
            copy.chmod(0o600)
            private[name] = copy
        configured = configured.with_overrides(**private)
    state = build_state(configured, engine=engine)
    ensure_sealing_key(state.settings)  # outside test mode the keys are files (portal init)
    ensure_totp_key(state.settings)
    world = make_world(state)
    package_id = new_package(state, world)
    with pytest.raises(AssemblyFailed, match=reason):
        assemble_package(state, package_id)
    assert package_row(state, package_id).status == "failed"
    assert staging_leftovers(state) == []


def test_a_missing_blob_fails_then_a_retry_completes(state: PortalState) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    with state.sessions() as session:
        item = session.scalars(select(Item).where(Item.code == "ITM-J0001")).one()
        stored = state.blobs.path(item.sha256)
    kept = stored.read_bytes()
    stored.unlink()

    with pytest.raises(AssemblyFailed, match="ITM-J0001 is missing"):
        assemble_package(state, package_id)
    assert package_row(state, package_id).status == "failed"

    state.blobs.put_bytes(kept)  # the file is restored; a failed package starts again
    assemble_package(state, package_id)
    package = package_row(state, package_id)
    assert (package.status, package.failure_reason) == ("assembled", None)


@pytest.mark.parametrize("which", ["redact", "plain"])  # made into a rendition / bagged as-is
def test_a_damaged_source_is_never_shipped_and_the_admins_are_told(
    state: PortalState, which: str
) -> None:
    """A flipped bit in a stored source fails the package naming the item (its rendition
    would otherwise go out under the original's sha256, as verified evidence), leaves no
    package file, records the damage in the audit log and tells every admin."""
    world = make_world(state)
    package_id = new_package(state, world)
    with state.sessions() as session:
        item = session.get_one(Item, world.items[which])
        code, sha256 = item.code, item.sha256
        admin = make_user(session, "admin")
    flip_a_bit(state.blobs.path(sha256))
    before = blob_keys(state)

    with pytest.raises(AssemblyFailed, match=f"stored file of {code} is damaged"):
        assemble_package(state, package_id)

    package = package_row(state, package_id)
    assert package.status == "failed" and package.file_sha256 is None
    assert blob_keys(state) == before
    assert staging_leftovers(state) == []
    with state.sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "blob.damaged")).one()
        assert event.target == f"blob:{sha256}"
        assert json.loads(event.details) == {
            "uses": [f"item {code}"],
            "found_by": f"assembly of {package.code}",
        }
        inbox = notifications.inbox(session, session.get_one(User, admin.user_id))
        assert [n.subject for n in inbox] == [
            f"Stored file of item {code} is damaged: restore it from a backup"
        ]


def test_a_stuck_assembling_package_starts_again(state: PortalState) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    with state.sessions() as session:
        package = session.get(Package, package_id)
        assert package is not None
        package.status, package.stage, package.progress = "assembling", "rendering", 40
        session.commit()
    # While its run still beats, a second job leaves it alone (a lost job queued again)...
    assemble_package(state, package_id)
    assert package_row(state, package_id).status == "assembling"
    with state.sessions() as session:  # ...once the beats stop, the next job takes over
        session.execute(
            update(Package)
            .where(Package.id == package_id)
            .values(updated_at=utcnow() - timedelta(hours=1))
            .execution_options(synchronize_session=False)
        )
        session.commit()
    leftover = state.settings.data_dir / "staging"
    assemble_package(state, package_id)
    assert package_row(state, package_id).status == "assembled"
    assert not leftover.exists() or staging_leftovers(state) == []


class RevokingBlobStore(FileBlobStore):
    """A blob store that, when the finished package file is about to be stored (the first
    key asked for that is not already stored), first commits a consent revocation, as a
    provider revoking at that very moment would (a real revocation in its own transaction)."""

    def __init__(self, root: Path, state: PortalState, world: World, by_id: int) -> None:
        super().__init__(root)
        self.state, self.world, self.by_id, self.fired = state, world, by_id, False
        self.known = set(self.keys())

    def path(self, key: str) -> Path:
        if not self.fired and key not in self.known:
            self.fired = True
            with self.state.sessions() as session:
                grant = session.scalars(
                    select(Consent).where(
                        Consent.item_id == self.world.items["redact"], Consent.event == "grant"
                    )
                ).one()
                by = session.get(User, self.by_id)
                assert by is not None
                revocation = revoke_consent(session, grant, reason="The witness withdrew.", by=by)
                session.commit()
                assert revocation.blocked
        return super().path(key)


def test_a_revocation_during_assembly_leaves_it_blocked(state: PortalState) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    before = blob_keys(state)
    with state.sessions() as session:
        representative = make_user(session, "provider", provider_code="PRV-T")
    state.blobs = RevokingBlobStore(state.blobs.root, state, world, representative.user_id)

    with pytest.raises(AssemblyFailed, match="blocked while it was being assembled"):
        assemble_package(state, package_id)

    assert state.blobs.fired  # type: ignore[attr-defined]
    package = package_row(state, package_id)
    assert package.status == "blocked"
    assert package.file_sha256 is None and package.signature_sha256 is None
    assert blob_keys(state) == before  # the ciphertext it had stored was discarded
    assert staging_leftovers(state) == []
    with state.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target == f"package:{package.code}")
        ).all()
    assert "package.assembled" not in actions


def test_a_replacement_names_the_recalled_package_and_the_items_left_out(
    state: PortalState, tmp_path: Path
) -> None:
    """Released, downloaded, then consent for one item revoked: after a new check the next
    package is the replacement — its signed manifest names the recalled package and the item
    it leaves out, and the original stays as it was."""
    world = make_world(state)
    first_id = new_package(state, world)
    assemble_package(state, first_id)
    with state.sessions() as session:
        first = session.get(Package, first_id)
        assert first is not None
        release_package(session, first, by=user(session, world.second_id))
        session.add(Download(package_id=first_id, bytes_sent=1))
        session.commit()
        first_sha = first.file_sha256
        representative = make_user(session, "provider", provider_code="PRV-T")
        grant = session.scalars(
            select(Consent).where(Consent.item_id == world.items["plain"], Consent.event == "grant")
        ).one()
        revoke_consent(
            session, grant, reason="The witness withdrew.",
            by=user(session, representative.user_id),
        )  # fmt: skip
        session.commit()
        recheck(session, world)
        session.commit()
        plain = session.get(Item, world.items["plain"])
        assert plain is not None
        left_out = plain.code

    second_id = new_package(state, world)
    assemble_package(state, second_id)
    second = package_row(state, second_id)
    assert second.replaces_id == first_id and second.status == "assembled"
    manifest = parse_manifest((open_package(state, second, tmp_path) / MANIFEST_PATH).read_bytes())
    original = package_row(state, first_id)
    assert manifest["replaces"] == {"code": original.code, "items_left_out": [left_out]}
    assert left_out not in {item["code"] for item in manifest["items"]}
    assert (original.status, original.file_sha256) == ("recalled", first_sha)  # unchanged
    with state.sessions() as session:
        assert replaced_by(session, original) is not None
        assert replaced_by(session, original, released_only=True) is None  # not sent yet
        assert replaceable(session, world.rfa_id) is None  # a third package replaces nothing


def test_a_provider_that_asked_not_to_be_named_is_named_nowhere_in_the_package(
    state: PortalState, tmp_path: Path
) -> None:
    world = make_world(state)
    with state.sessions() as session:
        provider = session.get(Provider, world.provider_id)
        assert provider is not None and provider.public_name == "Teal NGO"
        provider.named_to_authorities = False
        session.commit()
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    bag_dir = open_package(state, package_row(state, package_id), tmp_path)
    manifest = parse_manifest((bag_dir / MANIFEST_PATH).read_bytes())
    assert {item["provider"] for item in manifest["items"]} == {UNNAMED_PROVIDER}
    for document in (LETTER_PATH, LOG_PATH):
        text = extract_text(str(bag_dir / document))
        assert "Teal NGO" not in text and "Provider Teal" not in text, document
    for path in bag_dir.rglob("*"):
        if path.is_file() and path.suffix != ".pdf":
            assert b"Teal NGO" not in path.read_bytes(), path
