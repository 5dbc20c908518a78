"""The demo's users and their logins.

Passwords and TOTP secrets are random, made on the first run and kept in a logins
file (JSON, mode 0600) beside the instance. A later run leaves existing users alone
and reads their logins back from that file, so it prints the same logins again.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.creation import NewUser, create_user, new_totp_secret
from portal.accounts.models import User
from portal.registry.models import Authority, Provider

ISSUER = "Sharing Portal (demo)"
PASSWORD_LENGTH = 20
# No look-alikes (0/O, 1/l/I) so a password read off a screen can be typed.
_PASSWORD_ALPHABET = "".join(ch for ch in string.ascii_letters + string.digits if ch not in "0O1lI")
LOGINS_FORMAT = 1


class LoginsFileError(RuntimeError):
    """The logins file exists but cannot be used; it is left untouched."""


@dataclass(frozen=True)
class DemoUser:
    email: str
    display_name: str
    role: str
    authority_code: str | None = None
    provider_code: str | None = None

    def new_user(self) -> NewUser:
        return NewUser(
            email=self.email,
            display_name=self.display_name,
            role=self.role,
            authority_code=self.authority_code,
            provider_code=self.provider_code,
        )


# Every role; two legal officers because releasing a package (and verifying a key another
# imported) needs a second one, two admins because a new account needs a second admin's approval.
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin@mechanism.example", "Ada Demo (IT administrator)", "admin"),
    DemoUser("admin.two@mechanism.example", "Bo Demo (second IT administrator)", "admin"),
    DemoUser("officer.one@mechanism.example", "Lior Demo (legal officer)", "legal_officer"),
    DemoUser("officer.two@mechanism.example", "Noor Demo (legal officer)", "legal_officer"),
    DemoUser(
        "provider@hdc.example",
        "Sami Demo (Highland Documentation Centre)",
        "provider",
        provider_code="PRV-HDC",
    ),
    DemoUser(
        "provider@counsel.example",
        "Kit Demo (counsel for witness V-07)",
        "provider",
        provider_code="PRV-REP",
    ),
    DemoUser(
        "provider@unmv.example",
        "Remy Demo (UN Monitoring Mission in Valdoria)",
        "provider",
        provider_code="PRV-UNM",
    ),
    # Two readers of the families' network: the language test answers its consent requests,
    # one in an Arabic browser, one in a Burmese one (no one else uses this provider).
    DemoUser(
        "provider.ar@kfn.example",
        "Rima Demo (Kallavar Families Network)",
        "provider",
        provider_code="PRV-KFN",
    ),
    DemoUser(
        "provider.my@kfn.example",
        "Thiri Demo (Kallavar Families Network)",
        "provider",
        provider_code="PRV-KFN",
    ),
    DemoUser(
        "requester@nwu.example",
        "Jo Demo (Northland requester)",
        "requester",
        authority_code="NWU-NL",
    ),
    DemoUser(
        "recipient@nwu.example",
        "Alex Demo (Northland recipient)",
        "recipient",
        authority_code="NWU-NL",
    ),
    DemoUser(
        "requester@spr.example",
        "Sam Demo (Southport requester)",
        "requester",
        authority_code="SPR-ES",
    ),
    DemoUser(
        "recipient@spr.example",
        "Robin Demo (Southport recipient)",
        "recipient",
        authority_code="SPR-ES",
    ),
    DemoUser(
        "requester@ect.example",
        "Kim Demo (Eastvale requester)",
        "requester",
        authority_code="ECT-EV",
    ),
    DemoUser(
        "requester@wjd.example",
        "Dana Demo (Westreach requester)",
        "requester",
        authority_code="WJD-WR",
    ),
    DemoUser(
        "requester@rcp.example",
        "Ari Demo (Riverton requester)",
        "requester",
        authority_code="RCP-RV",
    ),
    DemoUser(
        "recipient@rcp.example",
        "Mika Demo (Riverton recipient)",
        "recipient",
        authority_code="RCP-RV",
    ),
)


@dataclass(frozen=True)
class Credentials:
    password: str
    totp_secret: str


@dataclass(frozen=True)
class Login:
    """What a person needs to sign in as one demo user."""

    email: str
    display_name: str
    role: str
    organisation: str
    # None when the user existed before but the logins file has no entry for it.
    credentials: Credentials | None
    created: bool

    @property
    def password(self) -> str | None:
        return self.credentials.password if self.credentials else None

    @property
    def totp_secret(self) -> str | None:
        return self.credentials.totp_secret if self.credentials else None

    @property
    def otpauth_uri(self) -> str | None:
        if self.credentials is None:
            return None
        uri: str = pyotp.TOTP(self.credentials.totp_secret).provisioning_uri(
            name=self.email, issuer_name=ISSUER
        )
        return uri


def new_password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def load_logins(path: Path) -> dict[str, Credentials]:
    """Read the logins file; an absent file means no logins yet."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LoginsFileError(f"cannot read the demo logins file {path}: {exc}") from None
    try:
        document = json.loads(raw)
    except ValueError:
        raise LoginsFileError(
            f"the demo logins file {path} is not valid JSON; move it away to start afresh"
        ) from None
    entries = document.get("logins") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise LoginsFileError(f"the demo logins file {path} has no 'logins' object")
    logins: dict[str, Credentials] = {}
    for email, entry in entries.items():
        password = entry.get("password") if isinstance(entry, dict) else None
        totp_secret = entry.get("totp_secret") if isinstance(entry, dict) else None
        if not isinstance(password, str) or not isinstance(totp_secret, str):
            raise LoginsFileError(
                f"the demo logins file {path} has a malformed entry for {email!r}"
            )
        logins[email] = Credentials(password=password, totp_secret=totp_secret)
    return logins


def save_logins(path: Path, logins: Mapping[str, Credentials]) -> None:
    """Write the logins file atomically, readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "format": LOGINS_FORMAT,
        "note": "Demo logins of the Sharing Portal. Fictional accounts; never use in production.",
        "logins": {
            email: {"password": creds.password, "totp_secret": creds.totp_secret}
            for email, creds in sorted(logins.items())
        },
    }
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def ensure_users(
    session: Session,
    users: Sequence[DemoUser],
    saved: Mapping[str, Credentials],
    *,
    logins_file: Path,
    actor: str,
) -> list[Login]:
    """Create the users that do not exist yet and return every user's login.

    ``saved`` are the logins read from ``logins_file`` (see :func:`load_logins`); a user
    missing from the database is created with its saved login when there is one. New
    logins are added to the file before the caller commits: if the commit then fails, the
    next run creates the users with the same logins.
    """
    saved = dict(saved)
    logins: list[Login] = []
    changed = False
    for spec in users:
        existing = session.scalar(select(User).where(User.email == spec.email))
        creds = saved.get(spec.email)
        created = existing is None
        if existing is None:
            if creds is None:
                creds = Credentials(password=new_password(), totp_secret=new_totp_secret())
                saved[spec.email] = creds
                changed = True
            create_user(
                session,
                spec.new_user(),
                password=creds.password,
                totp_secret=creds.totp_secret,
                actor=actor,
            )
        logins.append(
            Login(
                email=spec.email,
                display_name=spec.display_name,
                role=spec.role,
                organisation=_organisation(session, spec),
                credentials=creds,
                created=created,
            )
        )
    if changed:
        save_logins(logins_file, saved)
    return logins


def _organisation(session: Session, spec: DemoUser) -> str:
    if spec.authority_code:
        name = session.scalar(select(Authority.name).where(Authority.code == spec.authority_code))
        return f"{name} ({spec.authority_code})"
    if spec.provider_code:
        name = session.scalar(select(Provider.name).where(Provider.code == spec.provider_code))
        return f"{name} ({spec.provider_code})"
    return "Mechanism"


def format_login_table(logins: Iterable[Login], *, logins_file: Path) -> str:
    """A readable table of logins, then each user's otpauth URI for an authenticator app."""
    rows = list(logins)
    header = ("role", "e-mail", "organisation", "password", "TOTP secret")
    table = [header]
    for login in rows:
        table.append(
            (
                login.role,
                login.email,
                login.organisation,
                login.password or "(unknown: not in logins file)",
                login.totp_secret or "(unknown)",
            )
        )
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    lines = [
        "Demo logins (fictional accounts; DEMO ONLY). "
        f"Saved in {logins_file} (mode 0600); a second run prints the same.",
        "",
    ]
    for index, row in enumerate(table):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines += ["", "Add to an authenticator app (otpauth URIs):"]
    for login in rows:
        lines.append(f"  {login.email}: {login.otpauth_uri or '(unknown)'}")
    return "\n".join(line.rstrip() for line in lines)
