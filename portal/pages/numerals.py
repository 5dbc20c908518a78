"""Whole numbers typed into query strings and forms, read by one strict parser.

``str.isdigit()`` is true for "¹" (which ``int()`` refuses: a 500), ``int()`` takes "٣" and
five thousand digits, and a 23-digit id overflows PostgreSQL's integer columns (a 500 again).
:func:`whole_number` takes ASCII digits only, up to a bound, and says None otherwise; callers
answer a clear 400 or ignore the filter.
"""

from __future__ import annotations

#: The largest id a column holds on every backend (PostgreSQL ``integer``).
MAX_ID = 2**31 - 1


def whole_number(text: str | None, *, maximum: int = MAX_ID) -> int | None:
    """``text`` as a whole number 0..``maximum`` (ASCII digits, surrounding spaces allowed),
    or None when it is anything else."""
    value = (text or "").strip()
    if not value or not value.isascii() or not value.isdigit() or len(value) > len(str(maximum)):
        return None
    number = int(value)
    return number if number <= maximum else None


def whole_numbers(texts: list[str], *, maximum: int = MAX_ID) -> list[int] | None:
    """Every one of ``texts`` as a whole number, or None when any is not one."""
    numbers = [whole_number(text, maximum=maximum) for text in texts]
    return None if any(n is None for n in numbers) else [n for n in numbers if n is not None]
