"""The engine: how rule results combine, stored round trips, the consent property, diffs."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.canonical import canonical_json
from portal.eligibility.decisions import canonical_text
from portal.eligibility.policy import (
    ENGINE_VERSION,
    EvaluationResult,
    Policy,
    Snapshot,
    SnapshotFormatError,
    diff_results,
    evaluate,
    load_policy,
)
from portal.eligibility.policy.inputs import ConsentEvent, ProviderFacts
from tests.eligibility.test_policy_rules import (
    AT_RISK,
    NO_CAPACITY,
    NOW,
    PROVIDER,
    REGISTERED,
    assessment,
    assurance,
    capable,
    consent,
    item,
    mark,
    rule_result,
    snapshot,
    variant,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICIES)


# --------------------------------------------------------------------------- combining


def test_item_outcome_is_the_most_severe_effect(policy: Policy) -> None:
    revoked = [consent("grant", NOW - timedelta(days=9)), consent("revoke", NOW - timedelta(1))]
    pending = mark("M1", review="pending")
    result = evaluate(
        policy,
        snapshot(
            item("ITM-0001"),  # share
            item("ITM-0002", marks=[mark("M1")]),  # share_redacted
            item("ITM-0003", marks=[mark("M1"), pending]),  # needs_review beats share_redacted
            item("ITM-0004", consents=revoked, marks=[pending]),  # withhold beats needs_review
        ),
    )
    assert [i.outcome for i in result.items] == [
        "share",
        "share_redacted",
        "needs_review",
        "withhold",
    ]
    withheld = result.item("ITM-0004")
    # The explanation is the decisive sentence(s), not the passes.
    assert withheld.explanation.startswith("Consent of Highland Documentation Centre")
    assert "await review" not in withheld.explanation
    shared = result.item("ITM-0001")
    assert "was granted on" in shared.explanation and "No person at risk" in shared.explanation
    assert result.counts == {"share": 1, "share_redacted": 1, "needs_review": 1, "withhold": 1}
    assert result.outcome == "needs_review"
    assert result.summary == (
        "Needs review: 4 candidate items; 1 shared, 1 shared redacted, 1 need review, 1 withheld."
    )


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (["share", "share_redacted"], "eligible"),
        (["share", "withhold"], "partially_eligible"),
        (["share_redacted", "withhold"], "partially_eligible"),
        (["withhold", "withhold"], "ineligible"),
        (["share", "needs_review", "withhold"], "needs_review"),
        ([], "needs_review"),
    ],
)
def test_request_outcome(policy: Policy, outcomes: list[str], expected: str) -> None:
    make = {
        "share": lambda code: item(code),
        "share_redacted": lambda code: item(code, marks=[mark("M1")]),
        "needs_review": lambda code: item(code, marks=[mark("M1", review="pending")]),
        "withhold": lambda code: item(code, media_type="audio/wav", marks=[mark("M1")]),
    }
    items = [make[outcome](f"ITM-{n:04d}") for n, outcome in enumerate(outcomes, start=1)]
    result = evaluate(policy, snapshot(*items))
    assert [i.outcome for i in result.items] == outcomes
    assert result.outcome == expected
    if not outcomes:
        assert result.summary == "No candidate item has been selected for this request yet."


def test_a_blocked_request_withholds_everything_and_says_why(policy: Policy) -> None:
    result = evaluate(
        policy,
        snapshot(
            item("ITM-0001"),
            item("ITM-0002", marks=[mark("M1", review="pending")]),
            assessments=capable(death_penalty=assessment("death_penalty", "not_satisfied")),
        ),
    )
    assert result.outcome == "ineligible"
    assert result.blocked_by == ("no-death-penalty",)
    assert result.summary == (
        "Ineligible: the request is blocked by No death penalty; nothing can be shared."
    )
    assert [i.outcome for i in result.items] == ["withhold", "withhold"]
    assert "retains the death penalty" in result.item("ITM-0001").explanation
    # Item rules were still evaluated, so the matrix shows every cell.
    assert rule_result(result, "mechanism-review", "ITM-0002").code == "pending"


def test_redaction_marks_to_apply_are_the_union_of_redacting_rules(policy: Policy) -> None:
    subject = item(
        persons=[AT_RISK.id],
        marks=[
            mark("M1", person_id=AT_RISK.id, applies="without_protection"),
            mark("M2"),
            mark("M3", person_id=AT_RISK.id),
        ],
    )
    result = evaluate(
        policy,
        snapshot(subject, assessments=capable(witness_protection=NO_CAPACITY), persons=[AT_RISK]),
    )
    assert result.item("ITM-0001").outcome == "share_redacted"
    assert result.item("ITM-0001").marks == ("M1", "M2", "M3")
    able = evaluate(policy, snapshot(subject, persons=[AT_RISK]))
    assert able.item("ITM-0001").marks == ("M2", "M3")


def test_rule_columns_follow_the_policy(policy: Policy) -> None:
    result = evaluate(policy, snapshot(item()))
    assert [c.id for c in result.rules] == [r.id for r in policy.rules]
    assert result.rules[1].reference == policy.rule("fair-trial").reference
    assert [r.rule for r in result.request_results] == [
        "mandate-scope",
        "fair-trial",
        "no-death-penalty",
    ]
    assert [r.rule for r in result.item("ITM-0001").results] == [
        "provider-consent",
        "witness-protection",
        "mechanism-review",
    ]


def test_wording_placeholders_are_filled_from_the_request_and_item(policy: Policy) -> None:
    quoting = variant(
        policy,
        'clear = "No redaction mark of the Mechanism applies to this item."',
        'clear = "{item} ({item_title}) of {provider} for {authority_code}, {rfa}: no marks."',
    )
    result = evaluate(quoting, snapshot(item("ITM-0001"), item("ITM-0002")))
    assert rule_result(result, "mechanism-review", "ITM-0002").explanation == (
        "ITM-0002 (Title of ITM-0002) of Highland Documentation Centre for NWU-NL, "
        "RFA-2026-0007: no marks."
    )
    assert rule_result(result, "mechanism-review", "ITM-0001").explanation.startswith("ITM-0001")


def test_a_finding_shared_by_items_of_two_providers_quotes_each_its_own(policy: Policy) -> None:
    # Rules hand every unmarked item the very same "clear" finding; rendered once per
    # finding, a wording quoting {provider} must still name each item's own provider.
    quoting = variant(
        policy,
        'clear = "No redaction mark of the Mechanism applies to this item."',
        'clear = "Nothing to redact in this item of {provider}."',
    )
    base = snapshot(
        item("ITM-0001"), item("ITM-0002", provider=11), item("ITM-0003"), item("ITM-0004")
    )
    other = ProviderFacts(11, "PRV-OTH", "Other Provider", base.providers[PROVIDER][3])
    two = dataclasses.replace(base, providers={**base.providers, 11: other})
    result = evaluate(quoting, two)
    said = {i.code: rule_result(result, "mechanism-review", i.code).explanation for i in two.items}
    assert said == {
        "ITM-0001": "Nothing to redact in this item of Highland Documentation Centre.",
        "ITM-0002": "Nothing to redact in this item of Other Provider.",
        "ITM-0003": "Nothing to redact in this item of Highland Documentation Centre.",
        "ITM-0004": "Nothing to redact in this item of Highland Documentation Centre.",
    }
    assert [i.provider for i in result.items] == [
        "Highland Documentation Centre",
        "Other Provider",
        "Highland Documentation Centre",
        "Highland Documentation Centre",
    ]
    # Items in the same situation share one combination, and their stored results one row.
    first, _, third, _ = result.items
    assert first.results is third.results
    assert EvaluationResult.from_json(json.loads(canonical_text(result.to_json()))) == result


# --------------------------------------------------------------------------- records


def _round_trip(value: Snapshot) -> Snapshot:
    return Snapshot.from_json(json.loads(canonical_json(value.to_json())))


def test_snapshot_and_results_survive_canonical_json(policy: Policy) -> None:
    original = snapshot(
        item("ITM-0001", persons=[1], marks=[mark("M1", person_id=1, review="pending")]),
        item("ITM-0002", consents=[consent("grant", NOW, expires=NOW + timedelta(days=3))]),
        persons=[AT_RISK],
        assurances=[assurance(withdrawn=NOW + timedelta(days=1))],
    )
    again = _round_trip(original)
    assert again == original
    first = evaluate(policy, original)
    second = evaluate(policy, again)
    assert canonical_json(first.to_json()) == canonical_json(second.to_json())
    stored = json.loads(canonical_json(first.to_json()))
    assert EvaluationResult.from_json(stored) == first
    assert first.engine_version == ENGINE_VERSION
    assert dict(first.policy_files) == dict(policy.sources)


def _as_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """A stored snapshot as the portal wrote it before the register of protected identifiers:
    format 1, persons without their ``identifiers`` column."""
    old = json.loads(canonical_json(data))
    old["format"] = 1
    old["layout"]["person"] = old["layout"]["person"][:5]
    old["persons"] = [row[:5] for row in old["persons"]]
    return old


def test_snapshots_record_how_many_identifiers_a_person_has_and_format_1_still_reads(
    policy: Policy,
) -> None:
    subject = snapshot(
        item("ITM-0001", persons=[1], marks=[mark("M1", person_id=1)]),
        item("ITM-0002", persons=[REGISTERED.id]),
        persons=[AT_RISK, REGISTERED],
        assessments=capable(witness_protection=NO_CAPACITY),
    )
    stored = subject.to_json()
    assert stored["format"] == 2 and stored["layout"]["person"][-1] == "identifiers"
    assert _round_trip(subject).persons[REGISTERED.id].identifiers == 2

    old = Snapshot.from_json(_as_format_1(stored))
    assert [p.identifiers for p in old.persons.values()] == [0, 0]
    assert old.persons[AT_RISK.id] == AT_RISK
    # A decision of format 1 evaluates as engine 1.0.0 did: the register was not recorded.
    result = evaluate(policy, old)
    assert [i.outcome for i in result.items] == ["share_redacted", "withhold"]
    assert evaluate(policy, subject).item("ITM-0002").outcome == "share_redacted"

    mixed = _as_format_1(stored)
    mixed["format"] = 2  # the old layout under the new number
    with pytest.raises(SnapshotFormatError, match=r"\$\.layout: not the layout"):
        Snapshot.from_json(mixed)


def test_the_fast_canonical_text_is_canonical_json(policy: Policy) -> None:
    subject = snapshot(
        item("ITM-0001", marks=[mark("M1", reason="Nom d\u2019un témoin — « protégé » ✓")]),
        item("ITM-0002", consents=[consent("grant", NOW, conditions='Quote " and \\ slash')]),
    )
    for value in (subject.to_json(), evaluate(policy, subject).to_json()):
        assert canonical_text(value) == canonical_json(value)


def test_a_damaged_snapshot_is_refused_with_its_path(policy: Policy) -> None:
    data = json.loads(canonical_json(snapshot(item()).to_json()))
    data["items"][0][9] = "none"  # the item's consent events (see data["layout"])
    with pytest.raises(SnapshotFormatError, match=r"\$\.items\[0\]\[9\]: expected a list"):
        Snapshot.from_json(data)
    data = json.loads(canonical_json(snapshot(item()).to_json()))
    data["items"][0] = data["items"][0][:5]
    with pytest.raises(SnapshotFormatError, match=r"\$\.items\[0\]: expected an array of 10"):
        Snapshot.from_json(data)
    data = json.loads(
        canonical_json(snapshot(item(persons=[AT_RISK.id]), persons=[AT_RISK]).to_json())
    )
    data["persons"] = []
    with pytest.raises(SnapshotFormatError, match=r"\$\.items\[0\]: a person it names is not"):
        Snapshot.from_json(data)
    data = json.loads(canonical_json(snapshot(item()).to_json()))
    data["providers"] = []
    with pytest.raises(SnapshotFormatError, match=r"\$\.items\[0\]: its provider is not"):
        Snapshot.from_json(data)
    data = json.loads(canonical_json(snapshot(item()).to_json()))
    data["layout"]["item"].reverse()
    with pytest.raises(SnapshotFormatError, match=r"\$\.layout: not the layout"):
        Snapshot.from_json(data)
    data = json.loads(canonical_json(snapshot(item()).to_json()))
    data["format"] = 99
    with pytest.raises(SnapshotFormatError, match="snapshot format 99 is not supported"):
        Snapshot.from_json(data)
    data = json.loads(canonical_json(snapshot(item()).to_json()))
    data["taken_at"] = "2026-03-02T12:00:00"
    with pytest.raises(SnapshotFormatError, match=r"\$\.taken_at: expected a timestamp with"):
        Snapshot.from_json(data)


# --------------------------------------------------------------------------- diff


def test_diff_names_what_changed(policy: Policy) -> None:
    assessments = capable()
    grant = consent("grant", NOW - timedelta(days=9))
    before = evaluate(
        policy,
        snapshot(
            item("ITM-0001", consents=[grant], item_id=1),
            item("ITM-0002", item_id=2),
            assessments=assessments,
        ),
    )
    revoke = consent("revoke", NOW - timedelta(hours=2), reason="Threats.")
    after = evaluate(
        policy,
        snapshot(
            item("ITM-0001", consents=[grant, revoke], item_id=1),
            item("ITM-0003", item_id=3),
            assessments=assessments,
        ),
    )
    changes = diff_results(before, after)
    kinds = [(c.kind, c.item, c.rule) for c in changes]
    assert kinds == [
        ("outcome", None, None),
        ("item_outcome", "ITM-0001", None),
        ("item_rule", "ITM-0001", "provider-consent"),
        ("item_added", "ITM-0003", None),
        ("item_removed", "ITM-0002", None),
    ]
    outcome, moved, rule = changes[0], changes[1], changes[2]
    assert (outcome.before, outcome.after) == ("eligible", "partially_eligible")
    assert (moved.before, moved.after) == ("share", "withhold")
    assert moved.sentence().startswith("ITM-0001: from Share to Withhold. Consent of")
    assert (rule.before, rule.after) == ("pass (granted)", "fail (revoked, withhold)")
    assert "Threats." in rule.explanation
    assert diff_results(after, after) == []


def test_diff_reports_a_new_policy_once_not_every_reworded_row(policy: Policy) -> None:
    reworded = variant(
        policy,
        'clear = "No redaction mark of the Mechanism applies to this item."',
        'clear = "Nothing to redact."',
    )
    subject = snapshot(item("ITM-0001"), item("ITM-0002"))
    changes = diff_results(evaluate(policy, subject), evaluate(reworded, subject))
    assert [c.kind for c in changes] == ["policy"]


# --------------------------------------------------------------------------- consent property

OFFSETS = st.integers(min_value=-2000, max_value=200)  # minutes around NOW
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["item", "standing"]),
        st.sampled_from(["grant", "decline", "revoke"]),
        OFFSETS,  # recorded
        st.none() | st.integers(min_value=-200, max_value=2000),  # expires, minutes from NOW
        st.sampled_from(["criminal_proceedings", "criminal_proceedings", "other"]),
    ),
    max_size=8,
)


def _ledger(raw: list[tuple[str, str, int, int | None, str]]) -> tuple[list[ConsentEvent], ...]:
    item_events: list[ConsentEvent] = []
    standing: list[ConsentEvent] = []
    for number, (scope, kind, recorded, expires, purpose) in enumerate(raw, start=1):
        event = consent(
            kind,
            NOW + timedelta(minutes=recorded),
            expires=NOW + timedelta(minutes=expires)
            if expires is not None and kind == "grant"
            else None,
            purpose=purpose,
            event_id=number,
        )
        (item_events if scope == "item" else standing).append(event)
    return item_events, standing


def _current(events: list[ConsentEvent]) -> ConsentEvent | None:
    seen = [e for e in events if e.recorded_at <= NOW and e.purpose == "criminal_proceedings"]
    return max(seen, key=lambda e: (e.recorded_at, e.id), default=None)


def _active_grant(item_events: list[ConsentEvent], standing: list[ConsentEvent]) -> bool:
    """The documented rule: the item's latest event decides, else the provider's standing
    one; a later standing decline/revoke withdraws an item grant; grants expire."""
    specific, general = _current(item_events), _current(standing)
    deciding = specific if specific is not None else general
    if (
        specific is not None
        and general is not None
        and specific.event == "grant"
        and general.event != "grant"
        and (general.recorded_at, general.id) > (specific.recorded_at, specific.id)
    ):
        deciding = general
    if deciding is None or deciding.event != "grant":
        return False
    return deciding.expires_at is None or deciding.expires_at > NOW


@settings(max_examples=400, deadline=None)
@given(raw=EVENTS, redacted=st.booleans())
def test_without_an_active_grant_an_item_is_never_shared(
    policy: Policy, raw: list[tuple[str, str, int, int | None, str]], redacted: bool
) -> None:
    item_events, standing = _ledger(raw)
    subject = item(consents=item_events, marks=[mark("M1")] if redacted else [])
    result = evaluate(policy, snapshot(subject, standing=standing))
    outcome = result.item("ITM-0001").outcome
    found = rule_result(result, "provider-consent", "ITM-0001")
    if not _active_grant(item_events, standing):
        assert outcome not in ("share", "share_redacted")
        assert found.status == "fail"
    else:
        assert found.status == "pass"
        assert outcome == ("share_redacted" if redacted else "share")
    # Simpler invariants that need no model of the ledger:
    latest_item = _current(item_events)
    if latest_item is not None and latest_item.event != "grant":
        assert outcome == "withhold"  # a specific refusal always wins
    if not any(e.event == "grant" for e in (*item_events, *standing)):
        assert outcome == "withhold"


def test_the_property_covers_both_outcomes(policy: Policy) -> None:
    """Guard against a vacuous property: the strategy reaches grants and refusals."""
    seen: set[bool] = set()

    @settings(max_examples=200, deadline=None)
    @given(raw=EVENTS)
    def probe(raw: list[tuple[str, str, int, int | None, str]]) -> None:
        item_events, standing = _ledger(raw)
        result = evaluate(policy, snapshot(item(consents=item_events), standing=standing))
        seen.add(result.item("ITM-0001").outcome == "share")

    probe()
    assert seen == {True, False}


def test_evaluation_is_pure(policy: Policy) -> None:
    """Same inputs, same output; the snapshot's time is the only clock."""
    subject = snapshot(item(consents=[consent("grant", NOW, expires=NOW + timedelta(days=1))]))
    first = canonical_json(evaluate(policy, subject).to_json())
    assert canonical_json(evaluate(policy, subject).to_json()) == first
    later = snapshot(
        item(consents=[consent("grant", NOW, expires=NOW + timedelta(days=1), event_id=999)]),
        now=NOW + timedelta(days=2),
    )
    assert evaluate(policy, later).item("ITM-0001").outcome == "withhold"
    assert PROVIDER in subject.providers
