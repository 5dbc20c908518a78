"""A decision as plain text a lawyer can read (for the CLI; pages render the same data)."""

from __future__ import annotations

from collections.abc import Sequence

from portal.canonical import format_datetime
from portal.eligibility.policy.diff import Change
from portal.eligibility.policy.engine import EvaluationResult

OUTCOME_WORDS = {
    "share": "share",
    "share_redacted": "share redacted",
    "withhold": "withhold",
    "needs_review": "needs review",
}


def format_decision(
    decision_id: str, result: EvaluationResult, changes: Sequence[Change] | None
) -> str:
    """Header, request-level findings, one block per item, and what changed since the
    previous decision of the same request (``None``: this is the first)."""
    lines = [
        f"Decision {decision_id}",
        f"Request {result.rfa} for {result.authority} ({result.authority_code})",
        f"Taken at {format_datetime(result.taken_at)} under policy {result.policy_id} "
        f"revision {result.policy_revision[:16]}..., engine {result.engine_version}",
        f"Outcome: {result.outcome.replace('_', ' ')}: {result.summary}",
        "",
        "Request-level rules:",
    ]
    for rule in result.request_results:
        lines.append(f"  [{rule.status}] {rule.rule}: {rule.explanation}")
    lines.append("")
    lines.append("Items:")
    for item in result.items:
        lines.append(f"  {item.item} {item.title!r} ({item.provider})")
        lines.append(f"    => {OUTCOME_WORDS.get(item.outcome, item.outcome)}: {item.explanation}")
        for rule in item.results:
            lines.append(f"    [{rule.status}] {rule.rule}: {rule.explanation}")
    lines.append("")
    if changes is None:
        lines.append("First decision for this request.")
    elif not changes:
        lines.append("No change since the previous decision.")
    else:
        lines.append("Changes since the previous decision:")
        lines.extend(f"  - {change.sentence()}" for change in changes)
    return "\n".join(lines)
