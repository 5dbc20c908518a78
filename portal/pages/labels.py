"""Human labels for every enumerated value a page shows, in one place.

Each table maps a stored value ("partially_eligible", "un_entity") to the words people read
("Partially eligible", "UN entity"). Domains re-export the tables they already named
(``portal.rfa.status.LABELS`` is :data:`RFA_STATUS`), so code that imported them keeps working;
templates use ``label(kind, value)`` (registered app-wide by :mod:`portal.pages.templating`).

Labels marked ``N_`` are in the translation catalogs (they appear on provider, requester or
recipient pages); the others are shown on officer and admin pages only, which stay English.
:func:`label` never shows a raw value: an unknown one reads as words ("Some value").

No imports beyond the standard library and :mod:`portal.pages.i18n`: domain models import
this module.
"""

from __future__ import annotations

from collections.abc import Mapping

from portal.pages.i18n import N_

__all__ = [
    "ACCOUNT_STATUS",
    "ASSESSMENT_FINDING",
    "AUTHORITY_KIND",
    "CONSENT_PURPOSE",
    "CONSENT_REQUEST_STATUS",
    "CONSENT_STATE",
    "CRITERION",
    "ITEM_KIND",
    "ITEM_OUTCOME",
    "KEY_STATUS",
    "MARK_APPLIES",
    "MARK_REVIEW",
    "PACKAGE_STATUS",
    "PERSON_ROLE",
    "PROCEEDINGS",
    "PROVIDER_KIND",
    "RENDITION",
    "REQUEST_OUTCOME",
    "RFA_STATUS",
    "ROLE",
    "TABLES",
    "URGENCY",
    "humanise",
    "label",
    "transition",
]

#: Request statuses, lower case as they read inside a sentence ("Request X is now in review");
#: :func:`label` capitalises them when they stand alone.
RFA_STATUS: Mapping[str, str] = {
    "draft": N_("draft"),
    "submitted": N_("submitted"),
    "in_review": N_("in review"),
    "clarification_requested": N_("clarification requested"),
    "approved": N_("approved"),
    "partially_approved": N_("partially approved"),
    "declined": N_("declined"),
    "transmitted": N_("transmitted"),
    "acknowledged": N_("acknowledged"),
    "closed": N_("closed"),
    "withdrawn": N_("withdrawn"),
}
URGENCY: Mapping[str, str] = {
    "normal": N_("Normal"),
    "urgent": N_("Urgent"),
    "very_urgent": N_("Very urgent"),
}
CONSENT_PURPOSE: Mapping[str, str] = {"criminal_proceedings": N_("Criminal proceedings")}
PROCEEDINGS: Mapping[str, str] = {
    "investigation": N_("Investigation"),
    "prosecution": N_("Prosecution"),
    "trial": N_("Trial"),
}
ROLE: Mapping[str, str] = {
    "requester": N_("Requester"),
    "legal_officer": N_("Legal officer"),
    "provider": N_("Information provider"),
    "recipient": N_("Recipient"),
    "admin": N_("Administrator"),
}
ACCOUNT_STATUS: Mapping[str, str] = {
    "active": "Active",
    "awaiting_approval": "Awaiting a second admin's approval",
    "enrolling": "Setting up 2FA",
    "locked": "Locked",
    "deactivated": "Deactivated",
    "invited": "Invited",
}
PROVIDER_KIND: Mapping[str, str] = {
    "ngo": "NGO",
    "individual_representative": "Individual's representative",
    "state": "State",
    "un_entity": "UN entity",
    "other": "Other",
}
AUTHORITY_KIND: Mapping[str, str] = {
    "war_crimes_unit": "War crimes unit",
    "prosecution": "Prosecution service",
    "court": "Court",
    "tribunal": "Tribunal",
    "other": "Other",
}
CRITERION: Mapping[str, str] = {
    "fair_trial": "Fair trial",
    "death_penalty": "No death penalty",
    "witness_protection": "Witness protection",
}
ASSESSMENT_FINDING: Mapping[str, str] = {"satisfied": "Satisfied", "not_satisfied": "Not satisfied"}
ITEM_KIND: Mapping[str, str] = {
    "witness_statement": "Witness statement",
    "document": "Document",
    "photo": "Photo",
    "video": "Video",
    "audio": "Audio",
    "analytical_report": "Analytical report",
    "archive": "Archive",
    "other": "Other",
}
ITEM_OUTCOME: Mapping[str, str] = {
    "share": "Share",
    "share_redacted": "Share redacted",
    "needs_review": "Needs review",
    "withhold": "Withhold",
}
REQUEST_OUTCOME: Mapping[str, str] = {
    "eligible": "Eligible",
    "partially_eligible": "Partially eligible",
    "ineligible": "Ineligible",
    "needs_review": "Needs review",
}
#: Packages as officers see them (providers and recipients have their own wording:
#: portal.consent.views and portal.packages.downloads).
PACKAGE_STATUS: Mapping[str, str] = {
    "queued": "Queued for assembly",
    "assembling": "Being assembled",
    "assembled": "Assembled, awaiting release",
    "blocked": "Blocked",
    "failed": "Assembly failed",
    "released": "Released",
    "withdrawn": "Withdrawn",
    "recalled": "Recalled",
    "expired": "Expired",
}
RENDITION: Mapping[str, str] = {"redacted": N_("Redacted"), "as_is": N_("As is")}
CONSENT_STATE: Mapping[str, str] = {
    "granted": N_("Granted"),
    "declined": N_("Declined"),
    "revoked": N_("Revoked"),
    "expired": N_("Expired"),
    "none": N_("No consent given"),
}
KEY_STATUS: Mapping[str, str] = {
    "usable": "Usable",
    "unverified": "Not verified",
    "expired": "Expired",
    "revoked": "Revoked",
}
PERSON_ROLE: Mapping[str, str] = {
    "witness": "Witness",
    "victim": "Victim",
    "suspect": "Suspect",
    "source": "Source",
    "other": "Other",
}
CONSENT_REQUEST_STATUS: Mapping[str, str] = {
    "open": "Awaiting the provider's answer",
    "answered": "Answered",
    "withdrawn": "Withdrawn",
}
MARK_REVIEW: Mapping[str, str] = {"pending": "Awaiting confirmation", "confirmed": "Confirmed"}
MARK_APPLIES: Mapping[str, str] = {
    "always": "Always",
    "without_protection": "Only for authorities without witness protection",
}

#: Every table by the name templates use: ``label('provider_kind', p.kind)``.
TABLES: Mapping[str, Mapping[str, str]] = {
    "rfa_status": RFA_STATUS,
    "urgency": URGENCY,
    "consent_purpose": CONSENT_PURPOSE,
    "proceedings": PROCEEDINGS,
    "role": ROLE,
    "account_status": ACCOUNT_STATUS,
    "provider_kind": PROVIDER_KIND,
    "authority_kind": AUTHORITY_KIND,
    "criterion": CRITERION,
    "finding": ASSESSMENT_FINDING,
    "item_kind": ITEM_KIND,
    "item_outcome": ITEM_OUTCOME,
    "request_outcome": REQUEST_OUTCOME,
    "package_status": PACKAGE_STATUS,
    "rendition": RENDITION,
    "consent_state": CONSENT_STATE,
    "key_status": KEY_STATUS,
    "person_role": PERSON_ROLE,
    "consent_request_status": CONSENT_REQUEST_STATUS,
    "mark_review": MARK_REVIEW,
    "mark_applies": MARK_APPLIES,
}


def humanise(value: str) -> str:
    """Words for a value no table names: ``"some_value"`` -> ``"Some value"``."""
    return value.replace("_", " ").strip().capitalize()


def label(kind: str, value: str | None) -> str:
    """The words for ``value`` of the table ``kind``, capitalised, in the request's language
    when the label is in the catalogs ("" for None). Raises KeyError for an unknown table:
    a typo in a template fails its test instead of showing raw values."""
    if value is None:
        return ""
    table = TABLES[kind]
    words = table.get(value)
    if words is None:
        return humanise(value)
    from portal.pages.i18n import gettext  # lazily: models import this module

    text = str(gettext(words))
    return text[:1].upper() + text[1:]


def transition(kind: str, before: str | None, after: str | None) -> str:
    """A change of value in words: "from Partially eligible to Eligible" ("none" for no value)."""
    was = label(kind, before) if before else "none"
    now = label(kind, after) if after else "none"
    return f"from {was} to {now}"
