"""Genuine packages for tests, made the way the portal makes them, from plain files.

:func:`build_package` writes ``PKG-….tar.gpg`` and its detached signature ``….sig`` with the
portal's own pieces: the manifest (``portal.packages.assembly.manifest.build_manifest``), the BagIt
tar writer (``portal.packages.assembly.bag.write_bag_tar``) streamed into ``gpg --sign --encrypt``
(``portal.packages.assembly.gpgstream.sign_and_encrypt``), real gpg and the keys in
``keys_example/``. Knobs let a test make a package that is wrong in exactly one way (signed by
another key, encrypted to another authority, a manifest that fails its schema or its signature...).

:func:`repack` decrypts a package, lets a test edit the tar's members (any ``TarInfo``, so
hostile archives with ``..``, links or devices are possible), and signs and encrypts the result
again, so that only the check under test can notice.

:func:`keyring` is a recipient's keyring: a short directory under /tmp holding the given
secret and public example keys; its gpg-agent is ended when the block exits.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from portal.canonical import canonical_json, sha256_hex
from portal.packages.assembly.bag import BagEntry, write_bag_tar
from portal.packages.assembly.decision_record import (
    DecisionFacts,
    ItemOutcome,
    RuleOutcome,
)
from portal.packages.assembly.evidence import Evidence, write_records
from portal.packages.assembly.facts import (
    TIME_PROVIDER_DECLARED,
    AppliedMark,
    ConsentFacts,
    CustodyEvent,
    DocumentEntry,
    ItemEntry,
    PackageFacts,
    RedactionSummary,
)
from portal.packages.assembly.gpgstream import (
    Recipient,
    Signer,
    clearsign,
    detached_signature,
    load_signer,
    sign_and_encrypt,
)
from portal.packages.assembly.manifest import (
    MANIFEST_PATH,
    SIGNATURE_PATH,
    build_manifest,
    manifest_bytes,
)
from portal.packages.release_statement import SUFFIX, statement_text
from portal.registry.openpgp import KEYRING_DIR

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"
FINGERPRINTS: dict[str, str] = json.loads((KEYS / "fingerprints.json").read_text("utf-8"))
SENDER = "mechanism-signing"
SENDER_FPR = FINGERPRINTS[SENDER]
AUTHORITY = "NWU-NL"
CODE = "PKG-2026-0001"
WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

Members = list[tuple[tarfile.TarInfo, bytes]]
#: The sample decision's policy files (name, SHA-256) and their revision.
POLICY_FILES = (("policy.toml", "cd" * 32), ("rules.toml", "ef" * 32))
POLICY_REVISION = sha256_hex(canonical_json(dict(POLICY_FILES)))


# --------------------------------------------------------------------------- keys


@functools.cache
def signer(name: str = SENDER) -> Signer:
    """The example key ``name`` as a signer (with its passphrase file when it has one)."""
    passphrase = KEYS / f"{name}.passphrase"
    return load_signer(KEYS / f"{name}.sec.asc", passphrase if passphrase.exists() else None)


def recipient(name: str) -> Recipient:
    return Recipient(FINGERPRINTS[name], (KEYS / f"{name}.pub.asc").read_text("ascii"))


def gpg_run(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run the system gpg on the keyring ``home`` (batch mode, no tty)."""
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        capture_output=True,
        check=check,
        timeout=120,
    )


@contextmanager
def keyring(
    secret: Sequence[str] = (AUTHORITY,),
    public: Sequence[str] = (SENDER,),
    files: Sequence[Path] = (),
    parent: Path | None = None,
) -> Iterator[Path]:
    """A recipient's GNUPGHOME: the example secret keys ``secret``, the example public keys
    ``public`` and the key files ``files``; made under ``parent`` (default /tmp; a short path:
    gpg-agent's socket lives there)."""
    home = Path(tempfile.mkdtemp(prefix="pg-", dir=parent or KEYRING_DIR))
    try:
        home.chmod(0o700)
        paths = [KEYS / f"{name}.sec.asc" for name in secret]
        paths += [KEYS / f"{name}.pub.asc" for name in public]
        for path in [*paths, *files]:
            gpg_run(home, "--import", str(path))
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
        shutil.rmtree(home, ignore_errors=True)


# --------------------------------------------------------------------------- content


def sample_pdf(title: str, lines: Sequence[str]) -> bytes:
    """A small real PDF (ReportLab) with a title and some lines of text."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    pdf.setTitle(title)
    pdf.setFont("Helvetica", 12)
    y = 800
    for line in (title, *lines):
        pdf.drawString(72, y, line)
        y -= 18
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@dataclass(frozen=True)
class SampleItem:
    code: str
    title: str
    path: str
    data: bytes
    media_type: str
    rendition: str = "redacted"
    redactions: tuple[RedactionSummary, ...] = ()


def sample_items() -> list[SampleItem]:
    return [
        SampleItem(
            code="ITM-000123",
            title="Witness statement W-17 (redacted)",
            path="data/items/ITM-000123/statement.pdf",
            data=sample_pdf("Statement W-17", ["[REDACTED: witness identity]", "Page 1 of 1"]),
            media_type="application/pdf",
            redactions=(RedactionSummary("term", "protection of a witness at risk", 3),),
        ),
        SampleItem(
            code="ITM-000124",
            title="Satellite image analysis, 12 March",
            path="data/items/ITM-000124/analysis.txt",
            data=b"Analysis of imagery: three structures destroyed between 10 and 12 March.\n",
            media_type="text/plain",
            rendition="as_is",
        ),
    ]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_facts(code: str, recipients: Sequence[str], signer_fpr: str) -> PackageFacts:
    return PackageFacts(
        code=code,
        created_at=WHEN,
        rfa_reference="RFA-2026-0007",
        authority_reference="NWU/2026/041",
        authority_code="NWU",
        authority_name="Northland War Crimes Unit",
        authority_country="NL",
        decision_id="DEC-2026-0031",
        policy_id="default",
        policy_revision=POLICY_REVISION,
        engine_version="1",
        decided_at=WHEN,
        signer_fingerprint=signer_fpr,
        recipient_fingerprints=tuple(FINGERPRINTS[name] for name in recipients),
        assembled_by="A. Legal Officer",
    )


def _item_entry(item: SampleItem) -> ItemEntry:
    return ItemEntry(
        code=item.code,
        title=item.title,
        kind="document",
        provider="Northland Documentation Centre",
        source_sha256=_sha256(b"source of " + item.data),
        source_media_type=item.media_type,
        rendition=item.rendition,
        path=item.path,
        sha256=_sha256(item.data),
        size=len(item.data),
        media_type=item.media_type,
        redactions=item.redactions,
        consent=ConsentFacts("CNS-000045", "item", WHEN, None, "Not to be shared onward."),
        custody=(
            CustodyEvent(
                WHEN.replace(hour=0, minute=0),
                "collected",
                "Field team",
                "",
                TIME_PROVIDER_DECLARED,
            ),
            CustodyEvent(WHEN, "registered", "Registry clerk"),
        ),
        marks=tuple(
            AppliedMark(
                f"MRK-{n}",
                summary.kind,
                summary.reason,
                summary.count,
                None,
                None,
                ((1, 3),),
                "A. Legal Officer",
                "B. Second Officer",
            )
            for n, summary in enumerate(item.redactions, start=1)
        ),
        date=WHEN.date(),
        place="Northtown",
        language="en",
    )


def sample_evidence(code: str, items: Sequence[SampleItem]) -> Evidence:
    """The decision record's facts of the sample package (its items shared), as the
    assembler reads them from a decision."""
    rule = RuleOutcome("consent", "pass", "share", "ToR para. 12 (consent)", "consent_given")
    return Evidence(
        decision=DecisionFacts(
            package_code=code,
            decision_id="DEC-2026-0031",
            decided_at=WHEN,
            outcome="eligible",
            engine_version="1",
            deciding_officers=("A. Legal Officer",),
            policy_id="default",
            policy_revision=POLICY_REVISION,
            policy_files=POLICY_FILES,
            snapshot_sha256="12" * 32,
            results_sha256="34" * 32,
            rfa_reference="RFA-2026-0007",
            authority_code="NWU",
            request_rules=(RuleOutcome("fair-trial", "pass", "share", "ToR para. 3"),),
            items=tuple(
                ItemOutcome(
                    item.code,
                    "share_redacted" if item.rendition == "redacted" else "share",
                    (rule,),
                    tuple(f"MRK-{n}" for n in range(1, len(item.redactions) + 1)),
                )
                for item in items
            ),
            not_in_package=(("withhold", 1),),
        ),
        people={},
        items={},
    )


# --------------------------------------------------------------------------- sealing


class Sealer:
    """Signs and encrypts the way the portal does: ``portal.packages.assembly.gpgstream`` (a fresh
    temporary keyring for every operation, as in production)."""

    def fingerprint(self, name: str) -> str:
        return signer(name).fingerprint

    def seal(
        self,
        write: Callable[[BinaryIO], object],
        signed_by: str,
        encrypted_to: Sequence[str],
        out: Path,
    ) -> None:
        sign_and_encrypt(write, [recipient(n) for n in encrypted_to], signer(signed_by), out)

    def detached(self, path: Path, signed_by: str) -> bytes:
        return detached_signature(path, signer(signed_by))

    def clearsign(self, text: str, signed_by: str) -> str:
        return clearsign(text, signer(signed_by))

    def decrypt(self, package: Path, out: Path, key: str) -> None:
        with keyring(secret=(key,), public=()) as home:
            gpg_run(home, "--decrypt", "--output", str(out), str(package), check=False)


class FastSealer(Sealer):
    """The same operations with the system gpg in ONE keyring holding every example key, so
    a test module that makes many packages starts one gpg-agent, not dozens. Use as a
    context manager; the agent is ended and the keyring removed on exit."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
        self.home.chmod(0o700)
        self.fingerprints = dict(FINGERPRINTS)
        self.faked_time: str | None = None  # e.g. "20200601T000000": sign in the past
        for name in FINGERPRINTS:
            gpg_run(self.home, "--import", str(KEYS / f"{name}.sec.asc"))

    def add_key(self, name: str, secret_key_file: Path, fingerprint: str) -> None:
        """Make another (unprotected) secret key usable as ``signed_by=name``."""
        gpg_run(self.home, "--import", str(secret_key_file))
        self.fingerprints[name] = fingerprint

    def __enter__(self) -> FastSealer:
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"], check=False)
        shutil.rmtree(self.home, ignore_errors=True)

    def fingerprint(self, name: str) -> str:
        return self.fingerprints[name]

    def _signing(self, name: str) -> list[str]:
        passphrase = KEYS / f"{name}.passphrase"
        args = ["--pinentry-mode", "loopback", "--local-user", self.fingerprints[name]]
        if passphrase.exists():
            args += ["--passphrase-file", str(passphrase)]
        if self.faked_time is not None:
            args += ["--faked-system-time", self.faked_time, "--ignore-time-conflict"]
            args += ["--ignore-valid-from"]
        return args

    def seal(
        self,
        write: Callable[[BinaryIO], object],
        signed_by: str,
        encrypted_to: Sequence[str],
        out: Path,
    ) -> None:
        plain = io.BytesIO()
        write(plain)
        recipients = [arg for name in encrypted_to for arg in ("-r", self.fingerprints[name])]
        proc = subprocess.run(
            [
                "gpg",
                "--homedir",
                str(self.home),
                "--batch",
                "--no-tty",
                "--yes",
                *self._signing(signed_by),
                "--trust-model",
                "always",
                "--compress-algo",
                "none",
                *recipients,
                "--sign",
                "--encrypt",
                "--output",
                str(out),
            ],
            input=plain.getvalue(),
            capture_output=True,
            check=True,
            timeout=120,
        )
        assert proc.returncode == 0

    def detached(self, path: Path, signed_by: str) -> bytes:
        proc = gpg_run(
            self.home,
            *self._signing(signed_by),
            "--armor",
            "--detach-sign",
            "--output",
            "-",
            str(path),
        )
        return proc.stdout

    def clearsign(self, text: str, signed_by: str) -> str:
        proc = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--no-tty",
             *self._signing(signed_by), "--clearsign", "--output", "-"],
            input=text.encode("utf-8"), capture_output=True, check=True, timeout=120,
        )  # fmt: skip
        return proc.stdout.decode("utf-8")

    def decrypt(self, package: Path, out: Path, key: str) -> None:
        gpg_run(self.home, "--decrypt", "--output", str(out), str(package), check=False)


# --------------------------------------------------------------------------- packages


@dataclass(frozen=True)
class BuiltPackage:
    path: Path  # PKG-….tar.gpg
    signature: Path  # PKG-….tar.gpg.sig (detached, armored)
    code: str
    manifest: dict[str, Any] = field(compare=False)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def build_package(
    dest: Path,
    *,
    sealer: Sealer | None = None,
    code: str = CODE,
    signed_by: str = SENDER,
    encrypted_to: Sequence[str] = (AUTHORITY,),
    manifest_signed_by: str | None = None,
    edit_manifest: Callable[[dict[str, Any]], None] | None = None,
    after_manifest_signed: Callable[[bytes], bytes] | None = None,
    extra_payload: dict[str, bytes] | None = None,
    time_stamp: Callable[[bytes], dict[str, bytes]] | None = None,
    evidence: Evidence | None = None,
) -> BuiltPackage:
    """Make ``dest/<code>.tar.gpg`` and its ``.sig``: a genuine package unless a knob says not.

    ``sealer`` signs and encrypts (default: the portal's gpgstream). ``edit_manifest`` changes
    the manifest dict before it is written and signed; ``after_manifest_signed`` changes its
    bytes after signing; ``extra_payload`` adds payload files the manifest does not name;
    ``time_stamp`` is given the manifest signature's bytes and returns the time-stamp files to
    add (bag path -> bytes; see tests/support/tsa.py).
    """
    sealer = sealer or Sealer()
    stage = dest / f"{code}-stage"
    items = sample_items()
    entries = [BagEntry(item.path, _write(stage / item.path, item.data)) for item in items]
    letter = sample_pdf("Transmittal letter", [f"Package {code}"])
    letter_path = "data/transmittal-letter.pdf"
    entries.append(BagEntry(letter_path, _write(stage / letter_path, letter)))
    pdf = "application/pdf"
    documents = [
        DocumentEntry(letter_path, "Transmittal letter", _sha256(letter), len(letter), pdf)
    ]
    entries_ = [_item_entry(item) for item in items]
    records, record_files = write_records(
        stage, evidence or sample_evidence(code, items), entries_,
        lambda path: sealer.detached(path, signed_by),
    )  # fmt: skip
    entries += [BagEntry(path, file) for path, file in record_files]
    manifest = build_manifest(
        package_facts(code, encrypted_to, sealer.fingerprint(signed_by)),
        entries_,
        documents,
        records,
    )
    if edit_manifest is not None:
        edit_manifest(manifest)
    manifest_file = _write(stage / MANIFEST_PATH, manifest_bytes(manifest))
    asc = sealer.detached(manifest_file, manifest_signed_by or signed_by)
    if after_manifest_signed is not None:
        manifest_file.write_bytes(after_manifest_signed(manifest_file.read_bytes()))
    entries.append(BagEntry(MANIFEST_PATH, manifest_file))
    entries.append(BagEntry(SIGNATURE_PATH, _write(stage / SIGNATURE_PATH, asc)))
    for path, data in (time_stamp(asc) if time_stamp is not None else {}).items():
        entries.append(BagEntry(path, _write(stage / path, data)))
    for path, data in (extra_payload or {}).items():
        entries.append(BagEntry(path, _write(stage / path, data)))

    package = dest / f"{code}.tar.gpg"
    bag_info = {"Bagging-Date": WHEN.date().isoformat(), "Source-Organization": "the Mechanism"}
    sealer.seal(
        lambda out: write_bag_tar(out, code, entries, bag_info), signed_by, encrypted_to, package
    )
    sig = _write(dest / f"{code}.tar.gpg.sig", sealer.detached(package, signed_by))
    shutil.rmtree(stage)
    return BuiltPackage(package, sig, code, manifest)


def read_members(tar_path: Path) -> Members:
    with tarfile.open(tar_path, "r:") as tar:
        members: Members = []
        for info in tar:
            stream = tar.extractfile(info) if info.isreg() else None
            members.append((info, stream.read() if stream is not None else b""))
        return members


def member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **attrs: Any
) -> tuple[tarfile.TarInfo, bytes]:
    """A tar member (any type; e.g. ``kind=tarfile.SYMTYPE, linkname="/etc/passwd"``)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = int(WHEN.timestamp())
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def write_members(out: BinaryIO, members: Members) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def repack(
    built: BuiltPackage,
    dest: Path,
    edit: Callable[[Members], Members],
    *,
    sealer: Sealer | None = None,
    signed_by: str = SENDER,
    encrypted_to: Sequence[str] = (AUTHORITY,),
    decrypt_with: str = AUTHORITY,
) -> BuiltPackage:
    """Decrypt ``built`` (with ``decrypt_with``'s secret key), edit its tar members, sign and
    encrypt the result again into ``dest``."""
    sealer = sealer or Sealer()
    dest.mkdir(parents=True, exist_ok=True)
    plain = dest / f"{built.code}.tar"
    sealer.decrypt(built.path, plain, decrypt_with)
    if not plain.is_file():
        raise RuntimeError(f"could not decrypt {built.path} with the key of {decrypt_with}")
    members = edit(read_members(plain))
    plain.unlink()
    package = dest / built.path.name
    sealer.seal(lambda out: write_members(out, members), signed_by, encrypted_to, package)
    sig = _write(dest / f"{package.name}.sig", sealer.detached(package, signed_by))
    return BuiltPackage(package, sig, built.code, built.manifest)


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Flip one bit of the file at ``path`` (in the middle unless ``offset`` is given)."""
    data = bytearray(path.read_bytes())
    where = len(data) // 2 if offset is None else offset
    data[where] ^= 0x01
    path.write_bytes(bytes(data))


def release_statement(
    built: BuiltPackage,
    *,
    sealer: Sealer | None = None,
    signed_by: str = SENDER,
    code: str | None = None,
    file_sha256: str | None = None,
) -> Path:
    """``<package>.release.asc`` beside ``built``: the portal's statement text for it (or,
    with ``code`` / ``file_sha256``, for another package), clearsigned by ``signed_by``."""
    sealer = sealer or Sealer()
    text = statement_text(
        package_code=code or built.code,
        package_sha256=file_sha256 or _sha256(built.path.read_bytes()),
        package_size=built.path.stat().st_size,
        authority="Northland War Crimes Unit (NWU, NL)",
        rfa_reference="RFA-2026-0007",
        decision_id="DEC-2026-0031",
        assembled_by="A. Legal Officer",
        assembled_at=WHEN,
        released_by="B. Second Officer",
        released_at=WHEN.replace(hour=11),
        expires_at=WHEN.replace(year=2027),
        signer_fingerprint=sealer.fingerprint(signed_by),
        issued_at=WHEN.replace(hour=11, minute=1),
    )
    path = built.path.with_name(built.path.name + SUFFIX)
    path.write_text(sealer.clearsign(text, signed_by), encoding="utf-8")
    return path


def replace_in_bag(members: Members, changes: dict[str, bytes]) -> Members:
    """The tar members with the bag files ``changes`` (paths relative to the bag, e.g.
    ``data/item-index.csv``) given new bytes, and the bag's manifests and Payload-Oxum made
    to agree, so that only a check beyond BagIt can notice."""
    files = {
        info.name.split("/", 1)[1]: (info, data)
        for info, data in members
        if "/" in info.name and info.isreg()
    }
    for path, data in changes.items():
        info, _ = files[path]
        info.size = len(data)
        files[path] = (info, data)
    payload = {path: data for path, (_, data) in files.items() if path.startswith("data/")}
    manifest = "".join(f"{_sha256(data)}  {path}\n" for path, data in sorted(payload.items()))
    info_text = files["bag-info.txt"][1].decode("utf-8")
    oxum = f"{sum(len(d) for d in payload.values())}.{len(payload)}"
    info_text = "\n".join(
        f"Payload-Oxum: {oxum}" if line.startswith("Payload-Oxum:") else line
        for line in info_text.split("\n")
    )
    tags = {"bag-info.txt": info_text.encode("utf-8"), "manifest-sha256.txt": manifest.encode()}
    for path, data in tags.items():
        info, _ = files[path]
        info.size = len(data)
        files[path] = (info, data)
    tag_names = [p for p in files if not p.startswith("data/") and p != "tagmanifest-sha256.txt"]
    tagmanifest = "".join(f"{_sha256(files[p][1])}  {p}\n" for p in sorted(tag_names))
    info, _ = files["tagmanifest-sha256.txt"]
    info.size = len(tagmanifest)
    files["tagmanifest-sha256.txt"] = (info, tagmanifest.encode())
    return [
        files[info.name.split("/", 1)[1]] if info.isreg() and "/" in info.name else (info, data)
        for info, data in members
    ]
