"""Validated uploads into the blob store: request attachments and death-penalty assurances.

The type of a file is decided by its *content* (magic bytes; UTF-8 validity for text),
never by its name or the Content-Type the browser sent. Accepted: PDF, PNG, JPEG and plain
UTF-8 text. Office documents (DOCX/ODT) are refused on purpose: they are zip containers
that can carry macros, embedded objects and remote references, and a PDF says the same.

Bytes stream into the blob store with a size limit, so nothing is ever held in memory and
a refused upload leaves no file behind. The original name is kept only as display text,
sanitised (:func:`display_name`), and never used as a path.

Domain functions take the session explicitly, flush but never commit, and raise
:class:`UploadRefused` (a message safe to show) before changing anything in the database.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import IO
from urllib.parse import quote

from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import is_legal_officer, is_requester, requests_for
from portal.db import utcnow
from portal.pages.i18n import N_, Phrase
from portal.rfa.models import Assurance, Attachment, Rfa
from portal.storage import FileBlobStore, TooLarge, human_size

#: Media type -> what the page calls it.
ACCEPTED: dict[str, str] = {
    "application/pdf": "PDF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "text/plain": "plain text (UTF-8)",
}
ACCEPTED_TEXT = N_("PDF, PNG, JPEG or plain text (UTF-8)")
NAME_MAX = 120
GIVEN_BY_MAX = 200
SUMMARY_MAX = 20_000
#: Requests whose files can still change (later statuses keep what was there).
OPEN_STATUSES = ("draft", "submitted", "in_review", "clarification_requested")
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
#: Text may hold tabs, line breaks and form feeds; any other control character means binary.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SNIFF_BYTES = 8
EMPTY = N_("The file is empty. Choose the file again. Nothing was saved.")


class UploadRefused(Exception):
    """The upload was refused; nothing was stored or recorded. The message says why."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    media_type: str
    filename: str


# --- names -------------------------------------------------------------------------------------


def display_name(raw: str | None, *, fallback: str = "upload") -> str:
    """The client's file name made harmless as display text: NFC, no control, format or
    bidirectional characters, no directory parts, no leading dots, at most
    :data:`NAME_MAX` characters (the extension kept). Never use it as a path."""
    text = unicodedata.normalize("NFC", raw or "")
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    text = re.split(r"[/\\]", text)[-1]
    text = " ".join(text.split()).lstrip(". ").strip()
    if len(text) > NAME_MAX:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10 and stem:
            text = stem[: NAME_MAX - len(ext) - 2].rstrip() + "…." + ext
        else:
            text = text[: NAME_MAX - 1].rstrip() + "…"
    return text or fallback


def content_disposition(name: str) -> str:
    """An ``attachment`` header value: an ASCII fallback plus the RFC 6266/5987 UTF-8 name."""
    ascii_name = "".join(c for c in name if 32 <= ord(c) < 127 and c not in '"\\%;')
    ascii_name = ascii_name.strip() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


# --- content -----------------------------------------------------------------------------------


def sniff(head: bytes) -> str | None:
    """The media type announced by the first bytes, or None (maybe text; maybe nothing)."""
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    return None


class _CheckedStream:
    """Reads through to ``raw`` while deciding the media type from the content: binary
    formats from their magic bytes, anything else must decode as strict UTF-8 text
    without control characters, every byte of it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.media_type: str | None = None
        self._pending = b""
        self._decoder: codecs.IncrementalDecoder | None = None
        self._size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self._size += len(chunk)
        if not chunk and self._size == 0:
            raise UploadRefused(EMPTY)
        if self.media_type is None:
            self._pending += chunk
            if len(self._pending) >= _SNIFF_BYTES or not chunk:
                self._decide(final=not chunk)
        elif self._decoder is not None:
            self._check_text(chunk, final=not chunk)
        return chunk

    def _decide(self, *, final: bool) -> None:
        found = sniff(self._pending)
        if found is not None:
            self.media_type = found
            return
        self.media_type = "text/plain"
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._check_text(self._pending, final=final)

    def _check_text(self, data: bytes, *, final: bool) -> None:
        assert self._decoder is not None  # noqa: S101 - set before any text is checked
        try:
            text = self._decoder.decode(data, final=final)
        except UnicodeDecodeError:
            raise UploadRefused(_refusal()) from None
        if _TEXT_CONTROL.search(text):
            raise UploadRefused(_refusal())


def _refusal() -> str:
    return N_(
        "This type of file is not accepted. Upload a %(types)s file; the type is read from "
        "the file's content, not its name. Nothing was saved.",
        types=Phrase(ACCEPTED_TEXT, {}),
    )


def store_file(
    blobs: FileBlobStore, stream: IO[bytes], filename: str | None, *, max_bytes: int
) -> StoredFile:
    """Stream an upload into the blob store after checking its size and content type."""
    checked = _CheckedStream(stream)
    try:
        info = blobs.put_stream(checked, max_bytes=max_bytes)  # type: ignore[arg-type]
    except TooLarge:
        raise UploadRefused(
            N_(
                "The file is larger than the limit of %(limit)s. Nothing was saved.",
                limit=human_size(max_bytes),
            )
        ) from None
    media_type = checked.media_type or "text/plain"
    if media_type not in ACCEPTED:  # defensive: sniff only yields accepted types
        raise UploadRefused(_refusal())
    return StoredFile(
        sha256=info.sha256, size=info.size, media_type=media_type, filename=display_name(filename)
    )


def media_type_of(blobs: FileBlobStore, sha256: str) -> str:
    """The media type of a stored upload, decided again from its first bytes."""
    head = b""
    for chunk in blobs.iter_chunks(sha256):
        head = chunk[:_SNIFF_BYTES]
        break
    return sniff(head) or "text/plain"


# --- request attachments and assurances ---------------------------------------------------------


def may_attach(rfa: Rfa, user: User) -> bool:
    """Requesters of the request's authority add files while the request is open; legal
    officers too once it is submitted (an assurance may arrive through another channel)."""
    if rfa.status not in OPEN_STATUSES:
        return False
    if is_requester(user):
        return requests_for(user, rfa.authority_id)
    return is_legal_officer(user) and rfa.status != "draft"


def _allowed(rfa: Rfa, user: User) -> None:
    if not may_attach(rfa, user):
        raise UploadRefused(
            N_(
                "Files can only be added to an open request, by its authority's requesters "
                "or by a legal officer."
            )
        )


def add_attachment(
    db: Session,
    blobs: FileBlobStore,
    rfa: Rfa,
    by: User,
    stream: IO[bytes],
    filename: str | None,
    *,
    max_bytes: int,
) -> Attachment:
    """Store and record an attachment of ``rfa``."""
    _allowed(rfa, by)
    stored = store_file(blobs, stream, filename, max_bytes=max_bytes)
    attachment = Attachment(
        rfa_id=rfa.id,
        filename=stored.filename,
        media_type=stored.media_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        uploaded_by_id=by.id,
        uploaded_at=utcnow(),
    )
    db.add(attachment)
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "rfa.attachment.add",
        f"rfa:{rfa.code}",
        {
            "attachment": attachment.id,
            "sha256": stored.sha256,
            "size": stored.size,
            "media_type": stored.media_type,
        },
    )
    return attachment


@dataclass(frozen=True)
class AssuranceEntry:
    """What the form says about an assurance (the document comes as a stream)."""

    given_by: str
    given_at: date | None
    summary: str = ""


def check_assurance(entry: AssuranceEntry) -> dict[str, list[str]]:
    """Field -> messages (empty when valid), in the request's language."""
    errors: dict[str, list[str]] = {}
    given_by = entry.given_by.strip()
    if not given_by:
        errors["given_by"] = [N_("Enter who gave the assurance (office and name).")]
    elif len(given_by) > GIVEN_BY_MAX:
        errors["given_by"] = [
            N_("Who gave it must be at most %(limit)s characters.", limit=GIVEN_BY_MAX)
        ]
    if entry.given_at is None:
        errors["given_at"] = [N_("Enter the date of the assurance as YYYY-MM-DD.")]
    elif entry.given_at > utcnow().date():
        errors["given_at"] = [N_("The date of the assurance must not be in the future.")]
    if len(entry.summary) > SUMMARY_MAX:
        errors["summary"] = [
            N_("The summary must be at most %(limit)s characters.", limit=SUMMARY_MAX)
        ]
    return errors


class AssuranceInvalid(UploadRefused):
    """The assurance's fields are wrong; ``errors`` says why per field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


def record_assurance(
    db: Session,
    blobs: FileBlobStore,
    rfa: Rfa,
    by: User,
    entry: AssuranceEntry,
    stream: IO[bytes],
    filename: str | None,
    *,
    max_bytes: int,
) -> Assurance:
    """Store the written assurance that the death penalty will not be sought or imposed;
    the no-death-penalty rule reads these rows in the next eligibility check."""
    _allowed(rfa, by)
    errors = check_assurance(entry)
    if errors:
        raise AssuranceInvalid(errors)
    assert entry.given_at is not None  # noqa: S101 - checked above
    stored = store_file(blobs, stream, filename, max_bytes=max_bytes)
    assurance = Assurance(
        rfa_id=rfa.id,
        kind="death_penalty",
        text=entry.summary.strip(),
        sha256=stored.sha256,
        filename=stored.filename,
        given_by=entry.given_by.strip(),
        given_at=entry.given_at,
        recorded_by_id=by.id,
        recorded_at=utcnow(),
    )
    db.add(assurance)
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "rfa.assurance.add",
        f"rfa:{rfa.code}",
        {"assurance": assurance.id, "sha256": stored.sha256, "media_type": stored.media_type},
    )
    return assurance


def record_file_download(
    db: Session, by: User, rfa: Rfa, upload: Attachment | Assurance, *, address: str | None = None
) -> None:
    """Audit that ``by`` fetched an uploaded file of ``rfa`` (does not commit): these files
    can name people, so who read them is on the record like package downloads."""
    kind = "attachment" if isinstance(upload, Attachment) else "assurance"
    audit.record(
        db,
        audit.actor_label(by),
        f"rfa.{kind}.download",
        f"rfa:{rfa.code}",
        {kind: upload.id, "sha256": upload.sha256 or "", "address": address or ""},
    )
