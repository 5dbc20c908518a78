"""Admin pages: users and invitations (admins), authorities and providers (staff).

Views are thin: a form parses the request, a domain function in
:mod:`portal.accounts.invitations` or :mod:`portal.accounts.user_admin` does the work in one
transaction, and its typed errors become messages beside the fields or at the top
of the page. Nothing changes when a request is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import ColumnElement, and_, func, or_, select
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp

from portal import audit
from portal.accounts import throttle
from portal.accounts.approval import (
    ApprovalRefused,
    approve_account,
    awaiting_approval,
    is_approved,
    needs_approval,
)
from portal.accounts.creation import NewUser
from portal.accounts.invitations import (
    EMAIL_PATTERN,
    InvitationError,
    cancel_invitation,
    find_invitation,
    invite,
)
from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import ROLE_SHORT_LABELS, ROLES, Invitation, User
from portal.accounts.user_admin import (
    UserAdminError,
    change_role,
    deactivate,
    reactivate,
    reset_2fa,
    user_status,
    user_status_condition,
)
from portal.audit import AuditEvent
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404, scoped
from portal.db import db, utcnow
from portal.notifications.mailer import send_enrolment_link
from portal.notifications.service import account_added
from portal.pages import labels
from portal.pages.forms import TokenForm
from portal.registry.models import (
    Assessment,
    Authority,
    Item,
    Provider,
    RecipientKey,
)
from portal.state import portal_state

bp = Blueprint("admin", __name__, url_prefix="/admin")

STATUS_LABELS = labels.ACCOUNT_STATUS
PROVIDER_KIND_LABELS = labels.PROVIDER_KIND
AUDIT_EVENTS_SHOWN = 20


# --- helpers for templates ----------------------------------------------------------------


@bp.context_processor
def _template_labels() -> dict[str, Any]:
    """The labels of these pages only (``can``, ``when``... are app-wide:
    :mod:`portal.pages.templating`)."""
    return {
        "short_role_labels": ROLE_SHORT_LABELS,
        "status_labels": STATUS_LABELS,
        "provider_kind_labels": PROVIDER_KIND_LABELS,
    }


# --- forms --------------------------------------------------------------------------------


def _organisation_options() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(code, label)`` of every authority and of every provider, by name."""
    authorities = db().execute(select(Authority.code, Authority.name).order_by(Authority.name))
    providers = db().execute(select(Provider.code, Provider.name).order_by(Provider.name))
    return (
        [(code, f"{name} ({code})") for code, name in authorities],
        [(code, f"{name} ({code})") for code, name in providers],
    )


def _choices(options: Sequence[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in options]


class RoleFields(FlaskForm):  # type: ignore[misc]
    role = SelectField(
        "Role",
        choices=_choices([(role, ROLE_SHORT_LABELS[role]) for role in ROLES]),
        validators=[DataRequired(message="Choose a role.")],
    )
    authority = SelectField(
        "Authority",
        description="For requesters and recipients only.",
        validate_choice=False,
    )
    provider = SelectField(
        "Provider",
        description="For provider users only.",
        validate_choice=False,
    )

    def fill_choices(self) -> None:
        authorities, providers = _organisation_options()
        self.authority.choices = _choices([("", "No authority"), *authorities])
        self.provider.choices = _choices([("", "No provider"), *providers])


class InviteForm(RoleFields):
    email = StringField(
        "E-mail address",
        validators=[
            DataRequired(message="Enter the person's e-mail address."),
            Length(max=254, message="The e-mail address is too long."),
            Regexp(
                rf"\s*{EMAIL_PATTERN}\s*$",
                message="Enter an e-mail address in the form name@example.org.",
            ),
        ],
    )
    display_name = StringField(
        "Full name",
        validators=[
            DataRequired(message="Enter the person's name."),
            Length(max=200, message="The name must be at most 200 characters."),
        ],
    )


class RoleForm(RoleFields):
    pass


def _field_error(form: FlaskForm, field: str | None, message: str) -> None:
    """Attach a domain error to ``field`` (or to the form when it names none)."""
    target = getattr(form, field, None) if field else None
    if target is not None:
        target.errors = [*target.errors, message]
    else:
        form.form_errors.append(message)


# --- users --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserFilter:
    role: str
    status: str
    organisation: str
    query: str

    @classmethod
    def from_args(cls) -> UserFilter:
        def arg(name: str, options: Sequence[str] | None = None) -> str:
            value = request.args.get(name, "").strip()[:200]
            return value if options is None or value in options else ""

        return cls(
            role=arg("role", ROLES),
            status=arg("status", tuple(STATUS_LABELS)),
            organisation=arg("organisation"),
            query=arg("q"),
        )


def _organisation_condition(
    value: str, authority_col: Any, provider_col: Any
) -> ColumnElement[bool] | None:
    kind, _, code = value.partition(":")
    if kind == "staff":
        return and_(authority_col.is_(None), provider_col.is_(None))
    condition: ColumnElement[bool] | None = None
    if kind == "authority" and code:
        condition = authority_col.in_(select(Authority.id).where(Authority.code == code))
    elif kind == "provider" and code:
        condition = provider_col.in_(select(Provider.id).where(Provider.code == code))
    return condition


def _search_condition(query: str, email_col: Any, name_col: Any) -> ColumnElement[bool]:
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(
        func.lower(email_col).like(pattern, escape="\\"),
        func.lower(name_col).like(pattern, escape="\\"),
    )


def _filtered_users(filters: UserFilter, now: datetime) -> list[User]:
    stmt = scoped(User, signed_in_user()).order_by(User.display_name, User.id)
    if filters.role:
        stmt = stmt.where(User.role == filters.role)
    if filters.status:
        stmt = stmt.where(user_status_condition(filters.status, now))
    organisation = _organisation_condition(
        filters.organisation, User.authority_id, User.provider_id
    )
    if organisation is not None:
        stmt = stmt.where(organisation)
    if filters.query:
        stmt = stmt.where(_search_condition(filters.query, User.email, User.display_name))
    return list(db().scalars(stmt))


def _open_invitations(filters: UserFilter, now: datetime) -> list[Invitation]:
    if filters.status and filters.status != "invited":
        return []
    stmt = (
        scoped(Invitation, signed_in_user())
        .where(Invitation.used_at.is_(None), Invitation.expires_at > now)
        .where(~Invitation.email.in_(select(User.email)))  # 2FA resets show as the user
        .order_by(Invitation.created_at.desc())
    )
    if filters.role:
        stmt = stmt.where(Invitation.role == filters.role)
    organisation = _organisation_condition(
        filters.organisation, Invitation.authority_id, Invitation.provider_id
    )
    if organisation is not None:
        stmt = stmt.where(organisation)
    if filters.query:
        stmt = stmt.where(
            _search_condition(filters.query, Invitation.email, Invitation.display_name)
        )
    return list(db().scalars(stmt))


def _organisation_names() -> dict[tuple[str, int], str]:
    names: dict[tuple[str, int], str] = {}
    for row in db().execute(select(Authority.id, Authority.name)):
        names[("authority", row.id)] = row.name
    for row in db().execute(select(Provider.id, Provider.name)):
        names[("provider", row.id)] = row.name
    return names


def _organisation_of(
    names: dict[tuple[str, int], str], authority_id: int | None, provider_id: int | None
) -> str:
    if authority_id is not None:
        return names.get(("authority", authority_id), "")
    if provider_id is not None:
        return names.get(("provider", provider_id), "")
    return "Mechanism"


@bp.get("/users")
@requires("admin.users.view")
def users() -> str:
    now = utcnow()
    filters = UserFilter.from_args()
    names = _organisation_names()
    authorities, providers = _organisation_options()
    organisation_options = [("", "All organisations"), ("staff", "Mechanism staff")]
    organisation_options += [(f"authority:{code}", label) for code, label in authorities]
    organisation_options += [(f"provider:{code}", label) for code, label in providers]
    rows = [
        {
            "user": user,
            "status": user_status(user, now),
            "organisation": _organisation_of(names, user.authority_id, user.provider_id),
        }
        for user in _filtered_users(filters, now)
    ]
    invitations = [
        {
            "invitation": invitation,
            "organisation": _organisation_of(
                names, invitation.authority_id, invitation.provider_id
            ),
        }
        for invitation in _open_invitations(filters, now)
    ]
    return render_template(
        "accounts/admin/users.html",
        rows=rows,
        invitations=invitations,
        filters=filters,
        organisation_options=organisation_options,
        cancel_form=TokenForm(),
        awaiting=len(awaiting_approval(db())),
    )


@bp.route("/users/invite", methods=["GET", "POST"])
@requires("admin.users.invite")
def invite_user() -> str | tuple[str, int]:
    form = InviteForm()
    form.fill_choices()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("accounts/admin/invite.html", form=form), status
    spec = NewUser(
        email=form.email.data or "",
        display_name=form.display_name.data or "",
        role=form.role.data or "",
        authority_code=form.authority.data or None,
        provider_code=form.provider.data or None,
    )
    if not _can_deliver_links():
        _field_error(form, None, _NO_MAIL)
        return render_template("accounts/admin/invite.html", form=form), 400
    try:
        invitation, token = invite(db(), spec, invited_by=signed_in_user())
        db().commit()
    except InvitationError as exc:
        db().rollback()
        _field_error(form, exc.field, exc.message)
        return render_template("accounts/admin/invite.html", form=form), 400
    return _deliver_link(invitation, token, heading="Invitation created")


_NO_MAIL = (
    "The portal cannot mail enrolment links (PORTAL_SMTP_HOST and PORTAL_BASE_URL must both be "
    "set), so the link could not reach the person; nothing was created."
)


def _can_deliver_links() -> bool:
    settings = portal_state().settings
    return settings.demo_or_test or bool(settings.smtp_host and settings.base_url)


def _enrolment_link(token: str) -> str:
    """The link as mailed: on the configured PORTAL_BASE_URL, never on the request's Host
    header (which the inviting admin controls, and could point at a server of theirs)."""
    base_url = portal_state().settings.base_url
    if base_url:
        return base_url.rstrip("/") + url_for("enrol.start", token=token)
    return url_for("enrol.start", token=token, _external=True)  # demo or test mode only


def _deliver_link(
    invitation: Invitation, token: str, *, heading: str, user: User | None = None
) -> str:
    """Mail the enrolment link to the invitee (never to the admin). Only in demo or test mode
    is it also shown on the page, so the demo and the browser tests can follow it."""
    settings = portal_state().settings
    link = _enrolment_link(token)
    mailed = send_enrolment_link(settings, invitation.email, link)
    audit.record(
        db(),
        audit.actor_label(signed_in_user()),
        "user.enrolment_link_sent" if mailed else "user.enrolment_link_not_sent",
        f"invitation:{invitation.id}",
        {"email": invitation.email},
    )
    db().commit()
    return render_template(
        "accounts/admin/link_created.html",
        heading=heading,
        invitation=invitation,
        user=user,
        link=link if settings.demo_or_test else None,
        mailed=mailed,
        reenrolment=user is not None,
        needs_approval=needs_approval(invitation.role),
    )


@bp.post("/invitations/<int:invitation_id>/cancel")
@requires("admin.users.invite")
def cancel(invitation_id: int) -> Response:
    form = TokenForm()
    invitation = get_scoped_or_404(db(), Invitation, signed_in_user(), id=invitation_id)
    if form.validate_on_submit():
        try:
            cancel_invitation(db(), invitation, by=signed_in_user())
            db().commit()
            flash(f"The invitation for {invitation.email} was cancelled.", "success")
        except InvitationError as exc:
            db().rollback()
            flash(exc.message, "error")
    return redirect(url_for("admin.users"))


def _user_page(user: User, role_form: RoleForm | None = None, status: int = 200) -> Any:
    now = utcnow()
    names = _organisation_names()
    if role_form is None:
        role_form = RoleForm(formdata=None)
        role_form.fill_choices()
        role_form.role.data = user.role
        role_form.authority.data = user.authority.code if user.authority else ""
        role_form.provider.data = user.provider.code if user.provider else ""
    events = db().scalars(
        scoped(AuditEvent, signed_in_user())
        .where(AuditEvent.target == f"user:{user.id}")
        .order_by(AuditEvent.seq.desc())
        .limit(AUDIT_EVENTS_SHOWN)
    )
    return (
        render_template(
            "accounts/admin/user_detail.html",
            user=user,
            status=user_status(user, now),
            organisation=_organisation_of(names, user.authority_id, user.provider_id),
            role_form=role_form,
            action_form=TokenForm(),
            is_self=user.id == signed_in_user().id,
            awaiting_approval=user.is_active and not is_approved(user),
            events=list(events),
        ),
        status,
    )


@bp.get("/users/<int:user_id>")
@requires("admin.users.view")
def user_detail(user_id: int) -> Any:
    return _user_page(get_scoped_or_404(db(), User, signed_in_user(), id=user_id))


def _act(
    user_id: int, action: Callable[[User], None], done: str
) -> Response:  # one POST, one transaction
    user = get_scoped_or_404(db(), User, signed_in_user(), id=user_id)
    if TokenForm().validate_on_submit():
        try:
            action(user)
            db().commit()
            flash(done, "success")
        except UserAdminError as exc:
            db().rollback()
            flash(exc.message, "error")
    return redirect(url_for("admin.user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/deactivate")
@requires("admin.users.manage")
def deactivate_user(user_id: int) -> Response:
    return _act(
        user_id,
        lambda user: deactivate(db(), user, by=signed_in_user()),
        "The account was deactivated and its sessions ended.",
    )


@bp.post("/users/<int:user_id>/reactivate")
@requires("admin.users.manage")
def reactivate_user(user_id: int) -> Response:
    return _act(
        user_id,
        lambda user: reactivate(db(), user, by=signed_in_user()),
        "The account was reactivated.",
    )


@bp.post("/users/<int:user_id>/unlock")
@requires("admin.users.manage")
def unlock_user(user_id: int) -> Response:
    def unlock(user: User) -> None:
        if not throttle.is_locked(user):
            raise UserAdminError("This account is not locked.")
        throttle.unlock(db(), user, actor=audit.actor_label(signed_in_user()))

    return _act(user_id, unlock, "The account was unlocked.")


@bp.post("/users/<int:user_id>/role")
@requires("admin.users.manage")
def change_user_role(user_id: int) -> Any:
    user = get_scoped_or_404(db(), User, signed_in_user(), id=user_id)
    form = RoleForm()
    form.fill_choices()
    if not form.validate_on_submit():
        return _user_page(user, form, 400)
    try:
        change_role(
            db(),
            user,
            form.role.data or "",
            form.authority.data or None,
            form.provider.data or None,
            by=signed_in_user(),
        )
        db().commit()
    except UserAdminError as exc:
        db().rollback()
        _field_error(form, exc.field, exc.message)
        return _user_page(user, form, 400)
    flash("The role was changed and the user's sessions ended.", "success")
    return redirect(url_for("admin.user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/reset-2fa")
@requires("admin.users.manage")
def reset_user_2fa(user_id: int) -> Any:
    user = get_scoped_or_404(db(), User, signed_in_user(), id=user_id)
    if not TokenForm().validate_on_submit():
        return redirect(url_for("admin.user_detail", user_id=user_id))
    if not _can_deliver_links():
        flash(_NO_MAIL, "error")
        return redirect(url_for("admin.user_detail", user_id=user_id))
    try:
        token = reset_2fa(db(), user, by=signed_in_user())
        invitation = find_invitation(db(), token)
        db().commit()
    except UserAdminError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.user_detail", user_id=user_id))
    assert invitation is not None  # noqa: S101 - reset_2fa just issued it
    return _deliver_link(invitation, token, heading="Two-factor authentication reset", user=user)


@bp.post("/users/<int:user_id>/approve")
@requires("admin.users.approve")
def approve_user(user_id: int) -> Any:
    """The second admin's approval: 403 for a forbidden approver (the inviter, the person
    themselves, an admin the inviter created), 409 when there is nothing (left) to approve."""
    user = get_scoped_or_404(db(), User, signed_in_user(), id=user_id)
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was approved.", "error")
        return _user_page(user, status=400)
    try:
        approve_account(db(), user, by=signed_in_user())
        if user.authority_id is not None and user.role == "recipient":
            account_added(db(), user)
        db().commit()
    except ApprovalRefused as exc:
        db().rollback()
        flash(exc.message, "error")
        return _user_page(db().get(User, user_id) or user, status=exc.status)
    flash(f"{user.display_name}'s account is approved and takes effect now.", "success")
    return redirect(url_for("admin.user_detail", user_id=user_id), 303)


# --- authorities and providers ------------------------------------------------------------


@bp.get("/authorities")
@requires("admin.authorities.view")
def authorities() -> str:
    me = signed_in_user()
    rows = list(db().scalars(scoped(Authority, me).order_by(Authority.name)))
    verified_keys = db().execute(
        scoped(RecipientKey, me)
        .with_only_columns(RecipientKey.authority_id, func.count(RecipientKey.id))
        .where(RecipientKey.verified_at.is_not(None), RecipientKey.revoked_at.is_(None))
        .group_by(RecipientKey.authority_id)
    )
    key_counts = {authority_id: count for authority_id, count in verified_keys}
    return render_template(
        "accounts/admin/authorities.html", authorities=rows, key_counts=key_counts
    )


@bp.get("/authorities/<int:authority_id>")
@requires("admin.authorities.view")
def authority_detail(authority_id: int) -> str:
    me = signed_in_user()
    now = utcnow()
    authority = get_scoped_or_404(db(), Authority, me, id=authority_id)
    assessments = db().scalars(
        scoped(Assessment, me)
        .where(Assessment.authority_id == authority.id)
        .order_by(Assessment.criterion, Assessment.assessed_at.desc())
    )
    keys = db().scalars(
        scoped(RecipientKey, me)
        .where(RecipientKey.authority_id == authority.id)
        .order_by(RecipientKey.created_at.desc())
    )
    return render_template(
        "accounts/admin/authority_detail.html",
        authority=authority,
        assessments=[(a, a.valid_until is None or a.valid_until > now) for a in assessments],
        keys=[(key, _key_status(key, now)) for key in keys],
    )


def _key_status(key: RecipientKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.verified_at is None:
        return "unverified"
    return "verified"


@bp.get("/providers")
@requires("admin.providers.view")
def providers() -> str:
    me = signed_in_user()
    rows = list(db().scalars(scoped(Provider, me).order_by(Provider.name)))
    items = db().execute(
        scoped(Item, me)
        .with_only_columns(Item.provider_id, func.count(Item.id))
        .group_by(Item.provider_id)
    )
    item_counts = {provider_id: count for provider_id, count in items}
    return render_template("accounts/admin/providers.html", providers=rows, item_counts=item_counts)


@bp.get("/providers/<int:provider_id>")
@requires("admin.providers.view")
def provider_detail(provider_id: int) -> str:
    me = signed_in_user()
    provider = get_scoped_or_404(db(), Provider, me, id=provider_id)
    item_count = db().scalar(
        scoped(Item, me)
        .with_only_columns(func.count(Item.id))
        .where(Item.provider_id == provider.id)
    )
    return render_template(
        "accounts/admin/provider_detail.html", provider=provider, item_count=int(item_count or 0)
    )
