"""A registered name hidden anywhere in a document never reaches an authority that cannot
protect the person (issue 14, "Done when"): real files made with ReportLab, pikepdf and
Pillow, the real pipeline, real gpg, the package page over real HTTP.

One package holds every hiding place, each in an item with no mark of its own: PDF text (on
two pages), document information, XMP, an annotation, an attachment, a form field; JPEG
EXIF, comment and XMP; PNG tEXt, zTXt and iTXt; text with soft hyphens and zero-width
characters; a partial name (two consecutive tokens of the three); and a photo that names
nobody but carries a GPS position. It is assembled for an authority without
witness-protection capacity and released, every item redacted; the released package's own
files (decrypted with the test key) hold the name nowhere: bytes in UTF-8 and UTF-16,
extracted text, metadata. The package page says, per item, what was done, by code only.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
from portal.packages.assembly.manifest import MANIFEST_PATH, parse_manifest
from portal.packages.lifecycle import create_package
from portal.packages.models import Package
from portal.redaction.leakcheck import check_files
from portal.rfa.models import Rfa
from portal.state import PortalState, portal_state
from tests.packages.test_assemble import open_package
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login
from tests.support.hostile import (
    file_texts,
    jpeg_with,
    metadata_of_image,
    metadata_of_pdf,
    pdf_lines,
    pdf_with,
    png_with,
)
from tests.support.identifiers import LATIN_NAME, register
from tests.support.package_world import (
    REDACTABLE,
    World,
    _add_item,
    build_world,
    lapse_witness_protection,
    recheck,
    user,
)

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
SIGNING = {
    "signing_key_file": KEYS / "mechanism-signing.sec.asc",
    "signing_passphrase_file": KEYS / "mechanism-signing.passphrase",
}
# What must be nowhere: the name and its partial forms, however written (compared casefolded).
NEEDLES = ("orlanda", "vesk marrow", "veskmarrow", "marrow")
SOFT = LATIN_NAME.replace("Orlanda", "Or\u00adlan\u00adda").replace(" Vesk", " Ve\u200bsk")

# item code -> (media type, file name, bytes)
HIDDEN: dict[str, tuple[str, str, bytes]] = {
    "ITM-H0001": (
        "application/pdf",
        "pages.pdf",
        pdf_lines(
            ["Notes, page one.", f"Interviewed: {LATIN_NAME}."],
            [f"{LATIN_NAME} came at noon;", f"{LATIN_NAME} left at dusk."],
        ),
    ),
    "ITM-H0002": ("application/pdf", "info.pdf", pdf_with(LATIN_NAME, "info")),
    "ITM-H0003": ("application/pdf", "xmp.pdf", pdf_with(LATIN_NAME, "xmp")),
    "ITM-H0004": ("application/pdf", "annotated.pdf", pdf_with(LATIN_NAME, "annotation")),
    "ITM-H0005": ("application/pdf", "attached.pdf", pdf_with(LATIN_NAME, "attachment")),
    "ITM-H0006": ("application/pdf", "form.pdf", pdf_with(LATIN_NAME, "form field")),
    "ITM-H0007": ("image/jpeg", "exif.jpg", jpeg_with(LATIN_NAME, exif=True)),
    "ITM-H0008": ("image/jpeg", "comment.jpg", jpeg_with(LATIN_NAME, comment=True)),
    "ITM-H0009": ("image/jpeg", "xmp.jpg", jpeg_with(LATIN_NAME, xmp=True)),
    "ITM-H0010": ("image/png", "text.png", png_with(LATIN_NAME)),
    "ITM-H0011": ("image/png", "ztxt.png", png_with(LATIN_NAME, compressed=True)),
    "ITM-H0012": ("image/png", "itxt.png", png_with(LATIN_NAME, international=True)),
    "ITM-H0013": ("text/plain", "soft.txt", f"Seen at the mill: {SOFT}.\n".encode()),
    "ITM-H0014": ("text/plain", "partial.txt", b"The miller, Vesk Marrow, kept the key.\n"),
    "ITM-H0015": ("image/jpeg", "gps.jpg", jpeg_with(None, gps=True, orientation=6)),
}
PDF_ITEMS = ("ITM-H0001", "ITM-H0002", "ITM-H0003", "ITM-H0004", "ITM-H0005", "ITM-H0006")


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _world(
    state: PortalState, items: dict[str, tuple[str, str, bytes]], *, capacity: bool = False
) -> tuple[World, str]:
    """The package world, ``items``, a person at risk whose name is registered, an authority
    whose witness-protection capacity has lapsed (unless ``capacity``), a fresh decision."""
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        code = register(session, state.sealer, make.person(session), LATIN_NAME).code
        for item_code, (media_type, filename, data) in items.items():
            _add_item(session, state.blobs, world, item_code, media_type, filename, data, [])
        if not capacity:
            lapse_witness_protection(session, world)
        recheck(session, world)
        session.commit()
    return world, code


def _package(state: PortalState, world: World) -> tuple[int, str]:
    with state.sessions() as session:
        package = create_package(
            session, make.stored(session, Rfa, world.rfa_id), REDACTABLE,
            by=user(session, world.officer_id),
        )  # fmt: skip
        session.commit()
        return package.id, package.code


def _rows(html: str) -> dict[str, str]:
    """The text of each row of the items table, by item code."""
    return {
        match.group(1): _text(match.group(0))
        for match in re.finditer(r"<tr>\s*<td><code>(ITM-[A-Z0-9]+)</code>.*?</tr>", html, re.S)
    }


def _signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _absent(path: Path) -> None:
    for text in file_texts(path):
        folded = text.casefold()
        for needle in NEEDLES:
            assert needle not in folded, (path.name, needle)


def test_every_hiding_place_is_released_redacted(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(**SIGNING)
    state = portal_state(app)
    world, code = _world(state, HIDDEN)
    package_id, package_code = _package(state, world)

    assemble_package(state, package_id)

    # released by a second legal officer, over HTTP
    second = _signed_in(app, world.second)
    page = second.get(f"/packages/{package_code}")
    assert page.status_code == 200
    released = second.post(
        f"/packages/{package_code}/release",
        data={"csrf_token": csrf_token(page), "reviewed": "yes", "expires_in_days": "7"},
    )
    assert released.status_code == 303
    with state.sessions() as session:
        package = session.scalars(select(Package).where(Package.id == package_id)).one()
        session.expunge(package)
    assert package.status == "released", package.failure_reason
    assert package.leak_check is not None and package.leak_check["clean"] is True
    assert package.leak_check["identifiers"] == [code]

    bag = open_package(state, package, tmp_path)
    manifest = parse_manifest((bag / MANIFEST_PATH).read_bytes())
    entries = {entry["code"]: entry for entry in manifest["items"]}
    for item_code, (media_type, _name, _data) in HIDDEN.items():
        entry = entries[item_code]
        assert entry["rendition"] == "redacted", item_code
        shared = bag / entry["path"]
        if media_type.startswith("image/"):
            assert entry["media_type"] == media_type
            assert metadata_of_image(shared) == [], item_code
        else:
            assert entry["media_type"] == "application/pdf"
            assert metadata_of_pdf(shared) == [], item_code
    with Image.open(bag / entries["ITM-H0015"]["path"]) as upright:
        assert upright.size == (32, 64)  # the orientation was applied, then dropped

    # the name is nowhere in the package's own files (and the portal's leak check agrees)
    files = [(str(p.relative_to(bag)), p) for p in sorted(bag.rglob("*")) if p.is_file()]
    assert len(files) >= len(HIDDEN)
    for _name, path in files:
        _absent(path)
    assert check_files(files, [(code, LATIN_NAME)]).clean

    # the package page says what was done to each item, by code only
    html = _signed_in(app, world.officer).get(f"/packages/{package_code}").get_data(as_text=True)
    text = _text(html)
    for needle in NEEDLES:
        assert needle not in html.casefold()
    rows = _rows(html)
    assert f"Mark {code} (protected identifier): 3 hits (p. 1: 1, p. 2: 2)" in rows["ITM-H0001"]
    for item_code in PDF_ITEMS:
        assert "Stripped: pages rasterised" in rows[item_code]
    for item_code in PDF_ITEMS[1:]:  # not in the text layer: found in the file, so redacted
        assert f"Redacted instead of shared as registered: {code} found" in rows[item_code]
    for item_code in ("ITM-H0002", "ITM-H0003"):
        assert f"{code} found (metadata)" in rows[item_code]
    for item_code in ("ITM-H0007", "ITM-H0008", "ITM-H0009", "ITM-H0010", "ITM-H0011"):
        assert f"{code} found (metadata)" in rows[item_code], item_code
        assert "Stripped: metadata removed" in rows[item_code]
        assert "Stripped: image re-encoded from its pixels" in rows[item_code]
    assert f"Mark {code} (protected identifier): 1 hit" in rows["ITM-H0013"]
    assert f"Mark {code} (protected identifier): 1 hit" in rows["ITM-H0014"]
    assert "Stripped: GPS position or place removed" in rows["ITM-H0015"]
    assert "Redacted instead" not in rows["ITM-H0015"]  # nothing named: only the position
    assert "Mark M-1 (Identifies a witness): 1 hit" in rows["ITM-T0002"]
    assert "Shared as registered; nothing stripped" in rows["ITM-T0003"]  # the cleared video
    assert "Identifiers checked" in text and f"{code}" in text
    assert "withheld from Northland War Crimes Unit" in text


@pytest.fixture
def blocked(make_app: Callable[..., Flask]) -> tuple[Flask, World, str, str]:
    """A package blocked by a cleared video whose bytes name the registered person."""
    app = make_app(**SIGNING)
    state = portal_state(app)
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        code = register(session, state.sealer, make.person(session), LATIN_NAME).code
        _add_item(
            session, state.blobs, world, "ITM-V0009", "video/mp4", "clip.mp4",
            b"\x00\x00\x00\x18ftypmp42 subtitle: " + LATIN_NAME.encode(), [], cleared=True,
        )  # fmt: skip
        lapse_witness_protection(session, world)
        officer = recheck(session, world)
        package = create_package(
            session, make.stored(session, Rfa, world.rfa_id), REDACTABLE, by=officer
        )
        session.commit()
        package_id, package_code = package.id, package.code
    with pytest.raises(AssemblyFailed, match="leak check"):
        assemble_package(state, package_id)
    return app, world, code, package_code


def test_the_page_names_what_blocked_each_item(blocked: tuple[Flask, World, str, str]) -> None:
    app, world, code, package_code = blocked
    html = _signed_in(app, world.officer).get(f"/packages/{package_code}").get_data(as_text=True)
    rows = _rows(html)
    assert f"Blocked: {code} found (bytes)" in rows["ITM-V0009"]
    assert "Blocked" not in rows["ITM-T0001"]
    assert "Mark M-1 (Identifies a witness): 1 hit" in rows["ITM-T0002"]
    for needle in NEEDLES:
        assert needle not in html.casefold()


def test_with_capacity_a_located_photo_keeps_its_position(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """Nothing is withheld from an authority that can protect the person: the GPS position
    (evidence of where a photo was taken) travels with the photo as registered."""
    app = make_app(**SIGNING)
    state = portal_state(app)
    photo = HIDDEN["ITM-H0015"]
    world, _code = _world(state, {"ITM-H0015": photo}, capacity=True)
    package_id, package_code = _package(state, world)
    assemble_package(state, package_id)
    with state.sessions() as session:
        package = session.scalars(select(Package).where(Package.id == package_id)).one()
        session.expunge(package)
    assert package.status == "assembled" and package.leak_check is not None
    assert package.leak_check["identifiers"] == []
    bag = open_package(state, package, tmp_path)
    entry = next(
        e for e in parse_manifest((bag / MANIFEST_PATH).read_bytes())["items"]
        if e["code"] == "ITM-H0015"
    )  # fmt: skip
    assert entry["rendition"] == "as_is"
    assert (bag / entry["path"]).read_bytes() == photo[2]
    html = _signed_in(app, world.officer).get(f"/packages/{package_code}").get_data(as_text=True)
    assert "Shared as registered; nothing stripped" in _rows(html)["ITM-H0015"]
    assert "No protected identifier is withheld from Northland War Crimes Unit" in _text(html)


def test_a_located_image_the_portal_cannot_remake_fails_the_package(
    make_app: Callable[..., Flask],
) -> None:
    """A TIFF (cleared as-is: the portal remakes only JPEG and PNG) with a GPS position, to an
    authority that cannot protect the person: the position must not leave, so the package
    fails, saying which item and what to do."""
    app = make_app(**SIGNING)
    state = portal_state(app)
    tags = Image.Exif()
    tags.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 30.0), 3: "E", 4: (4.0, 53.0, 15.0)})
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "grey").save(out, "TIFF", exif=tags.tobytes())
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        register(session, state.sealer, make.person(session), LATIN_NAME)
        _add_item(
            session, state.blobs, world, "ITM-H0016", "image/tiff", "scan.tif", out.getvalue(),
            [], cleared=True,
        )  # fmt: skip
        lapse_witness_protection(session, world)
        recheck(session, world)
        session.commit()
    package_id, _code = _package(state, world)
    with pytest.raises(AssemblyFailed, match=r"ITM-H0016 \(image/tiff\) carries a position"):
        assemble_package(state, package_id)
