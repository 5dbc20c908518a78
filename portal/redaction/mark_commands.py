"""``portal marks …``: the redaction review pages' steps from the command line.

Each command acts as the legal officer named by ``--as EMAIL``, allowed by the same
permission table as the pages (``portal.cli``'s helpers), loads the item (or package) through
the officer's scope and calls the same domain function as the page
(:mod:`portal.redaction.mark_review`, :mod:`portal.packages.mark_checks`) inside one
transaction. A refusal prints ``Error: nothing was changed: <why>`` (a check by eye:
``nothing was recorded``) on stderr and exits 1, having changed nothing.

Terms are protected names: a term is read from standard input (never from the arguments,
which ``ps`` and shell histories show) and never printed; lists and histories name marks by
code. Versions: ``portal marks list`` prints each mark's version, and a confirmation or a
removal names the version the officer looked at, so a mark changed since is refused rather
than confirmed blind.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from flask.cli import AppGroup

from portal.db import transaction
from portal.redaction.mark_review import REASONS, Box, MarkRefused
from portal.state import portal_state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from portal.accounts.models import User
    from portal.packages.models import Package
    from portal.registry.models import Item, RedactionMark

    ItemStep = Callable[[Session, Item, User], str]
    MarkStep = Callable[[Session, RedactionMark, Item, User], str]
    PackageStep = Callable[[Session, Package, User], str]

__all__ = ["marks_group"]

F = TypeVar("F", bound=Callable[..., None])

NOTHING_CHANGED = "nothing was changed"
NOTHING_RECORDED = "nothing was recorded"

marks_group = AppGroup(
    "marks",
    help="Redaction marks and their four-eyes review (legal officers). Terms are read from "
    "standard input and never printed.",
)

_REASONS_HELP = "; ".join(f"{n}: {reason}" for n, reason in enumerate(REASONS, start=1))


def _as_officer(f: F) -> F:
    return click.option(
        "--as", "as_email", required=True, metavar="EMAIL", help="E-mail of the legal officer."
    )(f)


def _item_argument(f: F) -> F:
    return click.argument("item_code", metavar="ITEM")(f)


def _version_option(f: F) -> F:
    return click.option(
        "--version",
        type=int,
        required=True,
        help="The mark's version you looked at (as `portal marks list` prints it).",
    )(f)


def _shape_options(f: F) -> F:
    """--reason, --applies and --person, as the propose forms have them."""
    f = click.option("--person", "person_code", metavar="PER-CODE", help="The person it protects.")(
        f
    )
    f = click.option(
        "--applies",
        type=click.Choice(["always", "without_protection"]),
        default="always",
        show_default=True,
        help="Always, or only for authorities without witness-protection capacity.",
    )(f)
    return click.option(
        "--reason",
        required=True,
        metavar="N|TEXT",
        help=f"Why the mark is there: one of these, or its number. {_REASONS_HELP}",
    )(f)


@contextmanager
def _refused(*refusals: type[Exception], what: str = NOTHING_CHANGED) -> Iterator[None]:
    """A domain refusal as a one-line CLI error (exit 1); the transaction around rolls back."""
    try:
        yield
    except refusals as exc:
        raise click.ClickException(f"{what}: {exc}") from None


def _officer_and_item(
    session: Session, as_email: str, action: str, item_code: str
) -> tuple[User, Item]:
    """The acting user, allowed ``action``, and the item ``item_code`` in their scope."""
    from portal.cli import _cli_scoped, _cli_user
    from portal.registry.models import Item

    user = _cli_user(session, as_email, action)
    item = _cli_scoped(session, Item, user, code=item_code[:40], label=f"item {item_code[:40]}")
    return user, item


def _reason(text: str) -> str:
    """A reason given as its number in REASONS (1-based) or its words."""
    if text.isdigit() and 1 <= int(text) <= len(REASONS):
        return REASONS[int(text) - 1]
    return text  # the domain refuses words not in the list


def _box(text: str) -> Box:
    try:
        x0, y0, x1, y1 = (float(part) for part in text.split(","))
    except ValueError:
        raise MarkRefused(
            "Give the box as four numbers from 0 to 1, X0,Y0,X1,Y1 (top left, then bottom "
            "right corner)."
        ) from None
    return Box(x0, y0, x1, y1)


def _blob(item: Item) -> Path:
    return portal_state().blobs.path(item.blob_key)


def _page_count(item: Item) -> int:
    """The pages of a PDF item (a box names one of them); 1 for anything else."""
    from portal.redaction.page_images import PageImageFailed, page_count

    if item.media_type != "application/pdf":
        return 1
    try:
        return page_count(_blob(item), item.media_type)
    except (PageImageFailed, OSError) as exc:
        raise MarkRefused(f"The pages of {item.code} cannot be read ({exc}).") from None


def _names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    from sqlalchemy import select

    from portal.accounts.models import User

    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {row.id: row.display_name for row in rows}


def _number(value: float | None) -> str:
    return f"{value:g}" if value is not None else "?"


def _who(names: dict[int, str], user_id: int | None) -> str:
    """A user's display name; a step without one came by import."""
    return "import" if user_id is None else names.get(user_id, f"user {user_id}")


def _mark_line(mark: RedactionMark, names: dict[int, str]) -> str:
    """One mark as ``list`` prints it; a term is never printed."""
    shown = "term (sealed)" if mark.kind == "term" else mark.kind
    if mark.page is not None:
        shown += f" page {mark.page}"
    if mark.x0 is not None:
        corners = (mark.x0, mark.y0, mark.x1, mark.y1)
        shown += f" box {','.join(_number(value) for value in corners)}"
    if mark.span_start is not None:
        shown += f" characters {mark.span_start}-{mark.span_end}"
    parts = [mark.code, shown, mark.review, f"version {mark.version}"]
    parts.append(f"proposed by {_who(names, mark.proposed_by_id)}")
    if mark.confirmed_by_id is not None:
        parts.append(f"confirmed by {_who(names, mark.confirmed_by_id)}")
    if mark.removal_requested_at is not None:
        parts.append(f"removal asked by {_who(names, mark.removal_requested_by_id)}")
    if mark.checked_by_eye_at is not None:
        parts.append("checked by eye")
    parts.append(f"applies {mark.applies}")
    parts.append(f"reason: {mark.reason}")
    return " | ".join(parts)


@marks_group.command("list")
@_item_argument
@click.option("--pending", is_flag=True, help="Only the marks waiting for a confirmation.")
@_as_officer
def list_command(item_code: str, pending: bool, as_email: str) -> None:
    """Print the marks of ITEM, one a line: code, kind (a term as `term (sealed)`), page and
    box, review, version, who proposed and confirmed it, a removal asked for, the reason."""
    from sqlalchemy import select

    from portal.registry.models import RedactionMark

    state = portal_state()
    with state.sessions() as session:
        _user, item = _officer_and_item(session, as_email, "mark.review", item_code)
        query = select(RedactionMark).where(RedactionMark.item_id == item.id)
        if pending:
            query = query.where(RedactionMark.review == "pending")
        marks = session.scalars(query.order_by(RedactionMark.id)).all()
        names = _names(
            session,
            [m.proposed_by_id for m in marks]
            + [m.confirmed_by_id for m in marks]
            + [m.removal_requested_by_id for m in marks],
        )
        lines = [_mark_line(mark, names) for mark in marks]
        if not lines:
            lines = [f"{item.code} has no {'pending ' if pending else ''}marks."]
    click.echo("\n".join(lines))


def _on_item(
    item_code: str, as_email: str, action: str, step: ItemStep, *refusals: type[Exception]
) -> None:
    """``step`` on ITEM as the acting officer, allowed ``action``, in one transaction; print
    what it says once committed (a refusal: nothing changed, exit 1)."""
    state = portal_state()
    with transaction(state.sessions) as session, _refused(MarkRefused, *refusals):
        user, item = _officer_and_item(session, as_email, action, item_code)
        done = step(session, item, user)
    click.echo(done)


def _on_mark(item_code: str, mark_code: str, as_email: str, action: str, step: MarkStep) -> None:
    """``step`` on mark MARK of ITEM, as :func:`_on_item`."""
    from portal.redaction.mark_review import mark_of_item

    def on_item(session: Session, item: Item, user: User) -> str:
        return step(session, mark_of_item(session, item, mark_code), item, user)

    _on_item(item_code, as_email, action, on_item)


@marks_group.command("confirm")
@_item_argument
@click.argument("mark_code", metavar="[MARK]", required=False)
@click.option(
    "--version", type=int, help="The mark's version you looked at (as `portal marks list` prints)."
)
@click.option(
    "--all",
    "all_pending",
    is_flag=True,
    help="Confirm every pending mark of ITEM as it is stored now (those you proposed are left "
    "for another officer).",
)
@_as_officer
def confirm_command(
    item_code: str, mark_code: str | None, version: int | None, all_pending: bool, as_email: str
) -> None:
    """Confirm MARK of ITEM as it was at --version; never a mark you proposed.

    With --all instead of MARK and --version: every pending mark of ITEM at the version stored
    now, i.e. as `portal marks list --pending` shows it at this moment (run it just before).
    Prints the marks confirmed and those left because you proposed them."""
    from portal.redaction.mark_review import confirm_all, confirm_mark

    if mark_code is not None and version is not None and not all_pending:
        seen = version

        def one(session: Session, mark: RedactionMark, item: Item, user: User) -> str:
            confirm_mark(session, mark, item, version=seen, by=user)
            return f"Mark {mark.code} of {item.code} confirmed."

        _on_mark(item_code, mark_code, as_email, "mark.confirm", one)
        return
    if not all_pending or mark_code is not None or version is not None:
        raise click.UsageError("give either MARK with --version N, or --all")

    def every(session: Session, item: Item, user: User) -> str:
        from sqlalchemy import select

        from portal.registry.models import RedactionMark

        stored = session.execute(
            select(RedactionMark.code, RedactionMark.version).where(
                RedactionMark.item_id == item.id, RedactionMark.review == "pending"
            )
        )
        seen = {code: number for code, number in stored}  # as stored now: see the docstring
        confirmed, own = confirm_all(session, item, seen, by=user)
        done = f"Confirmed: {', '.join(confirmed) or 'none'}."
        if own:
            done += f" Left for another legal officer (you proposed them): {', '.join(own)}."
        return done

    _on_item(item_code, as_email, "mark.confirm", every)


def _term_from_stdin() -> str:
    """The term, from standard input (a hidden prompt on a terminal): one line."""
    if click.get_current_context().args:  # refused without echoing them: a term, probably
        raise click.ClickException(
            f"{NOTHING_CHANGED}: the term is read from standard input, never from the arguments "
            "(they show in `ps` and the shell history)."
        )
    if sys.stdin.isatty():
        return str(click.prompt("Term (not shown)", hide_input=True, err=True))
    lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if len(lines) != 1:
        raise click.ClickException(
            f"{NOTHING_CHANGED}: give the term on standard input, on one line (for example "
            "`portal marks propose-term ITEM --reason 1 --as EMAIL < term.txt`)."
        )
    return lines[0]


def _hits(item: Item, code: str, term: str) -> str:
    """Where the new term occurs in the item's text, as the propose form says it."""
    from portal.redaction.hits import hits_per_page

    try:
        found = hits_per_page(_blob(item), item.media_type, [(code, term)]).get(code, {})
    except OSError:
        return "the file could not be searched"
    if not found:
        return "no hit in the text"
    where = ", ".join(f"p. {page}: {count}" for page, count in sorted(found.items()))
    return f"{sum(found.values())} hit(s) in the text ({where})"


@marks_group.command("propose-term", context_settings={"allow_extra_args": True})
@_item_argument
@_shape_options
@_as_officer
def propose_term_command(
    item_code: str, reason: str, applies: str, person_code: str | None, as_email: str
) -> None:
    """Propose a term mark on ITEM; the TERM is read from standard input, never from the
    arguments (they show in `ps` and the shell history). Another officer confirms it."""
    from portal.redaction.mark_review import propose_term
    from portal.sealing import SealingError

    term = _term_from_stdin()
    sealer = portal_state().sealer

    def step(session: Session, item: Item, user: User) -> str:
        mark = propose_term(
            session, sealer, item, term, _reason(reason), by=user, applies=applies,
            person_code=person_code,
        )  # fmt: skip
        return (
            f"Mark {mark.code} of {item.code} proposed: {_hits(item, mark.code, term)}; pages "
            "that are images are searched with OCR when the package is made. Another legal "
            "officer must confirm it."
        )

    _on_item(item_code, as_email, "mark.propose", step, SealingError)


@marks_group.command("propose-box")
@_item_argument
@click.option("--page", type=int, help="The page of a PDF (leave it out for a photo).")
@click.option(
    "--box",
    "box_text",
    required=True,
    metavar="X0,Y0,X1,Y1",
    help="Fractions of the page from 0 to 1, origin top left: the top left corner, then the "
    "bottom right one.",
)
@_shape_options
@_as_officer
def propose_box_command(
    item_code: str,
    page: int | None,
    box_text: str,
    reason: str,
    applies: str,
    person_code: str | None,
    as_email: str,
) -> None:
    """Propose a box on a page of a PDF or on a photo (ITEM). Another officer confirms it."""
    from portal.redaction.mark_review import propose_box

    def step(session: Session, item: Item, user: User) -> str:
        mark = propose_box(
            session, item, page, _box(box_text), _reason(reason), page_count=_page_count(item),
            by=user, applies=applies, person_code=person_code,
        )  # fmt: skip
        return f"Box {mark.code} of {item.code} proposed. Another legal officer must confirm it."

    _on_item(item_code, as_email, "mark.propose", step)


@marks_group.command("edit")
@_item_argument
@click.argument("mark_code", metavar="MARK")
@_version_option
@click.option("--page", type=int, help="With --box: the page of a PDF.")
@click.option("--box", "box_text", metavar="X0,Y0,X1,Y1", help="Move a box (fractions 0 to 1).")
@click.option("--reason", metavar="N|TEXT", help=f"Another reason. {_REASONS_HELP}")
@click.option("--applies", type=click.Choice(["always", "without_protection"]))
@_as_officer
def edit_command(
    item_code: str,
    mark_code: str,
    version: int,
    page: int | None,
    box_text: str | None,
    reason: str | None,
    applies: str | None,
    as_email: str,
) -> None:
    """Move a box, or give MARK another reason or scope: it is pending again, proposed by
    you, until another officer confirms it."""
    from portal.redaction.mark_review import edit_mark

    def step(session: Session, mark: RedactionMark, item: Item, user: User) -> str:
        edit_mark(
            session, mark, item, version=version, by=user,
            box=_box(box_text) if box_text is not None else None,
            page=page if box_text is not None else None,
            page_count=_page_count(item) if box_text is not None else 1,
            reason=_reason(reason) if reason else None,
            applies=applies,
        )  # fmt: skip
        return f"Mark {mark.code} of {item.code} changed; another legal officer must confirm it."

    _on_mark(item_code, mark_code, as_email, "mark.propose", step)


@marks_group.command("remove")
@_item_argument
@click.argument("mark_code", metavar="MARK")
@_version_option
@_as_officer
def remove_command(item_code: str, mark_code: str, version: int, as_email: str) -> None:
    """Ask for MARK to go: it keeps applying until another officer confirms the removal (your
    own mark never confirmed is withdrawn at once)."""
    from portal.redaction.mark_review import request_removal

    def step(session: Session, mark: RedactionMark, item: Item, user: User) -> str:
        code = mark.code
        if request_removal(session, mark, item, version=version, by=user):
            return f"Mark {code} of {item.code} withdrawn (it was yours and never confirmed)."
        return (
            f"Removal of {code} of {item.code} asked for: it still applies until another legal "
            "officer confirms the removal."
        )

    _on_mark(item_code, mark_code, as_email, "mark.propose", step)


@marks_group.command("cancel-removal")
@_item_argument
@click.argument("mark_code", metavar="MARK")
@_as_officer
def cancel_removal_command(item_code: str, mark_code: str, as_email: str) -> None:
    """Take back a request to remove MARK (it keeps applying)."""
    from portal.redaction.mark_review import cancel_removal

    def step(session: Session, mark: RedactionMark, item: Item, user: User) -> str:
        cancel_removal(session, mark, item, by=user)
        return f"Mark {mark.code} of {item.code} stays: the request to remove it is taken back."

    _on_mark(item_code, mark_code, as_email, "mark.propose", step)


@marks_group.command("confirm-removal")
@_item_argument
@click.argument("mark_code", metavar="MARK")
@_version_option
@_as_officer
def confirm_removal_command(item_code: str, mark_code: str, version: int, as_email: str) -> None:
    """Remove MARK as the second officer; never by the officer who asked for the removal."""
    from portal.redaction.mark_review import confirm_removal

    def step(session: Session, mark: RedactionMark, item: Item, user: User) -> str:
        code = mark.code
        confirm_removal(session, mark, item, version=version, by=user)
        return f"Mark {code} of {item.code} removed."

    _on_mark(item_code, mark_code, as_email, "mark.confirm", step)


def _check_by_eye(
    package_code: str, as_email: str, read: bool, what: str, record: PackageStep
) -> None:
    """A check by eye as the package page's forms record it: the officer's --read (else
    nothing is recorded), then ``record`` on PKG in one transaction; print what it says."""
    from portal.cli import _cli_scoped, _cli_user
    from portal.packages.lifecycle import PackageRefused
    from portal.packages.models import Package

    if not read:
        raise click.ClickException(f"{NOTHING_RECORDED}: pass --read to confirm that you {what}.")
    state = portal_state()
    with transaction(state.sessions) as session, _refused(PackageRefused, what=NOTHING_RECORDED):
        user = _cli_user(session, as_email, "mark.check_by_eye")
        package = _cli_scoped(
            session, Package, user, code=package_code, label=f"package {package_code}"
        )
        done = record(session, package, user)
    click.echo(done)


_MARK_READ = "read the whole item and the term does not occur in it"
_PIXELS_READ = (
    "read every page of the item and no protected name or identifier shows in it beyond what "
    "its marks cover"
)


@marks_group.command("checked-by-eye")
@click.argument("package_code", metavar="PKG")
@click.argument("item_code", metavar="ITEM")
@click.argument("mark_code", metavar="MARK")
@click.option("--read", is_flag=True, help=f"Confirm that you {_MARK_READ}.")
@_as_officer
def checked_by_eye_command(
    package_code: str, item_code: str, mark_code: str, read: bool, as_email: str
) -> None:
    """Record that the confirmed term MARK of ITEM, which matched nothing when PKG was
    assembled, does not occur in ITEM (never by the mark's proposer)."""
    from portal.packages.mark_checks import mark_of_package, record_checked_by_eye

    def record(session: Session, package: Package, user: User) -> str:
        mark = mark_of_package(session, package, item_code, mark_code)
        record_checked_by_eye(session, mark, mark.item, by=user)
        return f"Recorded: mark {mark.code} does not occur in {mark.item.code}. Retry the assembly."

    _check_by_eye(package_code, as_email, read, _MARK_READ, record)


@marks_group.command("pixels-checked-by-eye")
@click.argument("package_code", metavar="PKG")
@click.argument("item_code", metavar="ITEM")
@click.option("--read", is_flag=True, help=f"Confirm that you {_PIXELS_READ}.")
@_as_officer
def pixels_checked_by_eye_command(
    package_code: str, item_code: str, read: bool, as_email: str
) -> None:
    """Record that you read every page of ITEM of PKG, where OCR cannot be trusted (never by
    the officer who assembled PKG)."""
    from portal.packages.mark_checks import item_of_package, record_pixels_checked_by_eye

    def record(session: Session, package: Package, user: User) -> str:
        item = item_of_package(session, package, item_code)
        record_pixels_checked_by_eye(session, item, package, by=user)
        return f"Recorded: you read {item.code} by eye. Retry the assembly."

    _check_by_eye(package_code, as_email, read, _PIXELS_READ, record)


@marks_group.command("history")
@_item_argument
@click.argument("mark_code", metavar="[MARK]", required=False)
@_as_officer
def history_command(item_code: str, mark_code: str | None, as_email: str) -> None:
    """Print the steps of ITEM's marks (of MARK only, if given), oldest first: time (UTC),
    mark, version, action, who (never a term)."""
    from portal.redaction.mark_review import history_of

    state = portal_state()
    with state.sessions() as session:
        _user, item = _officer_and_item(session, as_email, "mark.review", item_code)
        events = history_of(session, item, mark_code[:40] if mark_code else None)
        names = _names(session, [event.actor_id for event in events])
        lines = [
            f"{event.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC | {event.mark_code} | "
            f"version {event.version} | {event.action} | "
            f"{_who(names, event.actor_id)}"
            for event in events
        ]
        if not lines:
            of = f"mark {mark_code[:40]} of " if mark_code else "the marks of "
            lines = [f"No history for {of}{item.code}."]
    click.echo("\n".join(lines))
