"""The sign-in building blocks on a real database: TOTP (replay-proof), recovery codes,
password hashing profiles and the per-account lockout."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.accounts import passwords, recovery, throttle, totp
from portal.accounts.models import RecoveryCode, User
from portal.audit import AuditEvent
from tests.support.auth import make_user

NOW = datetime(2026, 3, 1, 9, 30, 10, tzinfo=UTC)  # 10 s into a time step


def code(secret: str, moment: datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


def step_of(moment: datetime) -> int:
    return int(moment.timestamp()) // 30


def load(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    assert user is not None
    return user


def events(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by("seq"))
    )


# --- TOTP ------------------------------------------------------------------------------------


def test_new_secret_and_provisioning_uri() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and secret.isalnum() and secret.isupper()
    assert totp.new_secret() != secret
    uri = urlsplit(totp.provisioning_uri(secret, "ines.okafor@unit.example"))
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert uri.path == "/Sharing%20Portal:ines.okafor%40unit.example"
    query = parse_qs(uri.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Sharing Portal"]


@pytest.mark.parametrize("offset", [-30, 0, 30])
def test_codes_within_one_step_of_now_are_accepted(offset: int) -> None:
    secret = totp.new_secret()
    user = User(totp_secret=secret, totp_last_step=None)
    moment = NOW + timedelta(seconds=offset)
    assert totp.accept_code(user, code(secret, moment), now=NOW)
    assert user.totp_last_step == step_of(moment)


@pytest.mark.parametrize("offset", [-90, -60, 60, 90])
def test_codes_further_away_are_refused(offset: int) -> None:
    secret = totp.new_secret()
    user = User(totp_secret=secret, totp_last_step=None)
    assert not totp.accept_code(user, code(secret, NOW + timedelta(seconds=offset)), now=NOW)
    assert user.totp_last_step is None


def test_a_step_is_accepted_once_and_earlier_steps_never_again() -> None:
    secret = totp.new_secret()
    user = User(totp_secret=secret, totp_last_step=None)
    current = code(secret, NOW)
    assert totp.accept_code(user, current, now=NOW)
    assert not totp.accept_code(user, current, now=NOW), "replay of the same code"
    assert not totp.accept_code(user, current, now=NOW + timedelta(seconds=30)), "still a replay"
    earlier = code(secret, NOW - timedelta(seconds=30))
    assert not totp.accept_code(user, earlier, now=NOW), "an older step after a newer one"
    later = code(secret, NOW + timedelta(seconds=30))
    assert totp.accept_code(user, later, now=NOW + timedelta(seconds=30))
    assert user.totp_last_step == step_of(NOW) + 1


@pytest.mark.parametrize("typed", ["{c}", " {c} ", "{a} {b}", "{a}\t{b}"])
def test_spaces_in_a_code_are_ignored(typed: str) -> None:
    secret = totp.new_secret()
    c = code(secret, NOW)
    user = User(totp_secret=secret, totp_last_step=None)
    assert totp.accept_code(user, typed.format(c=c, a=c[:3], b=c[3:]), now=NOW)


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12-456", "None"])
def test_malformed_codes_are_refused(bad: str) -> None:
    user = User(totp_secret=totp.new_secret(), totp_last_step=None)
    assert not totp.accept_code(user, bad, now=NOW)


def test_no_secret_no_code() -> None:
    user = User(totp_secret=None, totp_last_step=None)
    assert not totp.accept_code(user, "123456", now=NOW)


def test_claim_code_refuses_a_step_another_request_claimed_first(
    sessions: sessionmaker[Session], session: Session
) -> None:
    """Two requests with one code: the second loaded the user before the first committed
    (its copy says no step was used), yet the conditional UPDATE refuses it."""
    creds = make_user(session, "legal_officer")
    first, second = sessions(), sessions()
    try:
        user_a = load(first, creds.user_id)
        user_b = load(second, creds.user_id)
        assert user_b.totp_last_step is None
        moment = datetime.now(UTC)
        c = code(creds.totp_secret, moment)
        assert totp.claim_code(first, user_a, c, now=moment)
        first.commit()
        assert not totp.claim_code(second, user_b, c, now=moment)
        second.rollback()
    finally:
        first.close()
        second.close()
    session.expire_all()
    assert load(session, creds.user_id).totp_last_step == step_of(moment)


# --- recovery codes --------------------------------------------------------------------------


def test_recovery_codes_are_ten_distinct_high_entropy_codes_stored_hashed(
    session: Session,
) -> None:
    user = load(session, make_user(session, "provider").user_id)
    codes = recovery.issue_recovery_codes(session, user)
    session.commit()
    assert len(codes) == 10 == len(set(codes))
    for c in codes:
        assert len(c) == 19 and c.count("-") == 3
        assert recovery.normalise(c) is not None
    stored = session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10
    for c in codes:
        assert not any(c in h or c.replace("-", "") in h for h in stored)
    assert recovery.remaining_codes(session, user) == 10


def test_a_recovery_code_works_once_in_any_spelling(session: Session) -> None:
    user = load(session, make_user(session, "recipient").user_id)
    codes = recovery.issue_recovery_codes(session, user)
    typed = " " + codes[3].upper().replace("-", " ") + " "
    assert recovery.use_recovery_code(session, user, typed)
    assert not recovery.use_recovery_code(session, user, codes[3]), "second use"
    assert recovery.use_recovery_code(session, user, codes[4].replace("-", ""))
    session.commit()
    assert recovery.remaining_codes(session, user) == 8
    used = events(session, "auth.recovery_code_used")
    assert [e.target for e in used] == [f"user:{user.id}"] * 2
    assert json.loads(used[-1].details)["remaining"] == 8
    assert all(codes[3] not in e.details and codes[4] not in e.details for e in used)


def test_recovery_codes_of_another_user_and_junk_are_refused(session: Session) -> None:
    alice = load(session, make_user(session, "requester").user_id)
    bob = load(session, make_user(session, "requester").user_id)
    alice_codes = recovery.issue_recovery_codes(session, alice)
    recovery.issue_recovery_codes(session, bob)
    assert not recovery.use_recovery_code(session, bob, alice_codes[0])
    for junk in (
        "",
        "123456",
        "abcd-efgh-ijkm-npq",
        "abcd-efgh-ijkm-npqr-s",
        "0000-0000-0000-0000",
    ):
        assert not recovery.use_recovery_code(session, bob, junk)
    assert recovery.use_recovery_code(session, alice, alice_codes[0])


def test_new_codes_replace_unused_ones(session: Session) -> None:
    user = load(session, make_user(session, "admin").user_id)
    old = recovery.issue_recovery_codes(session, user)
    assert recovery.use_recovery_code(session, user, old[0])
    new = recovery.issue_recovery_codes(session, user)
    session.commit()
    assert not set(old) & set(new)
    assert not recovery.use_recovery_code(session, user, old[1]), "old unused codes are gone"
    assert recovery.remaining_codes(session, user) == 10
    assert recovery.use_recovery_code(session, user, new[9])
    # the used one stays as a record
    used = session.scalars(select(RecoveryCode).where(RecoveryCode.used_at.is_not(None))).all()
    assert len(used) == 2


def test_a_recovery_code_cannot_be_spent_twice_by_racing_requests(
    sessions: sessionmaker[Session], session: Session
) -> None:
    user = load(session, make_user(session, "requester").user_id)
    codes = recovery.issue_recovery_codes(session, user)
    session.commit()
    first, second = sessions(), sessions()
    try:
        user_a, user_b = load(first, user.id), load(second, user.id)
        # the second request has already read the unused codes when the first spends one
        assert recovery.remaining_codes(second, user_b) == 10
        second.commit()
        assert recovery.use_recovery_code(first, user_a, codes[0])
        first.commit()
        assert not recovery.use_recovery_code(second, user_b, codes[0])
    finally:
        first.close()
        second.close()


# --- password hashing ------------------------------------------------------------------------


def test_profiles_differ_and_each_flags_the_other_for_rehash() -> None:
    fast = passwords.hash_password("umber kettle lantern", profile="fast")
    standard = passwords.hash_password("umber kettle lantern", profile="standard")
    assert fast.startswith("$argon2id$") and standard.startswith("$argon2id$")
    assert "m=65536,t=3,p=4" in standard
    assert passwords.verify_password(fast, "umber kettle lantern", profile="standard")
    assert passwords.verify_password(standard, "umber kettle lantern", profile="fast")
    assert not passwords.verify_password(fast, "umber kettle lanterns", profile="fast")
    assert passwords.needs_rehash(fast, profile="standard")
    assert passwords.needs_rehash(standard, profile="fast")
    assert not passwords.needs_rehash(fast, profile="fast")
    assert not passwords.needs_rehash(standard)
    assert passwords.needs_rehash("not a hash")
    with pytest.raises(ValueError, match="unknown password hash profile"):
        passwords.hasher("quick")


def test_verifying_without_a_hash_never_matches() -> None:
    assert not passwords.verify_password(None, "")
    assert not passwords.verify_password(None, "dummy password for timing equalisation")
    assert not passwords.verify_password("$argon2id$garbage", "x", profile="fast")


# --- lockout ---------------------------------------------------------------------------------


def test_five_failures_in_fifteen_minutes_lock_for_fifteen_minutes(session: Session) -> None:
    user = load(session, make_user(session, "requester").user_id)
    for minute in range(4):
        locked = throttle.record_failure(
            session, user, "wrong_password", now=NOW + timedelta(minutes=minute * 3)
        )
        assert not locked
    assert user.failed_logins == 4
    assert not throttle.is_locked(user, now=NOW + timedelta(minutes=10))
    fifth = NOW + timedelta(minutes=14)
    assert throttle.record_failure(session, user, "wrong_code", now=fifth)
    session.commit()
    assert user.locked_until == fifth + timedelta(minutes=15)
    assert throttle.is_locked(user, now=fifth + timedelta(minutes=14, seconds=59))
    assert not throttle.is_locked(user, now=fifth + timedelta(minutes=15))
    lockouts = events(session, "auth.lockout")
    assert len(lockouts) == 1 and lockouts[0].target == f"user:{user.id}"


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(session: Session) -> None:
    user = load(session, make_user(session, "requester").user_id)
    for minute in (0, 5, 10, 14):
        throttle.record_failure(
            session, user, "wrong_password", now=NOW + timedelta(minutes=minute)
        )
    # the first has left the window by minute 16: four in the window, not five
    assert not throttle.record_failure(
        session, user, "wrong_password", now=NOW + timedelta(minutes=16)
    )
    assert user.failed_logins == 4
    assert not throttle.is_locked(user, now=NOW + timedelta(minutes=16))
    assert throttle.record_failure(session, user, "wrong_password", now=NOW + timedelta(minutes=17))


def test_attempts_while_locked_neither_extend_nor_count(session: Session) -> None:
    user = load(session, make_user(session, "provider").user_id)
    for second in range(5):
        throttle.record_failure(
            session, user, "wrong_password", now=NOW + timedelta(seconds=second)
        )
    until = user.locked_until
    assert until is not None
    for minute in range(1, 14):
        assert not throttle.record_failure(
            session, user, "wrong_password", now=NOW + timedelta(minutes=minute)
        )
    assert user.locked_until == until
    assert len(events(session, "auth.lockout")) == 1
    reasons = [json.loads(e.details)["reason"] for e in events(session, "auth.login_failed")]
    assert reasons[:5] == ["wrong_password"] * 5 and set(reasons[5:]) == {"locked"}
    # after the lock: a fresh count, the attempts during the lock do not carry over
    after = until + timedelta(seconds=1)
    assert not throttle.record_failure(session, user, "wrong_password", now=after)
    assert user.failed_logins == 1


def test_success_and_unlock_restart_the_count(session: Session) -> None:
    user = load(session, make_user(session, "recipient").user_id)
    for second in range(4):
        throttle.record_failure(
            session, user, "wrong_password", now=NOW + timedelta(seconds=second)
        )
    throttle.record_success(user, now=NOW + timedelta(seconds=10))
    assert user.failed_logins == 0
    for second in range(11, 15):
        assert not throttle.record_failure(
            session, user, "wrong_password", now=NOW + timedelta(seconds=second)
        )
    assert throttle.record_failure(session, user, "wrong_password", now=NOW + timedelta(seconds=20))
    throttle.unlock(session, user, actor="user:999", now=NOW + timedelta(minutes=1))
    assert not throttle.is_locked(user, now=NOW + timedelta(minutes=1))
    assert not throttle.record_failure(
        session, user, "wrong_password", now=NOW + timedelta(minutes=1, seconds=1)
    )
    assert user.failed_logins == 1
    unlocks = events(session, "auth.unlock")
    assert len(unlocks) == 1 and unlocks[0].actor == "user:999"


def test_failures_for_unknown_accounts_record_no_email(session: Session) -> None:
    throttle.record_failure(session, None, "unknown_account", now=NOW, remote_addr="203.0.113.7")
    (event,) = events(session, "auth.login_failed")
    assert event.target == "unknown"
    assert json.loads(event.details) == {"reason": "unknown_account", "remote_addr": "203.0.113.7"}
