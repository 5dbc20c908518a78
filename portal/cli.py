"""The ``portal`` command: Flask's CLI bound to ``create_app`` plus our own commands.

``portal run``, ``portal shell`` and ``portal routes`` come from Flask; ``init``,
``import``, ``demo`` and ``audit verify`` are ours. Commands are thin: they parse
arguments, call a domain function inside one transaction, and print its result.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from flask import Flask
from flask.cli import FlaskGroup

from portal.config import ConfigError, Settings, ensure_secret_key
from portal.db import make_engine, transaction
from portal.state import portal_state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from portal.models import User

M = TypeVar("M")


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


@main.group("policy")
def policy_group() -> None:
    """The sharing policy files."""


@policy_group.command("check", with_appcontext=False)
def policy_check_command() -> None:
    """Validate the policy files; exit 1 listing every problem as `file: key: reason`."""
    from portal.policy import PolicyError, load_policy

    try:
        settings = Settings.from_env()
        policy = load_policy(settings.policies_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except PolicyError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(
        f"Policy {policy.id} is valid: {len(policy.rules)} rules, revision {policy.revision}."
    )


@main.group("rfa")
def rfa_group() -> None:
    """Requests for assistance."""


@rfa_group.command("check")
@click.argument("rfa_ref")
@click.option("--as", "as_email", required=True, help="E-mail of the legal officer asking.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def rfa_check_command(rfa_ref: str, as_email: str, as_json: bool) -> None:
    """Run the eligibility check on RFA_REF (its code) and store the decision."""
    from portal.audit import actor_label
    from portal.decisions import CheckRefused, changes_since_previous, load_result, run_check
    from portal.models import Rfa

    state = portal_state()
    with transaction(state.sessions) as session:
        user = _cli_user(session, as_email, "rfa.check")
        rfa = _cli_scoped(session, Rfa, user, code=rfa_ref, label=f"request {rfa_ref}")
        try:
            decision = run_check(
                session, rfa, state.policy, requested_by=user, actor=actor_label(user)
            )
        except CheckRefused as exc:
            raise click.ClickException(str(exc)) from None
        result = load_result(decision)
        changes = changes_since_previous(session, decision)
        decision_id = decision.id
    _print_decision(decision_id, result, changes, as_json)


@main.group("decision")
def decision_group() -> None:
    """Stored eligibility decisions."""


@decision_group.command("show")
@click.argument("decision_id")
@click.option("--as", "as_email", required=True, help="E-mail of the staff member asking.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def decision_show_command(decision_id: str, as_email: str, as_json: bool) -> None:
    """Print a stored decision and what changed since the previous one."""
    from portal.decisions import changes_since_previous, load_result
    from portal.models import Decision

    state = portal_state()
    with state.sessions() as session:
        user = _cli_user(session, as_email, "decision.view")
        decision = _cli_scoped(
            session, Decision, user, id=decision_id, label=f"decision {decision_id}"
        )
        result = load_result(decision)
        changes = changes_since_previous(session, decision)
    _print_decision(decision_id, result, changes, as_json)


def _print_decision(decision_id: str, result: Any, changes: Any, as_json: bool) -> None:
    import json

    from portal.policy.report import format_decision

    if as_json:
        payload = {
            "decision_id": decision_id,
            "result": result.to_json(),
            "changes_since_previous": None
            if changes is None
            else [change.sentence() for change in changes],
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True))
    else:
        click.echo(format_decision(decision_id, result, changes))


def _cli_user(session: Session, email: str, action: str) -> User:
    """The active user acting through the CLI, allowed ``action`` by the same table as the
    pages; refuses with one message whether the account is unknown or not allowed."""
    from sqlalchemy import select

    from portal.models import User
    from portal.security.authz import allowed

    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active or not allowed(user.role, action):
        raise click.ClickException(f"{email} is not an active user allowed to {action}")
    return user


def _cli_scoped(session: Session, model: type[M], user: User, *, label: str, **by: Any) -> M:
    from portal.security.authz import scoped

    found = session.scalars(scoped(model, user).filter_by(**by).limit(2)).all()
    if len(found) != 1:
        raise click.ClickException(f"no {label} that {user.email} may see")
    return found[0]
