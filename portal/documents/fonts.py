"""The fonts of every PDF the portal makes, chosen in this one module.

WeasyPrint documents (the templates under ``templates/*/documents/`` and the text
renditions) name a CSS ``font-family`` stack: a Latin face first, then the faces of the
other scripts the portal's material is written in (Arabic, Burmese). Pango takes each
character from the first face of the stack that has it and shapes the run (Arabic joined
and laid out right to left, Burmese reordered and stacked). ReportLab documents (the
custody log) get DejaVu's files under fixed names; ReportLab shapes nothing, so they show
the scripts that need no shaping (Latin, Greek, Cyrillic) and nothing else.

The faces come from Debian's ``fonts-noto-core`` and ``fonts-dejavu-core`` (``make
system-packages`` installs them when missing). A face that is not installed is an error
when a document asks for it, naming its package: a PDF never falls back in silence to a
font without the glyphs, which would print empty boxes where the text was.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup

__all__ = [
    "FONT_DIRS",
    "MONO",
    "PDF_FONTS",
    "SANS",
    "Face",
    "FontStack",
    "FontsMissing",
    "PdfFonts",
    "ReportLabFonts",
    "coverage",
    "locate",
    "reportlab_fonts",
    "undrawable",
]

NOTO = "fonts-noto-core"
DEJAVU = "fonts-dejavu-core"

#: Where Debian (and the usual other layouts) put the files of those packages.
FONT_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/noto"),
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/noto"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/local/share/fonts"),
)


@dataclass(frozen=True)
class Face:
    """One font file: its family name (as CSS and fontconfig know it) and its package."""

    family: str
    file: str
    package: str


class FontsMissing(RuntimeError):
    """A document needs faces that are not installed; the message names the packages."""

    def __init__(self, missing: Sequence[Face]) -> None:
        faces = ", ".join(f"{face.family} ({face.file})" for face in missing)
        packages = " ".join(sorted({face.package for face in missing}))
        super().__init__(
            f"fonts missing for PDF documents: {faces}; install the Debian package(s) "
            f"{packages} (make system-packages does)"
        )
        self.missing = tuple(missing)


@dataclass(frozen=True)
class FontStack:
    """Faces in the order Pango tries them, and the generic family that ends the CSS list."""

    faces: tuple[Face, ...]
    generic: str

    @property
    def css(self) -> str:
        """The CSS ``font-family`` value, e.g. ``"Noto Sans", "DejaVu Sans", sans-serif``."""
        return ", ".join([*(f'"{face.family}"' for face in self.faces), self.generic])


_NOTO_SANS = Face("Noto Sans", "NotoSans-Regular.ttf", NOTO)
_DEJAVU_SANS = Face("DejaVu Sans", "DejaVuSans.ttf", DEJAVU)
_DEJAVU_SANS_BOLD = Face("DejaVu Sans", "DejaVuSans-Bold.ttf", DEJAVU)
_DEJAVU_MONO = Face("DejaVu Sans Mono", "DejaVuSansMono.ttf", DEJAVU)
_ARABIC = (
    Face("Noto Naskh Arabic", "NotoNaskhArabic-Regular.ttf", NOTO),  # reads best in print
    Face("Noto Sans Arabic", "NotoSansArabic-Regular.ttf", NOTO),
)
_MYANMAR = (Face("Noto Sans Myanmar", "NotoSansMyanmar-Regular.ttf", NOTO),)

#: Running text, text renditions included: Latin, Arabic, Burmese, then DejaVu Sans for
#: the symbols Noto Sans lacks. DejaVu comes after the Arabic faces because it has part of
#: Arabic: Pango would take those letters from it and the rest from Naskh, and letters of
#: two fonts do not join.
SANS = FontStack((_NOTO_SANS, *_ARABIC, *_MYANMAR, _DEJAVU_SANS), "sans-serif")
#: Codes, fingerprints and commands (Latin). Not for running text: DejaVu Sans Mono has
#: part of Arabic too, and putting the Arabic faces first would set Latin digits and
#: punctuation in them.
MONO = FontStack((_DEJAVU_MONO, *SANS.faces), "monospace")


def locate(faces: Iterable[Face], dirs: Sequence[Path] = FONT_DIRS) -> dict[Face, Path]:
    """The file of every face; :class:`FontsMissing` names those not installed."""
    found: dict[Face, Path] = {}
    missing: list[Face] = []
    for face in dict.fromkeys(faces):
        path = next((d / face.file for d in dirs if (d / face.file).is_file()), None)
        if path is None:
            missing.append(face)
        else:
            found[face] = path
    if missing:
        raise FontsMissing(missing)
    return found


@lru_cache(maxsize=32)
def _code_points(path: Path) -> frozenset[int]:
    from reportlab.pdfbase.ttfonts import TTFontFile

    return frozenset(TTFontFile(str(path)).charToGlyph)


def coverage(stack: FontStack, dirs: Sequence[Path] = FONT_DIRS) -> frozenset[int]:
    """The code points some face of ``stack`` has a glyph for (all faces installed)."""
    return frozenset().union(*(_code_points(path) for path in locate(stack.faces, dirs).values()))


# Characters no font is asked to draw: spaces, controls, format characters (zero-width
# joiners, bidi controls, soft hyphens) and variation selectors.
_NOT_DRAWN = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs"})
_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0), range(0x180B, 0x1810))


def _drawn(char: str) -> bool:
    point = ord(char)
    if unicodedata.category(char) in _NOT_DRAWN or point == 0x034F:
        return False
    return not any(point in selectors for selectors in _SELECTORS)


def undrawable(stack: FontStack, text: str, dirs: Sequence[Path] = FONT_DIRS) -> list[str]:
    """The distinct characters of ``text`` that no face of ``stack`` can draw, in order."""
    covered = coverage(stack, dirs)
    return sorted(char for char in set(text) if ord(char) not in covered and _drawn(char))


class PdfFonts:
    """The stacks for document templates, as ``{{ pdf_fonts.sans }}`` in their CSS.

    Each use checks that the faces are installed (:class:`FontsMissing` otherwise), so a
    document is never rendered with fonts that lack its scripts. The value is markup:
    autoescaping would turn its quotes into entities, which CSS does not read.
    """

    def __init__(self, dirs: Sequence[Path] = FONT_DIRS) -> None:
        self.dirs = tuple(dirs)

    def _css(self, stack: FontStack) -> Markup:
        locate(stack.faces, self.dirs)
        return Markup(stack.css)  # noqa: S704  # family names of this module, not input

    @property
    def sans(self) -> Markup:
        return self._css(SANS)

    @property
    def mono(self) -> Markup:
        return self._css(MONO)


PDF_FONTS = PdfFonts()


@dataclass(frozen=True)
class ReportLabFonts:
    """ReportLab's names for the regular, bold and monospaced faces."""

    regular: str
    bold: str
    mono: str


_REPORTLAB = {
    "PortalSans": _DEJAVU_SANS,
    "PortalSans-Bold": _DEJAVU_SANS_BOLD,
    "PortalMono": _DEJAVU_MONO,
}


def reportlab_fonts(dirs: Sequence[Path] = FONT_DIRS) -> ReportLabFonts:
    """DejaVu registered with ReportLab (once per process); :class:`FontsMissing` if absent."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    files = locate(_REPORTLAB.values(), dirs)
    registered = set(pdfmetrics.getRegisteredFontNames())
    for name, face in _REPORTLAB.items():
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, str(files[face])))
    return ReportLabFonts(*_REPORTLAB)
