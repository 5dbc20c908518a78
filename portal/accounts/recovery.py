"""Single-use 2FA recovery codes.

Ten codes are shown once (at enrolment, or when the user asks for new ones) and only
their hashes are kept. Each code carries 80 random bits, so a fast hash is enough: an
offline search of 2^80 candidates is out of reach, and argon2 would only make every
login with a recovery code slow. The hash is bound to the user's id so a code cannot
be moved to another account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import RecoveryCode, User
from portal.db import utcnow

CODE_COUNT = 10
GROUPS = 4
GROUP_LENGTH = 4
# 32 symbols (5 bits each), without look-alikes (no 0/o, 1/l): 16 symbols = 80 bits.
ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_HASH_SCHEME = "sha256"


def _new_code() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH))
    return "-".join(
        symbols[index : index + GROUP_LENGTH] for index in range(0, len(symbols), GROUP_LENGTH)
    )


def normalise(code: str) -> str | None:
    """The code's symbols (case, spaces and dashes ignored), or None when it cannot be one."""
    cleaned = "".join(ch for ch in code.lower() if ch not in " -\t")
    if len(cleaned) != GROUPS * GROUP_LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def _hash(user_id: int, symbols: str) -> str:
    digest = hashlib.sha256(f"portal-recovery-code:v1:{user_id}:{symbols}".encode()).hexdigest()
    return f"{_HASH_SCHEME}${digest}"


def issue_recovery_codes(db: Session, user: User) -> list[str]:
    """Replace ``user``'s unused codes with ten new ones and return them (the only time
    they exist in plain text). Used codes stay as a record. Does not commit or audit:
    the caller records why the codes were issued."""
    if user.id is None:
        raise ValueError("flush the user before issuing recovery codes")
    db.execute(
        delete(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    codes = [_new_code() for _ in range(CODE_COUNT)]
    for code in codes:
        db.add(RecoveryCode(user_id=user.id, code_hash=_hash(user.id, normalise(code) or "")))
    db.flush()
    return codes


def remaining_codes(db: Session, user: User) -> int:
    """How many unused recovery codes ``user`` has."""
    count = db.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


def use_recovery_code(
    db: Session,
    user: User,
    code: str,
    *,
    now: datetime | None = None,
    remote_addr: str | None = None,
) -> bool:
    """Spend one of ``user``'s recovery codes. True when ``code`` was an unused code of
    theirs, which is now used (and the use audited as ``auth.recovery_code_used``).

    The code is marked used with a conditional UPDATE, so two requests racing with the
    same code cannot both succeed. Does not commit.
    """
    symbols = normalise(code)
    if symbols is None:
        return False
    wanted = _hash(user.id, symbols)
    rows = db.execute(
        select(RecoveryCode.id, RecoveryCode.code_hash).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    match: int | None = None
    for row in rows:  # compare with every unused code, in constant time each
        if hmac.compare_digest(row.code_hash.encode(), wanted.encode()) and match is None:
            match = row.id
    if match is None:
        return False
    now = now or utcnow()
    result = db.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == match, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    details: dict[str, object] = {"remaining": remaining_codes(db, user)}
    if remote_addr:
        details["remote_addr"] = remote_addr[:64]
    audit.record(
        db, audit.actor_label(user), "auth.recovery_code_used", f"user:{user.id}", details, now=now
    )
    return True
