"""The sharing rules: one small pure function per rule, registered by id in :data:`RULES`.

A rule reports a :class:`Finding`: a status, a code naming what it found (each code has
its wording in ``policies/sharing.toml``) and the facts that wording may quote. Rules
never decide what a failure *does*: that is the policy's ``on_failure``, applied by the
engine.

- ``pass`` — the rule holds; ``not_applicable`` — it does not concern this item;
- ``redact`` — it holds once the listed redaction marks are applied (``redactable`` is
  False when the item cannot be redacted, which the engine turns into *withhold*);
- ``fail`` — it does not hold; the engine applies the rule's ``on_failure``.

Request rules (``scope = "request"``) look at the request and its authority once.
Item rules are factories: called once per evaluation with the context, they do the
authority-level work and return the function that checks one item, so a request of
100,000 items costs one cheap call per item and rule.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from types import MappingProxyType
from typing import NamedTuple

from portal.consent.models import PURPOSES
from portal.eligibility.policy.inputs import (
    AssessmentFacts,
    ConsentEvent,
    ItemFacts,
    MarkFacts,
    Snapshot,
)
from portal.eligibility.policy.mandate import Mandate

__all__ = [
    "ACTIONS",
    "ITEM_FIELDS",
    "REGISTER_MEDIA_TYPES",
    "REQUEST_FIELDS",
    "RULES",
    "STATUSES",
    "AssessmentState",
    "Code",
    "Finding",
    "ItemCheck",
    "Param",
    "RuleContext",
    "RuleSpec",
    "assessment_state",
]

STATUSES = ("pass", "fail", "redact", "not_applicable")
#: What a failure does: withhold the item, redact it, block the whole request, or send
#: it to a legal officer for manual review.
ACTIONS = ("withhold", "redact", "block_request", "manual_review")

#: Placeholders every explanation may use, besides the facts of its code.
REQUEST_FIELDS = ("authority", "authority_code", "rfa")
ITEM_FIELDS = (*REQUEST_FIELDS, "item", "item_title", "provider")

Facts = tuple[tuple[str, str], ...]


class Finding(NamedTuple):
    status: str
    code: str
    facts: Facts = ()
    marks: tuple[str, ...] = ()  # codes of the redaction marks this finding applies
    redactable: bool = True
    why_not: str = ""  # why the item cannot be redacted, when it cannot
    # A sentence in the portal's words that the engine adds after the rule's own wording,
    # e.g. which protection applies besides the marks. Policies cannot quote it.
    note: str = ""


ItemCheck = Callable[[ItemFacts], Finding]


@dataclass(frozen=True)
class RuleContext:
    """What a rule may read: the snapshot, its validated parameters and the policy's terms."""

    snapshot: Snapshot
    params: Mapping[str, object]
    mandate: Mandate
    redactable_media_types: frozenset[str]

    def flag(self, name: str) -> bool:
        value = self.params[name]
        assert isinstance(value, bool)  # noqa: S101 - validated by the schema
        return value

    def duration(self, name: str) -> timedelta | None:
        value = self.params[name]
        assert value is None or isinstance(value, timedelta)  # noqa: S101
        return value

    def choice(self, name: str) -> str:
        value = self.params[name]
        assert isinstance(value, str)  # noqa: S101
        return value


@dataclass(frozen=True)
class Param:
    """A rule parameter: ``flag`` (true/false), ``duration`` ("365 days") or ``choice``."""

    kind: str
    default: object
    doc: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Code:
    """Something a rule can report, with the facts its wording may quote."""

    status: str
    facts: tuple[str, ...]
    doc: str


@dataclass(frozen=True)
class RuleSpec:
    id: str
    title: str
    scope: str  # "request" or "item"
    doc: str
    actions: tuple[str, ...]  # the on_failure values that make sense for this rule
    codes: Mapping[str, Code]
    # Required by the terms of reference: a policy without it does not load.
    mandatory: bool
    params: Mapping[str, Param] = field(default_factory=dict)
    request_check: Callable[[RuleContext], Finding] | None = None
    item_check: Callable[[RuleContext], ItemCheck] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", MappingProxyType(dict(self.codes)))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def fields(self) -> tuple[str, ...]:
        return ITEM_FIELDS if self.scope == "item" else REQUEST_FIELDS


# --- small helpers ----------------------------------------------------------------------


def _day(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


def _days(span: timedelta) -> str:
    return f"{span.days} day{'' if span.days == 1 else 's'}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class AssessmentState(NamedTuple):
    """The standing of an authority on one criterion, as at the snapshot.

    ``state`` is ``current`` (latest assessment satisfied, in force, not too old),
    ``not_satisfied``, ``expired``, ``stale`` (older than the policy's maximum age) or
    ``missing``. ``note`` says it in a phrase.
    """

    state: str
    assessment: AssessmentFacts | None
    note: str

    def facts(self) -> Facts:
        a = self.assessment
        if a is None:
            return (("assessment_note", self.note),)
        return (
            ("assessment_code", a.code),
            ("assessed_on", _day(a.assessed_at)),
            ("assessed_by", a.assessed_by),
            ("validity", f"valid until {_day(a.valid_until)}" if a.valid_until else "no end date"),
            ("basis", a.basis),
            ("assessment_note", self.note),
        )


def assessment_state(
    snapshot: Snapshot, criterion: str, max_age: timedelta | None
) -> AssessmentState:
    """The latest assessment on ``criterion`` made by ``taken_at`` decides."""
    now = snapshot.taken_at
    made = [a for a in snapshot.assessments if a.criterion == criterion and a.assessed_at <= now]
    if not made:
        return AssessmentState("missing", None, "no assessment is on file")
    latest = max(made, key=lambda a: (a.assessed_at, a.code))
    label = f"assessment {latest.code} of {_day(latest.assessed_at)}"
    if latest.valid_until is not None and latest.valid_until <= now:
        return AssessmentState("expired", latest, f"{label} expired on {_day(latest.valid_until)}")
    if max_age is not None and now - latest.assessed_at > max_age:
        return AssessmentState("stale", latest, f"{label} is older than {_days(max_age)}")
    if latest.finding != "satisfied":
        return AssessmentState("not_satisfied", latest, f"{label} is negative")
    return AssessmentState("current", latest, f"{label} is current")


# --- mandate-scope ------------------------------------------------------------------------


def mandate_scope(ctx: RuleContext) -> Finding:
    """The request's offences are crimes of the mandate, and its period lies within it."""
    mandate, request = ctx.mandate, ctx.snapshot.request
    period = (
        f"{request.period_from.isoformat()} to {request.period_to.isoformat()}"
        if request.period_from and request.period_to
        else "not stated"
    )
    facts: Facts = (
        ("situation", mandate.situation),
        ("mandate_period", mandate.period_text()),
        ("period", period),
        ("offences", "; ".join(request.offences) or "none"),
    )
    if not request.offences:
        return Finding("fail", "offences_missing", facts)
    outside = [offence for offence in request.offences if mandate.category_of(offence) is None]
    if outside:
        return Finding("fail", "offences_outside", (*facts, ("outside", "; ".join(outside))))
    if request.period_from is None or request.period_to is None:
        return Finding("fail", "period_missing", facts)
    starts_in = request.period_from >= mandate.period_start
    ends_in = mandate.period_end is None or request.period_to <= mandate.period_end
    if ctx.choice("period") == "overlap":
        starts_in = mandate.period_end is None or request.period_from <= mandate.period_end
        ends_in = request.period_to >= mandate.period_start
    if not (starts_in and ends_in):
        return Finding("fail", "period_outside", facts)
    categories: list[str] = []
    for offence in request.offences:
        category = mandate.category_of(offence)
        if category is not None and category.name not in categories:
            categories.append(category.name)
    return Finding("pass", "in_scope", (*facts, ("categories", ", ".join(categories))))


# --- fair-trial -----------------------------------------------------------------------------


def fair_trial(ctx: RuleContext) -> Finding:
    """A current positive fair-trial assessment of the authority is on file."""
    state = assessment_state(ctx.snapshot, "fair_trial", ctx.duration("max_age"))
    facts = state.facts()
    max_age = ctx.duration("max_age")
    if state.state == "current":
        return Finding("pass", "current", facts)
    if state.state == "stale" and max_age is not None:
        return Finding("fail", "stale", (*facts, ("max_age", _days(max_age))))
    if state.state == "expired" and state.assessment and state.assessment.valid_until:
        expired = _day(state.assessment.valid_until)
        return Finding("fail", "expired", (*facts, ("expired_on", expired)))
    return Finding("fail", state.state, facts)


# --- no-death-penalty -------------------------------------------------------------------------


def no_death_penalty(ctx: RuleContext) -> Finding:
    """The jurisdiction has abolished the death penalty, or an assurance for this request
    is on file (and the policy accepts assurances)."""
    snapshot = ctx.snapshot
    state = assessment_state(snapshot, "death_penalty", ctx.duration("max_age"))
    facts = state.facts()
    if state.state == "current":
        return Finding("pass", "abolished", facts)
    now, today = snapshot.taken_at, snapshot.taken_at.date()
    given = sorted(
        (a for a in snapshot.assurances if a.kind == "death_penalty" and a.given_at <= today),
        key=lambda a: (a.given_at, a.id),
    )
    in_force = [a for a in given if a.withdrawn_at is None or a.withdrawn_at > now]
    if in_force:
        latest = in_force[-1]
        about: Facts = (("given_by", latest.given_by), ("given_on", latest.given_at.isoformat()))
        if ctx.flag("accept_assurance"):
            return Finding("pass", "assured", (*facts, *about))
        return Finding("fail", "assurance_not_accepted", (*facts, *about))
    if given:
        latest = given[-1]
        assert latest.withdrawn_at is not None  # noqa: S101 - not in force, so withdrawn
        about = (
            ("given_by", latest.given_by),
            ("given_on", latest.given_at.isoformat()),
            ("withdrawn_on", _day(latest.withdrawn_at)),
        )
        return Finding("fail", "assurance_withdrawn", (*facts, *about))
    if state.state == "not_satisfied":
        return Finding("fail", "retained", facts)
    return Finding("fail", "unassessed", facts)


# --- provider-consent -------------------------------------------------------------------------


def _latest(events: tuple[ConsentEvent, ...], purpose: str, now: datetime) -> ConsentEvent | None:
    """The newest event for ``purpose`` recorded by ``now`` (events are in ledger order)."""
    for event in reversed(events):
        if event.purpose == purpose and event.recorded_at <= now:
            return event
    return None


def provider_consent(ctx: RuleContext) -> ItemCheck:
    """The provider consents to sharing the item with this authority for this purpose.

    Which event decides, for one item: the newest item-level event when there is one,
    otherwise the newest standing event of the provider. A specific refusal (decline,
    revoke) always wins over a standing grant; a standing decline or revoke recorded
    *after* an item-level grant withdraws it. The deciding event must be a grant that has
    not expired: a grant expiring exactly now has expired.
    """
    snapshot = ctx.snapshot
    purpose, now, authority = ctx.choice("purpose"), snapshot.taken_at, snapshot.authority.name
    found: dict[tuple[int, int, str], Finding] = {}

    def finding(event: ConsentEvent | None, provider_id: int, scope: str) -> Finding:
        key = (provider_id, event.id if event else 0, scope)
        cached = found.get(key)
        if cached is None:
            cached = found[key] = _consent_finding(event, scope, now, purpose, authority)
        return cached

    standing = {
        provider_id: _latest(provider.standing_consents, purpose, now)
        for provider_id, provider in snapshot.providers.items()
    }
    # Most items have no consent event of their own: their provider's standing one decides.
    by_provider = {
        provider_id: finding(event, provider_id, "standing")
        for provider_id, event in standing.items()
    }

    def check(item: ItemFacts) -> Finding:
        if not item.consents:
            return by_provider[item.provider_id]
        provider_id = item.provider_id
        general = standing[provider_id]
        specific = _latest(item.consents, purpose, now)
        if specific is None:
            return by_provider[provider_id]
        if (
            specific.event == "grant"
            and general is not None
            and general.event != "grant"
            and (general.recorded_at, general.id) > (specific.recorded_at, specific.id)
        ):
            return by_provider[provider_id]
        return finding(specific, provider_id, "item")

    return check


def _consent_finding(
    event: ConsentEvent | None, scope: str, now: datetime, purpose: str, authority: str
) -> Finding:
    purpose_text = purpose.replace("_", " ")
    if event is None:
        return Finding("fail", "none", (("purpose", purpose_text),))
    facts: Facts = (
        ("consent_code", event.code),
        ("scope", "for this item" if scope == "item" else "standing consent for all its items"),
        ("purpose", purpose_text),
        ("recorded_on", _day(event.recorded_at)),
        ("conditions", event.conditions.strip() or "none recorded"),
        ("reason", (event.reason or "").strip() or "no reason recorded"),
        (
            "expiry",
            # expires_at is the first moment the grant no longer holds: the day before a
            # midnight end is the last valid one (portal.consent.validity)
            f"valid until {_day(event.expires_at - timedelta(microseconds=1))}"
            if event.expires_at
            else "no expiry date",
        ),
    )
    if event.event == "decline":
        return Finding("fail", "declined", facts)
    if event.event == "revoke":
        return Finding("fail", "revoked", facts)
    if event.expires_at is not None and event.expires_at <= now:
        return Finding("fail", "expired", (*facts, ("expired_on", _day(event.expires_at))))
    return Finding("pass", "granted", facts)


# --- witness-protection ----------------------------------------------------------------------


def witness_protection(ctx: RuleContext) -> ItemCheck:
    """An item naming a person at risk goes only to an authority able to protect them.

    Otherwise the marks protecting them (and every mark that applies "without protection")
    are redacted. A person at risk with no mark on the item is protected by the register of
    protected identifiers when they have a current identifier there and the item is text or
    a PDF: package assembly redacts every such identifier from those and checks the package
    for them. When the item cannot be redacted (its media type) or a person at risk has
    neither, redaction cannot make it safe.
    """
    snapshot, redactable = ctx.snapshot, ctx.redactable_media_types
    state = assessment_state(snapshot, "witness_protection", ctx.duration("max_age"))
    pseudonyms = {p.id: p.pseudonym for p in snapshot.persons.values() if p.at_risk}
    registered = {p.id: p.identifiers for p in snapshot.persons.values() if p.identifiers > 0}
    capacity = state.state == "current"
    if capacity:
        code = "capacity"
    else:
        code = "no_capacity" if state.state == "not_satisfied" else "unassessed"
    base = state.facts()
    nobody = Finding("not_applicable", "none_at_risk")
    intern = _interner()
    authority = snapshot.authority.name

    at_risk_ids = pseudonyms.keys()

    def check(item: ItemFacts) -> Finding:
        person_ids, item_marks = item.person_ids, item.marks
        at_risk = (
            [p for p in person_ids if p in pseudonyms]
            if person_ids and not at_risk_ids.isdisjoint(person_ids)
            else ()
        )
        # (the fast paths first: most items name no one at risk and carry no such mark)
        if not at_risk and (not item_marks or _WITHOUT_PROTECTION not in map(_applies, item_marks)):
            return nobody
        names = (
            ", ".join([pseudonyms[p] for p in at_risk])
            or "no one flagged at risk, but the item carries protective redaction marks"
        )
        facts = (*base, ("persons", names))
        if capacity:
            return intern(Finding("pass", code, facts))
        marks = _codes(
            [m for m in item.marks if m.applies == "without_protection" or m.person_id in at_risk]
        )
        if item.media_type not in redactable:
            why = f"{item.media_type} cannot be redacted"
            return intern(Finding("fail", code, facts, marks, False, why))
        covered = {m.person_id for m in item.marks}
        unmarked = [p for p in at_risk if p not in covered]
        searched = item.media_type in REGISTER_MEDIA_TYPES
        by_register = [p for p in unmarked if searched and p in registered]
        uncovered = [p for p in unmarked if p not in by_register]
        if uncovered:
            why = _unprotected(uncovered, pseudonyms, registered, item.media_type)
            return intern(Finding("fail", code, facts, marks, False, why))
        note = _register_note(by_register, pseudonyms, registered, authority)
        return intern(Finding("fail", code, facts, marks, note=note))

    return check


#: Media types whose text package assembly searches for protected identifiers, redacting them
#: (``_TEXT_MEDIA_TYPES`` of :mod:`portal.packages.assembly.assemble`): the register protects
#: a person at risk in these only. Images are searched with OCR, which can misread a name, so
#: an image needs a mark (a PDF page read with OCR waits for a check by eye at assembly).
REGISTER_MEDIA_TYPES = frozenset({"text/plain", "application/pdf"})


def _unprotected(
    person_ids: list[int], pseudonyms: Mapping[int, str], registered: Mapping[int, int], media: str
) -> str:
    """Why redaction cannot protect ``person_ids``: no mark, and (for those with registered
    identifiers) an item whose content the register's identifiers are not redacted from."""
    why = f"no redaction mark protects {', '.join(pseudonyms[p] for p in person_ids)}"
    if any(p in registered for p in person_ids):
        why += f"; registered identifiers are redacted from text and PDFs only, not {media}"
    return why


def _register_note(
    person_ids: list[int],
    pseudonyms: Mapping[int, str],
    registered: Mapping[int, int],
    authority: str,
) -> str:
    """Which persons at risk the register of protected identifiers protects, with how many
    identifiers (never which: their codes and values stay on the register)."""
    if not person_ids:
        return ""
    who = ", ".join(
        f"{pseudonyms[p]} ({_plural(registered[p], 'current identifier')})" for p in person_ids
    )
    return (
        f"Protected by the register of protected identifiers, not by a mark: {who}. Registered "
        f"identifiers are redacted from every text and PDF shared with {authority}, and every "
        "package is checked for them."
    )


_WITHOUT_PROTECTION = "without_protection"
_applies = attrgetter("applies")


def _codes(marks: list[MarkFacts]) -> tuple[str, ...]:
    return tuple(sorted({m.code for m in marks}))


def _interner() -> Callable[[Finding], Finding]:
    """Equal findings become the same object, so the engine renders each situation once."""
    seen: dict[Finding, Finding] = {}
    return lambda finding: seen.setdefault(finding, finding)


# --- mechanism-review ---------------------------------------------------------------------------


def mechanism_review(ctx: RuleContext) -> ItemCheck:
    """The Mechanism's own review for the safety and privacy of anyone named.

    Marks that apply always are redacted; a mark still awaiting review sends the item to
    manual review; an item the portal cannot redact is withheld when marks apply to it and
    otherwise shared as-is only once a legal officer has cleared it.
    """
    redactable = ctx.redactable_media_types
    clear = Finding("pass", "clear")
    cleared = Finding("pass", "cleared_as_is")
    not_cleared: dict[str, Finding] = {}

    def as_is(item: ItemFacts) -> Finding:
        """An item the portal cannot redact, with no mark that applies."""
        if item.cleared_as_is:
            return cleared
        media_type = item.media_type
        if media_type not in not_cleared:
            not_cleared[media_type] = Finding("fail", "not_cleared", (("media_type", media_type),))
        return not_cleared[media_type]

    intern = _interner()
    # Items in the same situation (media type, cleared or not, the same codes, reasons,
    # scope and review of marks) get the same finding: a dozen situations in practice.
    seen: dict[tuple[object, ...], Finding] = {}

    def check(item: ItemFacts) -> Finding:
        marks = item.marks
        if not marks:
            return clear if item.media_type in redactable else as_is(item)
        key = (item.media_type, item.cleared_as_is, *map(_what_counts, marks))
        found = seen.get(key)
        if found is None:
            found = seen[key] = decide(item, marks)
        return found

    def decide(item: ItemFacts, marks: tuple[MarkFacts, ...]) -> Finding:
        always = [m for m in marks if m.applies == "always"]
        if item.media_type not in redactable:
            if not always:
                return as_is(item)
            why = f"{item.media_type} cannot be redacted"
            facts = _mark_facts(always)
            return intern(Finding("redact", "marks_apply", facts, _codes(always), False, why))
        pending = [m for m in marks if m.review == "pending"]
        if pending:
            return intern(Finding("fail", "pending", _mark_facts(pending), _codes(always)))
        if always:
            return intern(Finding("redact", "marks_apply", _mark_facts(always), _codes(always)))
        return clear

    return check


# What of a mark the Mechanism's review looks at (not who it protects).
_what_counts = attrgetter("code", "applies", "review", "reason")


def _mark_facts(marks: list[MarkFacts]) -> Facts:
    reasons: list[str] = []
    for mark in marks:
        if mark.reason not in reasons:
            reasons.append(mark.reason)
    return (("marks", _plural(len(marks), "redaction mark")), ("reasons", "; ".join(reasons)))


# --- the registry --------------------------------------------------------------------------------

_ASSESSMENT = ("assessment_code", "assessed_on", "assessed_by", "validity", "basis")
_MAX_AGE = Param(
    "duration",
    None,
    'Assessments older than this fail even while "valid until" has not passed, e.g. '
    '"730 days". Leave out for no limit.',
)
_CONSENT = ("consent_code", "scope", "purpose", "recorded_on", "conditions", "expiry")


def _doc(function: Callable[..., object]) -> str:
    return inspect.cleandoc(function.__doc__ or "")


RULES: Mapping[str, RuleSpec] = MappingProxyType(
    {
        spec.id: spec
        for spec in (
            RuleSpec(
                id="mandate-scope",
                title="Within the mandate",
                scope="request",
                doc=_doc(mandate_scope),
                actions=("block_request", "manual_review"),
                mandatory=False,
                request_check=mandate_scope,
                params={
                    "period": Param(
                        "choice",
                        "within",
                        '"within": the request\'s period must lie inside the mandate period; '
                        '"overlap": it must overlap it.',
                        ("within", "overlap"),
                    )
                },
                codes={
                    "in_scope": Code(
                        "pass",
                        ("situation", "mandate_period", "period", "offences", "categories"),
                        "the request is within the mandate",
                    ),
                    "offences_missing": Code(
                        "fail", ("situation",), "the request names no offence"
                    ),
                    "offences_outside": Code(
                        "fail",
                        ("situation", "offences", "outside"),
                        "an offence is in no crime category of the mandate",
                    ),
                    "period_missing": Code(
                        "fail", ("situation", "mandate_period"), "the request states no period"
                    ),
                    "period_outside": Code(
                        "fail",
                        ("situation", "mandate_period", "period"),
                        "the request's period is outside the mandate period",
                    ),
                },
            ),
            RuleSpec(
                id="provider-consent",
                title="Provider consent",
                scope="item",
                doc=_doc(provider_consent),
                actions=("withhold", "manual_review"),
                mandatory=True,
                item_check=provider_consent,
                params={
                    "purpose": Param(
                        "choice",
                        "criminal_proceedings",
                        "The purpose consent must have been given for.",
                        PURPOSES,
                    )
                },
                codes={
                    "granted": Code("pass", _CONSENT, "an active grant decides"),
                    "none": Code("fail", ("purpose",), "no consent event is on record"),
                    "declined": Code("fail", (*_CONSENT, "reason"), "the provider declined"),
                    "revoked": Code("fail", (*_CONSENT, "reason"), "the provider revoked it"),
                    "expired": Code("fail", (*_CONSENT, "expired_on"), "the grant has expired"),
                },
            ),
            RuleSpec(
                id="fair-trial",
                title="Fair trial",
                scope="request",
                doc=_doc(fair_trial),
                actions=("block_request", "withhold", "manual_review"),
                mandatory=True,
                request_check=fair_trial,
                params={"max_age": _MAX_AGE},
                codes={
                    "current": Code("pass", _ASSESSMENT, "a current positive assessment"),
                    "not_satisfied": Code("fail", _ASSESSMENT, "the latest assessment is negative"),
                    "expired": Code(
                        "fail", (*_ASSESSMENT, "expired_on"), "the latest assessment expired"
                    ),
                    "stale": Code(
                        "fail", (*_ASSESSMENT, "max_age"), "the latest assessment is too old"
                    ),
                    "missing": Code("fail", ("assessment_note",), "no assessment is on file"),
                },
            ),
            RuleSpec(
                id="no-death-penalty",
                title="No death penalty",
                scope="request",
                doc=_doc(no_death_penalty),
                actions=("block_request", "withhold", "manual_review"),
                mandatory=True,
                request_check=no_death_penalty,
                params={
                    "max_age": _MAX_AGE,
                    "accept_assurance": Param(
                        "flag",
                        True,
                        "Whether a written assurance for the request makes up for a "
                        "jurisdiction that retains the death penalty.",
                    ),
                },
                codes={
                    "abolished": Code("pass", _ASSESSMENT, "a current assessment: abolished"),
                    "assured": Code(
                        "pass",
                        ("assessment_note", "given_by", "given_on"),
                        "an assurance for this request is on file",
                    ),
                    "assurance_not_accepted": Code(
                        "fail",
                        ("assessment_note", "given_by", "given_on"),
                        "an assurance is on file but the policy does not accept assurances",
                    ),
                    "assurance_withdrawn": Code(
                        "fail",
                        ("assessment_note", "given_by", "given_on", "withdrawn_on"),
                        "the assurance was withdrawn",
                    ),
                    "retained": Code(
                        "fail", _ASSESSMENT, "the jurisdiction retains it; no assurance"
                    ),
                    "unassessed": Code(
                        "fail", ("assessment_note",), "no current assessment; no assurance"
                    ),
                },
            ),
            RuleSpec(
                id="witness-protection",
                title="Witness protection",
                scope="item",
                doc=_doc(witness_protection),
                actions=("redact", "withhold", "manual_review"),
                mandatory=True,
                item_check=witness_protection,
                params={"max_age": _MAX_AGE},
                codes={
                    "none_at_risk": Code("not_applicable", (), "no one at risk is named"),
                    "capacity": Code(
                        "pass", (*_ASSESSMENT, "persons"), "the authority can protect them"
                    ),
                    "no_capacity": Code(
                        "fail",
                        (*_ASSESSMENT, "persons"),
                        "the authority was assessed as unable to protect them",
                    ),
                    "unassessed": Code(
                        "fail",
                        ("assessment_note", "persons"),
                        "no current assessment of the authority's capacity",
                    ),
                },
            ),
            RuleSpec(
                id="mechanism-review",
                title="Mechanism review",
                scope="item",
                doc=_doc(mechanism_review),
                actions=("manual_review", "withhold"),
                mandatory=False,
                item_check=mechanism_review,
                codes={
                    "clear": Code("pass", (), "no redaction mark applies"),
                    "cleared_as_is": Code(
                        "pass", (), "cannot be redacted, no mark, cleared as-is by an officer"
                    ),
                    "marks_apply": Code(
                        "redact", ("marks", "reasons"), "confirmed marks apply to every authority"
                    ),
                    "pending": Code("fail", ("marks", "reasons"), "a redaction mark awaits review"),
                    "not_cleared": Code(
                        "fail",
                        ("media_type",),
                        "cannot be redacted and not yet cleared as-is by a legal officer",
                    ),
                },
            ),
        )
    }
)
