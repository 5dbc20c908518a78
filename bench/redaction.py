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
"""

from __future__ import annotations

import argparse
import html
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pypdfium2
from reportlab.pdfgen.canvas import Canvas

from portal.documents.html_pdf import html_to_pdf
from portal.redaction.leakcheck import check_files
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--text-pages", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
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
