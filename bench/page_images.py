"""Page images for the redaction viewer: first render and cached lookup, against raw pdfium.

Makes, in a temporary folder, a text PDF (ReportLab, 40 lines a page) and a scanned PDF
(A4 page images at 300 dpi, as ``bench/redaction.py`` makes them) of ``--pages`` pages, and
a 12-megapixel JPEG photo carrying EXIF orientation 6, then times, page by page, in the same
run:

* raw: pypdfium2 opens the PDF, renders the page at :data:`VIEW_DPI` to a PIL image and
  closes it (what any viewer pays; the portal opens the document for each page too); for the
  photo, Pillow opening and decoding it whole;
* first render: :meth:`PageImages.render` into an empty cache (open, bounds, render, PNG,
  atomic write);
* cached: :meth:`PageImages.cached` and reading the PNG's bytes (what a page view costs once
  the job has run).

Prints min and median seconds per page, the ratio first render / raw, and the PNG size.

    .venv/bin/python bench/page_images.py              # 10 pages of each
    .venv/bin/python bench/page_images.py --pages 50
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pypdfium2
from PIL import Image, ImageDraw
from redaction import SCAN_DPI, make_scan, make_source  # bench/redaction.py

from portal.redaction.page_images import VIEW_DPI, PageImages


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_photo(path: Path) -> None:
    """A 4000 x 3000 JPEG (as stored) that EXIF orientation 6 turns upright."""
    image = Image.effect_noise((4000, 3000), 40).convert("RGB")
    draw = ImageDraw.Draw(image)
    for row in range(0, 3000, 150):
        draw.rectangle((200, row, 3800, row + 60), fill=(180, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, format="JPEG", quality=90, exif=exif)


def raw_pdf_page(source: Path, page: int) -> None:
    document = pypdfium2.PdfDocument(str(source))
    try:
        pdf_page = document[page - 1]
        bitmap = pdf_page.render(scale=VIEW_DPI / 72, may_draw_forms=False, draw_annots=False)
        bitmap.to_pil()
        bitmap.close()
        pdf_page.close()
    finally:
        document.close()


def raw_photo(source: Path, page: int) -> None:
    with Image.open(source) as opened:
        opened.load()


Target = tuple[str, int]  # (cache key, page)


def timed(job: Callable[[str, int], object], targets: list[Target]) -> list[float]:
    """Seconds of ``job`` for each target, one call each."""
    times = []
    for key, page in targets:
        start = time.perf_counter()
        job(key, page)
        times.append(time.perf_counter() - start)
    return times


def row(name: str, times: list[float], raw: list[float] | None = None) -> None:
    median = statistics.median(times)
    line = f"  {name:<22} min {min(times) * 1e3:8.2f} ms   median {median * 1e3:8.2f} ms"
    if raw is not None:
        line += f"   x raw (median) {median / statistics.median(raw):5.2f}"
    print(line)


def bench(label: str, source: Path, media_type: str, targets: list[Target], cache: Path) -> None:
    images = PageImages(cache)
    if media_type == "application/pdf":
        raw = timed(lambda _key, page: raw_pdf_page(source, page), targets)
    else:
        raw = timed(lambda _key, page: raw_photo(source, page), targets)
    first = timed(lambda key, page: images.render(source, media_type, key, page), targets)

    def lookup(key: str, page: int) -> bytes:
        found = images.cached(key, page)
        assert found is not None
        return found.read_bytes()

    cached = timed(lookup, targets)
    sizes = [images.path(key, page).stat().st_size for key, page in targets]
    with Image.open(images.path(*targets[0])) as shown:
        shape = f"{shown.width} x {shown.height} px"
    median_kb = statistics.median(sizes) / 1e3
    print(f"{label}: {len(targets)} renders, page image {shape}, PNG {median_kb:.0f} kB")
    row("raw (pypdfium2/Pillow)", raw)
    row("first render", first, raw)
    row("cached lookup + read", cached)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10, help="pages of each PDF")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-page-images-") as name:
        folder = Path(name)
        text, scan, photo = folder / "text.pdf", folder / "scan.pdf", folder / "photo.jpg"
        make_source(text, args.pages)
        make_scan(scan, args.pages)
        make_photo(photo)
        print(f"PDF pages at {VIEW_DPI} dpi; times per page (one call each)")
        pages = range(1, args.pages + 1)
        bench("text PDF", text, "application/pdf", [(sha(text), n) for n in pages], folder / "a")
        scanned = f"scanned PDF ({SCAN_DPI} dpi A4)"
        bench(scanned, scan, "application/pdf", [(sha(scan), n) for n in pages], folder / "b")
        # One photo rendered afresh under as many keys (the key only names the cache entry).
        keys = [hashlib.sha256(f"photo {n}".encode()).hexdigest() for n in pages]
        photo_label = "photo 4000 x 3000 JPEG, EXIF 6"
        bench(photo_label, photo, "image/jpeg", [(key, 1) for key in keys], folder / "c")


if __name__ == "__main__":
    main()
