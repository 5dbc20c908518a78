"""Page images for the redaction viewer, on real files: a ReportLab PDF (text, a red box, a
page turned by /Rotate), JPEGs carrying EXIF orientation 6, damaged and oversized files. The
images are cached by content hash and page (0600 files in 0700 directories, no temporary
files left behind) and the ``render_pages`` job fills the cache from an item's blob."""

from __future__ import annotations

import hashlib
import logging
import math
import stat
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageFile, ImageOps
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import Engine

from portal.config import Settings
from portal.packages.assembly.jobs import make_jobs
from portal.redaction.ocr import MAX_PIXELS
from portal.redaction.page_images import (
    MAX_IMAGE_SIDE,
    VIEW_DPI,
    VIEWABLE,
    PageImageFailed,
    PageImages,
    page_count,
)
from portal.state import build_state
from portal.storage import InvalidBlobKey
from tests.support import factories as make
from tests.support.package_world import blob_item

A4 = (595.0, 842.0)  # points
RED_BOX = (100.0, 100.0, 200.0, 150.0)  # x, y (from the bottom), width, height in points


def pixels(points: float) -> int:
    return math.ceil(points * VIEW_DPI / 72)


def make_pdf(path: Path, *, pages: int = 3, size: tuple[float, float] = A4) -> str:
    """A PDF of ``pages`` pages: a line of text and a red box on each, the third page turned
    a quarter (``/Rotate 90``, set with pdfium: ReportLab's turns the media box too).
    Returns the sha256 of its bytes."""
    canvas = Canvas(str(path), pagesize=size)
    for number in range(1, pages + 1):
        canvas.setFont("Helvetica", 14)
        canvas.drawString(72, size[1] - 80, f"Statement, page {number}: the checkpoint road.")
        canvas.setFillColorRGB(1, 0, 0)
        canvas.rect(*RED_BOX, stroke=0, fill=1)
        canvas.showPage()
    canvas.save()
    if pages >= 3:
        document = pypdfium2.PdfDocument(path.read_bytes())
        try:
            document[2].set_rotation(90)  # /Rotate 90: shown turned a quarter clockwise
            document.save(str(path))
        finally:
            document.close()
    return sha(path)


def make_rotated_jpeg(path: Path, size: tuple[int, int] = (400, 300)) -> str:
    """A landscape JPEG (as stored) whose EXIF orientation 6 says: turn 90° clockwise to
    show it (a phone held upright). A blue block marks the stored top left corner."""
    image = Image.new("RGB", size, "white")
    image.paste((0, 0, 255), (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, format="JPEG", exif=exif, quality=95)
    return sha(path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def images(tmp_path: Path) -> PageImages:
    return PageImages(tmp_path / "page-cache")


@pytest.fixture
def pdf(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "statement.pdf"
    return path, make_pdf(path)


def test_the_viewer_shows_pdfs_and_photos() -> None:
    images = {"image/jpeg", "image/png", "image/tiff", "image/webp", "image/gif"}
    assert frozenset({"application/pdf", *images}) == VIEWABLE


def test_page_count_of_a_pdf_and_of_an_image(tmp_path: Path, pdf: tuple[Path, str]) -> None:
    assert page_count(pdf[0], "application/pdf") == 3
    photo = tmp_path / "photo.jpg"
    make_rotated_jpeg(photo)
    assert page_count(photo, "image/jpeg") == 1


def test_a_pdf_page_is_rendered_in_colour_at_the_viewer_dpi(
    images: PageImages, pdf: tuple[Path, str]
) -> None:
    source, key = pdf
    path = images.render(source, "application/pdf", key, 1)
    assert path == images.path(key, 1) == images.cached(key, 1)
    assert path.parent == images.directory / key[:2] / key
    assert str(VIEW_DPI) in path.name
    with Image.open(path) as shown:
        assert shown.format == "PNG" and shown.mode == "RGB"
        assert shown.size == (pixels(A4[0]), pixels(A4[1]))
        # The red box, where the eye sees it (origin top left in the image).
        x, y, width, height = RED_BOX
        centre = (pixels(x + width / 2), pixels(A4[1] - y - height / 2))
        assert shown.getpixel(centre) == (255, 0, 0)
        assert shown.getpixel((5, 5)) == (255, 255, 255)


def test_a_turned_pdf_page_is_shown_turned(images: PageImages, pdf: tuple[Path, str]) -> None:
    source, key = pdf
    with Image.open(images.render(source, "application/pdf", key, 3)) as shown:
        assert shown.size == (pixels(A4[1]), pixels(A4[0]))  # landscape
        # Turned clockwise: a point x, y (from the top) of the page is now at height - y, x.
        x, y, width, height = RED_BOX
        from_top = A4[1] - y - height / 2
        assert shown.getpixel((pixels(A4[1] - from_top), pixels(x + width / 2))) == (255, 0, 0)


def test_a_second_render_is_served_from_the_cache(
    images: PageImages, pdf: tuple[Path, str]
) -> None:
    source, key = pdf
    assert images.cached(key, 2) is None
    first = images.render(source, "application/pdf", key, 2)
    marker = Image.new("RGB", (7, 7), (0, 255, 0))
    marker.save(first, format="PNG")  # were it rendered again, this would be overwritten
    before = first.stat().st_mtime_ns
    again = images.render(source, "application/pdf", key, 2)
    assert again == first and again.stat().st_mtime_ns == before
    with Image.open(again) as served:
        assert served.size == (7, 7)


@pytest.mark.parametrize("page", [0, 4, -1])
def test_a_page_the_pdf_does_not_have_is_refused(
    images: PageImages, pdf: tuple[Path, str], page: int
) -> None:
    source, key = pdf
    with pytest.raises(PageImageFailed) as refused:
        images.render(source, "application/pdf", key, page)
    assert f"no page {page}" in refused.value.reason
    if page == 4:
        assert "the PDF has 3" in refused.value.reason
    assert images.cached(key, page) is None
    assert not images.directory.exists() or not any(images.directory.rglob("*.png"))


def test_a_truncated_pdf_is_refused(images: PageImages, tmp_path: Path) -> None:
    whole = tmp_path / "whole.pdf"
    make_pdf(whole)
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(PageImageFailed) as counted:
        page_count(damaged, "application/pdf")
    with pytest.raises(PageImageFailed) as rendered:
        images.render(damaged, "application/pdf", sha(damaged), 1)
    for refused in (counted, rendered):
        assert refused.value.reason == "the file is not a PDF or is damaged"
    assert images.cached(sha(damaged), 1) is None


def test_a_pdf_page_too_large_to_show_is_refused(images: PageImages, tmp_path: Path) -> None:
    source = tmp_path / "poster.pdf"
    key = make_pdf(source, pages=1, size=(14400.0, 14400.0))  # 200 inches a side
    assert page_count(source, "application/pdf") == 1
    with pytest.raises(PageImageFailed) as refused:
        images.render(source, "application/pdf", key, 1)
    assert "too large to show" in refused.value.reason


def test_a_photo_is_shown_upright_as_exif_transpose_turns_it(
    images: PageImages, tmp_path: Path
) -> None:
    source = tmp_path / "photo.jpg"
    key = make_rotated_jpeg(source)
    with Image.open(source) as stored:
        assert stored.size == (400, 300)  # landscape as stored
        expected = ImageOps.exif_transpose(stored).convert("RGB")
    with Image.open(images.render(source, "image/jpeg", key, 1)) as shown:
        assert shown.format == "PNG" and shown.mode == "RGB"
        assert shown.size == expected.size == (300, 400)  # portrait, as the eye sees it
        # The stored top left corner is now top right, as exif_transpose puts it.
        assert shown.getpixel((290, 10)) == expected.getpixel((290, 10))
        blue = shown.getpixel((290, 10))
        assert isinstance(blue, tuple) and blue[2] > 200 and blue[0] < 60
        assert shown.getpixel((10, 10)) == expected.getpixel((10, 10))


def test_a_large_photo_is_scaled_down_never_up(images: PageImages, tmp_path: Path) -> None:
    large = tmp_path / "large.jpg"
    key = make_rotated_jpeg(large, size=(4000, 3000))
    with Image.open(images.render(large, "image/jpeg", key, 1)) as shown:
        width, height = shown.size
        assert max(width, height) == MAX_IMAGE_SIDE and height > width  # upright
        assert abs(width / height - 3 / 4) < 0.01
    small = tmp_path / "small.png"
    Image.new("RGB", (120, 80), "white").save(small)
    with Image.open(images.render(small, "image/png", sha(small), 1)) as shown:
        assert shown.size == (120, 80)


def test_transparent_pixels_show_white_not_the_colour_they_hide(
    images: PageImages, tmp_path: Path
) -> None:
    source = tmp_path / "cut-out.png"
    picture = Image.new("RGBA", (50, 50), (255, 0, 0, 0))  # red, fully transparent
    picture.paste((0, 0, 0, 255), (0, 0, 10, 10))
    picture.save(source)
    with Image.open(images.render(source, "image/png", sha(source), 1)) as shown:
        assert shown.mode == "L"  # no colour left: stored as greyscale, the same pixels
        assert shown.getpixel((30, 30)) == 255
        assert shown.getpixel((5, 5)) == 0


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(20000, 20000), (10000, 6000)])
def test_an_image_over_max_pixels_is_refused_before_decoding(
    images: PageImages, tmp_path: Path, size: tuple[int, int]
) -> None:
    """A bomb Pillow itself refuses (400 megapixels) and one only the portal's limit stops
    (60 megapixels): both tiny on disk."""
    source = tmp_path / "bomb.png"
    Image.new("1", size).save(source)
    assert source.stat().st_size < 2_000_000
    assert size[0] * size[1] > MAX_PIXELS
    with pytest.raises(PageImageFailed) as refused:
        images.render(source, "image/png", sha(source), 1)
    assert f"{MAX_PIXELS:,}" in refused.value.reason
    with pytest.raises(PageImageFailed):
        page_count(source, "image/png")
    assert images.cached(sha(source), 1) is None


def test_a_truncated_photo_is_refused_even_when_pillow_is_lenient(
    images: PageImages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeasyPrint sets LOAD_TRUNCATED_IMAGES when imported; the viewer still refuses."""
    whole = tmp_path / "whole.jpg"
    make_rotated_jpeg(whole, size=(800, 600))
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(PageImageFailed) as refused:
        images.render(damaged, "image/jpeg", sha(damaged), 1)
    assert refused.value.reason == "the image cannot be read: damaged or not a image/jpeg file"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # put back as it was


def test_an_image_has_one_page(images: PageImages, tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    key = make_rotated_jpeg(source)
    with pytest.raises(PageImageFailed) as refused:
        images.render(source, "image/jpeg", key, 2)
    assert "one page" in refused.value.reason


def test_unsupported_or_mislabelled_files_are_refused(
    images: PageImages, tmp_path: Path, pdf: tuple[Path, str]
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    for call in (
        lambda: images.render(video, "video/mp4", sha(video), 1),
        lambda: page_count(video, "video/mp4"),
    ):
        with pytest.raises(PageImageFailed) as refused:
            call()
        assert refused.value.reason == "the portal does not show pages of video/mp4 files"
    png = tmp_path / "really.png"
    Image.new("RGB", (10, 10)).save(png, format="PNG")
    with pytest.raises(PageImageFailed) as mislabelled:
        images.render(png, "image/jpeg", sha(png), 1)
    assert mislabelled.value.reason == "the file is PNG, not image/jpeg"
    with pytest.raises(PageImageFailed):
        page_count(pdf[0], "image/png")


def test_the_cache_is_private_and_keeps_no_temporary_files(
    images: PageImages, tmp_path: Path, pdf: tuple[Path, str]
) -> None:
    source, key = pdf
    for page in (1, 2, 3):
        images.render(source, "application/pdf", key, page)
    photo = tmp_path / "photo.jpg"
    photo_key = make_rotated_jpeg(photo)
    images.render(photo, "image/jpeg", photo_key, 1)
    files = sorted(p for p in images.directory.rglob("*") if p.is_file())
    assert files == sorted(
        [images.path(key, page) for page in (1, 2, 3)] + [images.path(photo_key, 1)]
    )
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in [images.directory, *(p for p in images.directory.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_a_cache_key_must_be_a_content_hash(images: PageImages) -> None:
    for key in ("../../etc/passwd", "A" * 64, ""):
        with pytest.raises(InvalidBlobKey):
            images.path(key, 1)
    with pytest.raises(ValueError):
        images.path("a" * 64, 0)
    assert images.cached("a" * 64, 0) is None


# --- the job -------------------------------------------------------------------------------


def test_the_render_pages_job_fills_the_cache_from_the_item_blob(
    settings: Settings, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = build_state(settings, engine=engine)
    source = tmp_path / "statement.pdf"
    make_pdf(source)
    with state.sessions() as session:
        provider = make.provider(session)
        item = blob_item(
            session,
            state.blobs,
            provider,
            "ITM-PAGES",
            source.read_bytes(),
            media_type="application/pdf",
            title="Statement of Amira Solberg",
            original_filename="amira-solberg.pdf",
        )
        session.commit()
        item_id, key = item.id, item.sha256
    jobs = make_jobs(state.settings, state=state, immediate=True)
    images = PageImages(settings.page_cache_dir)
    assert settings.page_cache_dir == settings.data_dir / "page-cache"

    with caplog.at_level(logging.INFO):
        jobs.render_pages(item_id, [1, 3, 9, 1])  # immediate: runs now, in this thread
    assert images.cached(key, 1) is not None and images.cached(key, 3) is not None
    assert images.cached(key, 2) is None and images.cached(key, 9) is None
    refusals = [r.getMessage() for r in caplog.records if "no page image" in r.getMessage()]
    assert refusals == ["item ITM-PAGES page 9: no page image: there is no page 9; the PDF has 3"]
    logged = caplog.text
    assert "Amira" not in logged and "Solberg" not in logged and "amira" not in logged

    # Cached pages are skipped: a marker put in place of page 1 stays.
    page_one = images.path(key, 1)
    Image.new("RGB", (7, 7)).save(page_one, format="PNG")
    jobs.render_pages(item_id, [1, 2])
    with Image.open(page_one) as served:
        assert served.size == (7, 7)
    assert images.cached(key, 2) is not None


def test_the_render_pages_job_logs_a_missing_item(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    state = build_state(settings, engine=engine)
    jobs = make_jobs(state.settings, state=state, immediate=True)
    with caplog.at_level(logging.INFO):
        jobs.render_pages(424242, [1])
    assert "item 424242: no such item" in caplog.text
    assert not settings.page_cache_dir.exists()
