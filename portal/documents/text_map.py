"""What the text of a WeasyPrint PDF reads as: glyphs left without their characters get them.

WeasyPrint (70) writes each font's ``ToUnicode`` map from Pango's clusters: a cluster's whole
text goes to its last glyph, the cluster's other glyphs get none, and a glyph keeps the text of
the first cluster it was drawn in. For Latin, Arabic letters and digits a cluster is one glyph
and nothing is lost. A Burmese syllable such as ကြေ is one cluster of three glyphs, drawn in
visual order ေ ြ က: ေ and ြ read as nothing, and က then reads as ကြေ wherever it appears — text
extraction, search and copy see another text than the one printed.

:func:`repair_text_map` rewrites those entries from the font file itself: a glyph's characters
are those the font's ``cmap`` gives it or, for a glyph that only a substitution reaches (a
contextual form such as the wide medial ra, a ligature), those of the glyphs it replaces (GSUB
lookup types 1 to 4 and 8, followed to a fixed point). An entry is replaced only when WeasyPrint
gave the glyph no text, or a longer text containing the glyph's own; every other entry (a
ligature such as "fi", Arabic forms, digits) is kept. The text then reads in glyph (visual)
order, ေ ြ က, as any PDF without ``ActualText`` does; ``tests/support/logical_text.py`` shows
how a reader puts it back in logical order.

A PDF with nothing to repair is returned as it came (the same bytes), so Latin-only documents
are untouched. Fonts are looked up by the PostScript name the embedded subset carries
(``NotoSansMyanmar-Regular`` -> ``NotoSansMyanmar-Regular.ttf`` in
:data:`portal.documents.fonts.FONT_DIRS`); a font not found there is left as it is.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from portal.documents.fonts import FONT_DIRS

__all__ = ["glyph_texts", "repair_text_map"]

#: One ``bfchar`` entry of a ToUnicode CMap as WeasyPrint writes it: ``<gid> <UTF-16BE hex>``.
_ENTRY = re.compile(rb"<([0-9a-fA-F]{4})>\s*<([0-9a-fA-F]*)>")


@lru_cache(maxsize=16)
def glyph_texts(postscript_name: str, dirs: Sequence[Path] = FONT_DIRS) -> dict[int, str]:
    """The characters each glyph (by id) of the installed font ``postscript_name`` stands for;
    empty when the font is not installed."""
    from fontTools.ttLib import TTFont

    path = next(
        (d / f"{postscript_name}.ttf" for d in dirs if (d / f"{postscript_name}.ttf").is_file()),
        None,
    )
    if path is None:
        return {}
    font = TTFont(str(path), lazy=True)
    texts: dict[str, str] = {}
    for point, name in sorted(font.getBestCmap().items()):
        texts.setdefault(name, chr(point))
    if "GSUB" in font:
        _follow_substitutions(font["GSUB"].table, texts)
    return {font.getGlyphID(name): text for name, text in texts.items() if text}


def _follow_substitutions(gsub: Any, texts: dict[str, str]) -> None:
    """Give each glyph a substitution makes the text of what it replaces (to a fixed point:
    a form of a form)."""
    subtables = []
    for lookup in gsub.LookupList.Lookup if gsub.LookupList else ():
        for subtable in lookup.SubTable:
            kind = lookup.LookupType
            if kind == 7:  # extension: the real subtable inside
                kind, subtable = subtable.ExtensionLookupType, subtable.ExtSubTable
            subtables.append((kind, subtable))

    def learn(glyph: str, text: str) -> bool:
        if glyph in texts or not text:
            return False
        texts[glyph] = text
        return True

    changed = True
    while changed:
        changed = False
        for kind, table in subtables:
            if kind == 1:
                for source, target in table.mapping.items():
                    changed |= source in texts and learn(target, texts[source])
            elif kind == 2:  # one glyph into several: the first carries the text
                for source, targets in table.mapping.items():
                    changed |= (
                        bool(targets) and source in texts and learn(targets[0], texts[source])
                    )
            elif kind == 3:
                for source, targets in table.alternates.items():
                    for target in targets:
                        changed |= source in texts and learn(target, texts[source])
            elif kind == 4:
                for first, ligatures in table.ligatures.items():
                    for ligature in ligatures:
                        parts = [first, *ligature.Component]
                        if all(part in texts for part in parts):
                            text = "".join(texts[part] for part in parts)
                            changed |= learn(ligature.LigGlyph, text)
            elif kind == 8:
                for source, target in zip(table.Coverage.glyphs, table.Substitute, strict=False):
                    changed |= source in texts and learn(target, texts[source])


def _better(old: str, own: str | None) -> str | None:
    """The glyph's own text where WeasyPrint's entry lost it (see the module's docstring)."""
    if not own or old == own:
        return None
    if old == "" or (len(old) > len(own) and own in old):
        return own
    return None


def _repair_font(font: Any) -> bool:
    import pikepdf
    from fontTools.ttLib import TTFont

    descendants = font.get("/DescendantFonts")
    to_unicode = font.get("/ToUnicode")
    if not descendants or to_unicode is None:
        return False
    descendant = descendants[0]
    descriptor = descendant.get("/FontDescriptor")
    if descriptor is None or "/FontFile2" not in descriptor:
        return False
    if descendant.get("/CIDToGIDMap") != pikepdf.Name.Identity:
        return False  # character ids are not glyph ids: nothing to go by
    embedded = TTFont(io.BytesIO(descriptor.FontFile2.read_bytes()), lazy=True)
    name = embedded["name"].getDebugName(6) if "name" in embedded else None
    own = glyph_texts(name) if name else {}
    if not own:
        return False
    changed = False

    def rewrite(match: re.Match[bytes]) -> bytes:
        nonlocal changed
        glyph = int(match.group(1), 16)
        old = bytes.fromhex(match.group(2).decode()).decode("utf-16-be")
        new = _better(old, own.get(glyph))
        if new is None:
            return match.group(0)
        changed = True
        return b"<%s> <%s>" % (match.group(1), new.encode("utf-16-be").hex().encode())

    data = _ENTRY.sub(rewrite, to_unicode.read_bytes())
    if changed:
        to_unicode.write(data)
    return changed


def repair_text_map(pdf: bytes) -> bytes:
    """``pdf`` with the ToUnicode entries WeasyPrint lost filled in (the same bytes when
    there are none)."""
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as document:
        changed = False
        for obj in document.objects:
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Subtype") == pikepdf.Name.Type0:
                changed |= _repair_font(obj)
        if not changed:
            return pdf
        out = io.BytesIO()
        document.save(out, deterministic_id=True)
        return out.getvalue()
