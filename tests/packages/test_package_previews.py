"""The releasing officer's view of an assembled package (issue 16, item 4): the renditions as
bagged, kept by the real assembler until the release, then deleted. Real PDFs, real gpg, the
real pipeline in Huey's immediate mode, real HTTP through the test client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageChops
from sqlalchemy import select, update

from portal.packages import release_previews
from portal.packages.assembly.assemble import assemble_package
from portal.packages.models import Package, PackageItem
from portal.redaction.page_images import PageImages
from portal.state import PortalState, portal_state
from portal.storage import file_sha256
from tests.packages.test_assemble import open_package
from tests.support.auth import Credentials, csrf_token, login
from tests.support.package_world import SECRET_TERM, World, make_world, new_package

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
SIGNING = {
    "signing_key_file": KEYS / "mechanism-signing.sec.asc",
    "signing_passphrase_file": KEYS / "mechanism-signing.passphrase",
    "extra": {"PORTAL_JOBS_IMMEDIATE": True},
}
PDF_ITEM = "ITM-P0001"  # make_world's PDF: term mark M-P1 (page 1), box M-P2 on page 2
REDACTED_TEXT = "ITM-T0002"  # names SECRET_TERM: redacted, typeset as a PDF
PLAIN_TEXT = "ITM-T0001"  # shared as it is


def _assembled(state: PortalState, world: World) -> Package:
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    with state.sessions() as session:
        package = session.get(Package, package_id)
        assert package is not None and package.status == "assembled", package
        session.expunge(package)
        return package


def _kept_root(state: PortalState, code: str) -> Path:
    return state.settings.data_dir / release_previews.DIRECTORY / code


def _client(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _same_pixels(first: Path, second: Path) -> bool:
    with Image.open(first) as a, Image.open(second) as b:
        return a.size == b.size and ImageChops.difference(a, b).getbbox() is None


def test_the_kept_rendition_is_the_bagged_one(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    state = portal_state(make_app(**SIGNING))
    world = make_world(state)
    package = _assembled(state, world)

    kept = release_previews.kept_items(state, package.code)
    assert kept[PDF_ITEM].rendition == "redacted" and kept[PDF_ITEM].pages == 2
    assert kept[PDF_ITEM].kept
    assert kept[PLAIN_TEXT].rendition == "as_is" and not kept[PLAIN_TEXT].kept  # the blob's
    root = _kept_root(state, package.code)
    assert root.stat().st_mode & 0o777 == 0o700
    for file in (root / release_previews.RENDITIONS).iterdir():
        assert file.stat().st_mode & 0o777 == 0o600

    (tmp_path / "open").mkdir()
    opened = open_package(state, package, tmp_path / "open")
    with state.sessions() as session:
        paths = dict(
            session.execute(
                select(PackageItem.rendition_sha256, PackageItem.path).where(
                    PackageItem.package_id == package.id
                )
            ).all()
        )
    for item in kept.values():
        assert file_sha256(opened / paths[item.sha256])[0] == item.sha256  # the same bytes
    bagged = opened / paths[kept[PDF_ITEM].sha256]
    release_previews.render_pages(state, package.code, PDF_ITEM, [1, 2, 3])  # 3: no such page
    for page in (1, 2):
        mine = release_previews.page_image(state, package.code, kept[PDF_ITEM], page)
        assert mine is not None
        theirs = PageImages(tmp_path / "pages").render(
            bagged, "application/pdf", kept[PDF_ITEM].sha256, page
        )
        assert _same_pixels(mine, theirs)
    assert release_previews.page_image(state, package.code, kept[PDF_ITEM], 3) is None


def test_the_releasing_officer_sees_the_pages_then_the_release_deletes_them(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(**SIGNING)
    state = portal_state(app)
    world = make_world(state)
    package = _assembled(state, world)
    second = _client(app, world.second)
    base = f"/preview/packages/{package.code}/items"

    detail = second.get(f"/packages/{package.code}").get_data(as_text=True)
    assert f'href="{base}/{PDF_ITEM}"' in detail

    page = second.get(f"{base}/{PDF_ITEM}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Page 2" in html and "data-pending" in html and SECRET_TERM not in html
    first = second.get(f"{base}/{PDF_ITEM}/pages/1.png")  # queues the job (run at once here)
    assert first.mimetype == "image/svg+xml" and first.headers["Retry-After"] == "2"
    image = second.get(f"{base}/{PDF_ITEM}/pages/1.png")
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    assert image.headers["Cache-Control"].startswith("private")
    assert (
        "data-pending"
        not in second.get(f"{base}/{PDF_ITEM}")
        .get_data(as_text=True)
        .split('id="page-1"')[1]
        .split("</section>")[0]
    )
    assert second.get(f"{base}/{PDF_ITEM}/pages/3.png").status_code == 404

    typeset = second.get(f"{base}/{REDACTED_TEXT}").get_data(as_text=True)
    assert "Redacted (application/pdf)" in typeset and "Page 1" in typeset  # typeset as a PDF
    assert "The convoy left at dawn." in second.get(f"{base}/{PLAIN_TEXT}").get_data(as_text=True)
    assert second.get(f"{base}/ITM-NONE").status_code == 404

    token = csrf_token(second.get(f"/packages/{package.code}"))
    released = second.post(
        f"/packages/{package.code}/release",
        data={"csrf_token": token, "reviewed": "yes", "expires_in_days": "7"},
    )
    assert released.status_code == 303
    assert not _kept_root(state, package.code).exists()
    assert second.get(f"{base}/{PDF_ITEM}").status_code == 404
    assert second.get(f"{base}/{PDF_ITEM}/pages/1.png").status_code == 404


def test_a_package_no_longer_awaiting_release_loses_its_kept_renditions(
    make_app: Callable[..., Flask],
) -> None:
    state = portal_state(make_app(**SIGNING))
    world = make_world(state)
    package = _assembled(state, world)
    other = _kept_root(state, "PKG-1999-0001")  # a package the database no longer has
    other.mkdir(parents=True)
    assert release_previews.prune(state) == ["PKG-1999-0001"]
    assert _kept_root(state, package.code).is_dir()  # still awaiting its release

    with state.sessions() as session:  # as a consent revocation does
        session.execute(update(Package).where(Package.id == package.id).values(status="blocked"))
        session.commit()
    assert release_previews.prune(state) == [package.code]
    assert not _kept_root(state, package.code).exists()


def test_renditions_that_cannot_be_kept_do_not_fail_the_package(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(**SIGNING)
    state = portal_state(app)
    world = make_world(state)
    blocker = state.settings.data_dir / release_previews.DIRECTORY
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"")  # a file where the directory should be: every mkdir fails
    package = _assembled(state, world)  # asserts "assembled"
    assert release_previews.kept_items(state, package.code) == {}
    page = _client(app, world.second).get(f"/preview/packages/{package.code}/items/{PDF_ITEM}")
    assert page.status_code == 200
    assert "were not kept" in page.get_data(as_text=True)
