"""The engine: ``evaluate(policy, snapshot)``, pure — no Flask, no database, no clock.

How results combine (also in ``policies/README.md``):

- Each rule's finding has an *effect* on an item. ``pass`` and ``not_applicable`` →
  ``share``; ``redact`` → ``share_redacted``; ``fail`` → the rule's ``on_failure``:
  ``withhold`` → ``withhold``, ``redact`` → ``share_redacted``, ``manual_review`` →
  ``needs_review``, ``block_request`` → ``withhold`` *and* the request is blocked. A
  redaction the item cannot take (its media type, or a person at risk protected neither by a
  mark nor by the register of protected identifiers) becomes ``withhold``.
- Request rules (mandate, fair trial, death penalty) have the same effect on every item.
- An item's outcome is its most severe effect: ``withhold`` > ``needs_review`` >
  ``share_redacted`` > ``share``.
- The request's outcome: ``ineligible`` when a rule blocks it; otherwise ``needs_review``
  when any item needs review (or no item was selected); ``eligible`` when every item is
  shared (redacted or not); ``ineligible`` when none is; ``partially_eligible`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import repeat
from operator import add, mul
from types import MappingProxyType
from typing import Any, NamedTuple

from portal.canonical import format_datetime
from portal.eligibility.policy.gcpause import paused_gc
from portal.eligibility.policy.inputs import ItemFacts, Snapshot
from portal.eligibility.policy.jsonread import JsonReader, SnapshotFormatError
from portal.eligibility.policy.rules import Finding, ItemCheck, RuleContext
from portal.eligibility.policy.schema import Policy, RulePolicy

__all__ = [
    "ENGINE_VERSION",
    "ITEM_OUTCOMES",
    "REQUEST_OUTCOMES",
    "RESULT_FORMAT",
    "EvaluationResult",
    "ItemResult",
    "RuleColumn",
    "RuleResult",
    "evaluate",
]

#: Changes whenever the same policy and snapshot could give different results, or a rule starts
#: reading something new (1.1.0: witness protection counts the register of protected
#: identifiers, from snapshot format 2; format 1 snapshots give the results of 1.0.0;
#: 1.1.1: a consent's "valid until" names its last valid day, not the exclusive end).
ENGINE_VERSION = "1.1.1"
RESULT_FORMAT = 1
#: Item outcomes, least to most severe.
ITEM_OUTCOMES = ("share", "share_redacted", "needs_review", "withhold")
REQUEST_OUTCOMES = ("eligible", "partially_eligible", "ineligible", "needs_review")
_RANK = {outcome: rank for rank, outcome in enumerate(ITEM_OUTCOMES)}
_ITEM_ONLY = frozenset({"item", "item_title"})
_QUOTABLE = _ITEM_ONLY | {"provider"}
_ACTION_EFFECT = {
    "withhold": "withhold",
    "redact": "share_redacted",
    "manual_review": "needs_review",
    "block_request": "withhold",
}
_COUNT_WORDS = {
    "share": "shared",
    "share_redacted": "shared redacted",
    "needs_review": "need review",
    "withhold": "withheld",
}


class RuleResult(NamedTuple):
    """One rule's result for the request or one item.

    ``action`` is what the failure did (``None`` when the rule holds); ``effect`` is the
    outcome it pushes the item towards; ``facts`` are what the wording quotes.
    """

    rule: str
    status: str
    code: str
    action: str | None
    effect: str
    explanation: str
    facts: tuple[tuple[str, str], ...]
    marks: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "status": self.status,
            "code": self.code,
            "action": self.action,
            "effect": self.effect,
            "explanation": self.explanation,
            "facts": dict(self.facts),
            "marks": list(self.marks),
        }


class ItemResult(NamedTuple):
    item_id: int
    item: str  # the item's code
    title: str
    provider: str
    outcome: str
    explanation: str
    marks: tuple[str, ...]  # redaction marks to apply when sharing
    results: tuple[RuleResult, ...]  # item rules only; request rules apply to every item


@dataclass(frozen=True)
class RuleColumn:
    """A rule as applied, for the columns of the items x rules matrix."""

    id: str
    title: str
    scope: str
    on_failure: str
    reference: str


@dataclass(frozen=True)
class EvaluationResult:
    engine_version: str
    policy_id: str
    policy_revision: str
    policy_files: Mapping[str, str]
    taken_at: datetime
    rfa_id: int
    rfa: str
    authority: str
    authority_code: str
    outcome: str
    summary: str
    counts: Mapping[str, int]
    blocked_by: tuple[str, ...]
    rules: tuple[RuleColumn, ...]
    request_results: tuple[RuleResult, ...]
    items: tuple[ItemResult, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RESULT_FORMAT,
            "engine_version": self.engine_version,
            "policy": {
                "id": self.policy_id,
                "revision": self.policy_revision,
                "files": dict(self.policy_files),
            },
            "taken_at": format_datetime(self.taken_at),
            "request": {"id": self.rfa_id, "code": self.rfa},
            "authority": {"code": self.authority_code, "name": self.authority},
            "outcome": self.outcome,
            "summary": self.summary,
            "counts": dict(self.counts),
            "blocked_by": list(self.blocked_by),
            "rules": [column.__dict__ for column in self.rules],
            **_results_json(self.request_results, self.items),
        }

    @classmethod
    def from_json(cls, data: object) -> EvaluationResult:
        root = JsonReader(data, "$")
        if root.integer("format") != RESULT_FORMAT:
            raise SnapshotFormatError(f"$.format: results format {root.integer('format')} unknown")
        policy, request, authority = (
            root.table("policy"),
            root.table("request"),
            root.table("authority"),
        )
        files = policy.table("files")
        counts = root.table("counts")
        if root.texts("item_fields") != list(ItemResult._fields):
            raise SnapshotFormatError("$.item_fields: not the layout of this results format")
        table = [_rule_result(r) for r in root.tables("results")]
        return cls(
            engine_version=root.text("engine_version"),
            policy_id=policy.text("id"),
            policy_revision=policy.text("revision"),
            policy_files=MappingProxyType({k: files.text(k) for k in files.data}),
            taken_at=root.moment("taken_at"),
            rfa_id=request.integer("id"),
            rfa=request.text("code"),
            authority=authority.text("name"),
            authority_code=authority.text("code"),
            outcome=root.text("outcome"),
            summary=root.text("summary"),
            counts=MappingProxyType({k: counts.integer(k) for k in counts.data}),
            blocked_by=tuple(root.texts("blocked_by")),
            rules=tuple(
                RuleColumn(
                    id=r.text("id"),
                    title=r.text("title"),
                    scope=r.text("scope"),
                    on_failure=r.text("on_failure"),
                    reference=r.text("reference"),
                )
                for r in root.tables("rules")
            ),
            request_results=_refs(root, "request_results", table),
            items=tuple(
                ItemResult(
                    item_id=r.integer(0),
                    item=r.text(1),
                    title=r.text(2),
                    provider=r.text(3),
                    outcome=r.text(4),
                    explanation=r.text(5),
                    marks=tuple(r.texts(6)),
                    results=_refs(r, 7, table),
                )
                for r in root.rows("items", len(ItemResult._fields))
            ),
        )

    def item(self, code: str) -> ItemResult:
        for item in self.items:
            if item.item == code:
                return item
        raise KeyError(code)

    def request_result(self, rule_id: str) -> RuleResult:
        for result in self.request_results:
            if result.rule == rule_id:
                return result
        raise KeyError(rule_id)


def _results_json(
    request_results: tuple[RuleResult, ...], items: tuple[ItemResult, ...]
) -> dict[str, Any]:
    """Rule results stored once in ``results`` and referred to by index: most are shared
    by many items (e.g. one standing consent), so the record stays small."""
    table: list[dict[str, Any]] = []
    by_id: dict[int, int] = {}
    by_value: dict[RuleResult, int] = {}

    def ref(result: RuleResult) -> int:
        index = by_id.get(id(result))  # results are alive in ``items``: ids are stable
        if index is None:
            index = by_value.get(result)
            if index is None:
                index = by_value[result] = len(table)
                table.append(result.to_json())
            by_id[id(result)] = index
        return index

    head = [ref(r) for r in request_results]
    # Rows of ItemResult's fields, "results" holding indexes into the table. Items with
    # the same results share one tuple of them (see _item_results): one list of indexes.
    rows: list[tuple[object, ...]] = []
    append = rows.append
    refs: dict[int, list[int]] = {}
    for item in items:
        results = item.results
        indexes = refs.get(id(results))
        if indexes is None:
            indexes = refs[id(results)] = [ref(r) for r in results]
        append((*item[:7], indexes))
    return {
        "request_results": head,
        "item_fields": list(ItemResult._fields),
        "items": rows,
        "results": table,
    }


def _refs(reader: JsonReader, key: str | int, table: list[RuleResult]) -> tuple[RuleResult, ...]:
    indexes = reader.integers(key)
    if any(not 0 <= index < len(table) for index in indexes):
        raise SnapshotFormatError(f"{reader.path}: refers to a result that is not stored")
    return tuple(table[index] for index in indexes)


def _rule_result(r: JsonReader) -> RuleResult:
    facts = r.table("facts")
    return RuleResult(
        rule=r.text("rule"),
        status=r.text("status"),
        code=r.text("code"),
        action=r.opt_text("action"),
        effect=r.text("effect"),
        explanation=r.text("explanation"),
        facts=tuple((k, facts.text(k)) for k in facts.data),
        marks=tuple(r.texts("marks")),
    )


# --- evaluation ------------------------------------------------------------------------------


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


def _then(follow: str) -> str:
    """What a consequence adds after a rule's own sentence."""
    return f" {_sentence(follow)}" if follow else ""


class _Explainer:
    """Turns findings into results: effect, action and the wording (with its consequence)."""

    def __init__(self, policy: Policy, common: Mapping[str, str]) -> None:
        self.policy = policy
        self.common = dict(common)
        self.follow = {
            key: _then(template.render(self.common))
            for key, template in policy.wording.items()
            if key != "cannot_redact"
        }

    def result(
        self, rule: RulePolicy, finding: Finding, values: Mapping[str, str], *, request: bool
    ) -> RuleResult:
        status, code, found, marks, redactable, why_not, note = finding
        action, effect, follow = None, "share", ""
        if status == "redact":
            action, effect, follow = "redact", "share_redacted", self.follow["redact"]
        elif status == "fail":
            action = rule.on_failure
            effect = _ACTION_EFFECT[action]
            follow = self.follow["withhold_all" if request and action == "withhold" else action]
        if effect == "share_redacted" and not redactable:
            action, effect = "withhold", "withhold"
            follow = _then(
                self.policy.wording["cannot_redact"].render({**self.common, "why": why_not})
            )
        quoted = dict(found)
        quoted.update(values)
        text = _sentence(rule.explanations[code].render(quoted)) + _then(note) + follow
        facts = tuple(sorted(found))  # the order they take in stored JSON
        return RuleResult(rule.id, status, code, action, effect, text, facts, marks)


def evaluate(policy: Policy, snapshot: Snapshot) -> EvaluationResult:
    """Apply every rule of ``policy`` to ``snapshot`` (see the module docstring)."""
    with paused_gc():
        return _evaluate(policy, snapshot)


def _evaluate(policy: Policy, snapshot: Snapshot) -> EvaluationResult:
    authority, request = snapshot.authority, snapshot.request
    common = {"authority": authority.name, "authority_code": authority.code, "rfa": request.code}
    explainer = _Explainer(policy, common)

    def context(rule: RulePolicy) -> RuleContext:
        return RuleContext(snapshot, rule.params, policy.mandate, policy.redactable_media_types)

    request_results: list[RuleResult] = []
    item_rules: list[tuple[RulePolicy, ItemCheck]] = []
    for rule in policy.rules:
        if rule.spec.request_check is not None:
            finding = rule.spec.request_check(context(rule))
            request_results.append(explainer.result(rule, finding, common, request=True))
        elif rule.spec.item_check is not None:
            item_rules.append((rule, rule.spec.item_check(context(rule))))
    blocked_by = tuple(r.rule for r in request_results if r.action == "block_request")
    floor = max((_RANK[r.effect] for r in request_results), default=0)
    decisive = tuple(r for r in request_results if r.effect != "share")

    items = _item_results(snapshot, item_rules, explainer, _Combiner(floor, decisive))
    counts = dict.fromkeys(ITEM_OUTCOMES, 0)
    for result in items:
        counts[result.outcome] += 1
    outcome = _request_outcome(blocked_by, counts, len(items))
    return EvaluationResult(
        engine_version=ENGINE_VERSION,
        policy_id=policy.id,
        policy_revision=policy.revision,
        policy_files=policy.sources,
        taken_at=snapshot.taken_at,
        rfa_id=request.id,
        rfa=request.code,
        authority=authority.name,
        authority_code=authority.code,
        outcome=outcome,
        summary=_summary(policy, outcome, blocked_by, counts, len(items)),
        counts=MappingProxyType(counts),
        blocked_by=blocked_by,
        rules=tuple(
            RuleColumn(r.id, r.title, r.scope, r.on_failure, r.reference) for r in policy.rules
        ),
        request_results=tuple(request_results),
        items=tuple(items),
    )


class _Column(NamedTuple):
    """One item rule over all items: each distinct result once, and per item its index."""

    table: list[RuleResult]
    indexes: list[int]


def _column(
    explainer: _Explainer,
    rule: RulePolicy,
    findings: list[Finding],
    items: tuple[ItemFacts, ...],
    providers: list[str],
    slots: list[int],
) -> _Column:
    """Render each distinct result of ``rule`` once.

    Rules return the very same finding object for items in the same situation (every
    item of a provider under one standing consent, every item naming no one, ...), so a
    result is keyed by the finding's identity (cheap, where hashing its facts for every
    item would not be) — and by the provider or the item only when the wording quotes
    them. ``findings`` stays alive meanwhile, so no id is reused. ``slots`` numbers each
    item's provider (0, 1, ...).
    """
    fields = frozenset().union(*(t.fields for t in rule.explanations.values()))
    keys: Iterable[int]
    if fields & _ITEM_ONLY:
        keys = range(len(items))
    elif "provider" in fields:  # id * count + provider's number: unique, and cheap to hash
        count = max(slots, default=0) + 1
        keys = map(add, map(mul, map(id, findings), repeat(count)), slots)
    else:
        keys = map(id, findings)
    keys = list(keys)
    # Distinct keys in the order first seen, and the first item having each (in C).
    index_of: dict[int, int] = dict.fromkeys(keys, 0)
    first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
    common = explainer.common
    quotes = bool(fields & _QUOTABLE)
    table: list[RuleResult] = []
    for index, key in enumerate(index_of):
        position = first[key]
        values = common
        if quotes:
            item = items[position]
            values = {
                **common,
                "item": item.code,
                "item_title": item.title,
                "provider": providers[position],
            }
        table.append(explainer.result(rule, findings[position], values, request=False))
        index_of[key] = index
    indexes = list(map(index_of.__getitem__, keys))
    return _Column(table, indexes)


_Combined = tuple[str, str, tuple[str, ...], tuple[RuleResult, ...]]


class _Combiner:
    """Combines one item's rule results into its outcome, explanation and marks."""

    def __init__(self, floor: int, decisive: tuple[RuleResult, ...]) -> None:
        self.floor = floor
        self.decisive = decisive

    def __call__(self, results: tuple[RuleResult, ...]) -> _Combined:
        worst = max([self.floor, *[_RANK[r.effect] for r in results]])
        outcome = ITEM_OUTCOMES[worst]
        if outcome == "share":
            explanation = " ".join([r.explanation for r in results])
        else:
            explanation = " ".join(
                [r.explanation for r in (*self.decisive, *results) if r.effect == outcome]
            )
        marks: tuple[str, ...] = ()
        if outcome in ("share_redacted", "needs_review"):
            marks = tuple(sorted({m for r in results if r.action == "redact" for m in r.marks}))
        return outcome, explanation, marks, results


def _item_results(
    snapshot: Snapshot,
    item_rules: list[tuple[RulePolicy, ItemCheck]],
    explainer: _Explainer,
    combine: _Combiner,
) -> list[ItemResult]:
    """Every item's result: rule by rule over all items (``map`` is the cheapest loop),
    then item by item; items with the same results share one combination."""
    items = snapshot.items
    names = {provider_id: p.name for provider_id, p in snapshot.providers.items()}
    providers = [names[item.provider_id] for item in items]
    numbers = {provider_id: number for number, provider_id in enumerate(names)}
    slots = [numbers[item.provider_id] for item in items]
    columns = [
        _column(explainer, rule, list(map(check, items)), items, providers, slots)
        for rule, check in item_rules
    ]
    tables = [column.table for column in columns]
    keys: list[tuple[int, ...]] = (
        list(zip(*[c.indexes for c in columns], strict=True)) if columns else [()] * len(items)
    )
    combined: dict[tuple[int, ...], _Combined] = {}
    results: list[ItemResult] = []
    append = results.append
    for item, provider, key in zip(items, providers, keys, strict=True):
        combo = combined.get(key)
        if combo is None:
            picked = tuple([table[index] for table, index in zip(tables, key, strict=True)])
            combo = combined[key] = combine(picked)
        append(_new_item_result((item.id, item.code, item.title, provider, *combo)))
    return results


# ItemResult(...) without the Python-level __new__ of a NamedTuple
_new_item_result = partial(tuple.__new__, ItemResult)


def _request_outcome(blocked_by: tuple[str, ...], counts: Mapping[str, int], total: int) -> str:
    if blocked_by:
        return "ineligible"
    if total == 0 or counts["needs_review"]:
        return "needs_review"
    shared = counts["share"] + counts["share_redacted"]
    if shared == total:
        return "eligible"
    return "ineligible" if shared == 0 else "partially_eligible"


def _summary(
    policy: Policy,
    outcome: str,
    blocked_by: tuple[str, ...],
    counts: Mapping[str, int],
    total: int,
) -> str:
    if blocked_by:
        titles = ", ".join(policy.rule(rule_id).title for rule_id in blocked_by)
        return f"Ineligible: the request is blocked by {titles}; nothing can be shared."
    if total == 0:
        return "No candidate item has been selected for this request yet."
    parts = [f"{counts[o]} {_COUNT_WORDS[o]}" for o in ITEM_OUTCOMES if counts[o]]
    noun = "item" if total == 1 else "items"
    label = outcome.replace("_", " ").capitalize()
    return f"{label}: {total} candidate {noun}; {', '.join(parts)}."
