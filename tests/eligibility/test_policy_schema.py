"""Loading and validating the policy files (portal.eligibility.policy.schema).

Each mistake in a policy file must stop loading with its own ``file: key: reason`` line.
The cases start from the shipped files and change one thing.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from portal.eligibility.policy import RULES, PolicyError, load_policy, parse_policy
from portal.eligibility.policy.schema import POLICY_FILES, policy_revision

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    target.mkdir()
    for name in POLICY_FILES:
        shutil.copy(POLICIES / name, target / name)
    return target


def _problems(directory: Path) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(directory)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems)
    return lines


def _edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _without_rule(directory: Path, rule_id: str) -> None:
    path = directory / "sharing.toml"
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(
        r'\[\[rule\]\]\nid = "' + re.escape(rule_id) + r'".*?(?=\[\[rule\]\]|\Z)', re.S
    )
    assert pattern.search(text)
    path.write_text(pattern.sub("", text), encoding="utf-8")


# --------------------------------------------------------------------------- the shipped policy


def test_shipped_policy_loads_with_every_rule_in_order() -> None:
    policy = load_policy(POLICIES)
    assert policy.id == "mechanism-sharing-rules"
    assert [rule.id for rule in policy.rules] == [
        "mandate-scope",
        "fair-trial",
        "no-death-penalty",
        "provider-consent",
        "witness-protection",
        "mechanism-review",
    ]
    assert set(RULES) == {rule.id for rule in policy.rules}
    for rule in policy.rules:
        assert rule.reference.strip()
        assert set(rule.explanations) == set(rule.spec.codes)
        assert rule.on_failure in rule.spec.actions
    assert policy.rule("fair-trial").params["max_age"] == timedelta(days=730)
    assert policy.rule("no-death-penalty").params["accept_assurance"] is True
    assert policy.rule("witness-protection").on_failure == "redact"
    assert policy.mandate.period_start == date(2023, 5, 1)
    assert policy.mandate.period_end is None
    assert "application/pdf" in policy.redactable_media_types
    assert "audio/wav" not in policy.redactable_media_types


def test_revision_is_the_documented_hash_over_the_files() -> None:
    """sha256 of the canonical JSON of {file name: sha256 of its bytes}, stdlib only."""
    digests = {
        name: hashlib.sha256((POLICIES / name).read_bytes()).hexdigest() for name in POLICY_FILES
    }
    text = json.dumps(digests, sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(text.encode()).hexdigest()
    assert load_policy(POLICIES).revision == expected


def test_revision_changes_with_any_byte_and_sources_round_trip(tmp_path: Path) -> None:
    original = load_policy(POLICIES)
    directory = _copy(tmp_path)
    _edit(directory, "mandate.toml", "(fictional).", "(fictional). ")
    changed = load_policy(directory)
    assert changed.revision != original.revision
    # The text kept in a decision rebuilds the very same policy.
    rebuilt = parse_policy({name: text.encode() for name, text in original.sources.items()})
    assert rebuilt.revision == original.revision
    assert rebuilt.rules == original.rules


def test_policy_revision_depends_on_file_names() -> None:
    assert policy_revision({"a.toml": b"x"}) != policy_revision({"b.toml": b"x"})


# --------------------------------------------------------------------------- malformed files

CASES = [
    pytest.param(
        "sharing.toml",
        'id = "mechanism-review"',
        'id = "mechanism-reveiw"',
        'sharing.toml: rule[6].id: unknown rule "mechanism-reveiw"; known rules: mandate-scope',
        id="unknown-rule",
    ),
    pytest.param(
        "sharing.toml",
        "accept_assurance = true",
        'accept_assurance = "yes"',
        "sharing.toml: rule.no-death-penalty.params.accept_assurance: expected true or false, "
        'got the string "yes"',
        id="wrong-type",
    ),
    pytest.param(
        "sharing.toml",
        'reference = "Terms of reference, para. 12(b); ICCPR art. 14"\n',
        "",
        "sharing.toml: rule.fair-trial.reference: missing: every rule must cite its legal "
        "reference",
        id="missing-reference",
    ),
    pytest.param(
        "sharing.toml",
        'reference = "Terms of reference, para. 12(b); ICCPR art. 14"',
        'reference = "  "',
        "sharing.toml: rule.fair-trial.reference: must not be empty",
        id="empty-reference",
    ),
    pytest.param(
        "sharing.toml",
        'id = "provider-consent"\n',
        'id = "provider-consent"\non_fail = "withhold"\n',
        "sharing.toml: rule.provider-consent.on_fail: unknown key; expected one of: id, title, "
        "on_failure, reference, params, explanation",
        id="unknown-key-in-rule",
    ),
    pytest.param(
        "sharing.toml",
        "[policy]\n",
        'colour = "blue"\n\n[policy]\n',
        "sharing.toml: colour: unknown key; expected one of: policy, redaction, wording, rule",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "sharing.toml",
        'on_failure = "withhold"',
        'on_failure = "delete"',
        'sharing.toml: rule.provider-consent.on_failure: the string "delete" is not a failure '
        "action (withhold | redact | block_request | manual_review)",
        id="bad-failure-action",
    ),
    pytest.param(
        "sharing.toml",
        'on_failure = "withhold"',
        'on_failure = "redact"',
        'sharing.toml: rule.provider-consent.on_failure: "redact" makes no sense for this rule; '
        "use one of withhold | manual_review",
        id="failure-action-not-for-this-rule",
    ),
    pytest.param(
        "sharing.toml",
        'on_failure = "withhold"\n',
        "",
        "sharing.toml: rule.provider-consent.on_failure: missing; one of withhold | manual_review",
        id="missing-failure-action",
    ),
    pytest.param(
        "sharing.toml",
        'max_age = "730 days"',
        'max_age = "two years"',
        'sharing.toml: rule.fair-trial.params.max_age: "two years" is not a duration; write a '
        'positive whole number of days or weeks, e.g. "730 days" or "104 weeks"',
        id="bad-duration",
    ),
    pytest.param(
        "sharing.toml",
        'max_age = "730 days"',
        'max_age = "0 days"',
        'sharing.toml: rule.fair-trial.params.max_age: "0 days" is not a duration',
        id="zero-duration",
    ),
    pytest.param(
        "sharing.toml",
        'max_age = "730 days"',
        "max_age = 730",
        'sharing.toml: rule.fair-trial.params.max_age: expected a duration such as "730 days", '
        "got the integer 730",
        id="duration-as-number",
    ),
    pytest.param(
        "sharing.toml",
        'period = "within"',
        'period = "inside"',
        'sharing.toml: rule.mandate-scope.params.period: the string "inside" is not one of '
        "within | overlap",
        id="bad-choice",
    ),
    pytest.param(
        "sharing.toml",
        'purpose = "criminal_proceedings"',
        'purpose = "criminal_proceedings"\nstrict = true',
        "sharing.toml: rule.provider-consent.params.strict: unknown parameter; known: purpose",
        id="unknown-parameter",
    ),
    pytest.param(
        "sharing.toml",
        "was revoked on {recorded_on} ({scope}; consent {consent_code}): {reason}",
        "was revoked on {recorded_on} ({scope}; consent {consent_code}): {reasn}",
        "sharing.toml: rule.provider-consent.explanation.revoked: unknown placeholder {reasn}; "
        "this wording may use {authority}",
        id="unknown-placeholder",
    ),
    pytest.param(
        "sharing.toml",
        'none_at_risk = "No person at risk is named in this item."',
        'none_at_risk = "No person at risk is named in {item!r}."',
        "sharing.toml: rule.witness-protection.explanation.none_at_risk: placeholder {item} may "
        "not carry a format or conversion",
        id="placeholder-with-conversion",
    ),
    pytest.param(
        "sharing.toml",
        'none_at_risk = "No person at risk is named in this item."',
        'none_at_risk = "No person at risk is named in {item.title}."',
        "sharing.toml: rule.witness-protection.explanation.none_at_risk: placeholder "
        "{item.title} must be a plain name such as {rfa}",
        id="placeholder-attribute",
    ),
    pytest.param(
        "sharing.toml",
        'none_at_risk = "No person at risk is named in this item."',
        'none_at_risk = "No person at risk is named in this item}."',
        "sharing.toml: rule.witness-protection.explanation.none_at_risk: not a valid wording",
        id="broken-braces",
    ),
    pytest.param(
        "sharing.toml",
        'clear = "No redaction mark of the Mechanism applies to this item."\n',
        "",
        "sharing.toml: rule.mechanism-review.explanation.clear: missing: the wording for when "
        "no redaction mark applies",
        id="missing-explanation",
    ),
    pytest.param(
        "sharing.toml",
        'clear = "No redaction mark',
        'cleared = "Cleared."\nclear = "No redaction mark',
        "sharing.toml: rule.mechanism-review.explanation.cleared: this rule reports no such "
        "outcome; it reports: clear, cleared_as_is, marks_apply, pending, not_cleared",
        id="unknown-explanation",
    ),
    pytest.param(
        "sharing.toml",
        'withhold = "The item is withheld."\n',
        "",
        "sharing.toml: wording.withhold: missing",
        id="missing-wording",
    ),
    pytest.param(
        "sharing.toml",
        'cannot_redact = "Redaction cannot make the item safe ({why}), so it is withheld."',
        'cannot_redact = "Redaction cannot make {item} safe ({why}), so it is withheld."',
        "sharing.toml: wording.cannot_redact: unknown placeholder {item}; this wording may use "
        "{authority}, {authority_code}, {rfa}, {why}",
        id="wording-placeholder",
    ),
    pytest.param(
        "sharing.toml",
        'id = "mechanism-sharing-rules"',
        'id = "Mechanism Rules"',
        "sharing.toml: policy.id: expected an identifier of lowercase letters, digits, '.', '_' "
        "or '-', got the string \"Mechanism Rules\"",
        id="bad-policy-id",
    ),
    pytest.param(
        "sharing.toml",
        'redactable_media_types = ["text/plain",',
        'redactable_media_types = ["plain text",',
        'sharing.toml: redaction.redactable_media_types: the string "plain text" is not a media '
        "type such as application/pdf",
        id="bad-media-type",
    ),
    pytest.param(
        "sharing.toml",
        'title = "Sharing rules of the Mechanism"',
        'title = "Sharing rules of the Mechanism',
        "sharing.toml: (TOML syntax): ",
        id="toml-syntax",
    ),
    pytest.param(
        "mandate.toml",
        "period_start = 2023-05-01",
        'period_start = "2023-05-01"',
        "mandate.toml: mandate.period_start: expected a date such as 2023-05-01 (no quotes), got "
        'the string "2023-05-01"',
        id="date-as-string",
    ),
    pytest.param(
        "mandate.toml",
        "# period_end = 2025-12-31",
        "period_end = 2023-04-30",
        "mandate.toml: mandate.period_end: is before period_start (2023-05-01)",
        id="period-end-before-start",
    ),
    pytest.param(
        "mandate.toml",
        'situation = "Armed conflict in the Oskaran Highlands, Republic of Valdoria"\n',
        "",
        "mandate.toml: mandate.situation: missing",
        id="missing-situation",
    ),
    pytest.param(
        "mandate.toml",
        '    "Genocide by killing",',
        '    "Genocide by killing",\n    "war crime of  TORTURE",',
        'mandate.toml: crime_category.genocide.offences[2]: "war crime of  TORTURE" is listed '
        "twice (also in crime_category.war_crimes)",
        id="duplicate-offence",
    ),
    pytest.param(
        "mandate.toml",
        "[mandate]",
        'deployment = "x"\n\n[mandate]',
        "mandate.toml: deployment: unknown key; expected one of: mandate, crime_category",
        id="unknown-key-in-mandate",
    ),
    pytest.param(
        "mandate.toml",
        'id = "genocide"',
        'id = "war_crimes"',
        'mandate.toml: crime_category[3].id: "war_crimes" is used by another category',
        id="duplicate-category",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "expected"), CASES)
def test_each_mistake_has_its_own_clear_message(
    tmp_path: Path, name: str, old: str, new: str, expected: str
) -> None:
    directory = _copy(tmp_path)
    _edit(directory, name, old, new)
    problems = _problems(directory)
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith(str(directory / name) + ": ")


def test_a_missing_mandatory_rule_is_named(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    _without_rule(directory, "fair-trial")
    assert _problems(directory) == [
        f"{directory / 'sharing.toml'}: rule: the terms of reference require rule "
        '"fair-trial"; add a [[rule]] with id = "fair-trial"'
    ]


def test_an_optional_rule_may_be_left_out(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    _without_rule(directory, "mechanism-review")
    _without_rule(directory, "mandate-scope")
    policy = load_policy(directory)
    assert [rule.id for rule in policy.rules] == [
        "fair-trial",
        "no-death-penalty",
        "provider-consent",
        "witness-protection",
    ]


def test_a_rule_listed_twice_is_refused(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    text = (directory / "sharing.toml").read_text()
    block = re.search(r'\[\[rule\]\]\nid = "mechanism-review".*', text, re.S)
    assert block
    (directory / "sharing.toml").write_text(text + "\n" + block.group(0))
    problems = _problems(directory)
    assert problems == [
        f'{directory / "sharing.toml"}: rule[7].id: rule "mechanism-review" is already listed '
        "as rule[6]"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    _edit(directory, "sharing.toml", 'on_failure = "withhold"', 'on_failure = "delete"')
    _edit(directory, "sharing.toml", 'max_age = "730 days"', 'max_age = "soon"')
    _edit(directory, "mandate.toml", "period_start = 2023-05-01", "period_start = 2023")
    problems = _problems(directory)
    assert len(problems) == 3
    keys = [line.split(": ")[1] for line in problems]
    assert keys == [
        "mandate.period_start",
        "rule.fair-trial.params.max_age",
        "rule.provider-consent.on_failure",
    ]


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / "mandate.toml").unlink()
    (directory / "extra.toml").write_text("x = 1\n")
    (directory / "notes.txt").write_text("not a policy file, ignored\n")
    assert _problems(directory) == [
        f"{directory / 'mandate.toml'}: (file): missing",
        f"{directory / 'extra.toml'}: (file): unknown policy file; the policy is sharing.toml "
        "and mandate.toml",
    ]
    with pytest.raises(PolicyError, match=r"nowhere: \(directory\): not found"):
        load_policy(tmp_path / "nowhere")


def test_files_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    (directory / "mandate.toml").write_bytes(b"\xff\xfe[mandate]\n")
    assert _problems(directory) == [f"{directory / 'mandate.toml'}: (file): not UTF-8 text"]


def test_wrong_shapes_are_refused_not_crashed_on(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    _edit(directory, "sharing.toml", "[policy]\n", "wording = 3\n\n[policy]\n")
    _edit(directory, "sharing.toml", "[wording]", "[wordingx]")
    problems = _problems(directory)
    assert any(": wording: expected a table, got the integer 3" in p for p in problems)
    sources = {name: (POLICIES / name).read_bytes() for name in POLICY_FILES}
    sources["sharing.toml"] = b'rule = "everything"\n'
    with pytest.raises(PolicyError) as caught:
        parse_policy(sources)
    text = str(caught.value)
    assert (
        'sharing.toml: rule: expected one or more [[rule]] tables, got the string "everything"'
        in text
    )
    assert "sharing.toml: policy: missing; add a [policy] table" in text
