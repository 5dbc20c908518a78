"""The engine: ``evaluate(policy, snapshot)``, pure — no Flask, no database, no clock.

How results combine (also in ``policies/README.md``):

- Each rule's finding has an *effect* on an item. ``pass`` and ``not_applicable`` →
  ``share``; ``redact`` → ``share_redacted``; ``fail`` → the rule's ``on_failure``:
  ``withhold`` → ``withhold``, ``redact`` → ``share_redacted``, ``manual_review`` →
  ``needs_review``, ``block_request`` → ``withhold`` *and* the request is blocked. A
  redaction the item cannot take (its media type, or a person at risk without a mark)
  becomes ``withhold``.
- Request rules (mandate, fair trial, death penalty) have the same effect on every item.
- An item's outcome is its most severe effect: ``withhold`` > ``needs_review`` >
  ``share_redacted`` > ``share``.
- The request's outcome: ``ineligible`` when a rule blocks it; otherwise ``needs_review``
  when any item needs review (or no item was selected); ``eligible`` when every item is
  shared (redacted or not); ``ineligible`` when none is; ``partially_eligible`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from portal.canonical import format_datetime
from portal.policy.gcpause import paused_gc
from portal.policy.inputs import ItemFacts, Snapshot
from portal.policy.jsonread import JsonReader, SnapshotFormatError
from portal.policy.rules import Finding, ItemCheck, RuleContext
from portal.policy.schema import Policy, RulePolicy

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

#: Changes whenever the same policy and snapshot could give different results.
ENGINE_VERSION = "1.0.0"
RESULT_FORMAT = 1
#: Item outcomes, least to most severe.
ITEM_OUTCOMES = ("share", "share_redacted", "needs_review", "withhold")
REQUEST_OUTCOMES = ("eligible", "partially_eligible", "ineligible", "needs_review")
_RANK = {outcome: rank for rank, outcome in enumerate(ITEM_OUTCOMES)}
_ITEM_ONLY = frozenset({"item", "item_title"})
_CACHE_LIMIT = 50_000
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

    return {
        "request_results": [ref(r) for r in request_results],
        # Rows of ItemResult's fields, "results" holding indexes into the table.
        "item_fields": list(ItemResult._fields),
        "items": [(*item[:7], [ref(r) for r in item.results]) for item in items],
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


class _Explainer:
    """Turns findings into results: effect, action and the wording (with its consequence)."""

    def __init__(self, policy: Policy, common: Mapping[str, str]) -> None:
        self.policy = policy
        self.common = dict(common)
        # Results by (rule, finding identity, quoted item/provider): see _Combiner. Each
        # entry keeps its finding alive, so an id is never reused while it is a key.
        self.cache: dict[object, tuple[Finding, RuleResult]] = {}
        self.consequence = {
            key: template.render(self.common)
            for key, template in policy.wording.items()
            if key != "cannot_redact"
        }

    def result(
        self, rule: RulePolicy, finding: Finding, values: Mapping[str, str], *, request: bool
    ) -> RuleResult:
        status, action, effect = finding.status, None, "share"
        follow = ""
        if status == "redact":
            action, effect, follow = "redact", "share_redacted", self.consequence["redact"]
        elif status == "fail":
            action = rule.on_failure
            effect = _ACTION_EFFECT[action]
            key = "withhold_all" if request and action == "withhold" else action
            follow = self.consequence[key]
        if effect == "share_redacted" and not finding.redactable:
            action, effect = "withhold", "withhold"
            follow = self.policy.wording["cannot_redact"].render(
                {**self.common, "why": finding.why_not}
            )
        quoted = dict(finding.facts)
        quoted.update(values)
        text = _sentence(rule.explanations[finding.code].render(quoted))
        if follow:
            text = f"{text} {_sentence(follow)}"
        facts = tuple(sorted(finding.facts))  # the order they take in stored JSON
        return RuleResult(rule.id, status, finding.code, action, effect, text, facts, finding.marks)


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
    item_rules: list[tuple[int, RulePolicy, ItemCheck]] = []
    for index, rule in enumerate(policy.rules):
        if rule.spec.request_check is not None:
            finding = rule.spec.request_check(context(rule))
            request_results.append(explainer.result(rule, finding, common, request=True))
        elif rule.spec.item_check is not None:
            item_rules.append((index, rule, rule.spec.item_check(context(rule))))
    blocked_by = tuple(r.rule for r in request_results if r.action == "block_request")
    floor = max((_RANK[r.effect] for r in request_results), default=0)
    decisive = [r for r in request_results if r.effect != "share"]

    items = _item_results(snapshot, item_rules, _Combiner(explainer, item_rules, floor, decisive))
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


class _Combiner:
    """Combines one item's findings into its outcome, explanation, marks and results.

    Rules return the very same finding object for items in the same situation (every item
    of a provider under one standing consent, every item naming no one, ...). Results that
    quote nothing of the item itself are then equal, so they are rendered once, keyed by
    the finding's identity (cheap, where hashing its facts for every item would not be).
    """

    def __init__(
        self,
        explainer: _Explainer,
        item_rules: list[tuple[int, RulePolicy, ItemCheck]],
        floor: int,
        decisive: list[RuleResult],
    ) -> None:
        self.explainer = explainer
        self.rules = [(index, rule) for index, rule, _check in item_rules]
        self.floor = floor
        self.decisive = decisive
        wordings = [t.fields for _i, rule, _c in item_rules for t in rule.explanations.values()]
        self.quotes_item = any(fields & _ITEM_ONLY for fields in wordings)
        self.quotes_provider = any("provider" in fields for fields in wordings)

    def __call__(self, item: ItemFacts, findings: tuple[Finding, ...], provider: str) -> _Combined:
        explainer = self.explainer
        cache = explainer.cache
        quoted = (
            (item.code if self.quotes_item else None, provider if self.quotes_provider else None)
            if self.quotes_item or self.quotes_provider
            else None
        )
        values: dict[str, str] | None = None
        results: list[RuleResult] = []
        worst = self.floor
        for (index, rule), finding in zip(self.rules, findings, strict=True):
            key = (index, id(finding), quoted)
            cached = cache.get(key)
            if cached is None:
                if values is None:
                    values = {
                        **explainer.common,
                        "item": item.code,
                        "item_title": item.title,
                        "provider": provider,
                    }
                result = explainer.result(rule, finding, values, request=False)
                if len(cache) < _CACHE_LIMIT:
                    cache[key] = (finding, result)
            else:
                result = cached[1]
            results.append(result)
            rank = _RANK[result.effect]
            if rank > worst:
                worst = rank
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
        return outcome, explanation, marks, tuple(results)


_Combined = tuple[str, str, tuple[str, ...], tuple[RuleResult, ...]]


def _item_results(
    snapshot: Snapshot, item_rules: list[tuple[int, RulePolicy, ItemCheck]], combine: _Combiner
) -> list[ItemResult]:
    """Every item's result; items with identical findings share one combination (unless
    the wording quotes the item itself)."""
    items = snapshot.items
    # Rule by rule over all items (map is the cheapest loop), then item by item.
    columns = [list(map(check, items)) for _index, _rule, check in item_rules]
    quotes_item, quotes_provider = combine.quotes_item, combine.quotes_provider
    names = {provider_id: p.name for provider_id, p in snapshot.providers.items()}
    # Keyed by the findings' ids; each entry keeps its findings alive (see _Combiner).
    combined: dict[object, tuple[tuple[Finding, ...], _Combined]] = {}
    results: list[ItemResult] = []
    append = results.append
    rows = zip(*columns, strict=True) if columns else iter([()] * len(items))
    for item, findings in zip(items, rows, strict=True):
        provider = names[item.provider_id]
        if quotes_item:
            combo = combine(item, findings, provider)
        else:
            key = (*map(id, findings), provider if quotes_provider else None)
            found = combined.get(key)
            if found is None:
                combo = combine(item, findings, provider)
                if len(combined) < _CACHE_LIMIT:
                    combined[key] = (findings, combo)
            else:
                combo = found[1]
        append(ItemResult(item.id, item.code, item.title, provider, *combo))
    return results


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
