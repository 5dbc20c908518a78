"""What changed between two evaluations of the same request ("since the previous decision").

Rule results are compared on substance — status, code, action and the facts quoted — not on
wording, so a reworded policy does not make every row look changed (the policy revision
change is reported once).
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.eligibility.policy.engine import EvaluationResult, RuleResult
from portal.pages import labels

__all__ = ["CHANGE_KINDS", "Change", "diff_results"]

CHANGE_KINDS = (
    "policy",  # another policy revision or engine version
    "outcome",  # the request's outcome
    "request_rule",  # a request rule's result
    "item_added",
    "item_removed",
    "item_outcome",
    "item_rule",  # an item rule's result
)

#: Changes whose values are outcomes: said in words ("from Partially eligible to Eligible").
_VALUE_TABLES = {
    "outcome": "request_outcome",
    "item_added": "item_outcome",
    "item_removed": "item_outcome",
    "item_outcome": "item_outcome",
}


@dataclass(frozen=True)
class Change:
    kind: str
    item: str | None  # item code, for item changes
    rule: str | None  # rule id, for rule changes
    before: str | None
    after: str | None
    explanation: str  # the new explanation (the old one for a removed item)

    def sentence(self) -> str:
        """One line for people, e.g. ``ITM-0006: from Share to Withhold. Consent of ...``."""
        subject = ", ".join(part for part in (self.item, self.rule) if part) or {
            "policy": "Policy",
            "outcome": "Request",
            "request_rule": "Request",
        }.get(self.kind, "Request")
        table = _VALUE_TABLES.get(self.kind)
        if table is None:
            change = f"{self.before or 'none'} -> {self.after or 'none'}"
        else:
            change = labels.transition(table, self.before, self.after)
        text = f"{subject}: {change}."
        return f"{text} {self.explanation}" if self.explanation else text


def _label(result: RuleResult) -> str:
    if result.action is None:
        return f"{result.status} ({result.code})"
    return f"{result.status} ({result.code}, {result.action})"


def _substance(result: RuleResult) -> tuple[object, ...]:
    return (result.status, result.code, result.action, result.facts)


def _rules(
    kind: str, item: str | None, old: tuple[RuleResult, ...], new: tuple[RuleResult, ...]
) -> list[Change]:
    before = {r.rule: r for r in old}
    changes: list[Change] = []
    for result in new:
        previous = before.pop(result.rule, None)
        if previous is None or _substance(previous) != _substance(result):
            was = None if previous is None else _label(previous)
            changes.append(Change(kind, item, result.rule, was, _label(result), result.explanation))
    for rule_id, previous in before.items():
        gone = "Rule no longer applied."
        changes.append(Change(kind, item, rule_id, _label(previous), None, gone))
    return changes


def diff_results(old: EvaluationResult, new: EvaluationResult) -> list[Change]:
    """Changes from ``old`` to ``new``: policy, outcome, request rules, then item by item."""
    changes: list[Change] = []
    if (old.policy_revision, old.engine_version) != (new.policy_revision, new.engine_version):
        changes.append(
            Change(
                "policy",
                None,
                None,
                f"{old.policy_revision[:12]} (engine {old.engine_version})",
                f"{new.policy_revision[:12]} (engine {new.engine_version})",
                "",
            )
        )
    if old.outcome != new.outcome:
        changes.append(Change("outcome", None, None, old.outcome, new.outcome, new.summary))
    changes.extend(_rules("request_rule", None, old.request_results, new.request_results))
    previous = {item.item_id: item for item in old.items}
    for item in new.items:
        before = previous.pop(item.item_id, None)
        if before is None:
            changes.append(
                Change("item_added", item.item, None, None, item.outcome, item.explanation)
            )
            continue
        if before.outcome != item.outcome:
            changes.append(
                Change(
                    "item_outcome", item.item, None, before.outcome, item.outcome, item.explanation
                )
            )
        changes.extend(_rules("item_rule", item.item, before.results, item.results))
    for before in previous.values():
        gone = "No longer a candidate."
        changes.append(Change("item_removed", before.item, None, before.outcome, None, gone))
    return changes
