"""What one running portal holds: settings, database engine and sessions, blob store."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import make_engine, make_session_factory
from portal.storage import FileBlobStore


@dataclass
class PortalState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: FileBlobStore


def build_state(settings: Settings) -> PortalState:
    engine = make_engine(settings.database_url)
    return PortalState(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        blobs=FileBlobStore(settings.blob_dir),
    )


def portal_state(app: Flask | None = None) -> PortalState:
    """The state of ``app`` (the current app by default)."""
    target = app if app is not None else current_app
    state: PortalState = target.extensions["portal"]
    return state
