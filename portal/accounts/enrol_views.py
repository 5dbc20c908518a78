"""Enrolment through an invitation link: password, authenticator, recovery codes.

The token in the link is the credential, so every step checks it again. What the
person has chosen so far is kept on the invitation row, not in the cookie
(:mod:`portal.accounts.enrolment_state`): the password's argon2 hash (new accounts) and the
pending authenticator secret, sealed. No account exists until the authenticator code is
confirmed; then the account is created (or re-enrolled), the invitation consumed, the pending
choices cleared and the recovery codes shown in that one response. Reloading it
re-posts a used link and is refused, so the codes are never shown twice.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, render_template, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.accounts import totp
from portal.accounts.enrolment_state import clear as clear_pending
from portal.accounts.enrolment_state import (
    existing_secret,
    pending_password_hash,
    pending_secret,
    remember_password,
)
from portal.accounts.invitations import (
    Enrolment,
    EnrolmentError,
    WrongCode,
    choose_password,
    complete_enrolment,
    open_enrolment,
)
from portal.accounts.password_policy import MAX_PASSWORD_LENGTH, WeakPassword
from portal.accounts.qr import SVG_MEDIA_TYPE, qr_svg
from portal.accounts.seed_errors import handle_seed_errors
from portal.authz.permissions import public
from portal.db import db
from portal.pages.errors import error_response
from portal.pages.i18n import N_, refusal, translate
from portal.state import portal_state

bp = Blueprint("enrol", __name__, url_prefix="/enrol")
handle_seed_errors(bp)  # a TOTP seed that does not open: 503, not 500

STATE_KEY = "enrolment"
WHY_PUBLIC = "invitation token is the credential"
INVALID_TITLE = N_("Enrolment link not valid")
INVALID_MESSAGE = N_(
    "This enrolment link cannot be used. Links work once and for 48 hours, and a newer "
    "link replaces an older one. Ask the portal administrators for a new link."
)


class PasswordForm(FlaskForm):  # type: ignore[misc]
    password = PasswordField(
        lazy_gettext("New password"),
        description=lazy_gettext(
            "At least 12 characters. A few unrelated words make a good password."
        ),
        validators=[
            DataRequired(message=lazy_gettext("Enter a password.")),
            Length(max=MAX_PASSWORD_LENGTH, message=lazy_gettext("The password is too long.")),
        ],
    )
    confirm = PasswordField(
        lazy_gettext("Repeat the password"),
        validators=[
            DataRequired(message=lazy_gettext("Enter the password again.")),
            EqualTo("password", message=lazy_gettext("The two passwords are not the same.")),
        ],
    )


class CodeForm(FlaskForm):  # type: ignore[misc]
    code = StringField(
        lazy_gettext("Code from your authenticator app"),
        description=lazy_gettext("The 6-digit code your app shows now."),
        validators=[DataRequired(message=lazy_gettext("Enter the 6-digit code."))],
    )


def _invalid() -> Response:
    session.pop(STATE_KEY, None)  # what older versions kept in the cookie
    return error_response(404, title=translate(INVALID_TITLE), message=translate(INVALID_MESSAGE))


def _ready_for_authenticator(enrolment: Enrolment) -> bool:
    return enrolment.is_reenrolment or bool(pending_password_hash(enrolment.invitation))


@bp.route("/<token>", methods=["GET", "POST"])
@public(WHY_PUBLIC)
def start(token: str) -> Any:
    enrolment = open_enrolment(db(), token)
    if enrolment is None:
        return _invalid()
    if enrolment.is_reenrolment:
        return redirect(url_for("enrol.authenticator", token=token))
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            password_hash = choose_password(
                enrolment, form.password.data or "", profile=portal_state().settings.hash_profile
            )
        except WeakPassword as exc:
            form.password.errors = [*form.password.errors, translate(exc.reason)]
        else:
            remember_password(db(), enrolment.invitation, password_hash)
            db().commit()
            return redirect(url_for("enrol.authenticator", token=token))
    elif _ready_for_authenticator(enrolment) and not form.is_submitted():
        return redirect(url_for("enrol.authenticator", token=token))
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/enrol/password.html", form=form, enrolment=enrolment), status


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@bp.route("/<token>/authenticator", methods=["GET", "POST"])
@public(WHY_PUBLIC)
def authenticator(token: str) -> Any:
    enrolment = open_enrolment(db(), token)
    if enrolment is None:
        return _invalid()
    if not _ready_for_authenticator(enrolment):
        return redirect(url_for("enrol.start", token=token))
    invitation = enrolment.invitation
    secret = pending_secret(db(), portal_state().sealer, invitation)
    password_hash = pending_password_hash(invitation)
    db().commit()
    form = CodeForm()
    if form.validate_on_submit():
        try:
            user, codes = complete_enrolment(
                db(),
                enrolment,
                password_hash=password_hash,
                totp_secret=secret,
                code=form.code.data or "",
            )
            clear_pending(invitation)
            db().commit()
        except WrongCode as exc:
            db().rollback()
            form.code.errors = [*form.code.errors, refusal(exc)]
        except (EnrolmentError, IntegrityError):
            db().rollback()
            return _invalid()
        else:
            session.pop(STATE_KEY, None)
            return render_template("accounts/enrol/recovery_codes.html", user=user, codes=codes)
    status = 400 if form.is_submitted() else 200
    return (
        render_template(
            "accounts/enrol/authenticator.html",
            form=form,
            enrolment=enrolment,
            secret=_grouped(secret),
            token=token,
        ),
        status,
    )


@bp.get("/<token>/qr.svg")
@public(WHY_PUBLIC)
def qr(token: str) -> Response:
    enrolment = open_enrolment(db(), token)
    if enrolment is None:
        return _invalid()
    secret = existing_secret(portal_state().sealer, enrolment.invitation)
    if not secret:
        return error_response(404)
    svg = qr_svg(
        totp.provisioning_uri(secret, enrolment.email),
        title=gettext("QR code to add the Sharing Portal to your authenticator app"),
    )
    response = Response(svg, mimetype=SVG_MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
