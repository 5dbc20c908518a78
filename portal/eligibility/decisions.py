"""Decision records: run an eligibility check and keep it, immutably.

:func:`run_check` builds the snapshot, evaluates the policy and stores a
:class:`~portal.models.Decision` and an audit event, in the caller's transaction. A decision carries
everything needed to reproduce it: the snapshot (canonical JSON and its SHA-256), the
results, the engine version, and the policy files themselves (in the results, beside
their revision) — :func:`replay` re-evaluates a stored decision from the record alone.

The application never updates or deletes a decision: re-running a check makes a new one.
:func:`guard_decisions` makes SQLAlchemy refuse any ORM change to a stored decision.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import require_active_officer
from portal.canonical import sha256_hex
from portal.db import GuardTarget, append_only_guard, utcnow
from portal.eligibility.models import Decision
from portal.eligibility.policy import (
    ENGINE_VERSION,
    Change,
    EvaluationResult,
    Policy,
    Snapshot,
    build_snapshot,
    diff_results,
    evaluate,
    parse_policy,
)
from portal.eligibility.policy.gcpause import paused_gc
from portal.eligibility.record_text import canonical_text
from portal.notifications import service as notifications
from portal.rfa.models import Rfa, RfaItem

__all__ = [
    "AUDIT_ACTION",
    "CheckRefused",
    "DecisionImmutable",
    "Replay",
    "canonical_text",
    "changes_since_previous",
    "decision_history",
    "decision_policy",
    "diff_decisions",
    "guard_decisions",
    "latest_decision",
    "load_result",
    "load_snapshot",
    "previous_decision",
    "replay",
    "run_check",
]

AUDIT_ACTION = "decision.recorded"


class CheckRefused(Exception):
    """This user may not run an eligibility check; the message says why."""


class DecisionImmutable(RuntimeError):
    """Something tried to change or delete a stored decision."""


# --- running a check ---------------------------------------------------------------------


def run_check(
    db: Session,
    rfa: Rfa,
    policy: Policy,
    *,
    requested_by: User | None,
    actor: str,
    now: datetime | None = None,
) -> Decision:
    """Evaluate ``rfa`` under ``policy`` as at ``now`` and store the decision (flushed).

    ``requested_by`` is the legal officer who asked (``None`` for the system itself), an
    active one or :class:`CheckRefused`; callers load ``rfa`` through that officer's scope
    (portal.authz.scopes: never a draft). ``actor`` is the audit label (e.g.
    ``audit.actor_label(user)``).
    """
    if requested_by is not None:
        require_active_officer(requested_by, CheckRefused)
    moment = utcnow() if now is None else now
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime given; use a timezone-aware UTC datetime")
    moment = moment.astimezone(UTC)
    guard_decisions(db)
    db.flush()  # the request (and anything else pending) must be in the database

    with (
        paused_gc()
    ):  # see portal.eligibility.policy.gcpause: large checks build many small objects
        return _record(db, rfa, policy, requested_by, actor, moment)


def _record(
    db: Session, rfa: Rfa, policy: Policy, requested_by: User | None, actor: str, moment: datetime
) -> Decision:
    snapshot = build_snapshot(db, rfa.id, now=moment)
    result = evaluate(policy, snapshot)
    # Each object tree goes as soon as its record is written: at a million items the snapshot,
    # the results and their JSON texts are gigabytes, and all four alive at once were the peak.
    snapshot_json = canonical_text(snapshot.to_json())
    del snapshot
    results_json = canonical_text(result.to_json())
    outcome, counts = result.outcome, dict(result.counts)
    decided = {item.item_id for item in result.items}
    del result
    decision = Decision(
        id=str(uuid.uuid4()),
        rfa_id=rfa.id,
        policy_id=policy.id,
        policy_revision=policy.revision,
        engine_version=ENGINE_VERSION,
        snapshot_json=snapshot_json,
        snapshot_sha256=sha256_hex(snapshot_json),
        results_json=results_json,
        outcome=outcome,
        requested_by_id=requested_by.id if requested_by is not None else None,
        created_at=moment,
    )
    del snapshot_json, results_json  # the decision holds them
    db.add(decision)
    db.flush()
    rechecked = _clear_recheck_flags(db, rfa, decided)
    audit.record(
        db,
        actor,
        AUDIT_ACTION,
        f"decision:{decision.id}",
        {
            "rfa": rfa.code,
            "outcome": outcome,
            "items": len(decided),
            "counts": counts,
            "policy_id": policy.id,
            "policy_revision": policy.revision,
            "engine_version": ENGINE_VERSION,
            "snapshot_sha256": decision.snapshot_sha256,
            "rechecked": rechecked,
        },
    )
    notifications.checked(db, rfa)
    return decision


def _clear_recheck_flags(db: Session, rfa: Rfa, decided: set[int]) -> int:
    """Clear the re-check flags (set by a consent revocation) of the candidates this decision
    decided (``decided``: their item ids): it has seen their consent as it stands now.
    Returns how many were cleared. A candidate added after the snapshot was read keeps its
    flag: each statement names the ids it clears.

    A revocation committed after the snapshot was read may have its flag cleared here too;
    its consent event is newer than the decision, so packages still wait for another check
    (:func:`portal.packages.lifecycle.plan_package` compares the consent events' times).
    """
    flagged = (RfaItem.rfa_id == rfa.id, RfaItem.needs_recheck.is_(True))
    cleared = sorted(decided.intersection(db.scalars(select(RfaItem.item_id).where(*flagged))))
    count = 0
    for start in range(0, len(cleared), _IDS_A_STATEMENT):
        result = db.execute(
            update(RfaItem)
            .where(*flagged, RfaItem.item_id.in_(cleared[start : start + _IDS_A_STATEMENT]))
            .values(needs_recheck=False)
            .execution_options(synchronize_session="fetch")
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


#: Ids bound into one statement (SQLite allows 32,766 parameters; PostgreSQL 65,535).
_IDS_A_STATEMENT = 1000


# --- reading decisions back ------------------------------------------------------------------


def decision_history(db: Session, rfa_id: int) -> list[Decision]:
    """Every decision on a request, newest first."""
    return list(
        db.scalars(
            select(Decision)
            .where(Decision.rfa_id == rfa_id)
            .order_by(Decision.created_at.desc(), Decision.id)
        )
    )


def latest_decision(db: Session, rfa_id: int) -> Decision | None:
    return db.scalars(
        select(Decision)
        .where(Decision.rfa_id == rfa_id)
        .order_by(Decision.created_at.desc(), Decision.id)
        .limit(1)
    ).first()


def previous_decision(db: Session, decision: Decision) -> Decision | None:
    """The decision on the same request made just before ``decision``, if any."""
    return db.scalars(
        select(Decision)
        .where(Decision.rfa_id == decision.rfa_id, Decision.created_at < decision.created_at)
        .order_by(Decision.created_at.desc(), Decision.id)
        .limit(1)
    ).first()


def load_result(decision: Decision) -> EvaluationResult:
    return EvaluationResult.from_json(json.loads(decision.results_json))


def load_snapshot(decision: Decision) -> Snapshot:
    return Snapshot.from_json(json.loads(decision.snapshot_json))


def decision_policy(decision: Decision) -> Policy:
    """The policy a decision applied, rebuilt from the files stored with it."""
    files = load_result(decision).policy_files
    policy = parse_policy({name: text.encode("utf-8") for name, text in files.items()})
    if policy.revision != decision.policy_revision:
        raise ValueError(
            f"decision {decision.id}: the stored policy files have revision {policy.revision}, "
            f"not the recorded {decision.policy_revision}"
        )
    return policy


@dataclass(frozen=True)
class Replay:
    """Whether a stored decision still stands up: its snapshot hash, and the same results
    from the same policy and snapshot."""

    snapshot_intact: bool
    results_reproduced: bool
    same_engine: bool

    @property
    def ok(self) -> bool:
        return self.snapshot_intact and self.results_reproduced


def replay(decision: Decision) -> Replay:
    """Re-evaluate a stored decision from the record alone (policy files + snapshot)."""
    intact = sha256_hex(decision.snapshot_json) == decision.snapshot_sha256
    again = evaluate(decision_policy(decision), load_snapshot(decision))
    return Replay(
        snapshot_intact=intact,
        results_reproduced=canonical_text(again.to_json()) == decision.results_json,
        same_engine=decision.engine_version == ENGINE_VERSION,
    )


def diff_decisions(old: Decision, new: Decision) -> list[Change]:
    """What changed from ``old`` to ``new`` (see :func:`portal.eligibility.policy.diff_results`)."""
    return diff_results(load_result(old), load_result(new))


def changes_since_previous(db: Session, decision: Decision) -> list[Change] | None:
    """The changes since the previous decision of the same request (None: the first one)."""
    previous = previous_decision(db, decision)
    return None if previous is None else diff_decisions(previous, decision)


# --- immutability ------------------------------------------------------------------------------


def guard_decisions(target: GuardTarget) -> None:
    """Refuse, in sessions of ``target``, any ORM update or delete of a decision.

    Install it on the application's session factory; :func:`run_check` also installs it
    on the session it uses. (A database trigger would stop raw SQL too.)
    """
    _GUARD(target)


def _describe(obj: object) -> str:
    if isinstance(obj, Decision):
        return f"decision {obj.id}"
    return type(obj).__name__


_GUARD = append_only_guard(
    (Decision,),
    DecisionImmutable,
    _describe,
    kept="decisions are kept",
    instead="run a new check to get a new decision",
    bulk="decisions cannot be updated or deleted: they are kept as made",
)
