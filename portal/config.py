"""Typed settings read from ``PORTAL_*`` environment variables.

There are no secret defaults: the Flask secret key is read from a file that
``portal init`` creates (mode 0600). Without it the app refuses to start
unless it runs in test mode. The sealing key (:mod:`portal.sealing`) is another such file.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Requests of one web process computing at once (``PORTAL_COMPUTE_SLOTS``; 0: no limit;
#: portal.web.compute_slots). Two, not one: while one waits for the database, the other
#: computes, and one slow request does not hold up every other user of its process.
DEFAULT_SLOTS = 2

logger = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says how to fix it."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _number(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _optional_flag(env: Mapping[str, str], name: str) -> bool | None:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


PASSWORD_HASH_PROFILES = ("standard", "fast")
DEFAULT_LOGIN_RATE_LIMIT = "20 per minute;200 per hour"  # failed steps per address
DEFAULT_QUEUE_NAME = "sharing-portal"
_QUEUE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Settings:
    """Everything the portal needs to know about its deployment."""

    instance_dir: Path
    database_url: str
    data_dir: Path
    policies_dir: Path
    templates_dir: Path
    secret_key_file: Path
    # The AES key sealing secrets at rest (portal.sealing). None: instance/sealing_key.
    sealing_key_file: Path | None = None
    signing_key_file: Path | None = None
    signing_passphrase_file: Path | None = None
    archive_key_file: Path | None = None
    redis_url: str | None = None
    # The job queue's name: portals that share one Redis (say staging and production) need
    # different names, or one's workers would take the other's jobs.
    queue_name: str = DEFAULT_QUEUE_NAME
    demo: bool = False
    testing: bool = False
    max_upload_bytes: int = 512 * 1024 * 1024
    # Number of reverse proxies in front of the app whose X-Forwarded-* headers we trust.
    trusted_proxies: int = 0
    # Requests of one web process computing at once (portal.web.compute_slots); 0: no limit.
    compute_slots: int = DEFAULT_SLOTS
    # Served over HTTPS (cookies get the Secure flag). None: yes, unless in demo or test mode.
    https: bool | None = None
    # argon2 cost: "standard", or "fast" (test mode only). None: "fast" in test mode.
    password_hash_profile: str | None = None
    # Login POSTs allowed per client address (Flask-Limiter notation).
    login_rate_limit: str = DEFAULT_LOGIN_RATE_LIMIT
    # JSON API: requests per client, and token requests per address (None: portal.api defaults).
    api_rate_limit: str | None = None
    api_token_rate_limit: str | None = None
    # Notification e-mail (portal.notifications.mailer): off unless a host is set.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_starttls: bool = False
    # The portal's address as users reach it (the link in notification e-mail).
    base_url: str | None = None
    # Seconds between the signs of life of a running assembly; three missed ones mean its
    # worker died and the package is queued again (portal.packages.assembly.watch).
    worker_heartbeat: int = 20
    # An RFC 3161 time-stamping authority (portal.packages.assembly.timestamp): when set, every
    # manifest signature is time-stamped, or the package fails; its CA certificates (PEM) are
    # required with it.
    tsa_url: str | None = None
    tsa_ca_file: Path | None = None
    tsa_timeout: int = 10
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        profile = self.password_hash_profile
        if profile is not None and profile not in PASSWORD_HASH_PROFILES:
            raise ConfigError(
                f"PORTAL_PASSWORD_HASH_PROFILE must be one of {', '.join(PASSWORD_HASH_PROFILES)}"
                f", not {profile!r}"
            )
        if profile == "fast" and not self.testing:
            raise ConfigError("the 'fast' password hash profile is for tests only")

    @property
    def secure_cookies(self) -> bool:
        return self.https if self.https is not None else not self.demo_or_test

    @property
    def hash_profile(self) -> str:
        """The argon2 cost profile in force (see portal.accounts.passwords)."""
        if self.password_hash_profile is not None:
            return self.password_hash_profile
        return "fast" if self.testing else "standard"

    @property
    def sealing_key_path(self) -> Path:
        if self.sealing_key_file is not None:
            return self.sealing_key_file
        return self.instance_dir / "sealing_key"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def package_dir(self) -> Path:
        return self.data_dir / "packages"

    @property
    def ocr_cache_dir(self) -> Path:
        """Pages read with OCR, sealed (see portal.redaction.ocr)."""
        return self.data_dir / "ocr-cache"

    @property
    def page_cache_dir(self) -> Path:
        """Page images for the redaction viewer (see portal.redaction.page_images)."""
        return self.data_dir / "page-cache"

    @property
    def found_names_dir(self) -> Path:
        """Where the review page's searches for names are kept (see
        portal.redaction.found_names): codes, pages and boxes, never a term."""
        return self.data_dir / "found-names"

    @property
    def demo_or_test(self) -> bool:
        return self.demo or self.testing

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (``os.environ`` by default)."""
        env = os.environ if env is None else env
        instance = Path(env.get("PORTAL_INSTANCE_DIR") or Path.cwd() / "instance").resolve()

        def path(name: str, default: Path | None) -> Path | None:
            raw = env.get(name)
            return Path(raw).resolve() if raw else default

        def required_path(name: str, default: Path) -> Path:
            result = path(name, default)
            assert result is not None  # noqa: S101 - default is never None
            return result

        max_upload_bytes = _number(env, "PORTAL_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
        trusted_proxies = _number(env, "PORTAL_TRUSTED_PROXIES", 0)
        compute_slots = _number(env, "PORTAL_COMPUTE_SLOTS", DEFAULT_SLOTS)
        return cls(
            instance_dir=instance,
            database_url=env.get("PORTAL_DATABASE_URL") or f"sqlite:///{instance / 'portal.db'}",
            data_dir=required_path("PORTAL_DATA_DIR", instance / "data"),
            policies_dir=required_path("PORTAL_POLICIES_DIR", REPO_ROOT / "policies"),
            templates_dir=required_path("PORTAL_TEMPLATES_DIR", REPO_ROOT / "templates"),
            secret_key_file=required_path("PORTAL_SECRET_KEY_FILE", instance / "secret_key"),
            sealing_key_file=required_path("PORTAL_SEALING_KEY_FILE", instance / "sealing_key"),
            signing_key_file=path("PORTAL_SIGNING_KEY", None),
            signing_passphrase_file=path("PORTAL_SIGNING_PASSPHRASE_FILE", None),
            archive_key_file=path("PORTAL_ARCHIVE_KEY", None),
            redis_url=env.get("PORTAL_REDIS_URL") or None,
            queue_name=_queue_name(env.get("PORTAL_QUEUE_NAME")),
            demo=_flag(env.get("PORTAL_DEMO")),
            testing=_flag(env.get("PORTAL_TESTING")),
            max_upload_bytes=max_upload_bytes,
            trusted_proxies=trusted_proxies,
            compute_slots=compute_slots,
            https=_optional_flag(env, "PORTAL_HTTPS"),
            password_hash_profile=env.get("PORTAL_PASSWORD_HASH_PROFILE") or None,
            login_rate_limit=env.get("PORTAL_LOGIN_RATE_LIMIT") or DEFAULT_LOGIN_RATE_LIMIT,
            api_rate_limit=env.get("PORTAL_API_RATE_LIMIT") or None,
            api_token_rate_limit=env.get("PORTAL_API_TOKEN_RATE_LIMIT") or None,
            smtp_host=env.get("PORTAL_SMTP_HOST") or None,
            smtp_port=_number(env, "PORTAL_SMTP_PORT", 25),
            smtp_from=env.get("PORTAL_SMTP_FROM") or None,
            smtp_starttls=_flag(env.get("PORTAL_SMTP_STARTTLS")),
            base_url=env.get("PORTAL_BASE_URL") or None,
            worker_heartbeat=_heartbeat(env),
            tsa_url=_tsa_url(env),
            tsa_ca_file=path("PORTAL_TSA_CA_FILE", None),
            tsa_timeout=_tsa_timeout(env),
        )


def _heartbeat(env: Mapping[str, str]) -> int:
    seconds = _number(env, "PORTAL_WORKER_HEARTBEAT", 20)
    if not 1 <= seconds <= 3600:
        raise ConfigError("PORTAL_WORKER_HEARTBEAT must be 1 to 3600 seconds")
    return seconds


def _tsa_url(env: Mapping[str, str]) -> str | None:
    """PORTAL_TSA_URL: an http(s) address, and only together with PORTAL_TSA_CA_FILE."""
    raw = (env.get("PORTAL_TSA_URL") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("PORTAL_TSA_URL must be an http:// or https:// address")
    if not env.get("PORTAL_TSA_CA_FILE"):
        raise ConfigError(
            "PORTAL_TSA_URL needs PORTAL_TSA_CA_FILE: the time-stamping authority's CA "
            "certificate(s), PEM, which every reply is checked against and which recipients "
            "get in the bag"
        )
    return raw


def _tsa_timeout(env: Mapping[str, str]) -> int:
    seconds = _number(env, "PORTAL_TSA_TIMEOUT", 10)
    if not 1 <= seconds <= 300:
        raise ConfigError("PORTAL_TSA_TIMEOUT must be 1 to 300 seconds")
    return seconds


def _queue_name(raw: str | None) -> str:
    if not raw:
        return DEFAULT_QUEUE_NAME
    if not _QUEUE_NAME.fullmatch(raw):
        raise ConfigError(
            "PORTAL_QUEUE_NAME must be 1 to 64 letters, digits, dots, hyphens or underscores"
        )
    return raw


def create_private_file(path: Path, content: str) -> bool:
    """Write ``content`` to a new file at ``path`` (mode 0600) unless it exists. Returns True
    when created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return True


def refuse_shared_file(path: Path) -> None:
    """A key file must be readable by its owner alone."""
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by other users; run `chmod 600 {path}`.")


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file of ``settings`` (None for another database or in memory)."""
    url = settings.database_url
    if not url.startswith("sqlite:///"):
        return None
    name = url[len("sqlite:///") :].split("?", 1)[0]
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def refuse_shared_instance(settings: Settings) -> None:
    """Refuse an instance directory other users can enter or a SQLite database file they can
    read (:class:`ConfigError` saying how to fix it; `portal init` fixes both)."""
    instance = settings.instance_dir
    if instance.is_dir() and instance.stat().st_mode & 0o077:
        raise ConfigError(
            f"The instance directory {instance} is open to other users; run `chmod 700 "
            f"{instance}` (or `portal init`, which does)."
        )
    database = sqlite_file(settings)
    if database is not None and database.exists() and database.stat().st_mode & 0o077:
        raise ConfigError(
            f"The database {database} is readable by other users; run `chmod 600 {database}` "
            "(or `portal init`, which does)."
        )


def secure_instance(settings: Settings) -> list[str]:
    """Create the instance directory (0700) and an empty SQLite database file (0600, so the
    database and its WAL files are private from the first byte), and narrow them when wider.
    Returns what was changed, for the operator."""
    changed: list[str] = []
    instance = settings.instance_dir
    instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    if instance.stat().st_mode & 0o077:
        instance.chmod(0o700)
        changed.append(f"{instance} is now mode 0700")
    database = sqlite_file(settings)
    if database is None:
        return changed
    if not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, *(Path(f"{database}{end}") for end in ("-wal", "-shm"))):
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
            changed.append(f"{path} is now mode 0600")
    return changed


def check_signing_files(settings: Settings) -> None:
    """Refuse a signing key or passphrase file that other users can read (:class:`ConfigError`
    saying how to fix it). In demo and test mode only warn: the example keys come from git as
    0644 and are refused outside those modes anyway. A missing file is left to the loader."""
    for path, what in (
        (settings.signing_key_file, "signing key"),
        (settings.signing_passphrase_file, "signing passphrase"),
    ):
        if path is None:
            continue
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if not mode & 0o077:
            continue
        if settings.demo_or_test:
            logger.warning(
                "the %s file %s is readable by other users (allowed in demo/test mode)", what, path
            )
            continue
        raise ConfigError(
            f"The {what} file {path} is readable by other users; run `chmod 600 {path}`."
        )


def ensure_secret_key(settings: Settings) -> bool:
    """Create the secret key file (mode 0600) when missing. Returns True when created."""
    return create_private_file(settings.secret_key_file, secrets.token_hex(32))


def read_secret_key(settings: Settings) -> str:
    """Return the secret key, or explain how to create one."""
    path = settings.secret_key_file
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"No secret key at {path}. Run `portal init` to create one "
            "(or point PORTAL_SECRET_KEY_FILE at an existing key file)."
        ) from None
    if len(key) < 32:
        raise ConfigError(f"The secret key in {path} is too short (need at least 32 characters).")
    refuse_shared_file(path)
    return key
