"""``data/item-index.csv`` and ``data/item-index.json``: one row per item, for a court's
document management system (field names are mapped to ICC e-Court metadata, the Berkeley
Protocol and ISO/IEC 27037 in docs/metadata-mapping.md).

Both files hold the same rows in the same order (items by code). The CSV is RFC 4180 (UTF-8,
a header row, CRLF line ends, values never altered: open it as text, not as a spreadsheet
formula sheet); the JSON is canonical (:mod:`portal.canonical`). The recipient's verifier
imports this module: standard library and :mod:`portal.canonical` only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from portal.canonical import canonical_json_bytes
from portal.packages.assembly.facts import ItemEntry

__all__ = [
    "FIELDS",
    "INDEX_CSV_PATH",
    "INDEX_FORMAT",
    "INDEX_JSON_PATH",
    "IndexInvalid",
    "index_csv",
    "index_disagreements",
    "index_json",
    "index_rows",
    "read_index",
]

INDEX_CSV_PATH = "data/item-index.csv"
INDEX_JSON_PATH = "data/item-index.json"
INDEX_FORMAT = "1"
#: The columns, in order (see docs/metadata-mapping.md for what each maps to).
FIELDS = (
    "item_code",
    "title",
    "kind",
    "date",
    "place",
    "provider",
    "language",
    "original_or_redacted",
    "source_sha256",
    "shared_sha256",
    "path",
    "media_type",
)
#: "und": ISO 639 "undetermined", for an item whose language was not recorded.
UNDETERMINED = "und"
_MAX_INDEX_BYTES = 64 * 1024 * 1024


class IndexInvalid(ValueError):
    """An index file cannot be read; the message says why."""


def index_rows(items: Sequence[ItemEntry]) -> list[dict[str, str]]:
    """One row per item, in the manifest's order (every value text; "" when unknown)."""
    return [
        {
            "item_code": item.code,
            "title": item.title,
            "kind": item.kind,
            "date": item.date.isoformat() if item.date is not None else "",
            "place": item.place,
            "provider": item.provider,
            "language": item.language or UNDETERMINED,
            "original_or_redacted": "redacted" if item.rendition == "redacted" else "original",
            "source_sha256": item.source_sha256,
            "shared_sha256": item.sha256,
            "path": item.path,
            "media_type": item.media_type,
        }
        for item in items
    ]


def index_csv(rows: Sequence[Mapping[str, str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def index_json(package_code: str, rows: Sequence[Mapping[str, str]]) -> bytes:
    value = {"index": "items", "format": INDEX_FORMAT, "package": package_code, "items": rows}
    return canonical_json_bytes(value) + b"\n"


# -- reading them back (portal-verify) --------------------------------------------------------


def read_index(csv_bytes: bytes, json_bytes: bytes) -> tuple[str, list[dict[str, str]]]:
    """The package code and rows of the JSON index, checked to hold exactly the CSV's rows."""
    if max(len(csv_bytes), len(json_bytes)) > _MAX_INDEX_BYTES:
        raise IndexInvalid("an index file is too large")
    try:
        data = json.loads(json_bytes.decode("utf-8"))
        reader = csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"), newline=""))
        from_csv = [dict(row) for row in reader]
        header = tuple(reader.fieldnames or ())
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error, RecursionError) as exc:
        raise IndexInvalid(f"an index file cannot be read ({type(exc).__name__})") from None
    if header != FIELDS:
        raise IndexInvalid("the CSV index does not have the expected columns")
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        raise IndexInvalid("the JSON index is not an item index of a known format")
    rows: Any = data.get("items")
    if not isinstance(rows, list) or not all(
        isinstance(row, dict) and tuple(row) == tuple(sorted(FIELDS)) for row in rows
    ):
        raise IndexInvalid("the JSON index's rows do not have the expected fields")
    if [dict(sorted(row.items())) for row in from_csv] != rows:
        raise IndexInvalid("the CSV and JSON indexes do not hold the same rows")
    return str(data.get("package")), rows


def index_disagreements(
    package_code: str, rows: Sequence[Mapping[str, str]], manifest: Mapping[str, Any]
) -> list[str]:
    """Where the index and the (verified) manifest disagree."""
    problems: list[str] = []
    if package_code != manifest["package"]["code"]:
        problems.append(f"it indexes package {package_code}, not {manifest['package']['code']}")
    items = manifest["items"]
    if [row["item_code"] for row in rows] != [item["code"] for item in items]:
        problems.append("it does not list the manifest's items, in order")
    for row, item in zip(rows, items, strict=False):
        expected = {
            "title": item["title"],
            "source_sha256": item["source_sha256"],
            "shared_sha256": item["sha256"],
            "path": item["path"],
            "original_or_redacted": "redacted" if item["rendition"] == "redacted" else "original",
        }
        wrong = sorted(key for key, value in expected.items() if row[key] != value)
        if wrong:
            problems.append(f"{row['item_code']}: {', '.join(wrong)} differ from the manifest")
    return problems
