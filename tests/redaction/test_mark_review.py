"""Four eyes on redaction marks: proposed by one legal officer, confirmed by another; every
change makes a mark pending again; removals wait for a second officer; each step is in the
mark's history and the audit log, by code, never by term; bad input changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.redaction.mark_review import (
    Box,
    MarkRefused,
    cancel_removal,
    confirm_all,
    confirm_mark,
    confirm_removal,
    edit_mark,
    history_of,
    next_mark_code,
    propose_box,
    propose_term,
    request_removal,
)
from portal.registry.mark_terms import term_of
from portal.registry.models import Item, RedactionMark
from portal.sealing import Sealer
from tests.support import factories as make

REASON = "Identifies a witness or victim at risk"
NAME = "Mirela Quenzi"
SEALER = Sealer.random()


def _pdf(session: Session) -> Item:
    return make.item(session, make.provider(session), media_type="application/pdf")


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_term_is_proposed_sealed_and_confirmed_by_another_officer(session: Session) -> None:
    first, second = make.user(session), make.user(session)
    item = make.item(session, make.provider(session))
    mark = propose_term(session, SEALER, item, f"  {NAME} ", REASON, by=first)
    assert (mark.code, mark.kind, mark.review, mark.version) == ("M1", "term", "pending", 1)
    assert NAME not in (mark.term_sealed or "") and term_of(SEALER, mark, item.code) == NAME
    with pytest.raises(MarkRefused, match="you proposed it; another legal officer"):
        confirm_mark(session, mark, item, version=1, by=first)
    confirm_mark(session, mark, item, version=1, by=second)
    assert (mark.review, mark.confirmed_by_id, mark.proposed_by_id) == (
        "confirmed",
        second.id,
        first.id,
    )
    assert [e.action for e in history_of(session, item, "M1")] == ["proposed", "confirmed"]
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.action.in_(("mark.proposed", "mark.confirmed")))
    ).all()
    assert len(audited) == 2
    assert all(NAME not in str(event.details) for event in audited)  # never the term
    with pytest.raises(MarkRefused, match="already confirmed"):
        confirm_mark(session, mark, item, version=2, by=make.user(session))


def test_bad_terms_and_boxes_are_refused_and_change_nothing(session: Session) -> None:
    officer = make.user(session)
    pdf = _pdf(session)
    photo = make.item(session, make.provider(session), media_type="image/jpeg")
    video = make.item(session, make.provider(session), media_type="video/mp4")
    marks = _count(session, RedactionMark)
    refusals = [
        (lambda: propose_term(session, SEALER, pdf, "Q", REASON, by=officer), "too short"),
        (lambda: propose_term(session, SEALER, pdf, NAME, "because", by=officer), "reason"),
        (lambda: propose_term(session, SEALER, video, NAME, REASON, by=officer), "video/mp4"),
        (
            lambda: propose_term(
                session, SEALER, pdf, NAME, REASON, by=officer, person_code="PER-NONE"
            ),
            "no person PER-NONE",
        ),
        (lambda: _box(session, pdf, 1, Box(0.5, 0.1, 1.2, 0.3), officer), "lie on the page"),
        (lambda: _box(session, pdf, 1, Box(-0.1, 0.1, 0.2, 0.3), officer), "lie on the page"),
        (lambda: _box(session, pdf, 1, Box(0.5, 0.1, 0.5, 0.3), officer), "width and a height"),
        (lambda: _box(session, pdf, 1, Box(0.6, 0.4, 0.2, 0.3), officer), "width and a height"),
        (
            lambda: _box(session, pdf, 1, Box(float("nan"), 0.1, 0.2, 0.3), officer),
            "lie on the page",
        ),
        (lambda: _box(session, pdf, 4, Box(0.1, 0.1, 0.2, 0.2), officer), "has 3 page"),
        (lambda: _box(session, pdf, 0, Box(0.1, 0.1, 0.2, 0.2), officer), "has 3 page"),
        (lambda: _box(session, photo, 2, Box(0.1, 0.1, 0.2, 0.2), officer), "one page"),
        (lambda: _box(session, video, 1, Box(0.1, 0.1, 0.2, 0.2), officer), "cannot be drawn"),
        (
            lambda: _box(session, pdf, 1, Box(0.1, 0.1, 0.2, 0.2), make.user(session, "admin")),
            "only legal officers",
        ),
    ]
    for attempt, message in refusals:
        with pytest.raises(MarkRefused, match=message):
            attempt()
    assert _count(session, RedactionMark) == marks


def _box(session: Session, item: Item, page: int, box: Box, by: object) -> RedactionMark:
    return propose_box(session, item, page, box, REASON, page_count=3, by=by)  # type: ignore[arg-type]


def test_a_change_makes_the_mark_pending_and_a_stale_confirmation_is_refused(
    session: Session,
) -> None:
    first, second, third = make.user(session), make.user(session), make.user(session)
    pdf = _pdf(session)
    mark = propose_box(session, pdf, 2, Box(0.1, 0.2, 0.4, 0.3), REASON, page_count=3, by=first)
    assert (mark.kind, mark.page) == ("pdf_box", 2)
    confirm_mark(session, mark, pdf, version=1, by=second)
    # Officer three moves the box: pending again, proposed by three, version 2.
    assert mark.version == 2  # every change bumps the version, a confirmation too
    edit_mark(session, mark, pdf, version=2, by=third, box=Box(0.1, 0.5, 0.4, 0.6), page=3,
              page_count=3)  # fmt: skip
    assert (mark.review, mark.version, mark.proposed_by_id, mark.page) == (
        "pending",
        3,
        third.id,
        3,
    )
    assert mark.confirmed_by_id is None
    with pytest.raises(MarkRefused, match="changed since you opened it"):
        confirm_mark(session, mark, pdf, version=2, by=second)  # what second saw was v2
    with pytest.raises(MarkRefused, match="you proposed it"):
        confirm_mark(session, mark, pdf, version=3, by=third)
    with pytest.raises(MarkRefused, match="nothing was changed"):
        edit_mark(session, mark, pdf, version=3, by=first, reason=mark.reason)
    confirm_mark(session, mark, pdf, version=3, by=first)  # first did not propose version 3
    assert [e.action for e in history_of(session, pdf, mark.code)] == [
        "proposed",
        "confirmed",
        "edited",
        "confirmed",
    ]
    assert history_of(session, pdf, mark.code)[2].detail["box"] == [0.1, 0.5, 0.4, 0.6]


def test_confirm_all_confirms_what_was_seen_and_not_ones_own(session: Session) -> None:
    first, second = make.user(session), make.user(session)
    item = make.item(session, make.provider(session))
    theirs = propose_term(session, SEALER, item, NAME, REASON, by=first)
    imported = make.redaction_mark(session, item, code="M-IMP", review="pending")
    own = propose_term(session, SEALER, item, "Quenzi family", REASON, by=second)
    seen = {theirs.code: 1, own.code: 1}
    with pytest.raises(MarkRefused, match="M-IMP were proposed since you opened"):
        confirm_all(session, item, seen, by=second)
    assert theirs.review == "pending"  # all or nothing
    seen[imported.code] = imported.version
    confirmed, left = confirm_all(session, item, seen, by=second)
    assert (confirmed, left) == (["M1", "M-IMP"], ["M2"])
    assert own.review == "pending" and theirs.review == imported.review == "confirmed"


def test_two_officers_changing_a_mark_at_once_one_is_refused(
    sessions: sessionmaker[Session],
) -> None:
    """Both opened version 1; the first change wins, the second is refused, whatever the
    isolation (the UPDATE checks the version)."""
    with sessions() as setup:
        first, second, third = make.user(setup), make.user(setup), make.user(setup)
        item = make.item(setup, make.provider(setup))
        mark = propose_term(setup, SEALER, item, NAME, REASON, by=first)
        setup.commit()
        ids = (mark.id, item.id, second.id, third.id)
    with sessions() as one, sessions() as two:
        mark_one, item_one = one.get(RedactionMark, ids[0]), one.get(Item, ids[1])
        mark_two, item_two = two.get(RedactionMark, ids[0]), two.get(Item, ids[1])
        assert mark_one and item_one and mark_two and item_two
        by_two, by_three = one.get(User, ids[2]), two.get(User, ids[3])
        assert by_two and by_three
        assert mark_two.version == 1  # read before the first change
        confirm_mark(one, mark_one, item_one, version=1, by=by_two)
        one.commit()
        with pytest.raises(MarkRefused, match="changed by someone else at the same moment"):
            edit_mark(two, mark_two, item_two, version=1, by=by_three, reason="Identifies a source")
        two.rollback()
    with sessions() as check:
        stored = check.get(RedactionMark, ids[0])
        assert stored and (stored.review, stored.reason, stored.version) == ("confirmed", REASON, 2)


def test_removal_needs_a_second_officer_and_codes_are_never_reused(session: Session) -> None:
    first, second = make.user(session), make.user(session)
    item = make.item(session, make.provider(session))
    draft = propose_term(session, SEALER, item, NAME, REASON, by=first)
    assert request_removal(session, draft, item, version=1, by=first)  # never confirmed: gone
    assert session.get(RedactionMark, draft.id) is None
    assert next_mark_code(session, item) == "M2"  # M1's history stays its own

    mark = propose_term(session, SEALER, item, NAME, REASON, by=first)
    confirm_mark(session, mark, item, version=1, by=second)
    assert not request_removal(session, mark, item, version=2, by=first)
    assert mark.removal_requested_by_id == first.id and mark.review == "confirmed"  # applies
    with pytest.raises(MarkRefused, match="already been asked"):
        request_removal(session, mark, item, version=3, by=second)
    with pytest.raises(MarkRefused, match="another legal officer must agree"):
        confirm_removal(session, mark, item, version=3, by=first)
    cancel_removal(session, mark, item, by=second)
    assert mark.removal_requested_at is None and mark.version == 4
    assert not request_removal(session, mark, item, version=4, by=first)
    confirm_removal(session, mark, item, version=5, by=second)
    assert session.get(RedactionMark, mark.id) is None
    assert [e.action for e in history_of(session, item, "M2")] == [
        "proposed",
        "confirmed",
        "removal_requested",
        "removal_cancelled",
        "removal_requested",
        "removed",
    ]


def test_a_confirmed_mark_edited_then_taken_back_still_needs_a_second_officer(
    session: Session,
) -> None:
    """Editing a confirmed mark makes the editor its proposer; that must not let the editor
    then withdraw it alone (the redaction would be gone on one person's word)."""
    first, second = make.user(session), make.user(session)
    item = _pdf(session)
    mark = propose_box(session, item, 1, Box(0.1, 0.1, 0.3, 0.2), REASON, page_count=1, by=first)
    confirm_mark(session, mark, item, version=1, by=second)
    edit_mark(session, mark, item, version=2, by=second, reason="Identifies a source")
    assert not request_removal(session, mark, item, version=3, by=second)
    assert session.get(RedactionMark, mark.id) is not None
