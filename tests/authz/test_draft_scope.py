"""Drafts in the Rfa scope: a draft is its authority's requesters' alone until submitted;
legal officers and recipients see every other request of their scope, never a draft; admins
see none."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.authz.scopes import scoped
from portal.rfa.models import Rfa
from tests.support import factories as make


def test_drafts_are_their_authoritys_requesters_alone(session: Session) -> None:
    a1, a2 = make.authority(session), make.authority(session)
    author = make.user(session, "requester", authority=a1)
    make.rfa(session, a1, "RFA-D", status="draft", created_by_id=author.id)
    make.rfa(session, a1, "RFA-S", created_by_id=author.id)
    seen_by = {
        "author": author,
        "colleague": make.user(session, "requester", authority=a1),
        "recipient": make.user(session, "recipient", authority=a1),
        "other_requester": make.user(session, "requester", authority=a2),
        "legal_officer": make.user(session, "legal_officer"),
        "admin": make.user(session, "admin"),
    }

    def codes(user: User) -> set[str]:
        return {rfa.code for rfa in session.scalars(scoped(Rfa, user))}

    assert {who: codes(user) for who, user in seen_by.items()} == {
        "author": {"RFA-D", "RFA-S"},
        "colleague": {"RFA-D", "RFA-S"},  # requesters of an authority draft together
        "recipient": {"RFA-S"},
        "other_requester": set(),
        "legal_officer": {"RFA-S"},
        "admin": set(),  # admins (IT) read no request at all (issue 18)
    }
