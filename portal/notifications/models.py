"""In-app notifications: one row per user and message."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, utcnow
from portal.pages.i18n import Phrase, translate


def phrase_to_json(phrase: Phrase) -> str:
    """A subject as stored: its catalog id and arguments (nested phrases kept as phrases)."""

    def encode(value: object) -> Any:
        if isinstance(value, Phrase):
            return {"msgid": value.msgid, "args": {k: encode(v) for k, v in value.params.items()}}
        return value if isinstance(value, int | float) else str(value)

    return json.dumps(encode(phrase), ensure_ascii=False, sort_keys=True)


def phrase_from_json(text: str) -> Phrase:
    """The stored subject as a :class:`Phrase` again (ValueError when it is not one)."""

    def decode(value: Any) -> object:
        if isinstance(value, dict):
            args = value.get("args", {})
            if not isinstance(value.get("msgid"), str) or not isinstance(args, dict):
                raise ValueError("not a stored phrase")
            return Phrase(value["msgid"], {k: decode(v) for k, v in args.items()})
        return value

    found = decode(json.loads(text))
    if not isinstance(found, Phrase):
        raise ValueError("not a stored phrase")
    return found


class Notification(Base):
    """An in-app message to one user; never carries more than the portal itself shows."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    #: In English (the command line, the audit of who was told what, older rows).
    subject: Mapped[str] = mapped_column(String(200))
    #: The subject's catalog id and arguments (:func:`phrase_to_json`), NULL on older rows.
    subject_phrase: Mapped[str | None] = mapped_column(Text())
    body: Mapped[str] = mapped_column(String(2000), default="")
    link: Mapped[str | None] = mapped_column(String(500))
    # The step this notification waits on (portal.notifications.service: ``release:PKG-...``):
    # taking the step marks every unread notification of the topic read, for everyone.
    topic: Mapped[str | None] = mapped_column(String(120), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def subject_shown(self) -> str:
        """The subject in the reader's language: from its phrase when stored (the English
        text when the phrase no longer fits its catalog entry), else the English subject,
        translated when it is itself a catalog id (fixed subjects of older rows)."""
        if self.subject_phrase:
            try:
                return translate(phrase_from_json(self.subject_phrase))
            except (ValueError, KeyError, TypeError):
                return self.subject
        return translate(self.subject)
