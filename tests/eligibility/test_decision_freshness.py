"""The stale decisions' worklist from the times the triggers keep (portal.eligibility.freshness),
on both databases: over random histories it lists what the query it replaced listed (kept
here as the reference), the table filled from a history equals what the triggers wrote, and
the list is read from its partial indexes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, Select, delete, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from portal.consent.models import Consent
from portal.db import Base
from portal.eligibility.freshness import TRIGGERS, fill_freshness, trigger_names
from portal.eligibility.models import Decision, DecisionFreshness
from portal.registry.models import Item
from portal.rfa.models import Rfa, RfaItem
from portal.web.worklists import CHECKED_STATUSES, stale_decisions
from tests.support import factories as make

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def reference_stale() -> Select[tuple[str]]:
    """The worklist's query before the triggers (portal.web.worklists until 0034)."""
    latest = (
        select(Decision.rfa_id, func.max(Decision.created_at).label("at"))
        .group_by(Decision.rfa_id)
        .subquery()
    )
    flagged_or_added = exists().where(
        RfaItem.rfa_id == Rfa.id,
        or_(RfaItem.needs_recheck.is_(True), RfaItem.added_at > latest.c.at),
    )
    consent_after = exists().where(
        RfaItem.rfa_id == Rfa.id,
        Item.id == RfaItem.item_id,
        Consent.provider_id == Item.provider_id,
        Consent.authority_id == Rfa.authority_id,
        or_(Consent.item_id.is_(None), Consent.item_id == RfaItem.item_id),
        Consent.recorded_at > latest.c.at,
    )
    return (
        select(Rfa.code)
        .join(latest, latest.c.rfa_id == Rfa.id)
        .where(Rfa.status.in_(CHECKED_STATUSES), or_(flagged_or_added, consent_after))
        .order_by(latest.c.at, Rfa.id)
    )


def listed(db: Session) -> list[str]:
    return list(db.scalars(stale_decisions().with_only_columns(Rfa.code)))


def freshness_rows(db: Session) -> list[tuple[int, datetime | None, datetime | None]]:
    rows = db.execute(
        select(
            DecisionFreshness.rfa_id, DecisionFreshness.decided_at, DecisionFreshness.changed_at
        ).order_by(DecisionFreshness.rfa_id)
    )
    return [(row[0], row[1], row[2]) for row in rows]


@pytest.mark.parametrize(
    ("seed", "in_order"), [(0, True), (1, True), (2, True), (3, False), (4, False), (5, False)]
)
def test_the_worklist_lists_what_the_query_it_replaced_listed(
    session: Session, seed: int, in_order: bool
) -> None:
    """Random histories of candidates added, consent events (standing or for an item, of
    this or another authority and provider), decisions and re-check flags, stamped as they
    happen (``in_order``) or at random times (imports, waiting writers): after every step
    both lists are the same."""
    db = session
    rng = random.Random(seed)  # noqa: S311 - a reproducible history, not a secret
    authorities = [make.authority(db) for _ in range(2)]
    providers = [make.provider(db) for _ in range(3)]
    items = [make.item(db, provider) for provider in providers for _ in range(3)]
    statuses = (*CHECKED_STATUSES, "submitted", "closed")
    requests = [
        make.rfa(db, rng.choice(authorities), status=rng.choice(statuses)) for _ in range(6)
    ]
    db.flush()
    clock = START
    seen_stale = 0
    for _ in range(80):
        if in_order:
            clock += timedelta(minutes=rng.randint(1, 90))
        else:
            clock = START + timedelta(minutes=rng.randint(0, 80 * 90))
        rfa = rng.choice(requests)
        roll = rng.random()
        if roll < 0.3:
            taken = set(db.scalars(select(RfaItem.item_id).where(RfaItem.rfa_id == rfa.id)))
            free = [item for item in items if item.id not in taken]
            if free:
                make.candidate(db, rfa, rng.choice(free), added_at=clock)
        elif roll < 0.55:
            make.consent(
                db,
                rng.choice(providers),
                rng.choice(authorities),
                rng.choice(("grant", "revoke", "decline")),
                item=rng.choice([None, *items]),
                at=clock,
            )
        elif roll < 0.8:
            make.decision_row(db, rfa, clock)
        elif roll < 0.9:
            db.execute(update(RfaItem).where(RfaItem.rfa_id == rfa.id).values(needs_recheck=True))
        else:
            db.execute(update(RfaItem).where(RfaItem.rfa_id == rfa.id).values(needs_recheck=False))
        db.flush()
        expected = list(db.scalars(reference_stale()))
        assert listed(db) == expected
        seen_stale += bool(expected)
    assert seen_stale, "the history never made a decision stale: it tests nothing"

    # What migration 0034 fills from the history is what the triggers wrote along it.
    written = freshness_rows(db)
    db.execute(delete(DecisionFreshness))
    assert fill_freshness(db.connection(), Base.metadata) == len(written)
    assert freshness_rows(db) == written


def test_a_candidate_taken_out_keeps_the_request_listed_until_it_is_checked(
    session: Session,
) -> None:
    db = session
    authority, provider = make.authority(db), make.provider(db)
    first, second = make.item(db, provider), make.item(db, provider)
    rfa = make.rfa(db, authority, status="in_review")
    make.candidate(db, rfa, first, added_at=START)
    make.decision_row(db, rfa, START + timedelta(hours=1))
    db.flush()
    assert listed(db) == []
    make.candidate(db, rfa, second, added_at=START + timedelta(hours=2))
    db.flush()
    assert listed(db) == [rfa.code]
    db.execute(delete(RfaItem).where(RfaItem.item_id == second.id))
    db.flush()
    assert listed(db) == [rfa.code]  # its facts did change after the decision
    make.decision_row(db, rfa, START + timedelta(hours=3))
    db.flush()
    assert listed(db) == []


def test_events_of_another_authority_or_provider_leave_the_decision_alone(session: Session) -> None:
    db = session
    north, south = make.authority(db), make.authority(db)
    mine, other = make.provider(db), make.provider(db)
    item = make.item(db, mine)
    rfa = make.rfa(db, north, status="approved")
    make.candidate(db, rfa, item, added_at=START)
    make.decision_row(db, rfa, START + timedelta(hours=1))
    make.consent(db, mine, south, item=item, at=START + timedelta(hours=2))
    make.consent(db, other, north, at=START + timedelta(hours=2))
    db.flush()
    assert listed(db) == []
    make.consent(db, mine, north, "revoke", at=START + timedelta(hours=3))  # standing
    db.flush()
    assert listed(db) == [rfa.code]
    row = db.get(DecisionFreshness, rfa.id)
    assert row is not None and row.changed_at == START + timedelta(hours=3)


def test_a_revocation_flag_lists_the_request_whatever_the_times(session: Session) -> None:
    db = session
    authority, provider = make.authority(db), make.provider(db)
    item = make.item(db, provider)
    rfa = make.rfa(db, authority, status="transmitted")
    make.candidate(db, rfa, item, added_at=START)
    make.decision_row(db, rfa, START + timedelta(hours=1))
    db.flush()
    db.execute(update(RfaItem).where(RfaItem.rfa_id == rfa.id).values(needs_recheck=True))
    db.flush()
    assert listed(db) == [rfa.code]


def test_the_worklist_is_read_from_its_partial_indexes_on_sqlite(session: Session) -> None:
    db = session
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("the query plan is SQLite's here; PostgreSQL plans small tables its own way")
    statement = stale_decisions().with_only_columns(Rfa.id)
    compiled = statement.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
    plan = " | ".join(str(row[-1]) for row in db.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_decision_freshness_stale" in plan, plan
    assert "ix_rfa_item_flagged" in plan, plan


def test_making_the_tables_again_leaves_the_triggers_as_they_are(engine: Engine) -> None:
    """``create_all`` on a database that has every table makes nothing, triggers included."""
    Base.metadata.create_all(engine)
    with engine.connect() as connection:
        assert set(trigger_names(connection)) >= set(TRIGGERS[connection.dialect.name])
