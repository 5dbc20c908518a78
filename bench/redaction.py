"""PDF redaction throughput against raw rasterisation, and the leak check's speed.

Makes a text PDF of N pages (ReportLab, a protected name on every page), then times in the
same run:

* raw: pypdfium2 renders every page at the same resolution and drops the bitmap (the floor
  any rasterising redaction pays);
* redact: :func:`portal.redaction.pdf.redact_pdf` with one term and one page box
  per page (render, find the term in the text layer, burn boxes, JPEG, write the PDF);
* leak check of the redacted rendition (raw bytes, PDF objects, pdfminer text).

Prints pages per second for each and the ratio redact / raw.

    .venv/bin/python bench/redaction.py              # 200 pages at 150 dpi
    .venv/bin/python bench/redaction.py --pages 50 --dpi 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pypdfium2
from reportlab.pdfgen.canvas import Canvas

from portal.redaction.leakcheck import check_files
from portal.redaction.pdf import redact_pdf
from portal.redaction.renditions import MarkSpec

NAME = "Anna Smith"
LINES = [
    "The witness described the checkpoint on the northern road and the vehicles there.",
    "Several people were detained; the statement lists times and places in detail.",
    "Nothing in this paragraph names anyone who needs protection.",
]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args()
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
