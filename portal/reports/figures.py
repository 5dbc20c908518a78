"""The figures the mechanism publishes for a period (issue 5, item 7).

Every figure is one set-based query (GROUP BY in the database, never a loop over rows),
except the median, whose inputs are fetched as one column because SQLite has no
percentile function. A period is a pair of dates, both included, in UTC.

Definitions (also in the README):

- *received*: requests submitted in the period, by requesting authority and by its State;
- *closed*: requests whose status became ``closed`` or ``withdrawn`` in the period;
- *ongoing*: requests submitted by the end of the period and neither closed nor
  withdrawn at its end;
- *packages shared*: packages released in the period, by the State of the receiving
  authority and their status now (released, withdrawn, recalled);
- *days to transmission*: for requests first transmitted in the period, the median of the
  days from submission to transmission;
- *consent*: items asked for in consent requests made in the period, by the provider's
  latest answer through that request (granted, declined) or pending while the request is
  open.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from portal.consent.models import Consent, ConsentRequest, ConsentRequestItem
from portal.db import stored_utc
from portal.packages.models import Package
from portal.registry.models import Authority
from portal.rfa.models import Rfa, RfaStatusChange

FINAL_STATUSES = ("closed", "withdrawn")
SHARED_STATUSES = ("released", "withdrawn", "recalled")
MAX_PERIOD_DAYS = 366 * 10


class PeriodInvalid(ValueError):
    """The period cannot be reported on; the message says why."""


@dataclass(frozen=True)
class Count:
    label: str
    value: int


@dataclass(frozen=True)
class PackageRow:
    """Packages released in the period for one State, by their status now."""

    state: str
    released: int
    withdrawn: int
    recalled: int

    @property
    def total(self) -> int:
        return self.released + self.withdrawn + self.recalled


@dataclass(frozen=True)
class ConsentFigures:
    requests: int
    pending: int
    granted: int
    declined: int
    unanswered: int  # asked in a request withdrawn before the provider answered


@dataclass(frozen=True)
class PeriodFigures:
    start: date
    end: date
    received: int
    received_by_authority: tuple[Count, ...]
    received_by_state: tuple[Count, ...]
    closed: int
    ongoing: int
    packages: tuple[PackageRow, ...]
    transmitted: int
    median_days_to_transmission: float | None
    consent: ConsentFigures

    @property
    def packages_shared(self) -> int:
        return sum(row.total for row in self.packages)


def check_period(start: date, end: date) -> None:
    if end < start:
        raise PeriodInvalid("The end of the period must not be before its start.")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise PeriodInvalid("Choose a period of at most ten years.")


def year_of(day: date) -> tuple[date, date]:
    """The calendar year of ``day``: the default period."""
    return date(day.year, 1, 1), date(day.year, 12, 31)


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in UTC."""
    return (
        datetime.combine(start, time(), tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC),
    )


def period_figures(db: Session, start: date, end: date) -> PeriodFigures:
    """Every published figure for the period from ``start`` to ``end`` (both included)."""
    check_period(start, end)
    lo, hi = _bounds(start, end)
    submitted_in = and_(Rfa.submitted_at >= lo, Rfa.submitted_at < hi)
    by_authority = db.execute(
        select(Authority.name, func.count(Rfa.id))
        .join(Authority, Authority.id == Rfa.authority_id)
        .where(submitted_in)
        .group_by(Authority.id, Authority.name)
        .order_by(func.count(Rfa.id).desc(), Authority.name)
    )
    by_state = db.execute(
        select(Authority.country, func.count(Rfa.id))
        .join(Authority, Authority.id == Rfa.authority_id)
        .where(submitted_in)
        .group_by(Authority.country)
        .order_by(func.count(Rfa.id).desc(), Authority.country)
    )
    authority_rows = tuple(Count(name, n) for name, n in by_authority)
    closed = db.scalar(
        select(func.count(func.distinct(RfaStatusChange.rfa_id))).where(
            RfaStatusChange.to_status.in_(FINAL_STATUSES),
            RfaStatusChange.changed_at >= lo,
            RfaStatusChange.changed_at < hi,
        )
    )
    ended = (
        select(RfaStatusChange.id)
        .where(
            RfaStatusChange.rfa_id == Rfa.id,
            RfaStatusChange.to_status.in_(FINAL_STATUSES),
            RfaStatusChange.changed_at < hi,
        )
        .correlate(Rfa)
    )
    ongoing = db.scalar(
        select(func.count(Rfa.id)).where(
            Rfa.submitted_at.is_not(None), Rfa.submitted_at < hi, ~exists(ended)
        )
    )
    days = _days_to_transmission(db, lo, hi)
    return PeriodFigures(
        start=start,
        end=end,
        received=sum(row.value for row in authority_rows),
        received_by_authority=authority_rows,
        received_by_state=tuple(Count(state, n) for state, n in by_state),
        closed=closed or 0,
        ongoing=ongoing or 0,
        packages=_packages(db, lo, hi),
        transmitted=len(days),
        median_days_to_transmission=round(statistics.median(days), 1) if days else None,
        consent=_consent(db, lo, hi),
    )


def _packages(db: Session, lo: datetime, hi: datetime) -> tuple[PackageRow, ...]:
    rows = db.execute(
        select(Authority.country, Package.status, func.count(Package.id))
        .join(Authority, Authority.id == Package.authority_id)
        .where(
            Package.released_at >= lo,
            Package.released_at < hi,
            Package.status.in_(SHARED_STATUSES),
        )
        .group_by(Authority.country, Package.status)
    )
    table: dict[str, dict[str, int]] = {}
    for state, status, n in rows:
        table.setdefault(state, dict.fromkeys(SHARED_STATUSES, 0))[status] = n
    found = [
        PackageRow(state, by["released"], by["withdrawn"], by["recalled"])
        for state, by in table.items()
    ]
    return tuple(sorted(found, key=lambda row: (-row.total, row.state)))


def _days_to_transmission(db: Session, lo: datetime, hi: datetime) -> list[float]:
    first = (
        select(
            RfaStatusChange.rfa_id.label("rfa_id"),
            func.min(RfaStatusChange.changed_at).label("at"),
        )
        .where(RfaStatusChange.to_status == "transmitted")
        .group_by(RfaStatusChange.rfa_id)
        .subquery()
    )
    rows = db.execute(
        select(Rfa.submitted_at, first.c.at)
        .join(first, first.c.rfa_id == Rfa.id)
        .where(first.c.at >= lo, first.c.at < hi, Rfa.submitted_at.is_not(None))
    )
    days = []
    for submitted, transmitted in rows:
        days.append(
            max(0.0, (stored_utc(transmitted) - stored_utc(submitted)).total_seconds() / 86400)
        )
    return days


def _consent(db: Session, lo: datetime, hi: datetime) -> ConsentFigures:
    made_in = and_(ConsentRequest.created_at >= lo, ConsentRequest.created_at < hi)
    requests = db.scalar(select(func.count(ConsentRequest.id)).where(made_in)) or 0
    latest = (
        select(
            Consent.consent_request_id.label("request_id"),
            Consent.item_id.label("item_id"),
            func.max(Consent.id).label("last_id"),
        )
        .where(Consent.consent_request_id.is_not(None))
        .group_by(Consent.consent_request_id, Consent.item_id)
        .subquery()
    )
    answer = aliased(Consent)
    rows = db.execute(
        select(ConsentRequest.status, answer.event, func.count(ConsentRequestItem.id))
        .join(ConsentRequest, ConsentRequest.id == ConsentRequestItem.consent_request_id)
        .outerjoin(
            latest,
            and_(
                latest.c.request_id == ConsentRequestItem.consent_request_id,
                latest.c.item_id == ConsentRequestItem.item_id,
            ),
        )
        .outerjoin(answer, answer.id == latest.c.last_id)
        .where(made_in)
        .group_by(ConsentRequest.status, answer.event)
    )
    counts = {"pending": 0, "grant": 0, "decline": 0, "unanswered": 0}
    for status, event, n in rows:
        if event in ("grant", "decline"):
            counts[event] += n
        elif status == "open":
            counts["pending"] += n
        else:
            counts["unanswered"] += n
    return ConsentFigures(
        requests=requests,
        pending=counts["pending"],
        granted=counts["grant"],
        declined=counts["decline"],
        unanswered=counts["unanswered"],
    )


# --- exports -----------------------------------------------------------------------------------

CSV_COLUMNS = ("period_start", "period_end", "section", "figure", "breakdown", "value")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def figure_rows(figures: PeriodFigures) -> list[tuple[str, str, str, str]]:
    """(section, figure, breakdown, value): one row per published figure, stable order."""
    rows: list[tuple[str, str, str, str]] = [
        ("requests", "received", "", str(figures.received)),
        *(("requests", "received_by_authority", c.label, str(c.value)) for c in
          figures.received_by_authority),
        *(("requests", "received_by_state", c.label, str(c.value)) for c in
          figures.received_by_state),
        ("requests", "closed", "", str(figures.closed)),
        ("requests", "ongoing", "", str(figures.ongoing)),
        ("requests", "transmitted", "", str(figures.transmitted)),
        (
            "requests",
            "median_days_submission_to_transmission",
            "",
            "" if figures.median_days_to_transmission is None
            else f"{figures.median_days_to_transmission:.1f}",
        ),
        ("packages", "shared", "", str(figures.packages_shared)),
    ]  # fmt: skip
    for row in figures.packages:
        for status in SHARED_STATUSES:
            rows.append(("packages", f"shared_{status}", row.state, str(getattr(row, status))))
    consent = figures.consent
    rows += [
        ("consent", "requests_made", "", str(consent.requests)),
        ("consent", "items_pending", "", str(consent.pending)),
        ("consent", "items_granted", "", str(consent.granted)),
        ("consent", "items_declined", "", str(consent.declined)),
        ("consent", "items_unanswered_request_withdrawn", "", str(consent.unanswered)),
    ]
    return rows


def to_csv(figures: PeriodFigures) -> str:
    """The figures as CSV (:data:`CSV_COLUMNS`), safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    start, end = figures.start.isoformat(), figures.end.isoformat()
    for section, figure, breakdown, value in figure_rows(figures):
        writer.writerow([start, end, section, figure, safe_cell(breakdown), safe_cell(value)])
    return out.getvalue()
