"""Reading a bundle: numbered lines of text and the sha256 of the bytes read.

A bundle is read line by line, never whole; a line longer than ``MAX_LINE_BYTES`` is reported,
not kept, so a corrupt file cannot exhaust memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SourceLine:
    """A non-blank line: its text, or why it could not be read as text."""

    number: int
    text: str | None
    problem: str | None = None


@dataclass
class BundleSource:
    name: str
    sha256: str = ""
    lines: list[SourceLine] = field(default_factory=list)


def read_bundle(bundle: Path | Iterable[str], *, name: str | None = None) -> BundleSource:
    """Read ``bundle`` (a path, or lines of text) into numbered lines; blank lines are skipped.

    The digest is over the bytes of the file (for lines of text: their UTF-8 encoding, each
    ending in a newline).
    """
    digest = hashlib.sha256()
    if isinstance(bundle, Path):
        source = BundleSource(name=name or bundle.name)
        with bundle.open("rb") as handle:
            number = 0
            while True:
                number += 1
                data = _read_line(handle.readline, digest.update)
                if data is None:
                    break
                _add(source, number, data)
    else:
        source = BundleSource(name=name or "bundle")
        for number, text in enumerate(bundle, start=1):
            encoded = text.encode("utf-8", "surrogatepass")
            if not encoded.endswith(b"\n"):
                encoded += b"\n"
            digest.update(encoded)
            _add(source, number, encoded if len(encoded) <= MAX_LINE_BYTES + 1 else b"")
    source.sha256 = digest.hexdigest()
    return source


def _read_line(readline: Callable[[int], bytes], update: Callable[[bytes], None]) -> bytes | None:
    """The next line (b"" when too long; None at the end); every byte read goes to ``update``."""
    chunk = readline(MAX_LINE_BYTES + 1)
    if not chunk:
        return None
    update(chunk)
    if len(chunk) <= MAX_LINE_BYTES or chunk.endswith(b"\n"):
        return chunk
    while chunk and not chunk.endswith(b"\n"):  # too long: consume the rest without keeping it
        chunk = readline(MAX_LINE_BYTES + 1)
        update(chunk)
    return b""


def _add(source: BundleSource, number: int, data: bytes) -> None:
    if data == b"":
        source.lines.append(SourceLine(number, None, f"line is longer than {MAX_LINE_BYTES} bytes"))
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        source.lines.append(SourceLine(number, None, f"not valid UTF-8 (byte {exc.start + 1})"))
        return
    if text.strip():
        source.lines.append(SourceLine(number, text))
