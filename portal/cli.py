"""The ``portal`` command: Flask's CLI bound to ``create_app`` plus our own commands.

``portal run``, ``portal shell`` and ``portal routes`` come from Flask; ``init``,
``import``, ``demo`` and ``audit verify`` are ours. Commands are thin: they parse
arguments, call a domain function inside one transaction, and print its result.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup

from portal.config import ConfigError, Settings, ensure_secret_key
from portal.db import make_engine, transaction
from portal.state import portal_state


def _create_app() -> Flask:
    from portal import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


main = FlaskGroup(
    name="portal",
    create_app=_create_app,
    help="Sharing Portal administration. Settings come from PORTAL_* environment variables.",
)


@main.command("init", with_appcontext=False)
def init_command() -> None:
    """Create the secret key (if missing) and bring the database schema up to date."""
    from portal import migrate

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if ensure_secret_key(settings):
        click.echo(f"Created secret key {settings.secret_key_file} (mode 0600).")
    for directory in (settings.blob_dir, settings.package_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        click.echo(f"Database schema at revision {migrate.current_revision(engine)}.")
    finally:
        engine.dispose()


@main.command("import")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--files",
    "files_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory the items' `file` paths are relative to.",
)
def import_command(bundle: Path, files_dir: Path | None) -> None:
    """Import a JSON Lines bundle (all or nothing)."""
    from portal.audit import CLI_ACTOR
    from portal.importer import BundleRejected, import_bundle

    state = portal_state()
    try:
        with transaction(state.sessions) as session:
            report = import_bundle(
                session,
                state.blobs,
                bundle,
                files_dir,
                actor=CLI_ACTOR,
                demo_or_test=state.settings.demo_or_test,
            )
    except BundleRejected as exc:
        click.echo(exc.report(), err=True)
        sys.exit(1)
    click.echo(report.summary())


@main.command("demo")
def demo_command() -> None:
    """Load the fictional demo data, keys and users (only with PORTAL_DEMO=1)."""
    from portal.demo import DemoRefused, format_logins, run_demo

    state = portal_state()
    try:
        result = run_demo(state, logins_file=state.settings.instance_dir / "demo_logins.json")
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_logins(result))


@main.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@click.option(
    "--anchor",
    metavar="SEQ:HASH",
    help="A head published earlier by `portal audit head`; catches events cut from the end.",
)
def audit_verify_command(anchor: str | None) -> None:
    """Recompute the audit chain; exit 1 naming the first bad event."""
    from portal.audit import ChainHead, verify

    try:
        published = ChainHead.parse(anchor) if anchor else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--anchor") from None
    state = portal_state()
    with state.sessions() as session:
        result = verify(session, anchor=published)
    click.echo(result.message(), err=not result.ok)
    sys.exit(0 if result.ok else 1)


@audit_group.command("head")
def audit_head_command() -> None:
    """Print the newest event as SEQ:HASH, to publish outside the database."""
    from portal.audit import head

    state = portal_state()
    with state.sessions() as session:
        click.echo(str(head(session)))
