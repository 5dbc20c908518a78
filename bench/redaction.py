"""PDF redaction throughput against raw rasterisation, and the leak check's speed.

Makes a text PDF of N pages (ReportLab, a protected name on every page), then times in the
same run:

* raw: pypdfium2 renders every page at the same resolution and drops the bitmap (the floor
  any rasterising redaction pays);
* redact: :func:`portal.redaction.pdf.redact_pdf` with one term and one page box
  per page (render, find the term in the text layer, burn boxes, JPEG, write the PDF);
* leak check of the redacted rendition (raw bytes, PDF objects, pdfminer text).

Prints pages per second for each and the ratio redact / raw.

Then text renditions: a plain-text statement of ``--text-pages`` pages (Latin, Arabic and
Burmese lines, the name on some), timed as min / median of ``--runs`` runs, wall and CPU
seconds (this process and its children), against a raw WeasyPrint rendering of the same
text in one ``<pre>`` (no redaction, no layout per line): ``redact_text`` and the leak
check of its rendition.

    .venv/bin/python bench/redaction.py              # 200 pages at 150 dpi, 20 text pages
    .venv/bin/python bench/redaction.py --pages 50 --dpi 200
    .venv/bin/python bench/redaction.py --pages 0 --text-pages 50   # text renditions only
    .venv/bin/python bench/redaction.py --pages 0 --text-pages 0 --scan-pages 200  # OCR only

Then OCR (``--scan-pages``): a scanned statement of that many pages at 300 dpi (page images
only, no text layer, the name on every page), redacted with one term: ``redact_pdf`` (render
at 150 dpi for the output and at 200 dpi for OCR, Tesseract, burn, JPEG) against raw
``tesseract`` run on the same 200-dpi page images, one process per page as the portal runs it
(``OMP_THREAD_LIMIT=1``); and the leak check of the rendition with and without its pixels
layer (the OCR cost per page).
"""

from __future__ import annotations

import argparse
import html
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pypdfium2
from reportlab.pdfgen.canvas import Canvas

from portal.documents.html_pdf import html_to_pdf
from portal.redaction.leakcheck import PixelReading, check_files
from portal.redaction.pdf import redact_pdf
from portal.redaction.renditions import MarkSpec
from portal.redaction.text import redact_text

NAME = "Anna Smith"
LINES = [
    "The witness described the checkpoint on the northern road and the vehicles there.",
    "Several people were detained; the statement lists times and places in detail.",
    "Nothing in this paragraph names anyone who needs protection.",
]
TEXT_LINES = [
    *LINES,
    "شهدت الشاهدة نقطة التفتيش على الطريق الشمالي والمركبات هناك.",
    "သက်သေသည် စစ်ဆေးရေးဂိတ်ကို ဖော်ပြခဲ့သည်။",
]
TEXT_LINES_PER_PAGE = 60


def make_source(path: Path, pages: int) -> None:
    canvas = Canvas(str(path), pagesize=(595, 842), pageCompression=1)
    for number in range(pages):
        canvas.setFont("Helvetica", 11)
        y = 780.0
        for row in range(40):
            text = LINES[row % len(LINES)]
            if row % 13 == 5:
                text = f"Page {number + 1}: {NAME} was seen near the market at noon."
            canvas.drawString(60, y, text)
            y -= 17
        canvas.showPage()
    canvas.save()


def raw_rasterise(path: Path, dpi: int) -> float:
    start = time.perf_counter()
    document = pypdfium2.PdfDocument(str(path))
    try:
        for index in range(len(document)):
            page = document[index]
            bitmap = page.render(scale=dpi / 72, may_draw_forms=False, draw_annots=False)
            bitmap.to_pil()
            bitmap.close()
            page.close()
    finally:
        document.close()
    return time.perf_counter() - start


def make_text(path: Path, pages: int) -> None:
    rows = []
    for row in range(pages * TEXT_LINES_PER_PAGE):
        line = TEXT_LINES[row % len(TEXT_LINES)]
        if row % 13 == 5:
            line = f"Line {row + 1}: {NAME} was seen near the market at noon."
        rows.append(line)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def cpu_seconds() -> float:
    """User + system CPU of this process and its (waited-for) children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(job: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``runs`` calls of ``job``."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), cpu_seconds()
        job()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
    return walls, cpus


def report(
    name: str, times: tuple[list[float], list[float]], raw: tuple[list[float], list[float]]
) -> None:
    walls, cpus = times
    wall = f"wall min {min(walls):6.2f} s median {statistics.median(walls):6.2f} s"
    cpu = f"CPU min {min(cpus):6.2f} s median {statistics.median(cpus):6.2f} s"
    ratio = f"x raw: wall {min(walls) / min(raw[0]):5.2f}, CPU {min(cpus) / min(raw[1]):5.2f}"
    print(f"{name:<18}: {wall}; {cpu}; {ratio}")


def bench_text(pages: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-redaction-text-") as folder:
        source = Path(folder) / "statement.txt"
        dest = Path(folder) / "statement.pdf"
        make_text(source, pages)
        text = source.read_text(encoding="utf-8")
        marks = [MarkSpec("T1", "term", "witness", term=NAME)]
        raw_html = f"<pre>{html.escape(text)}</pre>"
        raw = timed(lambda: html_to_pdf(raw_html), runs)
        rendered = timed(lambda: redact_text(source, marks, dest, "REDACTED"), runs)
        outcome = redact_text(source, marks, dest, "REDACTED")
        checked = timed(
            lambda: check_files([("statement.pdf", dest)], outcome.protected_terms), runs
        )
        clean = check_files([("statement.pdf", dest)], outcome.protected_terms).clean
        size_kb = dest.stat().st_size / 1e3
    print(
        f"text: {pages} pages of {TEXT_LINES_PER_PAGE} lines ({len(text)} characters); "
        f"term found {outcome.applied[0].occurrences} times; output {size_kb:.0f} kB; {runs} runs"
    )
    report("raw WeasyPrint", raw, raw)
    report("redact_text", rendered, raw)
    report("leak check", checked, raw)
    print(f"leak check clean={clean}")


SCAN_DPI = 300
FONT = "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"


def make_scan(path: Path, pages: int) -> None:
    """An image-only PDF of ``pages`` A4 pages at 300 dpi: 30 lines of text, the name on
    line 10 (Pillow writes each page as a JPEG image, as a scanner's software would)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, 42)
    width, height = round(8.27 * SCAN_DPI), round(11.69 * SCAN_DPI)

    def page(number: int) -> Image.Image:
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        for line in range(30):
            text = LINES[line % len(LINES)]
            if line == 10:
                text = f"On page {number} the witness {NAME} described the road."
            draw.text((250, 250 + line * 100), text, font=font, fill=0)
        return image

    first = page(1)
    first.save(
        path, format="PDF", resolution=SCAN_DPI, save_all=True,
        append_images=(page(n) for n in range(2, pages + 1)),
    )  # fmt: skip


def raw_tesseract(source: Path, folder: Path) -> tuple[list[float], list[float]]:
    """Tesseract alone on the page images OCR reads (rendered at 200 dpi beforehand, not
    timed): one process per page, as the portal runs it."""
    from portal.redaction.pixels import OCR_DPI

    document = pypdfium2.PdfDocument(str(source))
    images = []
    for index in range(len(document)):
        image = folder / f"page-{index + 1}.pgm"
        document[index].render(scale=OCR_DPI / 72, grayscale=True).to_pil().convert("L").save(image)
        images.append(image)
    document.close()
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def run() -> None:
        for image in images:
            subprocess.run(
                ["tesseract", str(image), "stdout", "-l", "eng", "--psm", "3", "tsv"],
                check=True, capture_output=True, env=environment,
            )  # fmt: skip

    return timed(run, 1)


def bench_ocr(pages: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-redaction-ocr-") as name:
        folder = Path(name)
        source, dest = folder / "scan.pdf", folder / "redacted.pdf"
        make_scan(source, pages)
        marks = [MarkSpec("T1", "term", "witness", term=NAME)]
        raws = [raw_tesseract(source, folder) for _ in range(runs)]
        raw = ([t for r in raws for t in r[0]], [t for r in raws for t in r[1]])
        redacted = timed(lambda: redact_pdf(source, marks, dest, "REDACTED"), runs)
        outcome = redact_pdf(source, marks, dest, "REDACTED")
        terms = outcome.protected_terms
        without = timed(lambda: check_files([("r.pdf", dest)], terms), runs)
        pixels = timed(lambda: check_files([("r.pdf", dest)], terms, pixels=PixelReading()), runs)
        clean = check_files([("r.pdf", dest)], terms, pixels=PixelReading()).clean
        found = outcome.applied[0].occurrences
    print(
        f"OCR: {pages} scanned pages at {SCAN_DPI} dpi; term found {found} times "
        f"(expected {pages}); {runs} runs"
    )
    report("raw tesseract", raw, raw)
    report("redact_pdf (OCR)", redacted, raw)
    report("leak check", without, raw)
    report("leak check+pixels", pixels, raw)
    per_page = (min(pixels[0]) - min(without[0])) / pages
    print(f"leak check OCR cost: {per_page:.2f} s per page; rendition clean={clean}")
    print(f"redact_pdf: {pages / min(redacted[0]):.2f} pages/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--text-pages", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scan-pages", type=int, default=0)
    args = parser.parse_args()
    if args.scan_pages:
        bench_ocr(args.scan_pages, args.runs)
    if args.text_pages:
        bench_text(args.text_pages, args.runs)
    if not args.pages:
        return
    with tempfile.TemporaryDirectory(prefix="bench-redaction-") as folder:
        source = Path(folder) / "source.pdf"
        dest = Path(folder) / "redacted.pdf"
        make_source(source, args.pages)
        marks = [MarkSpec("T1", "term", "witness", term=NAME)] + [
            MarkSpec(f"B{page}", "pdf_box", "face", page=page, box=(0.6, 0.1, 0.9, 0.3))
            for page in range(1, args.pages + 1)
        ]
        raw = raw_rasterise(source, args.dpi)
        start = time.perf_counter()
        outcome = redact_pdf(source, marks, dest, "REDACTED", dpi=args.dpi)
        redacted = time.perf_counter() - start
        start = time.perf_counter()
        report = check_files([("redacted.pdf", dest)], outcome.protected_terms)
        checked = time.perf_counter() - start
        found = outcome.applied[0].occurrences
        size_mb = dest.stat().st_size / 1e6
    pages = args.pages
    print(f"{pages} pages at {args.dpi} dpi; term found {found} times; output {size_mb:.1f} MB")
    print(f"raw rasterisation : {pages / raw:7.1f} pages/s ({raw:.2f} s)")
    print(f"redact_pdf        : {pages / redacted:7.1f} pages/s ({redacted:.2f} s)")
    print(f"ratio redact/raw  : {redacted / raw:7.2f}")
    print(f"leak check        : {pages / checked:7.1f} pages/s ({checked:.2f} s)", end="")
    print(f", clean={report.clean}")


if __name__ == "__main__":
    main()
