"""``portal demo``: load a fictional world, the example keys and one user of every role.

The evidence files are generated deterministically (same bytes on every run), written to a
temporary directory and imported with :func:`portal.importing.bundle.import_bundle`; users are made
with :func:`portal.accounts.creation.create_user`; a legal officer then confirms the marks the
world says are confirmed and asks providers' consent for the requests the world names (with
:func:`portal.rfa.triage.ask_for_consent`, as the triage page does). Everything happens in one
transaction. Running the demo again imports nothing new, creates no user or consent request twice
and prints the same logins (read back from the logins file).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.accounts.creation import AccountError
from portal.accounts.models import User
from portal.audit import CLI_ACTOR
from portal.config import REPO_ROOT
from portal.consent.models import ConsentRequest
from portal.db import transaction
from portal.demo.dataset import AUTHORITY_CODES, Dataset, DatasetError, build_dataset
from portal.demo.users import (
    DEMO_USERS,
    Login,
    LoginsFileError,
    ensure_users,
    format_login_table,
    load_logins,
)
from portal.importing.bundle import BundleRejected, ImportReport, import_bundle
from portal.notifications.models import Notification
from portal.notifications.service import marks_await_confirmation, marks_topic
from portal.redaction.mark_review import confirm_mark, history_of, mark_of_item
from portal.registry.models import Authority, Item, RedactionMark
from portal.rfa.models import Rfa
from portal.rfa.triage import TriageError, ask_for_consent
from portal.state import PortalState

__all__ = ["DemoRefused", "DemoResult", "format_logins", "run_demo"]

DEFAULT_KEYS_DIR = REPO_ROOT / "keys_example"
BUNDLE_NAME = "demo bundle"
# Confirms the demo's marks after the import (the first officer assembles in the journey).
REVIEWING_OFFICER = "officer.two@mechanism.example"
# Asks the providers' consent for the requests the world names (Dataset.consent_asked_for).
CONSENT_OFFICER = "officer.one@mechanism.example"


class DemoRefused(RuntimeError):
    """The demo cannot run here; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class DemoResult:
    logins: list[Login]
    logins_file: Path
    # The import report, or None when the demo data was there already and has changed since.
    report: ImportReport | None
    note: str

    @property
    def users_created(self) -> int:
        return sum(1 for login in self.logins if login.created)


def run_demo(
    state: PortalState,
    *,
    logins_file: Path,
    keys_dir: Path = DEFAULT_KEYS_DIR,
    actor: str = CLI_ACTOR,
) -> DemoResult:
    """Import the demo bundle and create the demo users (refused unless in demo or test mode)."""
    if not state.settings.demo_or_test:
        raise DemoRefused(
            "the demo loads fictional data and example keys; it runs only in demo or test "
            "mode (set PORTAL_DEMO=1 for a demonstration instance, never in production)"
        )
    try:
        saved = load_logins(logins_file)  # first: a bad file stops the demo before any work
        dataset = build_dataset(keys_dir)
        with (
            tempfile.TemporaryDirectory(prefix="portal-demo-") as files_dir,
            transaction(state.sessions) as session,
        ):
            dataset.write_files(Path(files_dir))
            report, note = _import(session, state, dataset, Path(files_dir), actor)
            logins = ensure_users(session, DEMO_USERS, saved, logins_file=logins_file, actor=actor)
            _review_marks(session, dataset.confirmed_marks)
            _tell_officers_of_waiting_marks(session)
            _ask_for_consent(session, dataset.consent_asked_for)
    except (AccountError, DatasetError, LoginsFileError) as exc:
        raise DemoRefused(str(exc)) from exc
    return DemoResult(logins=logins, logins_file=logins_file, report=report, note=note)


def _import(
    session: Session, state: PortalState, dataset: Dataset, files_dir: Path, actor: str
) -> tuple[ImportReport | None, str]:
    try:
        report = import_bundle(
            session,
            state.blobs,
            dataset.bundle_lines(),
            files_dir,
            actor=actor,
            demo_or_test=True,
            bundle_name=BUNDLE_NAME,
            sealer=state.sealer,
        )
    except BundleRejected as exc:
        # A rejected bundle added nothing to the session, unless the database itself failed.
        if exc.__cause__ is None and _loaded_before(session, dataset):
            first = exc.errors[0] if exc.errors else "no details"
            note = (
                "The demo data was loaded before and has changed since (for example "
                f"{first}); it was left as it is."
            )
            return None, note
        raise DemoRefused(f"the demo bundle was rejected:\n{exc.report()}") from exc
    return report, report.summary()


def _review_marks(session: Session, confirmed: list[tuple[str, str]]) -> None:
    """The demo's second legal officer confirms the marks the world says are confirmed
    (imports leave every mark pending) — those still as imported, so a run after officers
    changed a mark leaves it to them."""
    reviewer = session.scalar(select(User).where(User.email == REVIEWING_OFFICER))
    if reviewer is None:  # made by ensure_users just before
        raise DemoRefused(f"the demo user {REVIEWING_OFFICER} is missing")
    for item_code, mark_code in confirmed:
        item = session.scalar(select(Item).where(Item.code == item_code))
        mark = mark_of_item(session, item, mark_code) if item is not None else None
        if item is None or mark is None or mark.review != "pending":
            continue
        if [event.action for event in history_of(session, item, mark_code)] == ["imported"]:
            confirm_mark(session, mark, item, version=mark.version, by=reviewer)


def _tell_officers_of_waiting_marks(session: Session) -> None:
    """The import told no one of its pending marks when the demo's legal officers did not exist
    yet: tell them now of every item whose marks still wait, unless a notice of the item was
    ever sent (a later run, or an officer acted since, leaves it as it is)."""
    waiting = session.scalars(
        select(Item)
        .where(Item.id.in_(select(RedactionMark.item_id).where(RedactionMark.review == "pending")))
        .order_by(Item.id)
    )
    for item in waiting:
        told = session.scalar(
            select(Notification.id).where(Notification.topic == marks_topic(item.code)).limit(1)
        )
        if told is None:
            marks_await_confirmation(session, item, None)


def _ask_for_consent(session: Session, rfa_codes: list[str]) -> None:
    """The demo's legal officer sends the consent requests these requests' candidates need —
    only for a request that never had one, so a run after providers answered (or officers
    moved the request on) asks nothing again."""
    officer = session.scalar(select(User).where(User.email == CONSENT_OFFICER))
    if officer is None:  # made by ensure_users just before
        raise DemoRefused(f"the demo user {CONSENT_OFFICER} is missing")
    for code in rfa_codes:
        rfa = session.scalar(select(Rfa).where(Rfa.code == code))
        if rfa is None:
            continue
        asked = session.scalar(
            select(func.count()).select_from(ConsentRequest).where(ConsentRequest.rfa_id == rfa.id)
        )
        if asked:
            continue
        try:
            ask_for_consent(session, rfa, by=officer)
        except TriageError:
            continue  # moved on, or every candidate has consent now: nothing to ask


def _loaded_before(session: Session, dataset: Dataset) -> bool:
    """Every demo authority and item exists already."""
    items = dataset.codes("item")
    found_items = session.scalar(select(func.count()).select_from(Item).where(Item.code.in_(items)))
    found_authorities = session.scalar(
        select(func.count()).select_from(Authority).where(Authority.code.in_(AUTHORITY_CODES))
    )
    return found_items == len(items) and found_authorities == len(AUTHORITY_CODES)


def format_logins(result: DemoResult) -> str:
    """What ``portal demo`` prints: the import outcome, then every login."""
    created = result.users_created
    users = (
        f"{created} demo user(s) created, {len(result.logins) - created} already present."
        if created
        else f"All {len(result.logins)} demo users already present; nothing created."
    )
    table = format_login_table(result.logins, logins_file=result.logins_file)
    return "\n".join([result.note, users, "", table])
