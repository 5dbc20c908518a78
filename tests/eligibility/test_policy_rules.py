"""Each sharing rule: pass, fail and the boundaries, through the real engine and policy.

Snapshots are built by hand (no database) with the helpers below, which
``test_policy_engine`` reuses.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from portal.eligibility.policy import (
    EvaluationResult,
    Policy,
    RuleResult,
    evaluate,
    load_policy,
    parse_policy,
)
from portal.eligibility.policy.inputs import (
    AssessmentFacts,
    AssuranceFacts,
    AuthorityFacts,
    ConsentEvent,
    ItemFacts,
    MarkFacts,
    PersonFacts,
    ProviderFacts,
    RequestFacts,
    Snapshot,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
AUTHORITY = AuthorityFacts(1, "NWU-NL", "Northland War Crimes Unit")
PROVIDER = 10
PROVIDER_NAME = "Highland Documentation Centre"
_ids = itertools.count(1)

# --------------------------------------------------------------------------- builders


def assessment(
    criterion: str,
    finding: str = "satisfied",
    *,
    assessed: datetime = NOW - timedelta(days=30),
    valid_until: datetime | None = NOW + timedelta(days=365),
    code: str | None = None,
) -> AssessmentFacts:
    return AssessmentFacts(
        code=code or f"NWU-NL-{criterion.upper().replace('_', '-')}-{next(_ids)}",
        criterion=criterion,
        finding=finding,
        basis=f"Basis for {criterion} (fictional).",
        assessed_at=assessed,
        valid_until=valid_until,
        assessed_by="Officer One",
    )


def capable(**replace: AssessmentFacts | None) -> tuple[AssessmentFacts, ...]:
    """All three criteria satisfied, except those replaced (None: left out)."""
    found = {c: assessment(c) for c in ("fair_trial", "death_penalty", "witness_protection")}
    found.update(replace)  # type: ignore[arg-type]
    return tuple(a for a in found.values() if a is not None)


def consent(
    event: str,
    at: datetime,
    *,
    expires: datetime | None = None,
    reason: str | None = None,
    purpose: str = "criminal_proceedings",
    conditions: str = "",
    event_id: int | None = None,
) -> ConsentEvent:
    number = event_id if event_id is not None else next(_ids)
    if event != "grant" and reason is None:
        reason = f"Reason for {event} {number}."
    return ConsentEvent(
        id=number,
        code=f"CNS-{number:04d}",
        event=event,
        purpose=purpose,
        conditions=conditions,
        expires_at=expires,
        reason=reason,
        recorded_at=at,
    )


def person(number: int, *, at_risk: bool = True, identifiers: int = 0) -> PersonFacts:
    """A witness; ``identifiers``: how many current protected identifiers they have."""
    pseudonym = f"Witness V-{number:02d}"
    return PersonFacts(number, f"PER-{number:03d}", pseudonym, "witness", at_risk, identifiers)


def mark(
    code: str,
    *,
    person_id: int | None = None,
    applies: str = "always",
    review: str = "confirmed",
    reason: str = "Identifies a witness at risk",
) -> MarkFacts:
    return MarkFacts(code, "term", person_id, applies, review, reason)


def item(
    code: str = "ITM-0001",
    *,
    consents: Iterable[ConsentEvent] = (),
    persons: Iterable[int] = (),
    marks: Iterable[MarkFacts] = (),
    media_type: str = "text/plain",
    cleared: bool = False,
    provider: int = PROVIDER,
    item_id: int | None = None,
) -> ItemFacts:
    return ItemFacts(
        id=item_id if item_id is not None else next(_ids),
        code=code,
        title=f"Title of {code}",
        kind="witness_statement",
        media_type=media_type,
        provider_id=provider,
        cleared_as_is=cleared,
        person_ids=tuple(persons),
        marks=tuple(marks),
        consents=tuple(sorted(consents, key=lambda e: (e.recorded_at, e.id))),
    )


def standing_grant() -> tuple[ConsentEvent, ...]:
    return (consent("grant", NOW - timedelta(days=100)),)


def snapshot(
    *items: ItemFacts,
    assessments: tuple[AssessmentFacts, ...] | None = None,
    assurances: Iterable[AssuranceFacts] = (),
    standing: Iterable[ConsentEvent] | None = None,
    persons: Iterable[PersonFacts] = (),
    offences: Iterable[str] = ("War crime of torture",),
    period: tuple[date | None, date | None] = (date(2023, 6, 1), date(2023, 12, 31)),
    now: datetime = NOW,
) -> Snapshot:
    """A request of the Northland unit; by default every assessment holds and the
    provider has a standing grant."""
    events = standing_grant() if standing is None else tuple(standing)
    providers = {
        PROVIDER: ProviderFacts(
            PROVIDER,
            "PRV-HDC",
            PROVIDER_NAME,
            tuple(sorted(events, key=lambda e: (e.recorded_at, e.id))),
        )
    }
    return Snapshot(
        taken_at=now,
        request=RequestFacts(7, "RFA-2026-0007", "in_review", tuple(offences), *period),
        authority=AUTHORITY,
        assessments=capable() if assessments is None else assessments,
        assurances=tuple(assurances),
        providers=providers,
        persons={p.id: p for p in persons},
        items=items,
    )


def assurance(
    *, given: date = date(2026, 2, 1), withdrawn: datetime | None = None
) -> AssuranceFacts:
    return AssuranceFacts(
        next(_ids), "death_penalty", "Chief Prosecutor (fictional)", given, withdrawn
    )


def variant(policy: Policy, old: str, new: str, name: str = "sharing.toml") -> Policy:
    """The shipped policy with one text change (e.g. another ``on_failure``)."""
    sources = {n: text.encode() for n, text in policy.sources.items()}
    text = policy.sources[name]
    assert old in text, old
    sources[name] = text.replace(old, new, 1).encode()
    return parse_policy(sources)


def rule_result(result: EvaluationResult, rule: str, code: str | None = None) -> RuleResult:
    """The result of ``rule`` for the request, or for item ``code``."""
    if code is None:
        return result.request_result(rule)
    return next(r for r in result.item(code).results if r.rule == rule)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICIES)


# --------------------------------------------------------------------------- mandate-scope


def test_mandate_in_scope(policy: Policy) -> None:
    result = evaluate(policy, snapshot(item(), offences=["War crime of torture"]))
    found = rule_result(result, "mandate-scope")
    assert (found.status, found.code, found.action) == ("pass", "in_scope", None)
    assert "falls within the mandate" in found.explanation
    assert "War crimes" in found.explanation and "from 2023-05-01" in found.explanation
    assert result.outcome == "eligible"


def test_mandate_offences_match_whatever_the_case_and_spacing(policy: Policy) -> None:
    result = evaluate(policy, snapshot(item(), offences=["  war CRIME of   torture "]))
    assert rule_result(result, "mandate-scope").status == "pass"


@pytest.mark.parametrize(
    ("offences", "period", "code", "quoted"),
    [
        (["Theft of livestock"], (date(2023, 6, 1), date(2023, 7, 1)), "offences_outside", "Theft"),
        ([], (date(2023, 6, 1), date(2023, 7, 1)), "offences_missing", "names no offence"),
        (["War crime of torture"], (None, None), "period_missing", "states no period"),
        (["War crime of torture"], (date(2023, 6, 1), None), "period_missing", "from 2023-05-01"),
        (
            ["War crime of torture"],
            (date(2023, 4, 30), date(2023, 7, 1)),
            "period_outside",
            "2023-04-30 to 2023-07-01",
        ),
    ],
)
def test_mandate_failures_block_the_request(
    policy: Policy,
    offences: list[str],
    period: tuple[date | None, date | None],
    code: str,
    quoted: str,
) -> None:
    result = evaluate(policy, snapshot(item(), offences=offences, period=period))
    found = rule_result(result, "mandate-scope")
    assert (found.status, found.code, found.action) == ("fail", code, "block_request")
    assert quoted in found.explanation
    assert "Nothing can be shared in answer to RFA-2026-0007." in found.explanation
    assert result.outcome == "ineligible" and result.blocked_by == ("mandate-scope",)
    assert result.item("ITM-0001").outcome == "withhold"


def test_mandate_period_boundaries(policy: Policy) -> None:
    on_start = snapshot(item(), period=(date(2023, 5, 1), date(2023, 5, 1)))
    assert rule_result(evaluate(policy, on_start), "mandate-scope").status == "pass"
    overlapping = snapshot(item(), period=(date(2023, 4, 1), date(2023, 5, 1)))
    assert rule_result(evaluate(policy, overlapping), "mandate-scope").status == "fail"
    lenient = variant(policy, 'period = "within"', 'period = "overlap"')
    assert rule_result(evaluate(lenient, overlapping), "mandate-scope").status == "pass"
    before = snapshot(item(), period=(date(2023, 4, 1), date(2023, 4, 30)))
    assert rule_result(evaluate(lenient, before), "mandate-scope").status == "fail"


def test_mandate_period_end_when_the_mandate_has_one(policy: Policy) -> None:
    closed = variant(
        policy, "# period_end = 2025-12-31", "period_end = 2023-12-31", name="mandate.toml"
    )
    inside = snapshot(item(), period=(date(2023, 6, 1), date(2023, 12, 31)))
    assert rule_result(evaluate(closed, inside), "mandate-scope").status == "pass"
    after = snapshot(item(), period=(date(2023, 6, 1), date(2024, 1, 1)))
    found = rule_result(evaluate(closed, after), "mandate-scope")
    assert found.code == "period_outside" and "2023-05-01 to 2023-12-31" in found.explanation


# --------------------------------------------------------------------------- provider-consent


def _consent(
    policy: Policy, *events: ConsentEvent, standing: Iterable[ConsentEvent] = ()
) -> RuleResult:
    result = evaluate(policy, snapshot(item(consents=events), standing=standing))
    return rule_result(result, "provider-consent", "ITM-0001")


def test_standing_grant_passes_and_names_provider_and_authority(policy: Policy) -> None:
    found = _consent(policy, standing=standing_grant())
    assert (found.status, found.code, found.effect) == ("pass", "granted", "share")
    assert found.explanation.startswith(
        f"Consent of {PROVIDER_NAME} for Northland War Crimes Unit was granted on 2025-11-22 "
        "(standing consent for all its items"
    )


def test_no_consent_at_all_withholds(policy: Policy) -> None:
    found = _consent(policy)
    assert (found.status, found.code, found.action, found.effect) == (
        "fail",
        "none",
        "withhold",
        "withhold",
    )
    assert f"No consent of {PROVIDER_NAME}" in found.explanation
    assert found.explanation.endswith("The item is withheld.")


def test_item_grant_with_conditions_records_them(policy: Policy) -> None:
    grant = consent(
        "grant", NOW - timedelta(days=3), conditions="Not to be disclosed to the media."
    )
    found = _consent(policy, grant)
    assert (found.status, found.code) == ("pass", "granted")
    assert dict(found.facts)["conditions"] == "Not to be disclosed to the media."
    assert "conditions: Not to be disclosed to the media." in found.explanation
    assert dict(found.facts)["consent_code"] == grant.code
    assert "(for this item, no expiry date" in found.explanation


def test_consent_expiring_exactly_now_has_expired(policy: Policy) -> None:
    found = _consent(policy, consent("grant", NOW - timedelta(days=10), expires=NOW))
    assert (found.status, found.code, found.effect) == ("fail", "expired", "withhold")
    assert "expired on 2026-03-02" in found.explanation
    later = _consent(
        policy, consent("grant", NOW - timedelta(days=10), expires=NOW + timedelta(microseconds=1))
    )
    assert (later.status, later.code) == ("pass", "granted")
    assert "valid until 2026-03-02" in later.explanation
    # A grant given "valid until 2026-03-02" is stored as ending at the next midnight; the
    # explanation names the day the provider chose, not the stored end.
    midnight = datetime(2026, 3, 3, tzinfo=UTC)
    chosen = _consent(policy, consent("grant", NOW - timedelta(days=10), expires=midnight))
    assert (chosen.status, chosen.code) == ("pass", "granted")
    assert "valid until 2026-03-02" in chosen.explanation
    assert "2026-03-03" not in chosen.explanation


def test_revoked_then_granted_again_passes(policy: Policy) -> None:
    events = (
        consent("grant", NOW - timedelta(days=30)),
        consent("revoke", NOW - timedelta(days=20), reason="Threats."),
        consent("grant", NOW - timedelta(days=10)),
    )
    found = _consent(policy, *events)
    assert (found.status, found.code) == ("pass", "granted")
    assert dict(found.facts)["consent_code"] == events[2].code


def test_revocation_is_explained_with_date_and_reason(policy: Policy) -> None:
    events = (
        consent("grant", NOW - timedelta(days=30)),
        consent("revoke", NOW - timedelta(hours=1), reason="Renewed threats to the family."),
    )
    found = _consent(policy, *events)
    assert (found.status, found.code, found.effect) == ("fail", "revoked", "withhold")
    assert found.explanation == (
        f"Consent of {PROVIDER_NAME} for Northland War Crimes Unit was revoked on 2026-03-02 "
        f"(for this item; consent {events[1].code}): Renewed threats to the family. "
        "The item is withheld."
    )


def test_standing_consent_is_overridden_by_an_item_level_decline(policy: Policy) -> None:
    decline = consent("decline", NOW - timedelta(days=5), reason="Not this statement.")
    found = _consent(policy, decline, standing=standing_grant())
    assert (found.status, found.code) == ("fail", "declined")
    assert "declined consent for Northland War Crimes Unit on 2026-02-25" in found.explanation
    # A later standing grant does not override the specific refusal either.
    found = _consent(policy, decline, standing=[consent("grant", NOW - timedelta(days=1))])
    assert found.code == "declined"


def test_a_later_standing_revocation_withdraws_an_item_grant(policy: Policy) -> None:
    grant = consent("grant", NOW - timedelta(days=20))
    revoke = consent("revoke", NOW - timedelta(days=2), reason="All sharing stopped.")
    found = _consent(policy, grant, standing=[revoke])
    assert (found.status, found.code) == ("fail", "revoked")
    assert "standing consent for all its items" in found.explanation
    # ... but an item grant made after the standing revocation stands.
    regrant = consent("grant", NOW - timedelta(days=1))
    assert _consent(policy, grant, regrant, standing=[revoke]).code == "granted"


def test_events_recorded_after_the_snapshot_and_other_purposes_are_ignored(
    policy: Policy,
) -> None:
    future = consent("grant", NOW + timedelta(seconds=1))
    assert _consent(policy, future, standing=()).code == "none"
    other = consent("grant", NOW - timedelta(days=1), purpose="historical_research")
    assert _consent(policy, other, standing=()).code == "none"


def test_consent_failure_can_go_to_manual_review(policy: Policy) -> None:
    reviewing = variant(
        policy,
        'id = "provider-consent"\ntitle = "Provider consent"\non_failure = "withhold"',
        'id = "provider-consent"\ntitle = "Provider consent"\non_failure = "manual_review"',
    )
    result = evaluate(reviewing, snapshot(item(), standing=()))
    found = rule_result(result, "provider-consent", "ITM-0001")
    assert (found.action, found.effect) == ("manual_review", "needs_review")
    assert result.outcome == "needs_review"


# --------------------------------------------------------------------------- fair-trial


def _fair_trial(policy: Policy, fair: AssessmentFacts | None) -> EvaluationResult:
    return evaluate(policy, snapshot(item(), assessments=capable(fair_trial=fair)))


def test_current_fair_trial_assessment_passes(policy: Policy) -> None:
    found = rule_result(_fair_trial(policy, assessment("fair_trial")), "fair-trial")
    assert (found.status, found.code) == ("pass", "current")
    assert "ensures the right to a fair trial" in found.explanation
    assert "by Officer One (valid until 2027-03-02)" in found.explanation


@pytest.mark.parametrize(
    ("fair", "code", "quoted"),
    [
        (None, "missing", "No fair-trial assessment of Northland War Crimes Unit is on file."),
        (assessment("fair_trial", "not_satisfied"), "not_satisfied", "not ensured"),
        (
            assessment("fair_trial", valid_until=NOW),  # expiring exactly now: expired
            "expired",
            "expired on 2026-03-02",
        ),
        (
            assessment("fair_trial", assessed=NOW - timedelta(days=730, seconds=1)),
            "stale",
            "is older than the 730 days this policy allows",
        ),
    ],
)
def test_fair_trial_failures_block_the_request(
    policy: Policy, fair: AssessmentFacts | None, code: str, quoted: str
) -> None:
    result = _fair_trial(policy, fair)
    found = rule_result(result, "fair-trial")
    assert (found.status, found.code, found.action) == ("fail", code, "block_request")
    assert quoted in found.explanation
    assert result.outcome == "ineligible" and result.blocked_by == ("fair-trial",)
    assert result.counts["withhold"] == 1


def test_fair_trial_age_boundary(policy: Policy) -> None:
    exactly = assessment("fair_trial", assessed=NOW - timedelta(days=730))
    assert rule_result(_fair_trial(policy, exactly), "fair-trial").status == "pass"
    unlimited = variant(
        policy,
        'max_age = "730 days"\n\n[rule.explanation]\ncurrent = "{authority} ensures',
        '\n[rule.explanation]\ncurrent = "{authority} ensures',
    )
    ancient = assessment("fair_trial", assessed=NOW - timedelta(days=4000))
    assert rule_result(_fair_trial(unlimited, ancient), "fair-trial").status == "pass"


def test_the_latest_assessment_decides_and_future_ones_are_ignored(policy: Policy) -> None:
    older = assessment("fair_trial", assessed=NOW - timedelta(days=60))
    newer = assessment("fair_trial", "not_satisfied", assessed=NOW - timedelta(days=5))
    result = evaluate(
        policy, snapshot(item(), assessments=(older, newer, *capable(fair_trial=None)))
    )
    assert rule_result(result, "fair-trial").code == "not_satisfied"
    future = assessment("fair_trial", assessed=NOW + timedelta(days=1))
    result = evaluate(
        policy, snapshot(item(), assessments=(newer, future, *capable(fair_trial=None)))
    )
    assert rule_result(result, "fair-trial").code == "not_satisfied"


def test_fair_trial_failure_can_withhold_or_send_to_review(policy: Policy) -> None:
    base = 'id = "fair-trial"\ntitle = "Fair trial"\non_failure = "block_request"'
    withholding = variant(policy, base, base.replace("block_request", "withhold"))
    result = _fair_trial(withholding, None)
    found = rule_result(result, "fair-trial")
    assert (found.action, found.effect) == ("withhold", "withhold")
    assert "Every item of RFA-2026-0007 is withheld." in found.explanation
    assert result.outcome == "ineligible" and result.blocked_by == ()
    reviewing = variant(policy, base, base.replace("block_request", "manual_review"))
    assert _fair_trial(reviewing, None).outcome == "needs_review"


# --------------------------------------------------------------------------- no-death-penalty


def _death_penalty(
    policy: Policy, finding: AssessmentFacts | None, *assurances: AssuranceFacts
) -> RuleResult:
    result = evaluate(
        policy, snapshot(item(), assessments=capable(death_penalty=finding), assurances=assurances)
    )
    return rule_result(result, "no-death-penalty")


RETAINS = assessment("death_penalty", "not_satisfied")


def test_abolished_passes(policy: Policy) -> None:
    found = _death_penalty(policy, assessment("death_penalty"))
    assert (found.status, found.code) == ("pass", "abolished")
    assert "has abolished the death penalty" in found.explanation


def test_retained_without_assurance_blocks(policy: Policy) -> None:
    found = _death_penalty(policy, RETAINS)
    assert (found.status, found.code, found.action) == ("fail", "retained", "block_request")
    assert "retains the death penalty" in found.explanation
    assert "no written assurance for RFA-2026-0007 is on file" in found.explanation


def test_assurance_present_passes(policy: Policy) -> None:
    found = _death_penalty(policy, RETAINS, assurance(given=date(2026, 2, 1)))
    assert (found.status, found.code) == ("pass", "assured")
    assert "given by Chief Prosecutor (fictional) on 2026-02-01" in found.explanation
    # Given today counts; given tomorrow is not on file yet.
    assert _death_penalty(policy, RETAINS, assurance(given=NOW.date())).code == "assured"
    later = assurance(given=NOW.date() + timedelta(days=1))
    assert _death_penalty(policy, RETAINS, later).code == "retained"


def test_withdrawn_assurance_fails(policy: Policy) -> None:
    withdrawn = assurance(withdrawn=NOW)  # withdrawn exactly now: no longer in force
    found = _death_penalty(policy, RETAINS, withdrawn)
    assert (found.status, found.code) == ("fail", "assurance_withdrawn")
    assert "was withdrawn on 2026-03-02" in found.explanation
    pending = assurance(withdrawn=NOW + timedelta(days=1))
    assert _death_penalty(policy, RETAINS, pending).code == "assured"


def test_assurances_can_be_refused_by_the_policy(policy: Policy) -> None:
    strict = variant(policy, "accept_assurance = true", "accept_assurance = false")
    found = _death_penalty(strict, RETAINS, assurance())
    assert (found.status, found.code) == ("fail", "assurance_not_accepted")
    assert "is not accepted under this policy" in found.explanation


def test_stale_or_missing_abolition_assessment_needs_an_assurance(policy: Policy) -> None:
    stale = assessment("death_penalty", assessed=NOW - timedelta(days=900), valid_until=None)
    found = _death_penalty(policy, stale)
    assert (found.status, found.code) == ("fail", "unassessed")
    assert "is older than 730 days" in found.explanation
    assert _death_penalty(policy, None).code == "unassessed"
    assert _death_penalty(policy, stale, assurance()).code == "assured"


# --------------------------------------------------------------------------- witness-protection

AT_RISK = person(1)
NOT_AT_RISK = person(2, at_risk=False)


def _protection(
    policy: Policy,
    subject: ItemFacts,
    capacity: AssessmentFacts | None,
) -> EvaluationResult:
    return evaluate(
        policy,
        snapshot(
            subject,
            assessments=capable(witness_protection=capacity),
            persons=[AT_RISK, NOT_AT_RISK],
        ),
    )


NO_CAPACITY = assessment("witness_protection", "not_satisfied")


def test_no_one_at_risk_is_not_applicable(policy: Policy) -> None:
    result = _protection(policy, item(persons=[2]), NO_CAPACITY)
    found = rule_result(result, "witness-protection", "ITM-0001")
    assert (found.status, found.code, found.effect) == ("not_applicable", "none_at_risk", "share")
    assert result.item("ITM-0001").outcome == "share"


def test_at_risk_person_with_capacity_is_shared(policy: Policy) -> None:
    subject = item(persons=[1], marks=[mark("M1", person_id=1, applies="without_protection")])
    result = _protection(policy, subject, assessment("witness_protection"))
    found = rule_result(result, "witness-protection", "ITM-0001")
    assert (found.status, found.code) == ("pass", "capacity")
    assert "Names Witness V-01, at risk; Northland War Crimes Unit has the capacity" in (
        found.explanation
    )
    # The "without protection" mark does not apply for an authority that can protect.
    assert result.item("ITM-0001").outcome == "share"
    assert result.item("ITM-0001").marks == ()


def test_at_risk_person_without_capacity_is_redacted(policy: Policy) -> None:
    subject = item(persons=[1, 2], marks=[mark("M1", person_id=1, applies="without_protection")])
    result = _protection(policy, subject, NO_CAPACITY)
    found = rule_result(result, "witness-protection", "ITM-0001")
    assert (found.status, found.code, found.action, found.effect) == (
        "fail",
        "no_capacity",
        "redact",
        "share_redacted",
    )
    assert "lacks witness-protection capacity" in found.explanation
    assert found.explanation.endswith("The marked details are redacted before the item is shared.")
    assert result.item("ITM-0001").outcome == "share_redacted"
    assert result.item("ITM-0001").marks == ("M1",)


def test_without_capacity_an_unprotected_person_or_unredactable_item_is_withheld(
    policy: Policy,
) -> None:
    unmarked = _protection(policy, item(persons=[1]), NO_CAPACITY)
    found = rule_result(unmarked, "witness-protection", "ITM-0001")
    assert (found.action, found.effect) == ("withhold", "withhold")
    assert (
        "Redaction cannot make the item safe (no redaction mark protects Witness V-01), so it is "
        "withheld." in found.explanation
    )
    audio = item(
        persons=[1],
        marks=[mark("M1", person_id=1, applies="without_protection")],
        media_type="audio/wav",
        cleared=True,
    )
    recording = _protection(policy, audio, NO_CAPACITY)
    found = rule_result(recording, "witness-protection", "ITM-0001")
    assert found.effect == "withhold"
    assert "audio/wav cannot be redacted" in found.explanation


def test_unassessed_capacity_counts_as_no_capacity(policy: Policy) -> None:
    subject = item(persons=[1], marks=[mark("M1", person_id=1)])
    result = _protection(policy, subject, None)
    found = rule_result(result, "witness-protection", "ITM-0001")
    assert (found.code, found.effect) == ("unassessed", "share_redacted")
    assert "(no assessment is on file)" in found.explanation


def test_witness_protection_can_be_set_to_withhold(policy: Policy) -> None:
    strict = variant(policy, 'on_failure = "redact"', 'on_failure = "withhold"')
    subject = item(persons=[1], marks=[mark("M1", person_id=1)])
    result = _protection(strict, subject, NO_CAPACITY)
    assert result.item("ITM-0001").outcome == "withhold"


REGISTERED = person(3, identifiers=2)
_NOT_BY_A_MARK = "Protected by the register of protected identifiers, not by a mark:"


def _registered(
    policy: Policy, subject: ItemFacts, capacity: AssessmentFacts | None = NO_CAPACITY
) -> EvaluationResult:
    """``subject`` in a snapshot where Witness V-03 has two current registered identifiers."""
    persons = [AT_RISK, NOT_AT_RISK, REGISTERED]
    assessments = capable(witness_protection=capacity)
    return evaluate(policy, snapshot(subject, assessments=assessments, persons=persons))


@pytest.mark.parametrize("media_type", ["text/plain", "application/pdf"])
def test_without_capacity_the_register_protects_a_person_without_a_mark(
    policy: Policy, media_type: str
) -> None:
    result = _registered(policy, item(persons=[3], media_type=media_type))
    found = rule_result(result, "witness-protection", "ITM-0001")
    assert (found.code, found.action, found.effect) == ("no_capacity", "redact", "share_redacted")
    assert (
        f"{_NOT_BY_A_MARK} Witness V-03 (2 current identifiers). Registered identifiers are "
        "redacted from every text and PDF shared with Northland War Crimes Unit, and every "
        "package is checked for them. The marked details are redacted before the item is shared."
    ) in found.explanation
    shared = result.item("ITM-0001")
    assert (shared.outcome, shared.marks) == ("share_redacted", ())
    assert _NOT_BY_A_MARK in shared.explanation


def test_the_register_counts_only_for_persons_no_mark_protects(policy: Policy) -> None:
    marked = mark("M1", person_id=1, applies="without_protection")
    result = _registered(policy, item(persons=[1, 3], marks=[marked]))
    found = rule_result(result, "witness-protection", "ITM-0001")
    assert found.effect == "share_redacted" and found.marks == ("M1",)
    assert f"{_NOT_BY_A_MARK} Witness V-03 (2 current identifiers)." in found.explanation
    assert "Witness V-01 (" not in found.explanation
    # Marks on everyone at risk: the register is not needed, and not mentioned.
    both = item(persons=[1, 3], marks=[marked, mark("M2", person_id=3)])
    found = rule_result(_registered(policy, both), "witness-protection", "ITM-0001")
    assert found.marks == ("M1", "M2") and "register" not in found.explanation


def test_the_register_does_not_protect_someone_else_at_risk(policy: Policy) -> None:
    found = rule_result(_registered(policy, item(persons=[1, 3])), "witness-protection", "ITM-0001")
    assert found.effect == "withhold"
    assert "(no redaction mark protects Witness V-01), so it is withheld." in found.explanation
    assert _NOT_BY_A_MARK not in found.explanation


def test_without_registered_identifiers_the_finding_is_as_before(policy: Policy) -> None:
    """Snapshots of format 1 (0 identifiers for everyone) give exactly the results of
    engine 1.0.0, wording included: their decisions still replay."""
    unmarked = rule_result(
        _protection(policy, item(persons=[1]), NO_CAPACITY), "witness-protection", "ITM-0001"
    )
    assert unmarked.explanation == (
        "Names Witness V-01, at risk; Northland War Crimes Unit lacks witness-protection "
        f"capacity (assessment {NO_CAPACITY.code} of {NO_CAPACITY.assessed_at:%Y-%m-%d} by "
        "Officer One). Redaction cannot make the item safe (no redaction mark protects Witness "
        "V-01), so it is withheld."
    )


def test_with_capacity_a_registered_person_is_shared_as_before(policy: Policy) -> None:
    result = _registered(policy, item(persons=[3]), assessment("witness_protection"))
    found = rule_result(result, "witness-protection", "ITM-0001")
    assert (found.status, found.code, found.effect) == ("pass", "capacity", "share")
    assert "register" not in found.explanation
    assert result.item("ITM-0001").outcome == "share"


def test_the_register_cannot_protect_what_is_not_redacted_by_text(policy: Policy) -> None:
    audio = item(persons=[3], media_type="audio/wav", cleared=True)
    found = rule_result(_registered(policy, audio), "witness-protection", "ITM-0001")
    assert found.effect == "withhold"
    assert "(audio/wav cannot be redacted), so it is withheld." in found.explanation
    # An image can be redacted (boxes), but registered identifiers are not searched for in
    # its pixels: without a mark of their own, the person is not protected.
    photo = item(persons=[3], media_type="image/png")
    found = rule_result(_registered(policy, photo), "witness-protection", "ITM-0001")
    assert found.effect == "withhold"
    assert (
        "(no redaction mark protects Witness V-03; registered identifiers are redacted from "
        "text and PDFs only, not image/png), so it is withheld."
    ) in found.explanation
    boxed = item(persons=[3], media_type="image/png", marks=[mark("M1", person_id=3)])
    found = rule_result(_registered(policy, boxed), "witness-protection", "ITM-0001")
    assert found.effect == "share_redacted" and found.marks == ("M1",)


# --------------------------------------------------------------------------- mechanism-review


def _review(policy: Policy, subject: ItemFacts) -> EvaluationResult:
    return evaluate(policy, snapshot(subject, persons=[AT_RISK]))


def test_no_marks_is_clear(policy: Policy) -> None:
    found = rule_result(_review(policy, item()), "mechanism-review", "ITM-0001")
    assert (found.status, found.code) == ("pass", "clear")


def test_confirmed_marks_are_redacted_for_every_authority(policy: Policy) -> None:
    subject = item(marks=[mark("M2", reason="Home address"), mark("M1", reason="A name")])
    result = _review(policy, subject)
    found = rule_result(result, "mechanism-review", "ITM-0001")
    assert (found.status, found.code, found.action, found.effect) == (
        "redact",
        "marks_apply",
        "redact",
        "share_redacted",
    )
    assert "(2 redaction marks): Home address; A name" in found.explanation
    assert result.item("ITM-0001").marks == ("M1", "M2")


def test_unresolved_redaction_review_needs_manual_review(policy: Policy) -> None:
    subject = item(marks=[mark("M1"), mark("M2", review="pending", reason="May identify")])
    result = _review(policy, subject)
    found = rule_result(result, "mechanism-review", "ITM-0001")
    assert (found.status, found.code, found.action, found.effect) == (
        "fail",
        "pending",
        "manual_review",
        "needs_review",
    )
    assert "still await review by a legal officer (1 redaction mark): May identify" in (
        found.explanation
    )
    assert result.item("ITM-0001").outcome == "needs_review"
    assert result.outcome == "needs_review"


def test_items_that_cannot_be_redacted(policy: Policy) -> None:
    marked = _review(policy, item(marks=[mark("M1")], media_type="audio/wav", cleared=True))
    found = rule_result(marked, "mechanism-review", "ITM-0001")
    assert (found.code, found.effect) == ("marks_apply", "withhold")
    assert "audio/wav cannot be redacted" in found.explanation
    uncleared = _review(policy, item(media_type="video/mp4"))
    found = rule_result(uncleared, "mechanism-review", "ITM-0001")
    assert (found.code, found.effect) == ("not_cleared", "needs_review")
    cleared = _review(policy, item(media_type="video/mp4", cleared=True))
    found = rule_result(cleared, "mechanism-review", "ITM-0001")
    assert (found.code, found.effect) == ("cleared_as_is", "share")
    assert cleared.outcome == "eligible"


def test_items_in_one_request_each_get_the_review_of_their_own_situation(
    policy: Policy,
) -> None:
    # The rule decides each situation once (media type, cleared, what the marks say):
    # items differing in any of these, in one evaluation, must not share a finding.
    protective = mark("M1", person_id=AT_RISK.id, applies="without_protection")
    subjects = [
        item("ITM-0001", marks=[mark("M1")]),
        item("ITM-0002", marks=[mark("M1")], media_type="audio/wav"),
        item("ITM-0003", marks=[protective], media_type="audio/wav"),
        item("ITM-0004", marks=[protective], media_type="audio/wav", cleared=True),
        item("ITM-0005", marks=[mark("M1", review="pending")]),
        item("ITM-0006", marks=[mark("M1", reason="Home address")]),
        item("ITM-0007", marks=[mark("M1")]),
    ]
    result = evaluate(policy, snapshot(*subjects, persons=[AT_RISK]))
    found = {s.code: rule_result(result, "mechanism-review", s.code) for s in subjects}
    assert {code: (r.code, r.effect) for code, r in found.items()} == {
        "ITM-0001": ("marks_apply", "share_redacted"),
        "ITM-0002": ("marks_apply", "withhold"),
        "ITM-0003": ("not_cleared", "needs_review"),
        "ITM-0004": ("cleared_as_is", "share"),
        "ITM-0005": ("pending", "needs_review"),
        "ITM-0006": ("marks_apply", "share_redacted"),
        "ITM-0007": ("marks_apply", "share_redacted"),
    }
    assert "Home address" in found["ITM-0006"].explanation
    assert "Home address" not in found["ITM-0001"].explanation
    assert found["ITM-0001"] == found["ITM-0007"]
