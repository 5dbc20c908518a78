"""The repository: authorities, their assessments and keys, providers, items, persons, marks,
and the persons' protected identifiers."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, hex_digest, one_of, utcnow
from portal.pages import labels

AUTHORITY_KINDS = ("war_crimes_unit", "prosecution", "court", "tribunal", "other")
ASSESSMENT_CRITERIA = ("fair_trial", "death_penalty", "witness_protection")
# For death_penalty, "satisfied" means the jurisdiction has abolished it for the offences.
ASSESSMENT_FINDINGS = ("satisfied", "not_satisfied")
#: How pages name assessment criteria and findings.
CRITERION_LABELS = labels.CRITERION
FINDING_LABELS = labels.ASSESSMENT_FINDING
PROVIDER_KINDS = ("ngo", "individual_representative", "state", "un_entity", "other")
ITEM_KINDS = (
    "witness_statement",
    "document",
    "photo",
    "video",
    "audio",
    "analytical_report",
    "archive",
    "other",
)
SENSITIVITIES = ("low", "medium", "high", "very_high")
PERSON_ROLES = ("witness", "victim", "suspect", "source", "other")
MARK_KINDS = ("term", "text_span", "pdf_box", "image_box")
# "always": redact for every authority; "without_protection": only where the
# authority lacks witness-protection capacity.
MARK_APPLIES = ("always", "without_protection")
MARK_REVIEW = ("pending", "confirmed")
#: What happens to a mark, in its history (portal.redaction.mark_review).
MARK_EVENTS = (
    "imported",
    "proposed",
    "edited",
    "confirmed",
    "removal_requested",
    "removal_cancelled",
    "removed",
    "withdrawn",
    "checked_by_eye",
)
#: What a protected identifier is (code -> label shown to legal officers).
IDENTIFIER_KINDS = {
    "name": "Name",
    "alias": "Alias",
    "transliteration": "Transliteration",
    "phone": "Phone number",
    "id_number": "ID number",
    "place": "Place",
    "other": "Other",
}


class Authority(Base):
    """A receiving or requesting authority: war crimes unit, prosecution service or court."""

    __tablename__ = "authority"
    __table_args__ = (
        one_of("kind", AUTHORITY_KINDS),
        CheckConstraint("length(country) = 2 AND upper(country) = country", name="country_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    assessments: Mapped[list[Assessment]] = relationship(back_populates="authority")
    keys: Mapped[list[RecipientKey]] = relationship(back_populates="authority")


class Assessment(Base):
    """A legal officer's finding on one criterion for one authority, valid for a period."""

    __tablename__ = "assessment"
    __table_args__ = (
        one_of("criterion", ASSESSMENT_CRITERIA),
        one_of("finding", ASSESSMENT_FINDINGS),
        CheckConstraint(
            "valid_until IS NULL OR valid_until > assessed_at", name="valid_after_assessed"
        ),
        UniqueConstraint("authority_id", "code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"), index=True)
    criterion: Mapped[str] = mapped_column(String(32))
    finding: Mapped[str] = mapped_column(String(16))
    basis: Mapped[str] = mapped_column(Text)
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assessed_by: Mapped[str] = mapped_column(String(200))
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    authority: Mapped[Authority] = relationship(back_populates="assessments")


class RecipientKey(Base):
    """An authority's OpenPGP public key; used only once verified out of band."""

    __tablename__ = "recipient_key"
    __table_args__ = (
        UniqueConstraint("authority_id", "fingerprint"),
        CheckConstraint(
            "length(fingerprint) IN (40, 64) AND upper(fingerprint) = fingerprint",
            name="fingerprint_format",
        ),
        CheckConstraint(
            "(verified_at IS NULL AND verified_by IS NULL AND verification_method IS NULL)"
            " OR (verified_at IS NOT NULL AND verified_by IS NOT NULL"
            " AND verification_method IS NOT NULL)",
            name="verification_complete",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    armored: Mapped[str] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(32))
    uid: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(200))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verification_method: Mapped[str | None] = mapped_column(String(500))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    authority: Mapped[Authority] = relationship(back_populates="keys")


#: What an authority reads for a provider that asked not to be named.
UNNAMED_PROVIDER = "An information provider (not named at its request)"


class Provider(Base):
    """An information provider: NGO, individual's representative, State or UN entity."""

    __tablename__ = "provider"
    __table_args__ = (one_of("kind", PROVIDER_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    # How the provider agreed to be named to recipients (may be a pseudonym).
    public_name: Mapped[str] = mapped_column(String(200))
    # False: the provider asked not to be named to authorities at all (issue 17).
    named_to_authorities: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def name_for_authorities(self) -> str:
        """How pages, notices and manifests an authority sees name this provider."""
        return self.public_name if self.named_to_authorities else UNNAMED_PROVIDER


class Item(Base):
    """A piece of evidence held in the repository; its bytes live in the blob store."""

    __tablename__ = "item"
    __table_args__ = (
        one_of("kind", ITEM_KINDS),
        one_of("sensitivity", SENSITIVITIES),
        hex_digest("sha256"),
        CheckConstraint("size_bytes >= 0", name="size_nonnegative"),
        CheckConstraint(
            "pixels_checked_by_id IS NULL OR pixels_checked_at IS NOT NULL",
            name="pixels_checked_has_time",
        ),
        Index("ix_item_provider_collected", "provider_id", "collected_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    media_type: Mapped[str] = mapped_column(String(100))
    original_filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    collected_at: Mapped[date | None] = mapped_column(Date, index=True)
    place: Mapped[str] = mapped_column(String(200), default="")
    # BCP 47 language tag of the item's content (e.g. "ar", "my", "en"); "" when not recorded
    # (the package's item index says "und").
    language: Mapped[str] = mapped_column(String(35), default="", server_default="")
    sensitivity: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Set by a legal officer for kinds the portal cannot redact (video, audio, archives).
    cleared_as_is: Mapped[bool] = mapped_column(Boolean, default=False)
    cleared_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A page OCR cannot be trusted on (Burmese read with low confidence) blocks assembly until
    # a legal officer reads the item and records it here (portal.packages.mark_checks).
    pixels_checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    pixels_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    provider: Mapped[Provider] = relationship()
    persons: Mapped[list[Person]] = relationship(secondary="item_person", viewonly=True)
    marks: Mapped[list[RedactionMark]] = relationship(back_populates="item")

    @property
    def blob_key(self) -> str:
        """Items are stored content-addressed: the blob key is the sha256."""
        return self.sha256


class Person(Base):
    """Someone named in the material, known to the portal only by pseudonym."""

    __tablename__ = "person"
    __table_args__ = (one_of("role", PERSON_ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    pseudonym: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    at_risk: Mapped[bool] = mapped_column(Boolean, default=False)


class ItemPerson(Base):
    __tablename__ = "item_person"

    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True, index=True)


class RedactionMark(Base):
    """Something to remove before sharing: a term, a text span, a PDF page box or an image box.

    Coordinates of boxes are fractions of the page or image (0..1, origin top left) so
    they survive rasterisation at any resolution. A term is kept sealed like a protected
    identifier (it usually is one): ``term_sealed`` is :mod:`portal.sealing` text bound to
    ``redaction_mark:<item code>/<mark code>``; :mod:`portal.registry.mark_terms` seals and
    opens it.
    """

    __tablename__ = "redaction_mark"
    __table_args__ = (
        one_of("kind", MARK_KINDS),
        one_of("applies", MARK_APPLIES),
        one_of("review", MARK_REVIEW),
        UniqueConstraint("item_id", "code"),
        CheckConstraint(
            "(kind = 'term' AND term_sealed IS NOT NULL AND length(term_sealed) > 0)"
            " OR (kind = 'text_span' AND span_start IS NOT NULL AND span_end > span_start"
            " AND span_start >= 0)"
            " OR (kind = 'pdf_box' AND page IS NOT NULL AND page >= 1 AND x0 IS NOT NULL)"
            " OR (kind = 'image_box' AND x0 IS NOT NULL)",
            name="kind_fields",
        ),
        CheckConstraint(
            "x0 IS NULL OR (x0 >= 0 AND y0 >= 0 AND x1 <= 1 AND y1 <= 1 AND x1 > x0 AND y1 > y0)",
            name="box_in_unit_square",
        ),
        CheckConstraint(
            "checked_by_eye_by_id IS NULL OR checked_by_eye_at IS NOT NULL",
            name="checked_by_eye_has_time",
        ),
        CheckConstraint(
            "confirmed_by_id IS NULL OR (confirmed_at IS NOT NULL AND review = 'confirmed')",
            name="confirmed_has_time",
        ),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    kind: Mapped[str] = mapped_column(String(16))
    term_sealed: Mapped[str | None] = mapped_column(Text)
    span_start: Mapped[int | None] = mapped_column()
    span_end: Mapped[int | None] = mapped_column()
    page: Mapped[int | None] = mapped_column()
    x0: Mapped[float | None] = mapped_column(Float)
    y0: Mapped[float | None] = mapped_column(Float)
    x1: Mapped[float | None] = mapped_column(Float)
    y1: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(500))
    applies: Mapped[str] = mapped_column(String(24), default="always")
    review: Mapped[str] = mapped_column(String(16), default="confirmed")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A confirmed term mark that matched nothing in its item blocks assembly until a legal
    # officer reads the item and records it here (portal.packages.mark_checks).
    checked_by_eye_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    checked_by_eye_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Four eyes (portal.redaction.mark_review): proposed by one legal officer (None: arrived
    # by import), confirmed by another. ``version`` grows with every change (see below), so a
    # confirmation of what an officer saw is refused once the mark has changed since.
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    proposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # A confirmed mark is removed only when a second officer agrees; until then it applies.
    removal_requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    removal_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    item: Mapped[Item] = relationship(back_populates="marks")

    # Every UPDATE checks and bumps ``version``: of two officers changing a mark at once,
    # the second is refused (StaleDataError), whatever the database's isolation.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class RedactionMarkEvent(Base):
    """One step in a mark's history: who did what, when, to which version. ``detail`` holds
    what the step changed (kind, page, box, reason, applies), never a term."""

    __tablename__ = "redaction_mark_event"
    __table_args__ = (
        one_of("action", MARK_EVENTS),
        Index("ix_redaction_mark_event_item_mark", "item_id", "mark_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    mark_code: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    version: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class ProtectedIdentifier(Base):
    """A string that identifies a person at risk (a name in any script, an alias, a phone
    number...), kept sealed: ``sealed`` is :mod:`portal.sealing` text bound to the purpose
    ``protected_identifier:<code>``, never the plaintext. Retired rather than deleted, so the
    register keeps its history; see :mod:`portal.registry.identifiers`."""

    __tablename__ = "protected_identifier"
    __table_args__ = (
        one_of("kind", tuple(IDENTIFIER_KINDS)),
        CheckConstraint("retired_by_id IS NULL OR retired_at IS NOT NULL", name="retired_has_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    sealed: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    person: Mapped[Person] = relationship()


class SigningKey(Base):
    """One of the mechanism's signing keys, in the order they signed: the public half only
    (the secret half never reaches the database or the web process).

    The current key is the one with ``active_until`` NULL. Every key after the first came in
    with a transition statement (canonical JSON naming the old and new fingerprints, the time
    and the reason) signed by both keys (``transition_signature``: one armoured block holding
    the two signatures); see :mod:`portal.registry.signing_keys`.
    """

    __tablename__ = "signing_key"
    __table_args__ = (
        UniqueConstraint("fingerprint"),
        CheckConstraint(
            "length(fingerprint) IN (40, 64) AND upper(fingerprint) = fingerprint",
            name="fingerprint_format",
        ),
        CheckConstraint(
            "(transition_statement IS NULL) = (transition_signature IS NULL)",
            name="transition_complete",
        ),
        CheckConstraint(
            "(revoked_at IS NULL) = (revocation_reason IS NULL)", name="revocation_complete"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)  # armoured; with its revocation once revoked
    algorithm: Mapped[str] = mapped_column(String(32))
    uid: Mapped[str] = mapped_column(String(500))
    active_from: Mapped[datetime] = mapped_column(UTCDateTime())
    active_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    transition_statement: Mapped[str | None] = mapped_column(Text)
    transition_signature: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(Text)
