"""What the bag says beyond the files (manifest schema 3), read from the database by the
assembler and written by it: the signed decision record, the marks applied per item with
the two officers who proposed and confirmed each, custody in chronological order, and the
item index.

:func:`load_evidence` runs in the assembler's loading transaction; :func:`enrich` completes
an item's manifest entry once it is rendered; :func:`write_records` writes (and signs, with
the package's keyring) the decision record and the item index beside the manifest. Codes,
names of officers and plain descriptions only: never a term or an identifier's value.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.canonical import sha256_hex
from portal.eligibility.decisions import load_result
from portal.eligibility.models import Decision
from portal.eligibility.policy.engine import RuleResult
from portal.packages.assembly.decision_record import (
    DECISION_RECORD_PATH,
    DECISION_SIGNATURE_PATH,
    DecisionFacts,
    ItemOutcome,
    RuleOutcome,
    build_decision_record,
    decision_record_bytes,
)
from portal.packages.assembly.facts import (
    AppliedMark,
    ItemEntry,
    RecordFile,
    Records,
)
from portal.packages.assembly.item_index import (
    INDEX_CSV_PATH,
    INDEX_JSON_PATH,
    index_csv,
    index_json,
    index_rows,
)
from portal.packages.assembly.item_report import ItemReport
from portal.redaction.matcher import Matcher
from portal.redaction.renditions import MarkSpec
from portal.registry.models import Item, RedactionMark

__all__ = ["AUTOMATIC_CHECK", "Evidence", "enrich", "load_evidence", "write_records"]

#: Who decided when no officer asked (a re-check the portal ran itself).
AUTOMATIC_CHECK = "the portal (automatic re-check)"


@dataclass(frozen=True)
class _ItemFacts:
    date: date | None
    place: str
    language: str


@dataclass(frozen=True)
class Evidence:
    """What :func:`load_evidence` read: the decision record's facts, who proposed and
    confirmed each mark (item code, mark code) -> (proposer, confirmer), and per item code
    its date, place and language for the index."""

    decision: DecisionFacts
    people: Mapping[tuple[str, str], tuple[str | None, str | None]]
    items: Mapping[str, _ItemFacts]


def _names(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


def _outcome(result: RuleResult, references: Mapping[str, str]) -> RuleOutcome:
    return RuleOutcome(
        rule=result.rule,
        status=result.status,
        effect=result.effect,
        reference=references.get(result.rule, ""),
        code=result.code,
    )


def _decision_facts(
    db: Session, package_code: str, decision: Decision, codes: Sequence[str]
) -> DecisionFacts:
    result = load_result(decision)
    references = {column.id: column.reference for column in result.rules}
    wanted = set(codes)
    officers = _names(db, {decision.requested_by_id} - {None})  # type: ignore[arg-type]
    return DecisionFacts(
        package_code=package_code,
        decision_id=decision.id,
        decided_at=decision.created_at,
        outcome=decision.outcome,
        engine_version=decision.engine_version,
        deciding_officers=tuple(officers.values()) or (AUTOMATIC_CHECK,),
        policy_id=decision.policy_id,
        policy_revision=decision.policy_revision,
        policy_files=tuple(
            sorted((name, sha256_hex(text)) for name, text in result.policy_files.items())
        ),
        snapshot_sha256=decision.snapshot_sha256,
        results_sha256=sha256_hex(decision.results_json),
        rfa_reference=result.rfa,
        authority_code=result.authority_code,
        request_rules=tuple(_outcome(r, references) for r in result.request_results),
        items=tuple(
            ItemOutcome(
                code=item.item,
                outcome=item.outcome,
                rules=tuple(_outcome(r, references) for r in item.results),
                marks=item.marks,
            )
            for item in sorted(result.items, key=lambda found: found.item)
            if item.item in wanted
        ),
        not_in_package=tuple(
            sorted(Counter(i.outcome for i in result.items if i.item not in wanted).items())
        ),
    )


def load_evidence(
    db: Session,
    package_code: str,
    decision: Decision,
    codes: Sequence[str],
    hidden: Sequence[Matcher | None],
) -> Evidence:
    """The evidence of a package of the items ``codes`` built on ``decision``. A place
    that names a term of ``hidden`` (withheld identifiers, terms of the package's marks) is
    left blank: the index must not carry it."""
    rows = db.scalars(select(Item).where(Item.code.in_(codes))).all()
    marks = db.execute(
        select(Item.code, RedactionMark.code, RedactionMark.proposed_by_id,
               RedactionMark.confirmed_by_id)
        .join(Item, Item.id == RedactionMark.item_id)
        .where(Item.code.in_(codes))
    ).all()  # fmt: skip
    names = _names(db, {user for row in marks for user in row[2:] if user is not None})
    matchers = [matcher for matcher in hidden if matcher is not None]

    def place(text: str) -> str:
        return "" if any(m.codes_in_text(text) for m in matchers) else text

    return Evidence(
        decision=_decision_facts(db, package_code, decision, codes),
        people={
            (item, mark): (names.get(proposer or 0), names.get(confirmer or 0))
            for item, mark, proposer, confirmer in marks
        },
        items={
            row.code: _ItemFacts(row.collected_at, place(row.place), row.language) for row in rows
        },
    )


def _applied(
    evidence: Evidence, code: str, report: ItemReport, specs: Sequence[MarkSpec]
) -> tuple[AppliedMark, ...]:
    where = {spec.code: spec for spec in specs}
    applied = []
    for mark in report.marks:
        spec = where.get(mark.code)
        proposer, confirmer = evidence.people.get((code, mark.code), (None, None))
        applied.append(
            AppliedMark(
                code=mark.code,
                kind=mark.kind,
                reason=mark.reason,
                hits=mark.count,
                page=spec.page if spec is not None else None,
                box=spec.box if spec is not None else None,
                pages=mark.pages,
                proposed_by=proposer,
                confirmed_by=confirmer,
            )
        )
    return tuple(applied)


def enrich(
    evidence: Evidence, entry: ItemEntry, report: ItemReport, specs: Sequence[MarkSpec]
) -> ItemEntry:
    """``entry`` with its marks applied (from the item's report), its custody in
    chronological order (stable: events at the same time keep their order), and the
    date, place and language of the index."""
    facts = evidence.items.get(entry.code, _ItemFacts(None, "", ""))
    return replace(
        entry,
        custody=tuple(sorted(entry.custody, key=lambda event: event.at)),
        marks=_applied(evidence, entry.code, report, specs),
        date=facts.date,
        place=facts.place,
        language=facts.language,
    )


def _file(path: str, file: Path, media_type: str) -> RecordFile:
    data = file.read_bytes()
    return RecordFile(path, hashlib.sha256(data).hexdigest(), len(data), media_type)


def write_records(
    stage: Path,
    evidence: Evidence,
    items: Sequence[ItemEntry],
    sign: Callable[[Path], bytes],
) -> tuple[Records, list[tuple[str, Path]]]:
    """Write the decision record, its detached signature (``sign``: the package's keyring)
    and the item index into ``stage``; what the manifest says of them, and (bag path, file)
    of each. Raises what ``sign`` raises."""
    record = stage / "decision-record.json"
    record.write_bytes(decision_record_bytes(build_decision_record(evidence.decision)))
    signature = stage / "decision-record.json.asc"
    signature.write_bytes(sign(record))
    rows = index_rows(items)
    csv_file, json_file = stage / "item-index.csv", stage / "item-index.json"
    csv_file.write_bytes(index_csv(rows))
    json_file.write_bytes(index_json(evidence.decision.package_code, rows))
    records = Records(
        decision=_file(DECISION_RECORD_PATH, record, "application/json"),
        decision_signature_path=DECISION_SIGNATURE_PATH,
        index_csv=_file(INDEX_CSV_PATH, csv_file, "text/csv"),
        index_json=_file(INDEX_JSON_PATH, json_file, "application/json"),
    )
    files = [
        (DECISION_RECORD_PATH, record),
        (DECISION_SIGNATURE_PATH, signature),
        (INDEX_CSV_PATH, csv_file),
        (INDEX_JSON_PATH, json_file),
    ]
    return records, files
