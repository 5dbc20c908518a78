"""Typed reading of stored JSON (snapshots, results), with a ``$.path`` in every error."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

__all__ = ["JsonReader", "SnapshotFormatError"]


class SnapshotFormatError(ValueError):
    """Stored JSON does not have the expected layout; the message says where."""


Key = str | int


class JsonReader:
    """Typed access to one JSON object (by key) or row (an array, by position)."""

    def __init__(self, data: object, path: str, *, length: int | None = None) -> None:
        if length is None and not isinstance(data, dict):
            raise SnapshotFormatError(f"{path}: expected an object")
        if length is not None and (not isinstance(data, list) or len(data) != length):
            raise SnapshotFormatError(f"{path}: expected an array of {length} values")
        self.data: Any = data
        self.path = path

    def _where(self, key: Key) -> str:
        return f"{self.path}[{key}]" if isinstance(key, int) else f"{self.path}.{key}"

    def _get(self, key: Key) -> Any:
        if isinstance(key, str) and key not in self.data:
            raise SnapshotFormatError(f"{self._where(key)}: missing")
        return self.data[key]

    def _fail(self, key: Key, expected: str) -> SnapshotFormatError:
        return SnapshotFormatError(f"{self._where(key)}: expected {expected}")

    def row(self, key: Key, length: int) -> JsonReader:
        return JsonReader(self._get(key), self._where(key), length=length)

    def rows(self, key: Key, length: int) -> list[JsonReader]:
        value = self._get(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        where = self._where(key)
        return [JsonReader(v, f"{where}[{i}]", length=length) for i, v in enumerate(value)]

    def integer(self, key: Key) -> int:
        value = self._get(key)
        if type(value) is not int:
            raise self._fail(key, "an integer")
        return value

    def opt_integer(self, key: Key) -> int | None:
        return None if self._get(key) is None else self.integer(key)

    def flag(self, key: Key) -> bool:
        value = self._get(key)
        if type(value) is not bool:
            raise self._fail(key, "true or false")
        return value

    def text(self, key: Key) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def opt_text(self, key: Key) -> str | None:
        return None if self._get(key) is None else self.text(key)

    def texts(self, key: Key) -> list[str]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return value

    def integers(self, key: Key) -> list[int]:
        value = self._get(key)
        if not isinstance(value, list) or not all(type(v) is int for v in value):
            raise self._fail(key, "a list of integers")
        return value

    def moment(self, key: Key) -> datetime:
        text = self.text(key)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise self._fail(key, "a timestamp") from None
        if value.tzinfo is None:
            raise self._fail(key, "a timestamp with a time zone")
        return value.astimezone(UTC)

    def opt_moment(self, key: Key) -> datetime | None:
        return None if self._get(key) is None else self.moment(key)

    def day(self, key: Key) -> date:
        try:
            return date.fromisoformat(self.text(key))
        except ValueError:
            raise self._fail(key, "a date (YYYY-MM-DD)") from None

    def opt_day(self, key: Key) -> date | None:
        return None if self._get(key) is None else self.day(key)

    def table(self, key: Key) -> JsonReader:
        return JsonReader(self._get(key), self._where(key))

    def tables(self, key: Key) -> list[JsonReader]:
        value = self._get(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        where = self._where(key)
        return [JsonReader(v, f"{where}[{i}]") for i, v in enumerate(value)]
