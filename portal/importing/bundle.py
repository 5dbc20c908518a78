"""``portal import``: load a JSON Lines bundle of repository records and their files.

The bundle is one transaction. Every line is checked in full (syntax, fields, references,
duplicates, files, keys) and every problem is collected; if there is any, the bundle is
rejected with :class:`BundleRejected` listing them all, blobs this import wrote are deleted,
and nothing was added to the session. Otherwise the new rows are added to the session and
flushed, but not committed: the caller commits (the CLI runs this inside
``portal.db.transaction``), or rolls back on error.

Records that already exist with identical content are counted as unchanged; the same code
with different content is an error (the consent ledger is append-only, so that holds for
consent events too). Re-importing an identical bundle therefore changes nothing.

Protected identifiers (:mod:`portal.importing.identifiers`) and the terms of term marks
(:mod:`portal.registry.mark_terms`) are sealed with the portal's key (``sealer``) as they are
added; a bundle holding any is refused without one. Their values appear in no problem, report
or audit event.

Redaction marks arrive pending: like a proposed mark, they wait for a legal officer's
confirmation, and the legal officers are notified (one notice per item, read for everyone
once nothing of the item waits any more: :mod:`portal.redaction.mark_review`).

Each item's file is streamed once, straight into the blob store, and checked against its
sha256 on the way (memory stays flat whatever its size). Once the bundle is known to be
rejected, later files are only hashed, so nothing is written just to be deleted. Blobs that
already existed are never deleted. If the caller's commit fails after a successful import, the
new blobs stay behind unreferenced: content-addressed, harmless, and reused by the next try.

The bundle format is documented in ``docs/import-format.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from portal import audit
from portal.db import utcnow
from portal.importing import identifiers
from portal.importing import records as rec
from portal.importing.errors import BundleRejected, LineError
from portal.importing.fields import check_fields
from portal.importing.files import FileProblem, discard_blob, read_key_file, resolve, store_file
from portal.importing.records import Catalog, Record
from portal.importing.schema import CODE_TYPES, RECORD_TYPES, identity, label
from portal.importing.source import SourceLine, read_bundle
from portal.notifications import service as notifications
from portal.registry.identifiers import IdentifierRefused
from portal.registry.models import Item
from portal.registry.openpgp import KeyRejected, inspect_public_key, refuse_example_key
from portal.sealing import Sealer, SealingError
from portal.storage import FileBlobStore

__all__ = ["RECORD_TYPES", "BundleRejected", "ImportReport", "LineError", "import_bundle"]

AUDIT_ACTION = "import.bundle"
#: Types the report always lists; the others (sealed identifiers) only when the bundle has some.
LISTED_TYPES = tuple(name for name in RECORD_TYPES if name != identifiers.RECORD_TYPE)


@dataclass
class ImportReport:
    """What an accepted bundle did: records created and unchanged per type."""

    bundle: str
    bundle_sha256: str
    records: int = 0
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LISTED_TYPES, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LISTED_TYPES, 0))
    new_blobs: int = 0

    @property
    def changed(self) -> bool:
        return any(self.created.values())

    def summary(self) -> str:
        rows = [
            f"  {name:<15} {self.created.get(name, 0):>7} created"
            f" {self.unchanged.get(name, 0):>7} unchanged"
            for name in RECORD_TYPES
            if self.created.get(name) or self.unchanged.get(name)
        ]
        verdict = "imported" if self.changed else "nothing to do, everything already present"
        return "\n".join(
            [
                f"{self.bundle} (sha256 {self.bundle_sha256}): {self.records} records, {verdict}",
                *rows,
                f"  {self.new_blobs} new file(s) stored",
            ]
        )


def import_bundle(
    session: Session,
    blobs: FileBlobStore,
    bundle: Path | Iterable[str],
    files_dir: Path | None,
    *,
    actor: str,
    demo_or_test: bool,
    now: datetime | None = None,
    bundle_name: str | None = None,
    sealer: Sealer | None = None,
) -> ImportReport:
    """Check and import ``bundle`` (a path or lines of JSON); see the module docstring.

    ``demo_or_test`` allows the fictional example OpenPGP keys. ``now`` (default: the current
    time) stamps created rows and judges key expiry. ``sealer`` seals protected identifiers
    (a bundle with some is rejected without it). Raises :class:`BundleRejected`.
    """
    moment = utcnow() if now is None else now
    source = read_bundle(bundle, name=bundle_name)
    run = _Run(
        session, blobs, files_dir, demo_or_test=demo_or_test, now=moment, sealer=sealer,
        actor=actor,
    )  # fmt: skip
    run.errors += [LineError(line.number, line.problem) for line in source.lines if line.problem]
    for line in source.lines:
        if line.text is None:
            continue
        record = run.parse(line)
        if record is not None:
            run.records.append(record)
    run.check()
    run.collect()
    if run.errors:
        run.discard_new_blobs()
        raise BundleRejected(run.errors, bundle=source.name)
    report = ImportReport(bundle=source.name, bundle_sha256=source.sha256)
    try:
        run.create(report)
    except SQLAlchemyError as exc:
        run.discard_new_blobs()
        reason = f"the database refused the bundle ({exc.__class__.__name__}); nothing was stored"
        raise BundleRejected([LineError(0, reason)], bundle=source.name) from exc
    except (IdentifierRefused, SealingError) as exc:  # messages name codes, never values
        run.discard_new_blobs()
        reason = f"a protected identifier could not be added ({exc}); nothing was stored"
        raise BundleRejected([LineError(0, reason)], bundle=source.name) from exc
    report.new_blobs = len(run.new_blobs)
    if report.changed:
        details: dict[str, Any] = {
            "bundle_sha256": source.sha256,
            "records": report.records,
            "created": {name: count for name, count in report.created.items() if count},
            "unchanged": {name: count for name, count in report.unchanged.items() if count},
            "new_blobs": report.new_blobs,
        }
        audit.record(
            session, actor, AUDIT_ACTION, target=_audit_target(source.name), details=details
        )
        session.flush()
    return report


class _Run:
    """The state of one import: records parsed so far, problems, blobs written."""

    def __init__(
        self,
        session: Session,
        blobs: FileBlobStore,
        files_dir: Path | None,
        *,
        demo_or_test: bool,
        now: datetime,
        sealer: Sealer | None,
        actor: str,
    ) -> None:
        self.session = session
        self.blobs = blobs
        self.demo_or_test = demo_or_test
        self.now = now
        self.sealer = sealer
        self.actor = actor
        self.catalog = Catalog(session)
        self.records: list[Record] = []
        self.errors: list[LineError] = []
        self.new_blobs: list[str] = []
        self.root: Path | None = None
        self.root_problem: str | None = None
        if files_dir is None:
            self.root_problem = "no --files directory was given"
        elif not files_dir.is_dir():
            self.root_problem = f"the --files directory {str(files_dir)!r} is not a directory"
        else:
            self.root = files_dir.resolve(strict=True)

    # ------------------------------------------------------------------ parsing

    def parse(self, line: SourceLine) -> Record | None:
        assert line.text is not None  # noqa: S101 - lines with problems have no text
        try:
            obj = json.loads(
                line.text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant
            )
        except json.JSONDecodeError as exc:
            reason = f"not valid JSON: {exc.msg} at character {exc.pos + 1}"
            self.errors.append(LineError(line.number, reason))
            return None
        except (ValueError, RecursionError) as exc:
            self.errors.append(LineError(line.number, f"not valid JSON: {exc}"))
            return None
        if not isinstance(obj, dict):
            self.errors.append(LineError(line.number, "not a JSON object"))
            return None
        type_name = obj.get("type")
        if type_name is None:
            self.errors.append(LineError(line.number, "missing required field 'type'"))
            return None
        if type_name not in RECORD_TYPES:
            self.errors.append(LineError(line.number, _unknown_type(type_name)))
            return None
        record_type = RECORD_TYPES[type_name]
        values, problems = check_fields(obj, record_type.fields, ignore=("type",))
        problems += record_type.check(values)
        key = identity(type_name, values)
        what = label(key) if key else type_name.replace("_", " ")
        for problem in problems:
            self.errors.append(LineError(line.number, f"{what}: {problem}"))
        return Record(line.number, type_name, values, key, fields_ok=not problems)

    # ------------------------------------------------------------------ checking

    def check(self) -> None:
        """Duplicates, references, existing rows and consistency across records."""
        defined: dict[tuple[str, ...], Record] = {}
        for record in self.records:
            if record.key is None:
                continue
            first = defined.get(record.key)
            if first is not None:
                record.problems.append(f"duplicate: already on line {first.line}")
            else:
                defined[record.key] = record
        self._prefetch()
        for record in self.records:
            self._resolve(record, defined)
            if record.type == "recipient_key" and record.fields_ok:
                self._check_key(record)
            if record.ok:
                self._compare(record)
            if record.ok:
                self._cross_check(record)

    def _prefetch(self) -> None:
        wanted: dict[str, set[str]] = {name: set() for name in CODE_TYPES}
        for record in self.records:
            if record.type in wanted and "code" in record.values:
                wanted[record.type].add(record.values["code"])
            for name, spec in RECORD_TYPES[record.type].fields.items():
                if spec.ref is not None and name in record.values:
                    value = record.values[name]
                    wanted[spec.ref].update(value if isinstance(value, list) else [value])
        for type_name, codes in wanted.items():
            self.catalog.prefetch(type_name, codes)

    def _resolve(self, record: Record, defined: dict[tuple[str, ...], Record]) -> None:
        for name, spec in RECORD_TYPES[record.type].fields.items():
            if spec.ref is None or name not in record.values:
                continue
            value = record.values[name]
            targets = [self._target(record, spec.ref, code, defined) for code in _as_list(value)]
            found = [target for target in targets if target is not None]
            if len(found) == len(targets):
                record.refs[name] = found if isinstance(value, list) else found[0]

    def _target(
        self, record: Record, type_name: str, code: str, defined: dict[tuple[str, ...], Record]
    ) -> rec.Target | None:
        in_bundle = defined.get((type_name, code))
        if in_bundle is not None and in_bundle.line < record.line:
            return in_bundle
        stored = self.catalog.get(type_name, code)
        if stored is not None:
            return stored  # type: ignore[no-any-return]
        if in_bundle is not None:
            record.problems.append(
                f"refers to {type_name} {code}, which comes only later (line {in_bundle.line});"
                " records must come after those they refer to"
            )
        else:
            record.problems.append(f"unknown {type_name} {code}: not in the bundle or the portal")
        return None

    def _compare(self, record: Record) -> None:
        if record.type == identifiers.RECORD_TYPE:
            row = self._existing_identifier(record)
        else:
            if rec.needs_sealer(record) and self.sealer is None:
                record.problems.append(
                    "the terms of term marks are sealed with the portal's key, and this import "
                    "was given none"
                )
                return
            row = rec.find_existing(self.session, self.catalog, record)
        if row is None:
            return
        try:
            changed = rec.differences(self.session, record, row, self.sealer)
        except SealingError as exc:  # names the mark's purpose and the key, never the term
            record.problems.append(str(exc))
            return
        if changed:
            record.problems.append(f"already exists with different {', '.join(changed)}")
        else:
            record.existing = row

    def _existing_identifier(self, record: Record) -> Any:
        if self.sealer is None:
            record.problems.append(
                "protected identifiers are sealed with the portal's key, and this import was "
                "given none"
            )
            return None
        try:
            return identifiers.existing_identifier(self.session, self.sealer, record)
        except SealingError as exc:  # names the key file or a code, never a value
            record.problems.append(str(exc))
            return None

    def _cross_check(self, record: Record) -> None:
        """Checks against the person or item a record refers to (skipped when that is itself
        bad)."""
        values = record.values
        person = record.refs.get("person")
        if record.type == identifiers.RECORD_TYPE and person is not None:
            problem = identifiers.at_risk_problem(_one(person))
            if problem is not None:
                record.problems.append(problem)
        item = record.refs.get("item")
        if item is None or (isinstance(item, Record) and not item.ok):
            return
        if record.type == "consent":
            provider, _media, _persons = rec.item_facts(self.session, _one(item))
            if provider != values["provider"]:
                record.problems.append(
                    f"item {values['item']} belongs to provider {provider},"
                    f" not {values['provider']}"
                )
        if record.type == "redaction_mark":
            _provider, media, persons = rec.item_facts(self.session, _one(item))
            kind = values["kind"]
            if kind == "pdf_box" and media != "application/pdf":
                record.problems.append(f"a pdf_box mark needs a PDF item, not {media}")
            if kind == "image_box" and not media.startswith("image/"):
                record.problems.append(f"an image_box mark needs an image item, not {media}")
            person = values.get("person")
            if person is not None and person not in persons:
                record.problems.append(
                    f"person {person} is not among the persons of item {values['item']}"
                )

    def _check_key(self, record: Record) -> None:
        values = record.values
        try:
            real = self._file(values["key_file"])
            armored = read_key_file(real, values["key_file"])
            info = inspect_public_key(armored, now=self.now)
            refuse_example_key(info.fingerprint, demo_or_test=self.demo_or_test)
        except (FileProblem, KeyRejected) as exc:
            reason = exc.reason if isinstance(exc, KeyRejected) else str(exc)
            record.problems.append(f"key_file: {reason}")
            return
        if info.fingerprint != values["fingerprint"]:
            record.problems.append(
                f"the key in {values['key_file']!r} has fingerprint {info.fingerprint},"
                f" not {values['fingerprint']}"
            )
            return
        record.key_info = info
        record.armored = armored.strip() + "\n"

    def _file(self, name: str) -> Path:
        if self.root is None:
            raise FileProblem(self.root_problem or "no --files directory")
        return resolve(self.root, name)

    # ------------------------------------------------------------------ files

    def collect(self) -> None:
        """Stream item files (checking digests), then turn record problems into errors.

        Files go into the blob store only while the bundle can still be accepted; once any
        problem is known they are only hashed.
        """
        rejected = bool(self.errors) or any(not record.ok for record in self.records)
        for record in self.records:
            values = record.values
            if record.type != "item" or not {"file", "sha256"} <= values.keys():
                continue
            name = values["file"]
            try:
                stored = store_file(
                    self._file(name),
                    name,
                    sha256=values["sha256"],
                    size=values.get("size"),
                    blobs=None if rejected else self.blobs,
                )
            except FileProblem as exc:
                record.problems.append(str(exc))
                rejected = True
                continue
            except OSError as exc:
                record.problems.append(f"file {name!r} could not be read: {exc.strerror}")
                rejected = True
                continue
            record.size = stored.size
            if stored.new_blob:
                self.new_blobs.append(stored.sha256)
        for record in self.records:
            what = label(record.key) if record.key else record.type.replace("_", " ")
            self.errors += [LineError(record.line, f"{what}: {p}") for p in record.problems]

    def discard_new_blobs(self) -> None:
        for key in self.new_blobs:
            discard_blob(self.blobs, key)
        self.new_blobs.clear()

    # ------------------------------------------------------------------ creating

    def create(self, report: ImportReport) -> None:
        report.records = len(self.records)
        new = [record for record in self.records if record.existing is None]
        for record in self.records:
            counts = report.unchanged if record.existing is not None else report.created
            counts[record.type] = counts.get(record.type, 0) + 1
        sealed = [record for record in new if record.type == identifiers.RECORD_TYPE]
        for level in range(rec.LEVELS):
            for record in new:
                if record.type != identifiers.RECORD_TYPE:
                    rec.build(self.session, record, level, self.now, self.sealer)
            self.session.flush()
            if level == 0 and sealed:  # their persons are stored now
                assert self.sealer is not None  # noqa: S101 - refused in check() otherwise
                identifiers.build_identifiers(
                    self.session, self.sealer, sealed, actor=self.actor, now=self.now
                )
        self._marks_await_confirmation(new)

    def _marks_await_confirmation(self, new: list[Record]) -> None:
        """Tell the legal officers that the items given new marks wait for a confirmation
        (after every level: the link names a request the bundle may add)."""
        item_ids = dict.fromkeys(r.created.item_id for r in new if r.type == "redaction_mark")
        for item_id in item_ids:
            item = self.session.get_one(Item, item_id)
            notifications.marks_await_confirmation(self.session, item, None)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            raise ValueError(f"field {name!r} appears twice")
        obj[name] = value
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unknown_type(type_name: Any) -> str:
    if type_name in ("user", "users", "user_account", "invitation"):
        return "users are not imported: invite them (portal invite) so they set their own password"
    known = ", ".join(RECORD_TYPES)
    return f"unknown type {type_name!r:.40}; known types: {known}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _one(target: rec.Target | list[rec.Target]) -> rec.Target:
    if isinstance(target, list):
        raise TypeError("expected a single reference")
    return target


def _audit_target(name: str) -> str:
    """The bundle's name as an audit target: printable, at most 200 characters."""
    printable = "".join(char if char.isprintable() else "?" for char in name).strip()
    return (printable or "bundle")[:200]
