"""The terms of term marks, sealed at rest.

A term mark's term is usually a protected witness's name, so it is kept like a protected
identifier (:mod:`portal.registry.identifiers`): sealed with :mod:`portal.sealing` for the
purpose ``redaction_mark:<item code>/<mark code>`` (a mark's code is unique within its item),
never stored, logged or shown in plaintext. It is opened only where it is needed: to compare
an imported mark with the stored one, and in package assembly, in the worker that redacts.
Messages name the mark by its codes ("mark M-3 of ITM-0042"), never by the term.
"""

from __future__ import annotations

from portal.registry.models import RedactionMark
from portal.sealing import Sealer

__all__ = ["PURPOSE", "purpose", "seal_term", "term_of"]

PURPOSE = "redaction_mark"


def purpose(item_code: str, mark_code: str) -> str:
    """What the term of mark ``mark_code`` of item ``item_code`` is sealed for."""
    return f"{PURPOSE}:{item_code}/{mark_code}"


def seal_term(sealer: Sealer, item_code: str, mark_code: str, term: str) -> str:
    """``term`` sealed for the mark (the value of ``RedactionMark.term_sealed``)."""
    return sealer.seal(term, purpose(item_code, mark_code))


def term_of(sealer: Sealer, mark: RedactionMark, item_code: str) -> str | None:
    """The mark's term (None for marks of other kinds); raises
    :class:`portal.sealing.CannotUnseal` naming the mark, never the term, when it does not
    open."""
    if mark.term_sealed is None:
        return None
    return sealer.unseal(mark.term_sealed, purpose(item_code, mark.code))
