"""Tests for ``portal demo`` (portal.demo): the generated files, the fictional dataset, and
running the demo on both database backends with the real importer, blob store and accounts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import time
import wave
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from pdfminer.high_level import extract_text
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfparser import PDFParser
from PIL import Image, ImageOps
from PIL.ExifTags import GPS, IFD, Base
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import ROLES, User
from portal.accounts.passwords import verify_password
from portal.accounts.totp_seeds import open_seed
from portal.audit import AuditEvent
from portal.config import Settings
from portal.consent.ledger import answer_request
from portal.consent.models import Consent, ConsentRequest, ConsentRequestItem
from portal.db import utcnow
from portal.demo import DemoRefused, DemoResult, format_logins, run_demo
from portal.demo import files as gen
from portal.demo.dataset import FAMILIES, FAMILIES_REQUESTS, PERSONS, Dataset, build_dataset
from portal.demo.users import DEMO_USERS
from portal.notifications.models import Notification
from portal.registry.models import (
    Assessment,
    Authority,
    Item,
    Provider,
    RecipientKey,
    RedactionMark,
)
from portal.rfa.models import Assurance, Message, Rfa, RfaItem
from portal.state import PortalState, build_state

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return build_dataset(KEYS)


@pytest.fixture
def state(settings: Settings, engine: Engine) -> PortalState:
    return build_state(settings, engine=engine)


@pytest.fixture
def logins_file(settings: Settings) -> Path:
    return settings.instance_dir / "demo_logins.json"


def items_of(dataset: Dataset, media_type: str) -> list[dict[str, object]]:
    return [r for r in dataset.of_type("item") if r["media_type"] == media_type]


def file_of(dataset: Dataset, item: dict[str, object]) -> bytes:
    return dataset.files[str(item["file"])]


def table_part(result: DemoResult) -> str:
    """The login table printed by the CLI, without the import summary above it."""
    text = format_logins(result)
    return text[text.index("Demo logins") :]


# --------------------------------------------------------------------------- generated files


DIGESTS_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from portal.demo.dataset import build_dataset
files = build_dataset(Path(sys.argv[1])).files
json.dump({name: hashlib.sha256(data).hexdigest() for name, data in files.items()}, sys.stdout)
"""


def test_files_are_byte_identical_across_generations_and_processes(dataset: Dataset) -> None:
    first = {name: hashlib.sha256(data).hexdigest() for name, data in dataset.files.items()}
    assert len(first) >= 30
    # Another process, with another hash seed, at another second of the clock.
    time.sleep(1.1)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    env.pop("SOURCE_DATE_EPOCH", None)
    out = subprocess.run(
        [sys.executable, "-c", DIGESTS_SCRIPT, str(KEYS)], env=env, capture_output=True, check=True
    )
    assert json.loads(out.stdout) == first
    # And in this process again; the bundle lines too.
    again = build_dataset(KEYS)
    assert {n: hashlib.sha256(d).hexdigest() for n, d in again.files.items()} == first
    assert again.bundle_lines() == dataset.bundle_lines()


def test_weasyprint_report_does_not_depend_on_the_clock() -> None:
    """fontTools stamps subset fonts with the current time unless pinned."""
    created = datetime(2023, 12, 15, 12, 0, tzinfo=UTC)
    kwargs = {"html_body": "<h1>Report</h1><p>Text</p>", "title": "T", "author": "A"}
    before = os.environ.get("SOURCE_DATE_EPOCH")
    first = gen.html_report(created=created, **kwargs)
    time.sleep(1.1)
    second = gen.html_report(created=created, **kwargs)
    assert first == second
    assert os.environ.get("SOURCE_DATE_EPOCH") == before  # restored
    info = PDFDocument(PDFParser(io.BytesIO(first))).info[0]
    assert info["CreationDate"] == b"D:20231215120000Z"
    assert info["Title"] == b"T"


def test_jpeg_photos_carry_gps_exif_and_one_needs_transposing(dataset: Dataset) -> None:
    photos = items_of(dataset, "image/jpeg")
    assert len(photos) >= 5
    orientations = []
    for item in photos:
        image = Image.open(io.BytesIO(file_of(dataset, item)))
        assert image.format == "JPEG"
        exif = image.getexif()
        gps = exif.get_ifd(IFD.GPSInfo)
        assert gps[GPS.GPSLatitudeRef] in ("N", "S")
        assert gps[GPS.GPSLongitudeRef] in ("E", "W")
        latitude = sum(float(part) / 60**i for i, part in enumerate(gps[GPS.GPSLatitude]))
        longitude = sum(float(part) / 60**i for i, part in enumerate(gps[GPS.GPSLongitude]))
        # Open South Pacific: a fictional island, no real place.
        assert 47 < latitude < 49 and 125 < longitude < 127
        assert exif[Base.Make] and exif[Base.Model]
        assert exif.get_ifd(IFD.Exif)[Base.DateTimeOriginal].startswith("2023:")
        orientations.append(exif[Base.Orientation])
        if exif[Base.Orientation] == 6:
            assert ImageOps.exif_transpose(image).size == image.size[::-1]
    assert 6 in orientations and 1 in orientations


def test_image_box_covers_the_sign_in_the_upright_photo(dataset: Dataset) -> None:
    """The box of a mark is where the (pale) sign is once the orientation is applied."""
    for mark in dataset.of_type("redaction_mark"):
        if mark["kind"] != "image_box" or mark["item"] != "ITM-0021":
            continue
        item = next(i for i in dataset.of_type("item") if i["code"] == "ITM-0021")
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(file_of(dataset, item))))
        x0, y0, x1, y1 = mark["box"]
        width, height = image.size
        centre = image.convert("RGB").getpixel(
            (int((x0 + x1) / 2 * width), int((y0 * 0.8 + y1 * 0.2) * height))
        )
        assert centre[0] > 200 and centre[1] > 200  # the sign's cream background
        return
    pytest.fail("no image_box mark on ITM-0021")


def test_pdfs_have_a_text_layer_and_fixed_dates(dataset: Dataset) -> None:
    pdfs = items_of(dataset, "application/pdf")
    assert len(pdfs) >= 8
    for item in pdfs:
        data = file_of(dataset, item)
        text = " ".join(extract_text(io.BytesIO(data)).split())
        if "scan" in item["tags"]:
            assert text == ""  # a scan: its words exist only as pixels
        else:
            assert str(item["title"]).split(":")[0] in text
        info = PDFDocument(PDFParser(io.BytesIO(data))).info[0]
        assert info["CreationDate"].startswith(b"D:202")
    hospital = next(i for i in pdfs if i["code"] == "ITM-0013")
    assert "Ilse Moravan" in extract_text(io.BytesIO(file_of(dataset, hospital)))


def test_every_protected_term_and_span_is_in_the_material(dataset: Dataset) -> None:
    items = {i["code"]: i for i in dataset.of_type("item")}
    for mark in dataset.of_type("redaction_mark"):
        item = items[mark["item"]]
        data = file_of(dataset, item)
        if item["media_type"] == "text/plain":
            text = data.decode("utf-8")
        elif item["media_type"] == "application/pdf":
            text = " ".join(extract_text(io.BytesIO(data)).split())
        else:
            continue
        if mark["kind"] == "term":
            assert mark["term"] in text, (mark["item"], mark["code"])
        if mark["kind"] == "text_span":
            start, end = mark["span"]
            assert text[start:end].strip() and len(text[start:end]) == end - start


def test_at_risk_names_in_statements_are_protected_by_term_marks(dataset: Dataset) -> None:
    terms = {(m["item"], m["term"]) for m in dataset.of_type("redaction_mark") if "term" in m}
    named = 0
    for item in items_of(dataset, "text/plain"):
        text = file_of(dataset, item).decode("utf-8")
        for _pseudonym, _role, at_risk, name in PERSONS.values():
            if at_risk and name in text:
                named += 1
                assert (item["code"], name) in terms, (item["code"], name)
    assert named >= 8


def test_unredactable_kinds_are_real_files(dataset: Dataset) -> None:
    audio = items_of(dataset, "audio/wav")
    assert audio
    for item in audio:
        with wave.open(io.BytesIO(file_of(dataset, item))) as recording:
            assert recording.getnframes() > 0
    archives = items_of(dataset, "application/zip")
    assert archives
    with zipfile.ZipFile(io.BytesIO(file_of(dataset, archives[0]))) as archive:
        assert archive.testzip() is None
        assert {info.date_time for info in archive.infolist()} == {(2023, 10, 20, 18, 0, 0)}
    marked = {m["item"] for m in dataset.of_type("redaction_mark")}
    assert any(i["code"] in marked for i in audio)  # withheld: cannot be redacted
    assert any(i.get("cleared_as_is") for i in audio)


def test_dataset_has_the_variety_the_demo_promises(dataset: Dataset) -> None:
    marks = dataset.of_type("redaction_mark")
    assert {m["kind"] for m in marks} == {"term", "text_span", "pdf_box", "image_box"}
    assert {m["applies"] for m in marks} == {"always", "without_protection"}
    confirmed = set(dataset.confirmed_marks)
    assert confirmed and any((m["item"], m["code"]) not in confirmed for m in marks)  # some wait
    assert all("review" not in m for m in marks)  # imports leave every mark pending
    assert len(dataset.of_type("rfa")) >= 6
    kinds = Counter(i["kind"] for i in dataset.of_type("item"))
    for kind in ("witness_statement", "document", "photo", "analytical_report", "audio"):
        assert kinds[kind] >= 1
    assert len(dataset.of_type("item")) >= 30
    assert len(dataset.of_type("provider")) == 4


# --------------------------------------------------------------------------- running the demo


def test_demo_is_refused_outside_demo_or_test_mode(
    state: PortalState, settings: Settings, logins_file: Path
) -> None:
    state.settings = settings.with_overrides(testing=False, demo=False)
    with pytest.raises(DemoRefused, match="PORTAL_DEMO=1"):
        run_demo(state, logins_file=logins_file)
    assert not logins_file.exists()
    with state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Authority)) == 0


def _counts(session: Session) -> dict[str, int]:
    models = (
        Authority,
        Assessment,
        RecipientKey,
        Provider,
        Item,
        RedactionMark,
        Consent,
        Rfa,
        RfaItem,
        Message,
        Assurance,
        ConsentRequest,
        ConsentRequestItem,
        Notification,
        User,
        AuditEvent,
    )
    return {
        model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in models
    }


def _consent_states(session: Session) -> set[str]:
    """The current state of every (provider, item, authority), as the ledger derives it."""
    latest: dict[tuple[int, int | None, int], Consent] = {}
    for event in session.scalars(select(Consent).order_by(Consent.recorded_at, Consent.id)):
        latest[(event.provider_id, event.item_id, event.authority_id)] = event
    grants_per_item = Counter(
        key[1] for key, event in latest.items() if key[1] is not None and event.event == "grant"
    )
    states = set()
    now = utcnow()
    for (_provider, item, _authority), event in latest.items():
        if event.event == "grant" and event.expires_at is not None and event.expires_at <= now:
            states.add("expired")
        elif event.event == "grant" and item is None:
            states.add("standing")
        elif event.event == "grant" and grants_per_item[item] == 1:
            states.add("granted_to_one_authority")
        elif event.event in ("decline", "revoke"):
            states.add({"decline": "declined", "revoke": "revoked"}[event.event])
    return states


def _assessment_ok(session: Session, code: str, criterion: str) -> bool:
    now = utcnow()
    rows = session.scalars(
        select(Assessment)
        .join(Authority)
        .where(Authority.code == code, Assessment.criterion == criterion)
    ).all()
    return any(
        a.finding == "satisfied" and (a.valid_until is None or a.valid_until > now) for a in rows
    )


def test_demo_runs_twice_without_duplicates_and_prints_the_same_logins(
    state: PortalState, logins_file: Path
) -> None:
    first = run_demo(state, logins_file=logins_file)

    with state.sessions() as session:
        counts = _counts(session)
        assert counts["Authority"] >= 4 and counts["Provider"] == 4
        assert counts["Item"] >= 30 and counts["Rfa"] >= 6
        kinds = set(session.scalars(select(Item.kind)))
        assert {"witness_statement", "document", "photo", "analytical_report"} <= kinds
        assert set(session.scalars(select(User.role))) == set(ROLES)
        assert (
            session.scalar(
                select(func.count()).select_from(User).where(User.role == "legal_officer")
            )
            == 2
        )
        statuses = set(session.scalars(select(Rfa.status)))
        assert {"draft", "submitted", "in_review", "clarification_requested"} <= statuses
        assert {"approved", "declined", "withdrawn"} <= statuses
        assert _consent_states(session) == {
            "standing",
            "granted_to_one_authority",
            "declined",
            "revoked",
            "expired",
        }
        # The authorities behave as the demo says.
        assert all(
            _assessment_ok(session, "NWU-NL", c)
            for c in ("fair_trial", "death_penalty", "witness_protection")
        )
        assert not _assessment_ok(session, "SPR-ES", "death_penalty")
        assert not _assessment_ok(session, "ECT-EV", "witness_protection")
        assert _assessment_ok(session, "ECT-EV", "fair_trial")
        assert not _assessment_ok(session, "WJD-WR", "fair_trial")
        assert session.scalar(select(func.count()).select_from(Assurance)) >= 1
        assert (
            session.scalar(
                select(func.count())
                .select_from(RecipientKey)
                .where(RecipientKey.verified_at.is_not(None))
            )
            == counts["Authority"]
        )
        # Every item's bytes are in the blob store under their digest.
        for digest in session.scalars(select(Item.sha256)):
            assert state.blobs.exists(digest)
        assert audit.verify(session).ok

    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    assert len(first.logins) == len(DEMO_USERS) == first.users_created
    assert all(login.password and len(login.password) >= 16 for login in first.logins)
    assert len({login.password for login in first.logins}) == len(first.logins)
    printed = format_logins(first)
    for login in first.logins:
        assert login.email in printed and str(login.password) in printed
        assert str(login.otpauth_uri) in printed
        assert str(login.otpauth_uri).startswith("otpauth://totp/")
        assert "issuer=Sharing%20Portal%20%28demo%29" in str(login.otpauth_uri)

    # A printed login signs in: password, and a TOTP code from the printed otpauth URI.
    officer = next(entry for entry in first.logins if entry.role == "legal_officer")
    code = pyotp.parse_uri(str(officer.otpauth_uri)).now()
    with state.sessions() as session:
        user = session.scalars(select(User).where(User.email == officer.email)).one()
        seed = open_seed(user)
        assert seed is not None and user.totp_confirmed_at is not None
        assert seed not in (user.totp_secret or "")  # stored sealed
        assert pyotp.TOTP(seed).verify(code)
        assert not pyotp.TOTP(seed).verify(f"{(int(code) + 1) % 10**6:06d}")
        assert verify_password(user.password_hash, str(officer.password))
        assert not verify_password(user.password_hash, f"{officer.password}x")

    second = run_demo(state, logins_file=logins_file)
    with state.sessions() as session:
        assert _counts(session) == counts  # nothing new, not even an audit event
    assert second.users_created == 0
    assert second.report is not None and not second.report.changed
    assert table_part(second) == table_part(first)
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600


def test_the_families_network_has_consent_requests_of_its_own_asked_once(
    state: PortalState, logins_file: Path
) -> None:
    """The language test answers these two requests; nothing else may depend on them: they are
    the only consent requests of the demo, for the network's items only, and a run after one
    was answered (declined: the item still lacks consent) asks nothing again."""
    run_demo(state, logins_file=logins_file)
    with state.sessions() as session, session.begin():
        network = session.scalars(select(Provider).where(Provider.code == FAMILIES)).one()
        requests = session.scalars(select(ConsentRequest).order_by(ConsentRequest.id)).all()
        assert [r.status for r in requests] == ["open", "open"]
        rfas = {r.id: session.get(Rfa, r.rfa_id) for r in requests}
        assert sorted(rfa.code for rfa in rfas.values() if rfa) == sorted(FAMILIES_REQUESTS)
        for request in requests:
            rfa = rfas[request.id]
            assert rfa is not None and request.authority_id == rfa.authority_id
            assert request.provider_id == network.id
        asked = session.scalars(select(ConsentRequestItem.item_id)).all()
        network_items = set(session.scalars(select(Item.id).where(Item.provider_id == network.id)))
        assert sorted(asked) == sorted(network_items) and len(asked) == 2
        # The network's items are candidates of its two requests only, and it gave no consent.
        holders = session.scalars(
            select(Rfa.code).join(RfaItem).where(RfaItem.item_id.in_(network_items))
        ).all()
        assert sorted(holders) == sorted(FAMILIES_REQUESTS)
        assert not session.scalars(select(Consent).where(Consent.provider_id == network.id)).all()
        readers = session.scalars(select(User).where(User.provider_id == network.id)).all()
        assert {u.email for u in readers} == {"provider.ar@kfn.example", "provider.my@kfn.example"}
        for reader in readers:
            told = session.scalars(
                select(Notification.subject).where(Notification.user_id == reader.id)
            ).all()
            assert told == ["New consent request"] * 2
        first_items = session.scalars(
            select(ConsentRequestItem.item_id).where(
                ConsentRequestItem.consent_request_id == requests[0].id
            )
        ).all()
        answer_request(
            session,
            requests[0],
            action="decline",
            item_ids=first_items,
            by=readers[0],
            reason="Not yet: the families are still being asked.",
        )
        assert requests[0].status == "answered"

    run_demo(state, logins_file=logins_file)
    with state.sessions() as session:
        statuses = session.scalars(select(ConsentRequest.status).order_by(ConsentRequest.id))
        assert list(statuses) == ["answered", "open"]


def test_officers_are_told_of_the_marks_still_waiting_once(
    state: PortalState, logins_file: Path
) -> None:
    """The import runs before the demo's officers exist, so it told no one; the demo tells
    every legal officer of each item whose marks still wait (not of items reviewed in full),
    and a second run tells no one again."""
    run_demo(state, logins_file=logins_file)
    with state.sessions() as session:
        waiting = set(
            session.scalars(
                select(Item.code).join(RedactionMark).where(RedactionMark.review == "pending")
            )
        )
        assert waiting, "the demo should leave some marks for the officers to confirm"
        officers = set(
            session.scalars(select(User.id).where(User.role == "legal_officer", User.is_active))
        )
        assert len(officers) >= 2
        notices = session.execute(
            select(Notification.topic, Notification.user_id).where(
                Notification.topic.like("marks:%")
            )
        ).all()
        assert sorted(notices) == sorted(
            (f"marks:{code}", officer) for code in waiting for officer in officers
        )
    run_demo(state, logins_file=logins_file)
    with state.sessions() as session:
        again = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.topic.like("marks:%"))
        )
        assert again == len(notices)


def test_rerun_survives_changed_data_a_deleted_user_and_a_forgotten_login(
    state: PortalState, logins_file: Path
) -> None:
    first = run_demo(state, logins_file=logins_file)
    admin = next(login for login in first.logins if login.role == "admin")
    forgotten = "officer.two@mechanism.example"
    with state.sessions() as session, session.begin():
        # Someone played with the demo: a request moved on, the admin account was removed.
        session.execute(update(Rfa).where(Rfa.code == "RFA-2026-0001").values(status="in_review"))
        session.execute(User.__table__.delete().where(User.email == admin.email))
    saved = json.loads(logins_file.read_text())
    del saved["logins"][forgotten]
    logins_file.write_text(json.dumps(saved))

    second = run_demo(state, logins_file=logins_file)

    assert second.report is None
    assert "changed since" in second.note and "RFA-2026-0001" in second.note
    assert second.users_created == 1  # the admin, with the login saved the first time
    again = next(login for login in second.logins if login.email == admin.email)
    assert again.credentials == admin.credentials
    with state.sessions() as session:
        user = session.scalars(select(User).where(User.email == admin.email)).one()
        assert verify_password(user.password_hash, str(admin.password))
        assert session.scalar(select(Rfa.status).where(Rfa.code == "RFA-2026-0001")) == (
            "in_review"
        )
    # An existing user whose login is not in the file is left alone and shown as unknown.
    unknown = next(login for login in second.logins if login.email == forgotten)
    assert unknown.password is None and not unknown.created
    assert "(unknown: not in logins file)" in format_logins(second)


def test_unreadable_logins_file_stops_the_demo_and_changes_nothing(
    state: PortalState, logins_file: Path
) -> None:
    logins_file.parent.mkdir(parents=True, exist_ok=True)
    logins_file.write_text("{not json")
    with pytest.raises(DemoRefused, match="not valid JSON"):
        run_demo(state, logins_file=logins_file)
    assert logins_file.read_text() == "{not json"
    with state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 0
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_missing_example_keys_are_refused(
    state: PortalState, logins_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(DemoRefused, match="cannot read the example key fingerprints"):
        run_demo(state, logins_file=logins_file, keys_dir=tmp_path / "nowhere")
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("fingerprints.json", "NWU-NL.pub.asc"):
        (partial / name).write_bytes((KEYS / name).read_bytes())
    with pytest.raises(DemoRefused, match=r"SPR-ES\.pub\.asc is missing"):
        run_demo(state, logins_file=logins_file, keys_dir=partial)
    assert not logins_file.exists()
