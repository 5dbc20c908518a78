"""The ``portal`` command: Flask's CLI bound to ``create_app`` plus our own commands.

``portal run``, ``portal shell`` and ``portal routes`` come from Flask; ``init``,
``import``, ``demo`` and ``audit verify`` are ours. Commands are thin: they parse
arguments, call a domain function inside one transaction, and print its result.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from flask import Flask
from flask.cli import FlaskGroup

from portal.config import ConfigError, Settings, ensure_secret_key, secure_instance
from portal.db import make_engine, transaction
from portal.redaction.mark_commands import marks_group
from portal.state import portal_state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from portal.accounts.models import User

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
    """Create the secret and sealing keys (if missing) and bring the database schema up to
    date."""
    from portal import migrate
    from portal.accounts.totp_key import ensure_totp_key
    from portal.accounts.totp_seeds import seal_plain_seeds, totp_key_path
    from portal.accounts.totp_seeds import sealer_for_settings as seed_sealer_for
    from portal.db import make_session_factory
    from portal.sealing import ensure_sealing_key, sealer_for

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for change in secure_instance(settings):
        click.echo(f"Made private: {change}.")
    if ensure_secret_key(settings):
        click.echo(f"Created secret key {settings.secret_key_file} (mode 0600).")
    if ensure_sealing_key(settings):
        click.echo(
            f"Created sealing key {settings.sealing_key_path} (mode 0600). Back it up apart "
            "from the database: without it the protected identifiers cannot be read."
        )
    for directory in (settings.blob_dir, settings.package_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if ensure_totp_key(settings):
        click.echo(
            f"Created TOTP key {totp_key_path(settings)} (mode 0600). Back it up apart from "
            "the database: without it nobody can sign in with their authenticator."
        )
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine, sealer=sealer_for(settings))
        click.echo(f"Database schema at revision {migrate.current_revision(engine)}.")
        with transaction(make_session_factory(engine)) as session:
            sealed = seal_plain_seeds(session, seed_sealer_for(settings))
        if sealed:
            click.echo(f"Sealed {sealed} TOTP seed(s) stored in the clear.")
        _record_signing_key(settings, make_session_factory(engine))
    except ConfigError as exc:  # the sealing key, for migrations that seal stored values
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def _record_signing_key(settings: Settings, sessions: Any) -> None:
    """`portal init`: record the configured signing key as the first of the history (its public
    half is what the /signing-key page shows); a key that cannot be loaded is only a warning."""
    if settings.signing_key_file is None:
        return
    from portal.audit import CLI_ACTOR
    from portal.registry.signing_keys import (
        SigningKeyError,
        load_mechanism_signer,
        record_first_key,
    )

    try:
        with transaction(sessions) as session:
            row = record_first_key(
                session, load_mechanism_signer(settings, session), actor=CLI_ACTOR
            )
    except SigningKeyError as exc:
        click.echo(f"Warning: the signing key was not recorded: {exc}", err=True)
        return
    if row is not None:
        click.echo(f"Recorded signing key {row.fingerprint} (published on /signing-key).")


@main.group("keys")
def keys_group() -> None:
    """The mechanism's signing key: rotation and revocation (see README, Key rotation)."""


@keys_group.command("rotate-signing", with_appcontext=False)
@click.option("--reason", required=True, help="Why (published in the transition statement).")
@click.option(
    "--import",
    "import_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this armoured secret key (made offline) instead of generating one.",
)
@click.option(
    "--import-passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The passphrase of the --import key.",
)
def rotate_signing_command(
    reason: str, import_key: Path | None, import_passphrase_file: Path | None
) -> None:
    """Hand signing over to a new key: a transition statement signed by the old and the new
    key, the new key's files in <instance>/signing-keys/, and a notice to every recipient."""
    from portal.audit import CLI_ACTOR
    from portal.db import make_session_factory
    from portal.registry.signing_keys import SigningKeyError, rotate_signing_key

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    engine = make_engine(settings.database_url)
    try:
        done = rotate_signing_key(
            settings,
            make_session_factory(engine),
            reason=reason,
            actor=CLI_ACTOR,
            import_key=import_key,
            import_passphrase=import_passphrase_file,
        )
    except SigningKeyError as exc:
        raise click.ClickException(f"nothing was changed: {exc}") from None
    finally:
        engine.dispose()
    click.echo(
        f"The mechanism now signs with {done.new} (was {done.old}), from "
        f"{done.effective_at:%Y-%m-%d %H:%M:%S} UTC; {done.notified} recipient(s) notified.\n"
        f"Its key and passphrase: {done.key_file} and {done.passphrase_file} (0600). Copy them "
        "to every worker machine's instance directory and back them up; workers without them "
        "refuse to sign. The transition statement is on /signing-key."
    )


@keys_group.command("revoke-signing", with_appcontext=False)
@click.argument("fingerprint")
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The key's revocation certificate (gpg --gen-revoke).",
)
@click.option("--reason", required=True, help="Why (shown on /signing-key).")
def revoke_signing_command(fingerprint: str, certificate: Path, reason: str) -> None:
    """Publish the revocation of a retired signing key (the current one: rotate first)."""
    from portal.audit import CLI_ACTOR
    from portal.db import make_session_factory
    from portal.registry.signing_keys import SigningKeyError, revoke_signing_key

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            row = revoke_signing_key(
                session,
                fingerprint,
                certificate.read_text(encoding="ascii", errors="replace"),
                reason=reason,
                actor=CLI_ACTOR,
            )
            done = row.fingerprint
    except SigningKeyError as exc:
        raise click.ClickException(f"nothing was changed: {exc}") from None
    finally:
        engine.dispose()
    click.echo(f"{done} is revoked; /signing-key publishes its revocation.")


@main.command("rotate-totp-key", with_appcontext=False)
def rotate_totp_key_command() -> None:
    """Replace the TOTP key and re-seal every TOTP seed with the new one."""
    from portal.accounts.totp_key import rotate_totp_key
    from portal.accounts.totp_seeds import totp_key_path
    from portal.db import make_session_factory
    from portal.sealing import SealingError

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    engine = make_engine(settings.database_url)
    try:
        report = rotate_totp_key(settings, make_session_factory(engine))
    except (ConfigError, SealingError) as exc:  # a missing or shared key, a seed that does not open
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(
        f"Re-sealed {report.resealed} TOTP seed(s); {totp_key_path(settings)} now holds key "
        f"{report.new_key_id}. Back it up apart from the database (the old key is gone)."
    )


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
    from portal.importing.bundle import BundleRejected, import_bundle

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
                sealer=state.sealer,
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


@main.command("backup", with_appcontext=False)
@click.argument("dest", type=click.Path(path_type=Path))
def backup_command(dest: Path) -> None:
    """Write a consistent database dump, blobs.txt and backup.json into DEST (new or empty).

    Copy the blob store separately (rsync -a): it is append-only."""
    from portal.backup.dump import BackupError, backup

    try:
        manifest = backup(Settings.from_env(), dest)
    except (ConfigError, BackupError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Backed up the {manifest.database} database at revision {manifest.alembic_revision} "
        f"(audit head {manifest.audit_head}) and listed {manifest.blobs} blobs in {dest}."
    )
    if manifest.blobs_missing:
        click.echo(
            f"Warning: {len(manifest.blobs_missing)} blobs the database refers to are not in the "
            "store (listed in backup.json as blobs_missing).",
            err=True,
        )


@main.command("restore", with_appcontext=False)
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
def restore_command(src: Path) -> None:
    """Restore a backup from SRC into an empty database; check blobs and the audit chain."""
    from portal.backup.dump import BackupError
    from portal.backup.restore import restore

    try:
        result = restore(Settings.from_env(), src)
    except (ConfigError, BackupError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Restored the {result.manifest.database} database at revision "
        f"{result.manifest.alembic_revision} and checked {result.manifest.blobs} blobs; "
        f"{result.audit_message}, head {result.manifest.audit_head}."
    )
    if result.upgrade_needed:
        click.echo("The schema is older than this portal: run `portal init` to upgrade it.")


@main.command("scrub")
@click.option("--restart", is_flag=True, help="Start from the first blob, not the checkpoint.")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Check at most this many blobs in this run."
)
def scrub_command(restart: bool, limit: int | None) -> None:
    """Re-hash every stored blob; report each damaged one and what uses it (exit 1).

    Resumable: a run stopped or limited goes on from where it stopped next time. Each damaged
    blob is recorded in the audit log (blob.damaged) and the admins are notified."""
    import time

    from portal.integrity.scrub import ScrubReport, scrub
    from portal.storage import human_size

    shown = [time.monotonic()]

    def progress(report: ScrubReport, key: str) -> None:
        if time.monotonic() - shown[0] >= 5:
            click.echo(
                f"checked {report.checked} blobs ({human_size(report.bytes_read)})", err=True
            )
            shown[0] = time.monotonic()

    report = scrub(portal_state(), restart=restart, limit=limit, progress=progress)
    where = f" after {report.resumed_after[:12]}…" if report.resumed_after else ""
    click.echo(
        f"Checked {report.checked} blobs{where} ({human_size(report.bytes_read)} sound); "
        + ("the whole store has been checked." if report.finished else "run again to go on.")
    )
    for damaged in report.damaged:
        uses = ", ".join(damaged.uses) or "nothing refers to it"
        click.echo(f"DAMAGED {damaged.sha256}: {uses}", err=True)
    if report.damaged:
        click.echo(f"{len(report.damaged)} damaged blob(s): restore them from a backup.", err=True)
        sys.exit(1)


@main.command("sweep")
def sweep_command() -> None:
    """Remove what crashed processes left behind: staging directories of dead assemblies,
    blob-store temporaries, unreferenced blobs past their grace period (never anything in use
    or referenced; see portal/integrity/janitor.py). Workers run it when they start."""
    from portal.integrity.janitor import sweep

    swept = sweep(portal_state())
    click.echo(
        f"Removed {len(swept.staging)} staging directories, {swept.temporaries} blob-store "
        f"temporaries and {len(swept.unreferenced)} unreferenced blobs."
    )
    if swept.blobs_kept_because:
        click.echo(f"Warning: {swept.blobs_kept_because}.", err=True)


@main.group("policy")
def policy_group() -> None:
    """The sharing policy files."""


@policy_group.command("check", with_appcontext=False)
def policy_check_command() -> None:
    """Validate the policy files; exit 1 listing every problem as `file: key: reason`."""
    from portal.eligibility.policy import PolicyError, load_policy

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
    from portal.eligibility.decisions import (
        CheckRefused,
        changes_since_previous,
        load_result,
        run_check,
    )
    from portal.rfa.models import Rfa

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


@rfa_group.command("decide")
@click.argument("rfa_ref")
@click.argument("outcome", metavar="OUTCOME")
@click.option("--note", required=True, help="Why: goes on the request's timeline.")
@click.option("--as", "as_email", required=True, help="E-mail of the legal officer deciding.")
def rfa_decide_command(rfa_ref: str, outcome: str, note: str, as_email: str) -> None:
    """Decide RFA_REF (its code) as the triage page's decide form does: OUTCOME is approved,
    partially_approved or declined; approving needs an eligibility check on file."""
    from portal.rfa.models import Rfa
    from portal.rfa.status import LABELS
    from portal.rfa.triage import TriageError, decide

    state = portal_state()
    with transaction(state.sessions) as session:
        user = _cli_user(session, as_email, "triage.act")
        rfa = _cli_scoped(session, Rfa, user, code=rfa_ref, label=f"request {rfa_ref}")
        try:
            decide(session, rfa, outcome, note, by=user)
        except TriageError as exc:
            raise click.ClickException(f"nothing was changed: {exc}") from None
        done = f"{rfa.code} is {LABELS[rfa.status]}."
    click.echo(done)


@main.group("decision")
def decision_group() -> None:
    """Stored eligibility decisions."""


@decision_group.command("show")
@click.argument("decision_id")
@click.option("--as", "as_email", required=True, help="E-mail of the staff member asking.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def decision_show_command(decision_id: str, as_email: str, as_json: bool) -> None:
    """Print a stored decision and what changed since the previous one."""
    from portal.eligibility.decisions import changes_since_previous, load_result
    from portal.eligibility.models import Decision

    state = portal_state()
    with state.sessions() as session:
        user = _cli_user(session, as_email, "decision.view")
        decision = _cli_scoped(
            session, Decision, user, id=decision_id, label=f"decision {decision_id}"
        )
        result = load_result(decision)
        changes = changes_since_previous(session, decision)
    _print_decision(decision_id, result, changes, as_json)


@main.command("worker", with_appcontext=False)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def worker_command(workers: int) -> None:
    """Run a job consumer (package assembly) until interrupted; run as many as needed, on
    machines sharing the database, the data directory and PORTAL_REDIS_URL."""
    from portal.config import check_signing_files, refuse_shared_instance
    from portal.db import STATISTICS_INTERVAL, refresh_planner_statistics
    from portal.integrity.janitor import sweep
    from portal.packages.assembly.document_worker import preload_renderers
    from portal.packages.assembly.jobs import make_jobs, warn_unless_redis_persists
    from portal.packages.assembly.watch import start_watching
    from portal.periodic import repeat
    from portal.registry.openpgp import remove_stale_keyrings
    from portal.state import build_state
    from portal.transparency.checkpoints import start_checkpointing

    try:
        settings = Settings.from_env()
        refuse_shared_instance(settings)
        check_signing_files(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    # Operators see the consumer start, each job and its outcome on stderr (journald): task
    # ids and package ids only; the portal never logs content, terms or secrets.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        state = build_state(settings)  # a broken policy file stops the worker here, not each job
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:  # once here, before any thread starts, not in each package's document worker
        preload_renderers()
    except Exception as exc:  # each package then fails with the reason instead
        logging.getLogger("portal.worker").error(
            "Could not load the package documents' renderers (%s: %s): each assembly will fail "
            "with the reason until they load; check the system packages the README lists "
            "(`make system-packages`) and the Python environment",
            type(exc).__name__,
            exc,
            exc_info=not isinstance(exc, (ImportError, OSError)),  # a bug: where it is
        )
    jobs = make_jobs(settings, state=state)
    if settings.redis_url:
        warn_unless_redis_persists(settings.redis_url)
    remove_stale_keyrings()  # a killed worker's, with the signing key in them
    swept = sweep(state)  # and the rest of what it left behind
    logging.getLogger("portal.worker").info(
        "Swept %d staging directories, %d temporaries, %d unreferenced blobs",
        len(swept.staging),
        swept.temporaries,
        len(swept.unreferenced),
    )
    start_watching(
        lambda: state, jobs.enqueue_assembly, settings.worker_heartbeat, jobs.pending_assemblies
    )
    start_checkpointing(lambda: state)  # the transparency log's signed checkpoints
    repeat(
        lambda: refresh_planner_statistics(state.engine),
        STATISTICS_INTERVAL,
        name="planner-statistics",
        logger=logging.getLogger("portal.worker"),
        failure="Could not refresh the database's planner statistics",
    )
    consumer = jobs.huey.create_consumer(workers=workers, worker_type="thread", periodic=False)
    consumer.run()


def _run_with_consumer(ctx: click.Context, /, **options: Any) -> None:
    """Flask's ``run``, plus a ``portal worker`` child process for the embedded (SQLite) queue.

    The worker is a separate process so that the web process never holds the signing key
    (it signs packages and recall notices); the web app itself is built without the signing
    key settings (:func:`portal.create_web_app`). With the reloader, Flask runs this twice: in
    a watcher process and in the child that serves (``WERKZEUG_RUN_MAIN`` set), restarted on
    every code change. The worker starts in the first only, so there is always exactly one.
    """
    import os

    from flask.cli import ScriptInfo, run_command

    from portal.log_paths import hide_secret_paths
    from portal.packages.assembly.worker_process import start_worker_process

    hide_secret_paths()  # the development server's access log: no /enrol/<token>, no query
    info = ctx.ensure_object(ScriptInfo)
    info.create_app = _create_web_app
    if os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        app = info.load_app()
        if portal_state(app).settings.redis_url is None:
            start_worker_process()
            click.echo("Started the job worker and signer (`portal worker`, a child process).")
    ctx.invoke(run_command, **options)


def _create_web_app() -> Flask:
    from portal import create_web_app

    try:
        return create_web_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _install_run_command() -> None:
    from flask.cli import run_command

    command = click.Command(
        "run",
        callback=click.pass_context(_run_with_consumer),
        params=list(run_command.params),
        help=(run_command.help or "")
        + "\n\nAlso starts `portal worker` (jobs and signing) as a child process unless"
        " PORTAL_REDIS_URL is set (then run `portal worker` yourself).",
        short_help=run_command.short_help,
    )
    main.add_command(command)


_install_run_command()


main.add_command(marks_group)  # `portal marks …`: portal/redaction/mark_commands.py


@main.group("package")
def package_group() -> None:
    """Packages sent to authorities."""


@package_group.command("export")
@click.argument("package_code", metavar="PKG")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def package_export_command(package_code: str, directory: Path) -> None:
    """Write PKG.tar.gpg, its signature and a cover sheet into DIRECTORY (physical transfer)."""
    from portal.audit import CLI_ACTOR
    from portal.packages.export import ExportRefused, export_package

    state = portal_state()
    result = None
    try:
        with transaction(state.sessions) as session:
            result = export_package(session, state.blobs, package_code, directory, actor=CLI_ACTOR)
    except ExportRefused as exc:
        raise click.ClickException(str(exc)) from None
    except BaseException:
        if result is not None:
            result.remove()  # not audited (the commit failed): leave nothing behind
        raise
    for exported in (result.package, result.signature, result.cover):
        click.echo(f"{exported.sha256}  {exported.path}")


@package_group.command("assemble")
@click.argument("rfa_ref")
@click.option("--decision", "decision_id", required=True, help="The request's latest decision.")
@click.option("--as", "as_email", required=True, help="E-mail of the legal officer assembling.")
def package_assemble_command(rfa_ref: str, decision_id: str, as_email: str) -> None:
    """Make a package of RFA_REF from its latest decision and assemble it now."""
    from portal.eligibility.decisions import latest_decision
    from portal.packages.assembly.jobs import run_assembly
    from portal.packages.lifecycle import PackageRefused, create_package
    from portal.packages.models import Package
    from portal.rfa.models import Rfa

    state = portal_state()
    with transaction(state.sessions) as session:
        user = _cli_user(session, as_email, "package.create")
        rfa = _cli_scoped(session, Rfa, user, code=rfa_ref, label=f"request {rfa_ref}")
        latest = latest_decision(session, rfa.id)
        if latest is None or latest.id != decision_id:
            raise click.ClickException(
                f"{decision_id} is not the latest decision of {rfa_ref}; packages are made "
                "from the latest decision only"
            )
        try:
            package = create_package(session, rfa, state.policy.redactable_media_types, by=user)
        except PackageRefused as exc:
            raise click.ClickException(str(exc)) from None
        package_id, code = package.id, package.code
    click.echo(f"{code} created; assembling...")
    run_assembly(state, package_id)
    with state.sessions() as session:
        done = session.get(Package, package_id)
        assert done is not None  # noqa: S101 - just made
        click.echo(_package_line(done))
        sys.exit(0 if done.status == "assembled" else 1)


@package_group.command("release")
@click.argument("package_code", metavar="PKG")
@click.option("--as", "as_email", required=True, help="E-mail of the second legal officer.")
@click.option("--expires-days", default=30, show_default=True, type=int)
@click.option("--download-limit", type=int, default=None, help="Full downloads allowed.")
def package_release_command(
    package_code: str, as_email: str, expires_days: int, download_limit: int | None
) -> None:
    """Release an assembled package (four-eyes: never by the officer who assembled it)."""
    from flask import current_app

    from portal.packages import release_previews
    from portal.packages.assembly.jobs import queue_release_statements
    from portal.packages.lifecycle import PackageRefused, release_package
    from portal.packages.models import Package

    state = portal_state()
    with transaction(state.sessions) as session:
        user = _cli_user(session, as_email, "package.release")
        package = _cli_scoped(
            session, Package, user, code=package_code, label=f"package {package_code}"
        )
        try:
            release_package(
                session, package, by=user, expires_in_days=expires_days,
                download_limit=download_limit,
            )  # fmt: skip
        except PackageRefused as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(_package_line(package))
    queue_release_statements(current_app)  # the worker signs the release statement
    release_previews.prune(state)  # its renditions were kept for this release only


@package_group.command("status")
@click.argument("package_code", metavar="PKG")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def package_status_command(package_code: str, as_json: bool) -> None:
    """Print a package's status, stage, progress and failure reason."""
    import json

    from sqlalchemy import select

    from portal.packages.models import Package

    state = portal_state()
    with state.sessions() as session:
        package = session.scalar(select(Package).where(Package.code == package_code))
        if package is None:
            raise click.ClickException(f"no package {package_code}")
        if not as_json:
            click.echo(_package_line(package))
            return
        payload = {
            "code": package.code,
            "status": package.status,
            "stage": package.stage,
            "progress": package.progress,
            "failure_reason": package.failure_reason,
            "leak_check": package.leak_check,
            "file_sha256": package.file_sha256,
            "file_size": package.file_size,
            "signature_sha256": package.signature_sha256,
            "signer_fingerprint": package.signer_fingerprint,
            "released_at": package.released_at.isoformat() if package.released_at else None,
            "expires_at": package.expires_at.isoformat() if package.expires_at else None,
            "download_limit": package.download_limit,
        }
        click.echo(json.dumps(payload, indent=2, sort_keys=True))


def _package_line(package: Any) -> str:
    line = f"{package.code}: {package.status} ({package.stage}, {package.progress}%)"
    if package.failure_reason:
        line += f": {package.failure_reason}"
    return line


def _print_decision(decision_id: str, result: Any, changes: Any, as_json: bool) -> None:
    import json

    from portal.eligibility.policy.report import format_decision

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

    from portal.accounts.approval import is_approved
    from portal.accounts.models import User
    from portal.authz.permissions import allowed

    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if (
        user is None
        or not user.is_active
        or not is_approved(user)  # a second admin has not approved the account yet
        or not allowed(user.role, action)
    ):
        raise click.ClickException(f"{email} is not an active user allowed to {action}")
    return user


def _cli_scoped(session: Session, model: type[M], user: User, *, label: str, **by: Any) -> M:
    """The row the user's scope holds, as the pages load it (another tenant's row or a draft
    is refused like one that does not exist)."""
    from portal.authz.scopes import find_scoped

    found = find_scoped(session, model, user, **by)
    if found is None:
        raise click.ClickException(f"no {label} that {user.email} may see")
    return found
