"""Previews of an item's redacted rendition before assembly (issue 16, item 4): real files,
real redaction, real OCR and leak check, the real pipeline and gpg.

The key test: a preview's page is, pixel for pixel, the bagged rendition's page rendered at
the same resolution. Then: a preview is reused while nothing changes and made again when a
mark changes; it is refused (saying why) while a mark is pending or without a decision; the
page works over HTTP for a legal officer, with the leak check per page, and is a 404 for an
item that is not a candidate of the request.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from PIL import Image, ImageChops
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from sqlalchemy import select

from portal.authz.headers import PRIVATELY_CACHED
from portal.packages import previews
from portal.packages.assembly.assemble import assemble_package
from portal.packages.assembly.jobs import IMMEDIATE_CONFIG
from portal.packages.models import Package, PackageItem
from portal.redaction.page_images import PageImages
from portal.registry.models import Authority, Item, Provider, RedactionMark
from portal.state import PortalState, portal_state
from portal.storage import file_sha256
from tests.packages.test_assemble import open_package
from tests.support import factories as make
from tests.support.auth import csrf_token, login
from tests.support.package_world import (
    SECRET_TERM,
    World,
    _add_item,
    flip_a_bit,
    make_world,
    new_package,
    recheck,
)

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
SIGNING = {
    "signing_key_file": KEYS / "mechanism-signing.sec.asc",
    "signing_passphrase_file": KEYS / "mechanism-signing.passphrase",
}
PDF_ITEM = "ITM-P0001"  # make_world's PDF: term mark M-P1 (page 1), box M-P2 on page 2


def _item_id(state: PortalState, code: str) -> int:
    with state.sessions() as session:
        found = session.scalar(select(Item.id).where(Item.code == code))
        assert found is not None
        return found


def _same_pixels(first: Path, second: Path) -> bool:
    with Image.open(first) as a, Image.open(second) as b:
        if a.size != b.size or a.mode != b.mode:
            return False
        return ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None


def _grey(path: Path | None, x: float, y: float) -> int:
    """The grey level (0 black .. 255 white) at fractions ``x``, ``y`` of the image."""
    assert path is not None
    with Image.open(path) as image:
        grey = image.convert("L")
        value = grey.getpixel((int(grey.width * x), int(grey.height * y)))
    assert isinstance(value, (int, float))
    return int(value)


def _done(state: PortalState, world: World, item_id: int) -> previews.Preview:
    preview = previews.make_preview(state, world.rfa_id, item_id)
    assert preview.state == "done", preview.reason
    return preview


def test_a_preview_page_is_the_bagged_page_pixel_for_pixel(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    state = portal_state(make_app(**SIGNING))
    world = make_world(state)
    item_id = _item_id(state, PDF_ITEM)

    preview = _done(state, world, item_id)
    assert [page.number for page in preview.pages] == [1, 2]
    assert not preview.blocks, preview

    package_id = new_package(state, world)
    assemble_package(state, package_id)
    with state.sessions() as session:
        package = session.get(Package, package_id)
        assert package is not None
        assert package.status == "assembled", package.failure_reason
        session.expunge(package)
        bagged = session.scalar(
            select(PackageItem.path).where(
                PackageItem.package_id == package_id, PackageItem.item_id == item_id
            )
        )
    assert bagged is not None
    (tmp_path / "open").mkdir()
    rendition = open_package(state, package, tmp_path / "open") / bagged
    digest, _ = file_sha256(rendition)
    theirs = PageImages(tmp_path / "bagged-pages")
    source = state.blobs.path(_sha(state, item_id))
    for page in (1, 2):
        mine = previews.page_image(state, preview.key, page)
        assert mine is not None
        assert _same_pixels(mine, theirs.render(rendition, "application/pdf", digest, page))
        # and the redaction is there: the preview is not the untouched original
        original = PageImages(tmp_path / "original-pages").render(
            source, "application/pdf", _sha(state, item_id), page
        )
        assert not _same_pixels(mine, original)
    # M-P2: x 0.1..0.6, y 0.05..0.2 of page 2
    assert _grey(previews.page_image(state, preview.key, 2), 0.35, 0.12) < 16


def _sha(state: PortalState, item_id: int) -> str:
    with state.sessions() as session:
        item = session.get(Item, item_id)
        assert item is not None
        return item.sha256


def test_a_preview_is_reused_until_a_mark_changes(make_app: Callable[..., Flask]) -> None:
    state = portal_state(make_app(**SIGNING))
    world = make_world(state)
    item_id = _item_id(state, PDF_ITEM)
    first = _done(state, world, item_id)
    status = state.settings.data_dir / previews.DIRECTORY / first.key / previews.STATUS
    made = status.stat().st_mtime_ns
    assert status.stat().st_mode & 0o777 == 0o600
    assert status.parent.stat().st_mode & 0o777 == 0o700

    again = _done(state, world, item_id)
    assert again.key == first.key
    assert status.stat().st_mtime_ns == made  # reused, not made again

    with state.sessions() as session:
        box = session.scalars(select(RedactionMark).where(RedactionMark.code == "M-P2")).one()
        box.x1 = 0.8  # the ORM bumps the mark's version
        session.commit()
    with state.sessions() as session:
        assert previews.preview_state(state, session, world.rfa_id, item_id).state == "none"
    before = previews.page_image(state, first.key, 2)
    assert before is not None and _grey(before, 0.7, 0.12) > 200  # outside the first box
    changed = _done(state, world, item_id)
    assert changed.key != first.key
    assert _grey(previews.page_image(state, changed.key, 2), 0.7, 0.12) < 16  # the wider one
    assert not status.parent.exists()  # the superseded preview is deleted


def test_a_preview_is_refused_while_a_mark_is_pending_or_without_a_decision(
    make_app: Callable[..., Flask],
) -> None:
    state = portal_state(make_app(**SIGNING))
    world = make_world(state)
    item_id = _item_id(state, PDF_ITEM)
    with state.sessions() as session:
        term = session.scalars(select(RedactionMark).where(RedactionMark.code == "M-P1")).one()
        term.review = "pending"
        authority = make.stored(session, Authority, world.authority_id)
        item = make.stored(session, Item, item_id)
        undecided = make.rfa(session, authority, "RFA-2026-0077", status="approved", items=[item])
        session.commit()
        undecided_id = undecided.id
    refused = previews.make_preview(state, world.rfa_id, item_id)
    assert refused.state == "refused"
    assert "M-P1" in refused.reason and "pending" in refused.reason
    with state.sessions() as session:
        shown = previews.preview_state(state, session, world.rfa_id, item_id)
        assert (shown.state, shown.reason) == ("refused", refused.reason)
        no_decision = previews.preview_state(state, session, undecided_id, item_id)
    assert no_decision.state == "refused"
    assert "no eligibility decision" in no_decision.reason
    assert not (state.settings.data_dir / previews.DIRECTORY).exists()


def _leaky_pdf() -> bytes:
    """A PDF naming, on its second page, the term of another item's mark (M-1)."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.drawString(72, 760, "A note with nothing to hide.")
    pdf.showPage()
    pdf.drawString(72, 760, f"Later, {SECRET_TERM} was seen at the mill.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_the_preview_page_for_a_legal_officer(make_app: Callable[..., Flask]) -> None:
    app = make_app(**SIGNING)
    app.config[IMMEDIATE_CONFIG] = True
    state = portal_state(app)
    world = make_world(state)
    with state.sessions() as session:
        _add_item(
            session, state.blobs, world, "ITM-L0001", "application/pdf", "note.pdf",
            _leaky_pdf(), [],
        )  # fmt: skip
        provider = make.stored(session, Provider, world.provider_id)
        make.item(session, provider, "ITM-X0001")  # not a candidate of the request
        recheck(session, world)
        session.commit()
    client = app.test_client()
    login(client, world.officer)
    base = f"/preview/{world.rfa_code}/items/{PDF_ITEM}"

    page = client.get(base)
    assert page.status_code == 200
    assert "Make the preview" in page.get_data(as_text=True)
    made = client.post(f"{base}/make", data={"csrf_token": csrf_token(page)})
    assert made.status_code == 303
    html = client.get(base).get_data(as_text=True)
    assert "2 page(s)" in html and html.count("No identifier found.") == 2
    assert 'loading="lazy"' in html and "<script" not in html.split("</header>")[-1]
    assert SECRET_TERM not in html and "Jonas" not in html
    image = client.get(f"{base}/pages/2.png")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data.startswith(b"\x89PNG")
    assert "preview.page_image" in PRIVATELY_CACHED
    assert image.headers["Cache-Control"].startswith("private")
    assert client.get(f"{base}/pages/3.png").status_code == 404

    leaky = f"/preview/{world.rfa_code}/items/ITM-L0001"
    page = client.get(leaky)
    client.post(f"{leaky}/make", data={"csrf_token": csrf_token(page)})
    html = client.get(leaky).get_data(as_text=True)
    assert "Found: M-1 — blocks the package." in html
    assert html.count("No identifier found.") == 1  # page 1
    assert SECRET_TERM not in html

    assert client.get(f"/preview/{world.rfa_code}/items/ITM-X0001").status_code == 404
    assert client.get(f"/preview/{world.rfa_code}/items/ITM-X0001/pages/1.png").status_code == 404
    assert client.get(f"/preview/RFA-NONE/items/{PDF_ITEM}").status_code == 404


def test_a_preview_of_a_damaged_file_is_refused(make_app: Callable[..., Flask]) -> None:
    """A flipped bit in the stored PDF: the preview says the file is damaged instead of
    showing pages that are not the evidence."""
    state = portal_state(make_app(**SIGNING))
    world = make_world(state)
    item_id = _item_id(state, PDF_ITEM)
    flip_a_bit(state.blobs.path(_sha(state, item_id)))

    preview = previews.make_preview(state, world.rfa_id, item_id)
    assert preview.state != "done"
    assert "damaged" in preview.reason and "registered sha256" in preview.reason
