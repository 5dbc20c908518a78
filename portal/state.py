"""What one running portal holds: settings, database engine and sessions, blob store, policy
and the sealer of secrets at rest."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.accounts.totp_seeds import attach_sealer
from portal.accounts.totp_seeds import sealer_for_settings as seed_sealer_for
from portal.config import ConfigError, Settings
from portal.consent.ledger import guard_consents
from portal.db import make_engine, make_session_factory
from portal.eligibility.decisions import guard_decisions
from portal.eligibility.policy import Policy, PolicyError, load_policy
from portal.integrity.verified import RecentlyVerified
from portal.sealing import Sealer, sealer_for
from portal.storage import FileBlobStore


@dataclass
class PortalState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: FileBlobStore
    policy: Policy
    sealer: Sealer
    # Blobs checked against their sha256 lately, before serving (portal.integrity.verified).
    verified: RecentlyVerified = field(default_factory=RecentlyVerified)


def build_state(settings: Settings, *, engine: Engine | None = None) -> PortalState:
    """Everything a running portal needs; refuses a policy that does not validate.

    ``engine`` reuses an existing engine (tests share one per database)."""
    try:
        policy = load_policy(settings.policies_dir)
    except PolicyError as exc:
        raise ConfigError(f"the sharing policy does not validate:\n{exc}") from None
    # A new instance directory is private from the start (the blob store is made inside it).
    settings.instance_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = engine if engine is not None else make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    attach_sealer(sessions, seed_sealer_for(settings))  # TOTP seeds (portal.accounts.totp_seeds)
    guard_decisions(sessions)
    guard_consents(sessions)
    return PortalState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        blobs=FileBlobStore(settings.blob_dir),
        policy=policy,
        sealer=sealer_for(settings),
    )


def portal_state(app: Flask | None = None) -> PortalState:
    """The state of ``app`` (the current app by default)."""
    target = app if app is not None else current_app
    state: PortalState = target.extensions["portal"]
    return state
