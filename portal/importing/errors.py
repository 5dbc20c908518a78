"""What a rejected bundle reports: every bad line, with its number and the reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class LineError:
    """One problem on one line of the bundle; line 0 means the bundle as a whole."""

    line: int
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "bundle"
        return f"{where}: {self.reason}"


class BundleRejected(Exception):
    """The bundle was refused as a whole: nothing was stored.

    ``errors`` lists every problem found, sorted by line.
    """

    def __init__(self, errors: Iterable[LineError], *, bundle: str = "bundle") -> None:
        self.errors = sorted(errors, key=lambda error: error.line)
        self.bundle = bundle
        super().__init__(self.report())

    @property
    def bad_lines(self) -> list[int]:
        return sorted({error.line for error in self.errors})

    def report(self) -> str:
        """A human-readable report: a header, then one problem per line of text."""
        lines = len([line for line in self.bad_lines if line])
        header = (
            f"{self.bundle}: rejected, nothing was imported "
            f"({len(self.errors)} problem{'s' if len(self.errors) != 1 else ''}"
            f" on {lines} line{'s' if lines != 1 else ''})"
        )
        return "\n".join([header, *(f"  {error}" for error in self.errors)])
