"""The pages' Arabic and Burmese web fonts, made at install (``make webfonts``).

Debian's ``fonts-noto-core`` ships TrueType only. The pages get WOFF2 files under
``portal/static/fonts/``, cut down to the Arabic and Myanmar blocks (and the marks and joiners
they use) with fontTools and compressed with brotli: about a third of the TrueType, and nothing
in the repository but the licence. The faces are found through :mod:`portal.documents.fonts`,
the one module that names the fonts of every PDF, so pages and documents use the same files.

    python -m portal.pages.webfonts portal/static/fonts
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from portal.documents.fonts import FONT_DIRS, Face, locate

__all__ = ["WEB_FONTS", "build"]

_ARABIC_FACE = Face("Noto Naskh Arabic", "NotoNaskhArabic-Regular.ttf", "fonts-noto-core")
_MYANMAR_FACE = Face("Noto Sans Myanmar", "NotoSansMyanmar-Regular.ttf", "fonts-noto-core")
_JOINERS = [*range(0x200B, 0x2010), 0x25CC]  # ZWSP, ZWNJ, ZWJ, LRM, RLM, dotted circle
#: Each web font: its face and the code points kept (what portal.css's unicode-range says).
WEB_FONTS: dict[Face, list[int]] = {
    _ARABIC_FACE: [
        *range(0x0600, 0x0700),
        *range(0x0750, 0x0780),
        *range(0x08A0, 0x0900),
        *range(0xFB50, 0xFE00),
        *range(0xFE70, 0xFF00),
        *_JOINERS,
    ],
    _MYANMAR_FACE: [
        *range(0x1000, 0x10A0),
        *range(0xA9E0, 0xAA00),
        *range(0xAA60, 0xAA80),
        *_JOINERS,
    ],
}


def build(target: Path, dirs: Sequence[Path] = FONT_DIRS) -> list[Path]:
    """Write one WOFF2 per face into ``target`` (skipped when newer than its TrueType);
    :class:`~portal.documents.fonts.FontsMissing` when a face is not installed."""
    from fontTools import subset

    files = locate(WEB_FONTS, dirs)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for face, points in WEB_FONTS.items():
        source = files[face]
        out = target / f"{Path(face.file).stem}.woff2"
        if out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
            written.append(out)
            continue
        options = subset.Options()
        options.flavor = "woff2"
        options.layout_features = ["*"]  # shaping needs every GSUB/GPOS feature
        options.name_IDs = ["*"]
        options.notdef_outline = True
        font = subset.load_font(str(source), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=points)
        subsetter.subset(font)
        partial = out.with_suffix(".part")
        subset.save_font(font, str(partial), options)
        partial.replace(out)
        written.append(out)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    target = Path(args[0]) if args else Path("portal/static/fonts")
    for path in build(target):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
