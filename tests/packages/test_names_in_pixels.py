"""Names that exist only as pixels never reach an authority that cannot protect the person
(issue 15, "Done when"): a scanned statement (an image-only PDF page) and photos of an ID card
and a sign, rendered with Pillow and the Noto fonts, name a registered person at risk in Latin
and Arabic script, with no mark anywhere. The real pipeline (Tesseract, gpg) releases every
one of them redacted; OCR of the released package's own files finds neither name, and the
package page says where each was found, by code. A TIFF (which the portal cannot remake)
shared as-is with a name in its pixels blocks the package instead."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import select

from portal.audit import AuditEvent
from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
from portal.packages.assembly.manifest import MANIFEST_PATH, parse_manifest
from portal.packages.models import Package
from portal.redaction.matcher import Matcher
from portal.redaction.ocr import scripts_of
from portal.redaction.pixels import read_image_file, read_pdf_pages
from portal.registry.models import Item
from portal.state import portal_state
from tests.packages.test_assemble import open_package
from tests.packages.test_hidden_identifiers import SIGNING, _package, _rows, _signed_in
from tests.redaction.test_ocr import _font, scan
from tests.support import factories as make
from tests.support.auth import csrf_token
from tests.support.identifiers import ARABIC_NAME, LATIN_NAME, register
from tests.support.package_world import (
    _add_item,
    build_world,
    lapse_witness_protection,
    recheck,
)

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

NAMES = [LATIN_NAME, ARABIC_NAME]
BURMESE_NAME = "မြသန္တာဦး"


def _scanned_pdf() -> bytes:
    page, _ = scan(
        [
            ("latin", "Statement of a witness, taken in March."),
            ("latin", f"Present: {LATIN_NAME} and the interpreter."),
            ("arabic", f"وقالت {ARABIC_NAME} إنها رأت القافلة"),
        ],
        size=(1400, 500),
    )
    out = io.BytesIO()
    page.save(out, format="PDF", resolution=200)
    return out.getvalue()


def _photo(text: str, script: str, fmt: str) -> bytes:
    """A photo of a card or sign: text on a light panel over a coloured background."""
    photo = Image.new("RGB", (1100, 360), (70, 110, 90))
    draw = ImageDraw.Draw(photo)
    draw.rectangle((40, 80, 1060, 280), fill=(240, 238, 228))
    font = _font(script, 46)
    if script == "arabic":
        draw.text((1030, 150), text, font=font, fill=(25, 25, 25), anchor="ra")
    else:
        draw.text((70, 150), text, font=font, fill=(25, 25, 25))
    out = io.BytesIO()
    photo.save(out, format=fmt)
    return out.getvalue()


PIXEL_ITEMS = {
    "ITM-P0001": ("application/pdf", "scan.pdf", _scanned_pdf()),
    "ITM-P0002": ("image/jpeg", "id-card.jpg", _photo(f"Name: {LATIN_NAME}", "latin", "JPEG")),
    "ITM-P0003": ("image/png", "sign.png", _photo(f"متجر {ARABIC_NAME}", "arabic", "PNG")),
}


def _read_in_pixels(path: Path) -> str:
    """Everything OCR reads in a file of the package (PDF pages with images, image frames)."""
    scripts = scripts_of(NAMES)
    if path.suffix == ".pdf":
        return "\n".join(reading.text for _, reading in read_pdf_pages(path, scripts))
    if path.suffix in (".jpg", ".png", ".tif"):
        return "\n".join(reading.text for _, reading in read_image_file(path, scripts))
    return ""


def test_names_in_scans_and_photos_are_released_redacted(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(**SIGNING)
    state = portal_state(app)
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        person = make.person(session)
        latin = register(session, state.sealer, person, LATIN_NAME).code
        arabic = register(session, state.sealer, person, ARABIC_NAME).code
        for item_code, (media_type, filename, data) in PIXEL_ITEMS.items():
            _add_item(session, state.blobs, world, item_code, media_type, filename, data, [])
        lapse_witness_protection(session, world)
        recheck(session, world)
        session.commit()
    package_id, package_code = _package(state, world)

    assemble_package(state, package_id)

    with state.sessions() as session:
        package = session.scalars(select(Package).where(Package.id == package_id)).one()
        session.expunge(package)
    assert package.status == "assembled", package.failure_reason
    bag = open_package(state, package, tmp_path)
    manifest = parse_manifest((bag / MANIFEST_PATH).read_bytes())
    entries = {entry["code"]: entry for entry in manifest["items"]}
    for item_code in PIXEL_ITEMS:
        assert entries[item_code]["rendition"] == "redacted", item_code
    # OCR of the package's own files finds neither name; what is not a name is still there.
    matcher = Matcher([("LATIN", LATIN_NAME), ("ARABIC", ARABIC_NAME)])
    read = {p.name: _read_in_pixels(p) for p in sorted(bag.rglob("*")) if p.is_file()}
    assert all(not matcher.codes_in_text(text) for text in read.values()), read
    shared = {entries[c]["path"].rsplit("/", 1)[-1]: c for c in PIXEL_ITEMS}
    assert "interpreter" in read[next(n for n, c in shared.items() if c == "ITM-P0001")]

    html = _signed_in(app, world.officer).get(f"/packages/{package_code}").get_data(as_text=True)
    assert all(name not in html for name in NAMES)
    rows = _rows(html)
    for code in (latin, arabic):
        assert f"Mark {code} (protected identifier): 1 hit (p. 1: 1)" in rows["ITM-P0001"]
    for item_code, code in (("ITM-P0002", latin), ("ITM-P0003", arabic)):
        assert f"Redacted instead of shared as registered: {code} found (pixels)" in rows[item_code]
        assert f"Mark {code} (protected identifier): 1 hit" in rows[item_code]


def test_a_name_in_the_pixels_of_an_image_shared_as_is_blocks_the_package(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(**SIGNING)
    state = portal_state(app)
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        code = register(session, state.sealer, make.person(session), LATIN_NAME).code
        tiff = _photo(f"Name: {LATIN_NAME}", "latin", "TIFF")
        _add_item(
            session, state.blobs, world, "ITM-P0004", "image/tiff", "card.tif", tiff, [],
            cleared=True,
        )  # fmt: skip
        lapse_witness_protection(session, world)
        recheck(session, world)
        session.commit()
    package_id, package_code = _package(state, world)
    with pytest.raises(AssemblyFailed, match="leak check"):
        assemble_package(state, package_id)
    html = _signed_in(app, world.officer).get(f"/packages/{package_code}").get_data(as_text=True)
    assert f"{code} found (pixels)" in _rows(html)["ITM-P0004"]
    assert LATIN_NAME not in html


def _blurred_burmese() -> bytes:
    """A photo of Burmese writing (not a registered name) too blurred for Tesseract to be sure
    of: its Burmese line is read with low confidence."""
    page = Image.new("L", (900, 160), 255)
    ImageDraw.Draw(page).text((10, 50), "ရန်ကုန်မြို့တွင် မိုးရွာသည်", font=_font("burmese", 30), fill=0)
    out = io.BytesIO()
    page.filter(ImageFilter.GaussianBlur(3)).save(out, format="PNG")
    return out.getvalue()


def test_pixels_ocr_cannot_be_trusted_on_wait_for_a_check_by_eye(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(**SIGNING)
    state = portal_state(app)
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        register(session, state.sealer, make.person(session), BURMESE_NAME)
        _add_item(
            session, state.blobs, world, "ITM-P0005", "image/png", "street.png",
            _blurred_burmese(), [],
        )  # fmt: skip
        lapse_witness_protection(session, world)
        recheck(session, world)
        session.commit()
    package_id, package_code = _package(state, world)
    with pytest.raises(AssemblyFailed, match="OCR cannot be trusted on some pixels of: data/"):
        assemble_package(state, package_id)  # failed, not blocked: a retry can follow

    officer = _signed_in(app, world.officer)
    page = officer.get(f"/packages/{package_code}")
    row = _rows(page.get_data(as_text=True))["ITM-P0005"]
    assert "OCR cannot be trusted on" in row and "low confidence" in row
    assert "Record the check by eye" in row
    action = f"/packages/{package_code}/items/ITM-P0005/pixels/checked-by-eye"
    refused = officer.post(action, data={"csrf_token": csrf_token(page)})
    assert refused.status_code == 303
    assert "Nothing was recorded" in officer.get(f"/packages/{package_code}").get_data(as_text=True)
    officer.post(action, data={"csrf_token": csrf_token(page), "read": "yes"})
    assert "another legal officer must read" in officer.get(f"/packages/{package_code}").get_data(
        as_text=True
    )  # the assembler's own eyes are not the second pair
    officer = _signed_in(app, world.second)
    page = officer.get(f"/packages/{package_code}")
    checked = officer.post(action, data={"csrf_token": csrf_token(page), "read": "yes"})
    assert checked.status_code == 303
    with state.sessions() as session:
        item = session.scalars(select(Item).where(Item.code == "ITM-P0005")).one()
        assert item.pixels_checked_by_id == world.second_id and item.pixels_checked_at
        audited = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "item.pixels_checked_by_eye")
        ).one()
        assert audited.target == "item:ITM-P0005"
    again = officer.post(action, data={"csrf_token": csrf_token(page), "read": "yes"})
    assert again.status_code == 303
    assert "already been checked by eye" in officer.get(f"/packages/{package_code}").get_data(
        as_text=True
    )

    retried = officer.post(f"/packages/{package_code}/retry", data={"csrf_token": csrf_token(page)})
    assert retried.status_code == 303
    assemble_package(state, package_id)  # what the worker does with the queued retry
    with state.sessions() as session:
        package = session.get(Package, package_id)
        assert package is not None and package.status == "assembled", package.failure_reason
    row = _rows(officer.get(f"/packages/{package_code}").get_data(as_text=True))["ITM-P0005"]
    assert "Pixels read by eye by a legal officer" in row


def test_a_scan_only_the_register_protects_waits_for_a_check_by_eye(
    make_app: Callable[..., Flask],
) -> None:
    """A scanned statement names a person at risk; no mark protects them, their name is
    registered, the authority cannot protect them: the decision shares the scan redacted (the
    register protects them), but the name is found only with OCR, which can misread it, and
    the leak check reads with the same OCR. So the package waits for a legal officer to read
    the scan, then goes through with the name burnt."""
    app = make_app(**SIGNING)
    state = portal_state(app)
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        scan_item = _add_item(
            session, state.blobs, world, "ITM-P0006", "application/pdf", "scan.pdf",
            _scanned_pdf(), [],
        )  # fmt: skip
        person = make.person(session, scan_item)
        register(session, state.sealer, person, LATIN_NAME)
        lapse_witness_protection(session, world)
        recheck(session, world)
        session.commit()
    package_id, package_code = _package(state, world)
    with pytest.raises(AssemblyFailed, match="protected by the register only: ITM-P0006"):
        assemble_package(state, package_id)
    officer = _signed_in(app, world.officer)
    page = officer.get(f"/packages/{package_code}")
    row = _rows(page.get_data(as_text=True))["ITM-P0006"]
    assert "only the register protects" in row and "Record the check by eye" in row

    action = f"/packages/{package_code}/items/ITM-P0006/pixels/checked-by-eye"
    officer = _signed_in(app, world.second)  # not the assembler
    page = officer.get(f"/packages/{package_code}")
    officer.post(action, data={"csrf_token": csrf_token(page), "read": "yes"})
    officer.post(f"/packages/{package_code}/retry", data={"csrf_token": csrf_token(page)})
    assemble_package(state, package_id)
    with state.sessions() as session:
        package = session.get(Package, package_id)
        assert package is not None and package.status == "assembled", package.failure_reason
        session.expunge(package)
    row = _rows(officer.get(f"/packages/{package_code}").get_data(as_text=True))["ITM-P0006"]
    assert "(protected identifier): 1 hit (p. 1: 1)" in row
