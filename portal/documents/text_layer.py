"""The text of a WeasyPrint document as an invisible layer, line by line in reading order.

WeasyPrint maps each glyph of a font to the characters it was first drawn for. Shaped
scripts break that: in Burmese one glyph serves several clusters and a vowel drawn before
its consonant maps to nothing, and Arabic comes out in visual (reversed) order. Text
extractors (pdfminer.six, which the leak check reads with, and pdfium) then return Burmese
with letters lost or moved, so a check would not see what the page shows.

:func:`add_text_layer` is a WeasyPrint ``finisher`` that fixes this the way OCR layers do:
every visible glyph reads as a space, and under each line it writes the line's characters
as WeasyPrint laid them out (the text of its text boxes, in logical order) in invisible
text (render mode 3) stretched over the line. Extractors read that, in reading order;
viewers show only the shaped glyphs. The layer's font has no glyphs (nothing is drawn
with it), only widths and a ``ToUnicode`` map.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pydyf  # type: ignore[import-untyped]  # WeasyPrint's PDF writer, small to import

__all__ = ["FONT_NAME", "add_text_layer"]

FONT_NAME = "PortalTextLayer"
_ADVANCE = 500  # every code's width, in thousandths of the font size
_SCALE = 0.75  # PDF points per CSS pixel (WeasyPrint at zoom 1)
_TO_UNICODE_ENTRY = re.compile(rb"^(<[0-9a-fA-F]{2,4}>) <[0-9a-fA-F]*>$")


def _deref(pdf: Any, value: Any) -> Any:
    """The object ``value`` refers to (pydyf references are ``b"N 0 R"``)."""
    if isinstance(value, bytes | str):
        number = value.split()[0]
        return pdf.objects[int(number)]
    return value


def _lines(page: Any) -> Iterator[tuple[str, float, float, float, float]]:
    """(text, left, baseline, width, font size) of each line of ``page``, in CSS pixels.

    A line's text is that of the text boxes inside it in box-tree order, which is logical
    order (WeasyPrint moves right-to-left boxes, it does not reorder them), including the
    text of inline blocks on the line such as redaction labels. It is spread over the whole
    measure of the line, not only where the glyphs are: lines of one paragraph then share
    their left and right edges, and extractors keep them together and in order even when
    they are set against the right margin.
    """
    from weasyprint.formatting_structure import boxes  # type: ignore[import-untyped]

    def walk(box: Any) -> Iterator[tuple[Any, Any]]:
        """(line box, the block it is a line of)."""
        for child in getattr(box, "children", ()):
            if isinstance(child, boxes.LineBox):
                yield child, box
            else:
                yield from walk(child)

    for line, block in walk(page._page_box):
        texts = [box for box in line.descendants() if isinstance(box, boxes.TextBox)]
        text = "".join(box.text for box in texts)
        if not text:
            continue
        first = texts[0]
        baseline = first.position_y + first.baseline
        size = float(line.style["font_size"])
        yield text, block.content_box_x(), baseline, block.width, size


def _blank_visible_glyphs(pdf: Any) -> None:
    """Every glyph of WeasyPrint's own fonts reads as a space (its shapes stay)."""
    for candidate in list(pdf.objects):
        if not hasattr(candidate, "get") or candidate.get("Type") != "/Font":
            continue
        if "ToUnicode" not in candidate:
            continue
        cmap = _deref(pdf, candidate["ToUnicode"])
        cmap.stream[:] = [
            match[1] + b" <0020>" if (match := _TO_UNICODE_ENTRY.match(line)) else line
            for line in (bytes(item) for item in cmap.stream)
        ]


def _to_unicode(codes: dict[str, int]) -> list[bytes]:
    lines = [
        b"/CIDInit /ProcSet findresource begin",
        b"12 dict begin",
        b"begincmap",
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        b"/CMapName /Adobe-Identity-UCS def",
        b"/CMapType 2 def",
        b"1 begincodespacerange",
        b"<0000> <ffff>",
        b"endcodespacerange",
    ]
    entries = sorted((code, char) for char, code in codes.items())
    for start in range(0, len(entries), 100):
        batch = entries[start : start + 100]
        lines.append(f"{len(batch)} beginbfchar".encode())
        lines.extend(
            f"<{code:04x}> <{char.encode('utf-16-be').hex()}>".encode() for code, char in batch
        )
        lines.append(b"endbfchar")
    lines += [b"endcmap", b"CMapName currentdict /CMap defineresource pop", b"end", b"end"]
    return lines


def _add_font(pdf: Any, codes: dict[str, int]) -> bytes:
    """The glyphless font of the layer; returns its reference."""
    to_unicode = pydyf.Stream(_to_unicode(codes), compress=True)
    pdf.add_object(to_unicode)
    descriptor = pydyf.Dictionary(
        {
            "Type": "/FontDescriptor",
            "FontName": f"/{FONT_NAME}",
            "Flags": 4,
            "FontBBox": pydyf.Array([0, -200, _ADVANCE, 800]),
            "ItalicAngle": 0,
            "Ascent": 800,
            "Descent": -200,
            "CapHeight": 700,
            "StemV": 80,
        }
    )
    pdf.add_object(descriptor)
    cid_font = pydyf.Dictionary(
        {
            "Type": "/Font",
            "Subtype": "/CIDFontType2",
            "BaseFont": f"/{FONT_NAME}",
            "CIDSystemInfo": pydyf.Dictionary(
                {
                    "Registry": pydyf.String("Adobe"),
                    "Ordering": pydyf.String("Identity"),
                    "Supplement": 0,
                }
            ),
            "FontDescriptor": descriptor.reference,
            "DW": _ADVANCE,
            "CIDToGIDMap": "/Identity",
        }
    )
    pdf.add_object(cid_font)
    font = pydyf.Dictionary(
        {
            "Type": "/Font",
            "Subtype": "/Type0",
            "BaseFont": f"/{FONT_NAME}",
            "Encoding": "/Identity-H",
            "DescendantFonts": pydyf.Array([cid_font.reference]),
            "ToUnicode": to_unicode.reference,
        }
    )
    pdf.add_object(font)
    reference: bytes = font.reference
    return reference


def _page_operators(
    lines: list[tuple[str, float, float, float, float]], height: float, codes: dict[str, int]
) -> list[bytes]:
    """Invisible text for ``lines`` (CSS pixels, y down) in PDF points (y up)."""
    operators = [b"q", b"BT", b"3 Tr"]
    for text, left, baseline, width, size in lines:
        if width <= 0:
            continue
        for char in text:
            if char not in codes:
                if len(codes) >= 0xFFFF:
                    raise ValueError("too many distinct characters for the text layer")
                codes[char] = len(codes) + 1  # code 0 stays .notdef
        points = size * _SCALE
        stretch = 100 * width / (len(text) * _ADVANCE / 1000 * size)
        x, y = left * _SCALE, height - baseline * _SCALE
        hex_codes = "".join(f"{codes[char]:04x}" for char in text)
        operators.append(
            f"/{FONT_NAME} {points:.3f} Tf {stretch:.3f} Tz "
            f"1 0 0 1 {x:.3f} {y:.3f} Tm <{hex_codes}> Tj".encode()
        )
    operators += [b"ET", b"Q"]
    return operators


def add_text_layer(document: Any, pdf: Any) -> None:
    """WeasyPrint finisher: visible glyphs read as spaces; each line's text, invisible,
    in reading order, comes first in the page's content (made at zoom 1)."""
    page_dicts = [_deref(pdf, reference) for reference in _kids(pdf.pages["Kids"])]
    if len(page_dicts) != len(document.pages):
        raise ValueError("the PDF's pages do not match the document's")
    _blank_visible_glyphs(pdf)
    codes: dict[str, int] = {}
    streams = [
        _page_operators(list(_lines(page)), page.height * _SCALE, codes) for page in document.pages
    ]
    font = _add_font(pdf, codes)
    for page_dict, operators in zip(page_dicts, streams, strict=True):
        layer = pydyf.Stream(operators, compress=True)
        pdf.add_object(layer)
        contents = page_dict["Contents"]
        page_dict["Contents"] = pydyf.Array([layer.reference, contents])
        resources = _deref(pdf, page_dict["Resources"])
        fonts = _deref(pdf, resources["Font"])
        fonts[FONT_NAME] = font


def _kids(kids: Any) -> list[bytes]:
    """Page references from pydyf's ``Kids`` array (it stores ``[N, 0, "R", ...]``)."""
    items = list(kids)
    return [f"{items[i]} 0 R".encode() for i in range(0, len(items), 3)]
