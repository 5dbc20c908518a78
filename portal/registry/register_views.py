"""The register of protected identifiers (legal officers only): the persons at risk with how
many identifiers each has, a person's identifiers with their values, adding one and retiring
one.

Thin views over :mod:`portal.registry.identifiers`. Values appear on the person page and
nowhere else: flash messages, audit events and log lines name identifiers and persons by
code. When the sealing key is missing or wrong the pages say so (503) instead of guessing; a
single row that does not open is listed as such, so that it can be retired.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.authz.permissions import requires
from portal.db import db
from portal.pages.errors import error_response
from portal.pages.forms import TokenForm
from portal.registry.identifiers import (
    MAX_VALUE_LENGTH,
    IdentifierRefused,
    add_identifier,
    identifiers_listed,
    retire_identifier,
)
from portal.registry.models import IDENTIFIER_KINDS, Person, ProtectedIdentifier
from portal.sealing import SealingError
from portal.state import portal_state

logger = logging.getLogger(__name__)

bp = Blueprint("register", __name__, url_prefix="/register")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"identifier_kinds": IDENTIFIER_KINDS, "max_value_length": MAX_VALUE_LENGTH}


@bp.errorhandler(SealingError)
def _sealing_failed(exc: SealingError) -> BaseResponse:
    # The message names the key file or an identifier's code, never a value.
    logger.error("protected identifiers unavailable: %s", exc)
    return error_response(
        503,
        title="Register unavailable",
        message=(
            "The protected identifiers cannot be read or sealed just now (the portal's sealing "
            "key is missing or does not open them). Nothing was changed. Tell the portal "
            "administrators."
        ),
    )


@bp.get("")
@requires("identifiers.view")
def index() -> str:
    current = (
        select(ProtectedIdentifier.person_id, func.count().label("count"))
        .where(ProtectedIdentifier.retired_at.is_(None))
        .group_by(ProtectedIdentifier.person_id)
        .subquery()
    )
    rows = db().execute(
        select(Person, func.coalesce(current.c.count, 0))
        .outerjoin(current, current.c.person_id == Person.id)
        .where(or_(Person.at_risk.is_(True), current.c.count > 0))
        .order_by(Person.code)
    )
    persons = [(person, int(count)) for person, count in rows]
    return render_template("registry/register/index.html", persons=persons)


def _person_or_404(person_code: str) -> Person:
    person = db().scalar(select(Person).where(Person.code == person_code))
    if person is None:
        abort(404)
    return person


def _render_person(
    person: Person,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    identifiers = identifiers_listed(db(), portal_state().sealer, person)
    for unreadable in (i for i in identifiers if i.value is None and not i.retired):
        logger.warning("protected identifier %s cannot be opened", unreadable.code)
    user_ids = {i.row.created_by_id for i in identifiers} | {
        i.row.retired_by_id for i in identifiers
    }
    wanted = [user_id for user_id in user_ids if user_id is not None] or [0]
    names = dict(db().execute(select(User.id, User.display_name).where(User.id.in_(wanted))).all())
    page = render_template(
        "registry/register/person.html",
        person=person,
        identifiers=identifiers,
        names=names,
        error=error,
        typed=typed or {},
        form=TokenForm(),
    )
    return page, status


@bp.get("/<person_code>")
@requires("identifiers.view")
def person(person_code: str) -> tuple[str, int]:
    return _render_person(_person_or_404(person_code))


@bp.post("/<person_code>/identifiers")
@requires("identifiers.manage")
def add(person_code: str) -> BaseResponse | tuple[str, int]:
    subject = _person_or_404(person_code)
    typed = {"kind": request.form.get("kind", ""), "value": request.form.get("value", "")}
    if not TokenForm().validate_on_submit():
        return _render_person(subject, error="The form has expired; nothing was added.", status=400)
    try:
        row = add_identifier(
            db(), portal_state().sealer, subject, typed["kind"], typed["value"],
            by=signed_in_user(),
        )  # fmt: skip
    except IdentifierRefused as exc:
        db().rollback()
        subject = _person_or_404(person_code)
        return _render_person(subject, error=str(exc), typed=typed, status=400)
    db().commit()
    flash(
        f"{row.code} was added to the register for {subject.code}: every package is checked "
        "for it from now on.",
        "success",
    )
    return redirect(url_for("register.person", person_code=subject.code), 303)


@bp.post("/<person_code>/identifiers/<identifier_code>/retire")
@requires("identifiers.manage")
def retire(person_code: str, identifier_code: str) -> BaseResponse | tuple[str, int]:
    subject = _person_or_404(person_code)
    identifier = db().scalar(
        select(ProtectedIdentifier).where(
            ProtectedIdentifier.code == identifier_code,
            ProtectedIdentifier.person_id == subject.id,
        )
    )
    if identifier is None:
        abort(404)
    if not TokenForm().validate_on_submit():
        return _render_person(subject, error="The form has expired; nothing changed.", status=400)
    if request.form.get("confirm") != "yes":
        return _render_person(
            subject,
            error=f"Confirm that {identifier.code} should no longer be checked in packages.",
            status=400,
        )
    try:
        retire_identifier(db(), identifier, by=signed_in_user())
    except IdentifierRefused as exc:
        db().rollback()
        return _render_person(_person_or_404(person_code), error=str(exc), status=400)
    db().commit()
    flash(f"{identifier.code} is retired: packages are no longer checked for it.", "success")
    return redirect(url_for("register.person", person_code=subject.code), 303)
