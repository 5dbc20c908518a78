"""Requests for assistance, the requester's side: list, new/edit draft, submit, the request
page with its timeline, withdrawal and the clarification thread (also used by legal officers).

Views are thin: forms parse, :mod:`portal.rfa.drafting` decides, typed errors become
messages beside the fields. Requests load only through authz scopes, so another
authority's request is a 404; staff see submitted requests, never drafts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import LazyString, gettext, lazy_gettext
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from sqlalchemy.orm import load_only
from werkzeug.wrappers import Response as BaseResponse
from wtforms import (
    BooleanField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.fields.choices import SelectChoice

from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.authz.permissions import allowed, requires
from portal.authz.roles import is_legal_officer, is_requester
from portal.authz.scopes import get_scoped_or_404, scoped
from portal.db import db, stored_utc, utcnow
from portal.documents.html_pdf import html_to_pdf
from portal.integrity.serving import require_intact
from portal.packages.recalls import withdrawals_of_request
from portal.pages import labels
from portal.pages.http_methods import is_head
from portal.pages.i18n import N_, Translated, refusal, translate
from portal.pages.numerals import whole_number
from portal.pages.responses import pdf_download
from portal.paging import page_number, paginate
from portal.registry.models import Authority
from portal.rfa.drafting import (
    NotAllowed,
    NotEditable,
    RequestError,
    RfaFields,
    StaleEdit,
    ValidationFailed,
    create_draft,
    may_post,
    post_message,
    submit,
    thread,
    update_draft,
    validate,
    withdraw,
)
from portal.rfa.models import (
    URGENCY_LABELS,
    Assurance,
    Attachment,
    Rfa,
    RfaStatusChange,
)
from portal.rfa.officer_views import officer_request_list
from portal.rfa.status import next_states, status_label
from portal.rfa.uploads import (
    ACCEPTED,
    ACCEPTED_TEXT,
    AssuranceEntry,
    AssuranceInvalid,
    UploadRefused,
    add_attachment,
    check_assurance,
    content_disposition,
    may_attach,
    media_type_of,
    record_assurance,
    record_file_download,
)
from portal.state import portal_state

bp = Blueprint("requests", __name__, url_prefix="/requests")

MECHANISM = "Mechanism"
PROCEEDINGS_LABELS = labels.PROCEEDINGS
DATE_FIELDS = ("period_from", "period_to", "deadline")
#: What the requester's list shows of a request (the only columns it loads).
REQUESTER_COLUMNS = (Rfa.code, Rfa.their_reference, Rfa.status, Rfa.submitted_at, Rfa.updated_at)


@bp.context_processor
def _template_labels() -> dict[str, Any]:
    """What only these pages show (``can``, ``when``... are app-wide:
    :mod:`portal.pages.templating`)."""
    return {
        "status_label": status_label,
        "proceedings_labels": Translated(PROCEEDINGS_LABELS),
        "urgency_labels": Translated(URGENCY_LABELS),
        "accepted_types": ACCEPTED,
    }


# --- forms --------------------------------------------------------------------------------


class CheckboxList(SelectMultipleField):  # type: ignore[misc]
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _choices(options: Iterable[tuple[str, str]], *, catalog: bool = True) -> list[SelectChoice]:
    """Select options; labels from the catalog are said in the reader's language when shown
    (offences are the policy's own words and stay as written)."""
    return [
        SelectChoice(value, lazy_gettext(label) if catalog and label else label)
        for value, label in options
    ]


def _date_field(label: str | LazyString, hint: str | LazyString = "") -> StringField:
    return StringField(label, description=hint, render_kw={"type": "date"})


def _parse_date(field: StringField) -> date | None:
    """The field's ISO date (None when empty); text that is not a date becomes a field error."""
    text = (field.data or "").strip()
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        field.errors = [*field.errors, gettext("Enter a date as YYYY-MM-DD.")]
        return None


class RfaForm(FlaskForm):  # type: ignore[misc]
    version = HiddenField()
    # Labels, hints and choices are lazy: said in the reader's language when the form is shown.
    their_reference = StringField(
        lazy_gettext("Your reference"),
        description=lazy_gettext("The case or file number of your authority."),
    )
    legal_basis = TextAreaField(
        lazy_gettext("Legal basis"),
        description=lazy_gettext("The treaty, law or arrangement the request rests on."),
    )
    proceedings_type = SelectField(
        lazy_gettext("Type of proceedings"),
        choices=_choices([("", N_("Choose…")), *PROCEEDINGS_LABELS.items()]),
        validate_choice=False,
    )
    offences = CheckboxList(
        lazy_gettext("Offences"),
        description=lazy_gettext("The crimes under investigation or prosecution."),
        choices=[],
        validate_choice=False,
    )
    persons_concerned = TextAreaField(
        lazy_gettext("Persons concerned"),
        description=lazy_gettext("Suspects, accused or others, as far as known."),
    )
    summary_of_facts = TextAreaField(
        lazy_gettext("Summary of the facts"),
        description=lazy_gettext(
            "What happened, where and when, as far as your authority knows it."
        ),
    )
    assistance_sought = TextAreaField(
        lazy_gettext("Assistance sought"),
        description=lazy_gettext("What material or information you ask for, and why."),
    )
    period_from = _date_field(
        lazy_gettext("Period from"), lazy_gettext("The first day of the period concerned.")
    )
    period_to = _date_field(
        lazy_gettext("Period to"), lazy_gettext("The last day of the period concerned.")
    )
    places = TextAreaField(
        lazy_gettext("Places"), description=lazy_gettext("Places concerned by the facts.")
    )
    urgency = SelectField(
        lazy_gettext("Urgency"),
        choices=_choices(URGENCY_LABELS.items()),
        validate_choice=False,
        default="normal",
    )
    urgency_justification = TextAreaField(
        lazy_gettext("Why it is urgent"),
        description=lazy_gettext("Required unless the urgency is normal."),
    )
    deadline = _date_field(
        lazy_gettext("Deadline"),
        lazy_gettext("The date by which you need the material, if any (not in the past)."),
    )
    confidentiality = TextAreaField(
        lazy_gettext("Confidentiality requirements"),
        description=lazy_gettext("Any conditions on disclosing the request itself."),
    )

    def fill_choices(self) -> None:
        """The choices, in the request's language (offences as the mandate names them)."""
        offences = portal_state().policy.mandate.offences()
        self.offences.choices = _choices(((o, o) for o in offences), catalog=False)

    def entries(self) -> RfaFields:
        """The form's entries; dates that do not parse become field errors."""
        dates = {name: _parse_date(getattr(self, name)) for name in DATE_FIELDS}
        return RfaFields(
            their_reference=self.their_reference.data or "",
            legal_basis=self.legal_basis.data or "",
            proceedings_type=self.proceedings_type.data or "",
            offences=list(self.offences.data or []),
            persons_concerned=self.persons_concerned.data or "",
            summary_of_facts=self.summary_of_facts.data or "",
            assistance_sought=self.assistance_sought.data or "",
            period_from=dates["period_from"],
            period_to=dates["period_to"],
            places=self.places.data or "",
            urgency=self.urgency.data or "",
            urgency_justification=self.urgency_justification.data or "",
            deadline=dates["deadline"],
            confidentiality=self.confidentiality.data or "",
        )

    def show_errors(self, errors: dict[str, list[str]]) -> None:
        for name, messages in errors.items():
            field = getattr(self, name, None)
            if field is None:
                self.form_errors.extend(map(translate, messages))
            elif not (name in DATE_FIELDS and field.errors):  # "not a date" says enough
                field.errors = [*field.errors, *map(translate, messages)]

    def check_all(self, *, submitting: bool) -> RfaFields | None:
        """The entries when every check passes; else None, with every error of the
        submission on its field at once (dates that do not parse, missing and inconsistent
        entries), never one round at a time."""
        entries = self.entries()
        mandate = portal_state().policy.mandate
        self.show_errors(validate(entries.cleaned(), mandate, for_submission=submitting))
        if any(field.errors for field in self):
            return None
        return entries


class WithdrawForm(FlaskForm):  # type: ignore[misc]
    reason = TextAreaField(lazy_gettext("Reason for withdrawing"))
    confirm = BooleanField(
        lazy_gettext("I understand that a withdrawn request cannot be reopened.")
    )


class MessageForm(FlaskForm):  # type: ignore[misc]
    body = TextAreaField(lazy_gettext("Your message"))


class AttachmentForm(FlaskForm):  # type: ignore[misc]
    file = FileField(lazy_gettext("File to attach"), description=lazy_gettext(ACCEPTED_TEXT))


class AssuranceForm(FlaskForm):  # type: ignore[misc]
    given_by = StringField(
        lazy_gettext("Given by"),
        description=lazy_gettext("The office and person who gave the assurance."),
    )
    given_at = _date_field(lazy_gettext("Date of the assurance"))
    summary = TextAreaField(
        lazy_gettext("Summary (optional)"), description=lazy_gettext("What the assurance says.")
    )
    document = FileField(
        lazy_gettext("The signed assurance"), description=lazy_gettext(ACCEPTED_TEXT)
    )


# --- helpers ------------------------------------------------------------------------------


def _names(user_ids: Iterable[int | None]) -> dict[int, User]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return {u.id: u for u in db().scalars(select(User).where(User.id.in_(ids)))}


def _render_form(form: RfaForm, rfa: Rfa | None, status: int = 200) -> tuple[str, int]:
    today = utcnow().date().isoformat()
    return render_template("rfa/requester/form.html", form=form, rfa=rfa, today=today), status


@dataclass(frozen=True)
class TimelineStep:
    """One line of a request's history: a status change, or material withdrawn."""

    at: datetime
    label: str
    who: User | None
    note: str


def _timeline(
    rfa: Rfa, changes: list[RfaStatusChange], people: dict[int, User], *, staff: bool
) -> list[TimelineStep]:
    """Status changes and recalls in time order. The requester reads a recall in neutral
    words; legal officers see which package and how many items."""
    steps = [
        TimelineStep(c.changed_at, status_label(c.to_status), people.get(c.changed_by_id or 0),
                     c.note)
        for c in changes
    ]  # fmt: skip
    for w in withdrawals_of_request(db(), rfa.id):
        if staff:  # the officers' view of the page stays English (README "Languages")
            what = f"{w.items} item(s)" if w.items else "the whole package"
            note = f"Package {w.package_code} recalled: the provider withdrew consent for {what}."
        else:
            note = gettext(
                "Your authority's recipients have a signed recall notice saying what to "
                "return or destroy."
            )
        steps.append(TimelineStep(w.at, gettext("Material withdrawn by its provider"), None, note))
    return sorted(steps, key=lambda step: stored_utc(step.at))


def _render_detail(
    rfa: Rfa,
    *,
    withdraw_form: WithdrawForm | None = None,
    message_form: MessageForm | None = None,
    attachment_form: AttachmentForm | None = None,
    assurance_form: AssuranceForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    me = signed_in_user()
    changes = list(
        db().scalars(
            select(RfaStatusChange)
            .where(RfaStatusChange.rfa_id == rfa.id)
            .order_by(RfaStatusChange.changed_at, RfaStatusChange.id)
        )
    )
    attachments = list(
        db().scalars(
            select(Attachment)
            .where(Attachment.rfa_id == rfa.id)
            .order_by(Attachment.uploaded_at, Attachment.id)
        )
    )
    assurances = list(
        db().scalars(
            select(Assurance)
            .where(Assurance.rfa_id == rfa.id)
            .order_by(Assurance.given_at, Assurance.id)
        )
    )
    people = _names(
        [
            *(c.changed_by_id for c in changes),
            *(a.uploaded_by_id for a in attachments),
            *(a.recorded_by_id for a in assurances),
        ]
    )
    page = render_template(
        "rfa/requester/detail.html",
        rfa=rfa,
        timeline=_timeline(rfa, changes, people, staff=not is_requester(me)),
        messages=thread(db(), rfa),
        can_withdraw=(
            is_requester(me)
            and rfa.status != "draft"
            and "withdrawn" in next_states(rfa.status, me.role)
        ),
        can_post=may_post(rfa, me),
        can_answer=is_requester(me) and rfa.status == "clarification_requested",
        withdraw_form=withdraw_form or WithdrawForm(),
        message_form=message_form or MessageForm(),
        attachments=attachments,
        assurances=assurances,
        people=people,
        can_attach=allowed(me.role, "rfa.attach") and may_attach(rfa, me),
        attachment_form=attachment_form or AttachmentForm(),
        assurance_form=assurance_form or AssuranceForm(),
    )
    return page, status


# --- pages --------------------------------------------------------------------------------


@bp.get("")
@requires("rfa.view")
def index() -> str | tuple[str, int]:
    me = signed_in_user()
    if is_legal_officer(me):
        return officer_request_list()  # portal.rfa.officer_views: search, filters, sorting
    shown = load_only(*REQUESTER_COLUMNS, raiseload=True)  # a request's long texts stay behind
    found = paginate(
        db(),
        scoped(Rfa, me).order_by(Rfa.updated_at.desc(), Rfa.id.desc()).options(shown),
        page_number(request.args.get("page")),
    )
    return render_template("rfa/requester/index.html", rfas=found.items, found=found)


@bp.route("/new", methods=["GET", "POST"])
@requires("rfa.edit")
def new() -> BaseResponse | tuple[str, int]:
    form = RfaForm()
    form.fill_choices()
    if request.method == "GET":
        return _render_form(form, None)
    if not form.validate_on_submit():
        return _render_form(form, None, 400)
    submitting = request.form.get("action") == "submit"
    entries = form.check_all(submitting=submitting)
    if entries is None:
        return _render_form(form, None, 400)
    mandate = portal_state().policy.mandate
    try:
        rfa = create_draft(db(), signed_in_user(), entries, mandate)
        if submitting:
            db().flush()
            submit(db(), rfa, signed_in_user(), entries, mandate, expected_version=rfa.version)
    except ValidationFailed as exc:
        db().rollback()
        form.show_errors(exc.errors)
        return _render_form(form, None, 400)
    except RequestError as exc:
        db().rollback()
        form.form_errors.append(refusal(exc))
        return _render_form(form, None, 400)
    db().commit()
    done = (
        gettext("Request %(code)s submitted.", code=rfa.code)
        if rfa.status == "submitted"
        else gettext("Request %(code)s saved as a draft.", code=rfa.code)
    )
    flash(done, "success")
    return redirect(url_for("requests.detail", rfa_code=rfa.code), 303)


@bp.route("/<rfa_code>/edit", methods=["GET", "POST"])
@requires("rfa.edit")
def edit(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    if rfa.status != "draft":
        flash(gettext("This request has been submitted and can no longer be edited."), "error")
        return redirect(url_for("requests.detail", rfa_code=rfa.code), 303)
    if request.method == "GET":
        form = RfaForm(obj=_FormView(rfa))
        form.fill_choices()
        return _render_form(form, rfa)
    form = RfaForm()
    form.fill_choices()
    if not form.validate_on_submit():
        return _render_form(form, rfa, 400)
    submitting = request.form.get("action") == "submit"
    entries = form.check_all(submitting=submitting)
    if entries is None:
        return _render_form(form, rfa, 400)
    expected = whole_number(form.version.data)
    if expected is None:
        form.form_errors.append(gettext("The form is incomplete; reload the page and try again."))
        return _render_form(form, rfa, 400)
    mandate = portal_state().policy.mandate
    try:
        if submitting:
            submit(db(), rfa, signed_in_user(), entries, mandate, expected_version=expected)
        else:
            update_draft(db(), rfa, signed_in_user(), entries, mandate, expected_version=expected)
    except ValidationFailed as exc:
        db().rollback()
        form.show_errors(exc.errors)
        return _render_form(form, db().get(Rfa, rfa.id), 400)
    except (StaleEdit, NotEditable, NotAllowed) as exc:
        db().rollback()
        form.form_errors.append(refusal(exc))
        current = db().get(Rfa, rfa.id)
        if isinstance(exc, StaleEdit) and current is not None:
            # Saving again now is a deliberate choice made after seeing the message.
            form.version.data = str(current.version)
        return _render_form(form, current, 409)
    db().commit()
    flash(
        gettext("Request %(code)s submitted.", code=rfa.code)
        if submitting
        else gettext("Request %(code)s saved.", code=rfa.code),
        "success",
    )
    return redirect(url_for("requests.detail", rfa_code=rfa.code), 303)


class _FormView:
    """An Rfa as the form reads it (dates as ISO text, the version as the hidden field)."""

    def __init__(self, rfa: Rfa) -> None:
        for name, value in vars(RfaFields.of(rfa)).items():
            setattr(self, name, value.isoformat() if isinstance(value, date) else value)
        self.version = str(rfa.version)


@bp.get("/<rfa_code>")
@requires("rfa.view")
def detail(rfa_code: str) -> tuple[str, int]:
    return _render_detail(get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code))


@bp.post("/<rfa_code>/withdraw")
@requires("rfa.withdraw")
def withdraw_request(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    form = WithdrawForm()
    if not form.validate_on_submit():
        return _render_detail(rfa, withdraw_form=form, status=400)
    # Both questions are checked before answering: all errors in one round.
    if not (form.reason.data or "").strip():
        form.reason.errors = [gettext("Say why the request is withdrawn.")]
    if not form.confirm.data:
        form.confirm.errors = [gettext("Tick the box to confirm the withdrawal.")]
    if form.reason.errors or form.confirm.errors:
        return _render_detail(rfa, withdraw_form=form, status=400)
    try:
        withdraw(db(), rfa, signed_in_user(), form.reason.data or "")
    except ValidationFailed as exc:
        db().rollback()
        form.reason.errors = [translate(m) for m in exc.errors.get("reason", [])]
        return _render_detail(rfa, withdraw_form=form, status=400)
    except RequestError as exc:
        db().rollback()
        form.form_errors.append(
            gettext("The request was not withdrawn: %(reason)s", reason=refusal(exc))
        )
        return _render_detail(rfa, withdraw_form=form, status=409)
    db().commit()
    flash(gettext("Request %(code)s withdrawn.", code=rfa.code), "success")
    return redirect(url_for("requests.detail", rfa_code=rfa.code), 303)


@bp.post("/<rfa_code>/messages")
@requires("rfa.message")
def message(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    form = MessageForm()
    if not form.validate_on_submit():
        return _render_detail(rfa, message_form=form, status=400)
    answer = request.form.get("action") == "answer"
    try:
        post_message(db(), rfa, signed_in_user(), form.body.data or "", return_to_review=answer)
    except ValidationFailed as exc:
        db().rollback()
        form.body.errors = [translate(m) for m in exc.errors.get("body", [])]
        return _render_detail(rfa, message_form=form, status=400)
    except RequestError as exc:
        db().rollback()
        form.form_errors.append(
            gettext("The message was not sent: %(reason)s", reason=refusal(exc))
        )
        return _render_detail(rfa, message_form=form, status=409)
    db().commit()
    flash(
        gettext("Answer sent; the request is back in review.")
        if answer
        else gettext("Message sent."),
        "success",
    )
    return redirect(url_for("requests.detail", rfa_code=rfa.code) + "#thread", 303)


@bp.get("/<rfa_code>/acknowledgement.pdf")
@requires("rfa.view")
def acknowledgement(rfa_code: str) -> Response:
    """The acknowledgement of receipt, once the request has been submitted."""
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    if rfa.submitted_at is None:
        abort(404)
    authority = db().get(Authority, rfa.authority_id)
    html = render_template(
        "rfa/documents/acknowledgement.html", rfa=rfa, authority=authority, mechanism=MECHANISM
    )
    return pdf_download(html_to_pdf(html), f"acknowledgement-{rfa.code}.pdf")


# --- attachments and assurances --------------------------------------------------------------


def _upload_limit() -> int:
    return portal_state().settings.max_upload_bytes


@bp.post("/<rfa_code>/attachments")
@requires("rfa.attach")
def attach(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    form = AttachmentForm()
    if not form.validate_on_submit():
        return _render_detail(rfa, attachment_form=form, status=400)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        form.file.errors = [gettext("Choose a file to attach.")]
        return _render_detail(rfa, attachment_form=form, status=400)
    try:
        attachment = add_attachment(
            db(),
            portal_state().blobs,
            rfa,
            signed_in_user(),
            upload.stream,
            upload.filename,
            max_bytes=_upload_limit(),
        )
    except UploadRefused as exc:
        db().rollback()
        form.file.errors = [refusal(exc)]
        return _render_detail(rfa, attachment_form=form, status=400)
    db().commit()
    flash(gettext("%(name)s attached.", name=attachment.filename), "success")
    return redirect(url_for("requests.detail", rfa_code=rfa.code) + "#attachments", 303)


@bp.post("/<rfa_code>/assurances")
@requires("rfa.attach")
def add_assurance(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    form = AssuranceForm()
    if not form.validate_on_submit():
        return _render_detail(rfa, assurance_form=form, status=400)
    text = (form.given_at.data or "").strip()
    try:
        given_at = date.fromisoformat(text) if text else None
    except ValueError:
        given_at = None
    entry = AssuranceEntry(
        given_by=form.given_by.data or "", given_at=given_at, summary=form.summary.data or ""
    )
    upload = request.files.get("document")
    try:
        # Every field and the file are checked before answering: all errors in one round.
        errors = check_assurance(entry)
        if upload is None or not upload.filename:
            errors["document"] = [N_("Choose the file of the signed assurance.")]
        if errors:
            raise AssuranceInvalid(errors)
        assert upload is not None and upload.filename  # noqa: S101 - checked above
        record_assurance(
            db(),
            portal_state().blobs,
            rfa,
            signed_in_user(),
            entry,
            upload.stream,
            upload.filename,
            max_bytes=_upload_limit(),
        )
    except AssuranceInvalid as exc:
        db().rollback()
        for name, messages in exc.errors.items():
            getattr(form, name).errors = [translate(m) for m in messages]
        return _render_detail(rfa, assurance_form=form, status=400)
    except UploadRefused as exc:
        db().rollback()
        form.document.errors = [refusal(exc)]
        return _render_detail(rfa, assurance_form=form, status=400)
    db().commit()
    flash(gettext("Death-penalty assurance recorded."), "success")
    return redirect(url_for("requests.detail", rfa_code=rfa.code) + "#assurances", 303)


def _record_download(rfa: Rfa, upload: Attachment | Assurance) -> None:
    if is_head():
        return  # a HEAD sends no content: nothing was read (as package downloads)
    record_file_download(db(), signed_in_user(), rfa, upload, address=request.remote_addr)
    db().commit()


def _file_response(sha256: str, media_type: str, name: str) -> Response:
    """Stream a stored upload as a download the browser will not render or sniff."""
    blobs = portal_state().blobs
    require_intact(sha256)  # before the first byte, not after the last
    response = Response(blobs.iter_chunks(sha256, verify=True), mimetype=media_type)
    response.headers["Content-Length"] = str(blobs.size(sha256))
    response.headers["Content-Disposition"] = content_disposition(name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<rfa_code>/attachments/<int:attachment_id>")
@requires("rfa.view")
def attachment_file(rfa_code: str, attachment_id: int) -> Response:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    found = db().get(Attachment, attachment_id)
    if found is None or found.rfa_id != rfa.id:
        abort(404)
    _record_download(rfa, found)
    return _file_response(found.sha256, found.media_type, found.filename)


@bp.get("/<rfa_code>/assurances/<int:assurance_id>")
@requires("rfa.view")
def assurance_file(rfa_code: str, assurance_id: int) -> Response:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    found = db().get(Assurance, assurance_id)
    if found is None or found.rfa_id != rfa.id or found.sha256 is None:
        abort(404)
    _record_download(rfa, found)
    blobs = portal_state().blobs
    return _file_response(
        found.sha256, media_type_of(blobs, found.sha256), found.filename or "assurance"
    )
