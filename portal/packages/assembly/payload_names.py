"""Payload file names that name nobody: an item whose original filename names a withheld
identifier (or a term of a mark in the package) goes into the bag as
``data/items/<item code>/item.<ext>``, so that neither the tar member names, the manifest,
the letter nor the custody log carry the name.

The bag's safe names (:func:`portal.packages.assembly.bag.safe_payload_name`) keep "_", "."
and "-" between words, which the normaliser does not read as spaces, and drop what is not
ASCII; so both the original filename and the planned name are searched, each with those
three characters turned into spaces.
"""

from __future__ import annotations

import re

from portal.redaction.matcher import Matcher

__all__ = ["NEUTRAL_STEM", "names_a_term", "neutral_path"]

#: The stem of a payload file renamed after its item code.
NEUTRAL_STEM = "item"

_SEPARATORS = re.compile(r"[_.\-]+")


def names_a_term(matcher: Matcher, *names: str) -> bool:
    """Whether any of ``names`` (file names) names one of the matcher's terms."""
    return any(matcher.codes_in_text(_SEPARATORS.sub(" ", name)) for name in names if name)


def neutral_path(matcher: Matcher, path: str, item_code: str) -> str:
    """``path`` (``data/items/<code>/<name>``) renamed to the item code: the extension of
    the planned (already safe) name is kept, unless it names a term too."""
    name = path.rpartition("/")[2]
    _stem, dot, suffix = name.rpartition(".")
    keep = dot and suffix and not names_a_term(matcher, suffix)
    extension = f".{suffix}" if keep else ""
    return f"data/items/{item_code}/{NEUTRAL_STEM}{extension}"
