"""A stored decision laid out for people: header, request rules, the items x rules matrix.

Plain data, no Flask: the decision page and the decision PDF render the same
:class:`DecisionView`. Every cell of the matrix carries its status as *text* ("✓ pass",
"✗ fail", "redact", "review") and a CSS modifier for colour, so colour is never the only
signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from portal.eligibility.models import Decision
from portal.eligibility.policy import (
    ITEM_OUTCOMES,
    Change,
    EvaluationResult,
    ItemResult,
    RuleColumn,
)
from portal.eligibility.policy.engine import RuleResult
from portal.pages import labels

__all__ = [
    "ITEM_OUTCOME_LABELS",
    "REQUEST_OUTCOME_LABELS",
    "Cell",
    "DecisionView",
    "Row",
    "build_decision_view",
    "cell_for",
]

ITEM_OUTCOME_LABELS = labels.ITEM_OUTCOME
REQUEST_OUTCOME_LABELS = labels.REQUEST_OUTCOME


@dataclass(frozen=True)
class Cell:
    """One rule's result as shown: ``label`` is the status in words, ``tone`` the CSS
    modifier (``pass``, ``fail``, ``redact``, ``review``, ``na``)."""

    rule: str
    label: str
    tone: str
    explanation: str


@dataclass(frozen=True)
class Row:
    item: ItemResult
    outcome_label: str
    cells: tuple[Cell, ...]  # one per item rule column, in column order


@dataclass(frozen=True)
class DecisionView:
    decision_id: str
    rfa_id: int
    result: EvaluationResult
    taken_at: datetime
    requested_by: str
    snapshot_sha256: str
    outcome_label: str
    request_rules: tuple[tuple[RuleColumn, Cell], ...]
    columns: tuple[RuleColumn, ...]  # the item rules
    counts: tuple[tuple[str, str, int], ...]  # (outcome, label, count) for every item outcome
    outcome_filter: str | None
    rows: tuple[Row, ...]  # the rows shown (filtered, and paged when asked)
    matching: int  # rows matching the filter, before paging
    changes: tuple[str, ...] | None  # None: the first decision of the request


def cell_for(result: RuleResult | None, rule_id: str) -> Cell:
    """The text and tone of one rule result (``None``: the rule did not apply here)."""
    if result is None:
        return Cell(rule_id, "\N{EN DASH} not applied", "na", "")
    if result.status == "pass":
        return Cell(result.rule, "\N{CHECK MARK} pass", "pass", result.explanation)
    if result.status == "not_applicable":
        return Cell(result.rule, "\N{EN DASH} not applicable", "na", result.explanation)
    if result.effect == "share_redacted":
        return Cell(result.rule, "redact", "redact", result.explanation)
    if result.effect == "needs_review":
        return Cell(result.rule, "review", "review", result.explanation)
    if result.action == "block_request":
        return Cell(result.rule, "\N{BALLOT X} fail: blocks", "fail", result.explanation)
    return Cell(result.rule, "\N{BALLOT X} fail", "fail", result.explanation)


def _row(item: ItemResult, columns: Sequence[RuleColumn]) -> Row:
    by_rule = {result.rule: result for result in item.results}
    return Row(
        item=item,
        outcome_label=ITEM_OUTCOME_LABELS.get(item.outcome, item.outcome),
        cells=tuple(cell_for(by_rule.get(column.id), column.id) for column in columns),
    )


def build_decision_view(
    decision: Decision,
    result: EvaluationResult,
    *,
    requested_by: str,
    changes: Sequence[Change] | None,
    outcome_filter: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> DecisionView:
    """Lay out ``decision`` (whose stored results are ``result``).

    ``outcome_filter`` keeps the items with that outcome (it must be one of
    :data:`ITEM_OUTCOMES`); ``offset``/``limit`` page the rows that match.
    """
    if outcome_filter is not None and outcome_filter not in ITEM_OUTCOMES:
        raise ValueError(f"unknown item outcome {outcome_filter!r}")
    columns = tuple(column for column in result.rules if column.scope == "item")
    by_rule = {r.rule: r for r in result.request_results}
    request_rules = tuple(
        (column, cell_for(by_rule.get(column.id), column.id))
        for column in result.rules
        if column.scope == "request"
    )
    matching = [
        item for item in result.items if outcome_filter is None or item.outcome == outcome_filter
    ]
    shown = matching[offset:] if limit is None else matching[offset : offset + limit]
    return DecisionView(
        decision_id=decision.id,
        rfa_id=decision.rfa_id,
        result=result,
        taken_at=decision.created_at,
        requested_by=requested_by,
        snapshot_sha256=decision.snapshot_sha256,
        outcome_label=REQUEST_OUTCOME_LABELS.get(result.outcome, result.outcome),
        request_rules=request_rules,
        columns=columns,
        counts=tuple(
            (outcome, ITEM_OUTCOME_LABELS[outcome], result.counts.get(outcome, 0))
            for outcome in ITEM_OUTCOMES
        ),
        outcome_filter=outcome_filter,
        rows=tuple(_row(item, columns) for item in shown),
        matching=len(matching),
        changes=None if changes is None else tuple(change.sentence() for change in changes),
    )
