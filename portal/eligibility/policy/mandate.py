"""The mandate of the deployment: situation, period and crime categories (``mandate.toml``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["CrimeCategory", "Mandate", "normalise_offence"]


def normalise_offence(name: str) -> str:
    """Offence names match case-insensitively and whatever the spacing."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class CrimeCategory:
    id: str
    name: str
    offences: tuple[str, ...]


@dataclass(frozen=True)
class Mandate:
    situation: str
    period_start: date
    period_end: date | None
    categories: tuple[CrimeCategory, ...]
    description: str = ""

    def category_of(self, offence: str) -> CrimeCategory | None:
        """The crime category an offence named in a request belongs to, if any."""
        wanted = normalise_offence(offence)
        for category in self.categories:
            if any(normalise_offence(known) == wanted for known in category.offences):
                return category
        return None

    def period_text(self) -> str:
        """``from 2023-05-01`` or ``2023-05-01 to 2025-12-31``."""
        if self.period_end is None:
            return f"from {self.period_start.isoformat()}"
        return f"{self.period_start.isoformat()} to {self.period_end.isoformat()}"

    def offences(self) -> list[str]:
        """Every offence of the mandate, in file order (e.g. to offer in a request form)."""
        return [offence for category in self.categories for offence in category.offences]
