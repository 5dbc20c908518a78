"""The world packages are made from, for the package, job, assembly and concurrency tests.

:func:`build_world` makes a real decision with :func:`portal.eligibility.decisions.run_check`:
an authority with current assessments and a verified example key, a provider, four items with
real blobs (shared, shared redacted, an unredactable video cleared as-is, a declined one) and
an approved request. :func:`make_world` adds what the assembly pipeline needs to show its
work: a PDF with a term and a page box, a JPEG with boxes and a name in its EXIF, on request a
cleared video whose bytes name a protected person or a damaged PDF, and a fresh decision.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.config import Settings
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.eligibility.policy import load_policy
from portal.packages.lifecycle import create_package
from portal.packages.models import Package
from portal.registry.models import Authority, Item, Provider, RecipientKey
from portal.rfa.models import Rfa
from portal.sealing import Sealer
from portal.state import PortalState
from portal.storage import FileBlobStore
from tests.support import factories as make
from tests.support.auth import Credentials, make_user
from tests.support.packages import FINGERPRINTS, KEYS, REPO

AUTHORITY = "NWU-NL"
POLICIES = REPO / "policies"
REDACTABLE = load_policy(POLICIES).redactable_media_types
SECRET_TERM = "Amira Solberg"
PDF_TERM = "Jonas Halvorsen"
EXIF_TERM = "Lidia Marsh"


@dataclass
class World:
    authority_id: int
    provider_id: int
    rfa_id: int
    rfa_code: str
    items: dict[str, int]  # "plain" | "redact" | "video" | "declined" -> item id
    key_id: int
    officer_id: int  # makes packages
    second_id: int  # releases them
    officer: Credentials
    second: Credentials
    sealer: Sealer  # the portal's: term marks are sealed with it


def blob_item(
    session: Session,
    blobs: FileBlobStore,
    provider: Provider,
    code: str,
    data: bytes,
    **fields: Any,
) -> Item:
    """An item of ``provider`` whose bytes ``data`` are in the blob store."""
    info = blobs.put_bytes(data)
    return make.item(session, provider, code, size_bytes=info.size, sha256=info.sha256, **fields)


def build_world(
    session: Session,
    blobs: FileBlobStore,
    sealer: Sealer,
    *,
    verified_key: bool = True,
    rfa_status: str = "approved",
) -> World:
    """The world described in the module docstring, committed; the decision is made now."""
    now = utcnow()
    authority = make.authority(session, AUTHORITY, name="Northland War Crimes Unit", country="NL")
    provider = make.provider(session, "PRV-T", name="Provider Teal", public_name="Teal NGO")
    make.assessments(session, authority, now=now, age_days=30)
    officer = make_user(session, "legal_officer")
    second = make_user(session, "legal_officer")
    key = RecipientKey(
        authority_id=authority.id,
        fingerprint=FINGERPRINTS[AUTHORITY],
        armored=(KEYS / f"{AUTHORITY}.pub.asc").read_text("ascii"),
        algorithm="ed25519",
        uid="Northland War Crimes Unit (DEMO ONLY) <nwu@authority.example>",
    )
    if verified_key:
        key.verified_by = "Duty officer J. Maas"
        key.verified_at = now - timedelta(days=5)
        key.verification_method = "Phone call to a number known independently of the key"
        key.verified_by_id = officer.user_id
    session.add(key)
    contents = {
        "plain": ("text/plain", "s1.txt", b"The convoy left at dawn.\n"),
        "redact": ("text/plain", "s2.txt", f"{SECRET_TERM} saw the convoy.\n".encode()),
        "video": ("video/mp4", "clip.mp4", b"\x00\x00\x00\x18ftypmp42 fictional video bytes"),
        "declined": ("text/plain", "s4.txt", b"Declined statement.\n"),
    }
    items: dict[str, Item] = {}
    for n, (name, (media_type, filename, data)) in enumerate(contents.items(), start=1):
        items[name] = blob_item(
            session, blobs, provider, f"ITM-T{n:04d}", data,
            kind="video" if media_type == "video/mp4" else "witness_statement",
            title=f"Item {name}", media_type=media_type, original_filename=filename,
            cleared_as_is=name == "video",
        )  # fmt: skip
    make.redaction_mark(
        session,
        items["redact"],
        code="M-1",
        term=SECRET_TERM,
        reason="Identifies a witness",
        sealer=sealer,
    )
    earlier = now - timedelta(days=20)
    for name, subject in items.items():
        declined = name == "declined"
        make.consent(
            session, provider, authority, "decline" if declined else "grant", item=subject,
            at=earlier, reason="Not for this authority." if declined else None,
        )  # fmt: skip
    rfa = make.rfa(
        session, authority, "RFA-2026-0042", status=rfa_status, items=items.values(),
        their_reference="NWU-REF-7", submitted_at=now - timedelta(days=9),
    )  # fmt: skip
    officer_user = user(session, officer.user_id)
    run_check(
        session,
        rfa,
        load_policy(POLICIES),
        requested_by=officer_user,
        actor=audit.actor_label(officer_user),
        now=now - timedelta(minutes=1),
    )
    session.commit()
    return World(
        authority_id=authority.id,
        provider_id=provider.id,
        rfa_id=rfa.id,
        rfa_code=rfa.code,
        items={name: item.id for name, item in items.items()},
        key_id=key.id,
        officer_id=officer.user_id,
        second_id=second.user_id,
        officer=officer,
        second=second,
        sealer=sealer,
    )


def user(session: Session, user_id: int) -> User:
    return make.stored(session, User, user_id)


def lapse_witness_protection(session: Session, world: World) -> None:
    """The world's authority loses its witness-protection capacity (a newer finding)."""
    make.assessment(
        session, make.stored(session, Authority, world.authority_id), "witness_protection",
        code="WP-LAPSED", finding="not_satisfied", age_days=1,
    )  # fmt: skip


def recheck(session: Session, world: World) -> User:
    """Run the eligibility check again as the world's officer (who is returned)."""
    officer = user(session, world.officer_id)
    run_check(
        session, make.stored(session, Rfa, world.rfa_id), load_policy(POLICIES),
        requested_by=officer, actor=audit.actor_label(officer),
    )  # fmt: skip
    return officer


def assembled(session: Session, package: Package) -> Package:
    """Mark a package assembled as the assembler would (the release tests need one)."""
    package.status = "assembled"
    package.stage = "assembled"
    package.progress = 100
    package.file_sha256 = "a" * 64
    package.file_size = 1234
    package.signature_sha256 = "b" * 64
    package.signer_fingerprint = FINGERPRINTS["mechanism-signing"]
    package.leak_check = {"ok": True, "hits": []}
    session.commit()
    return package


# --------------------------------------------------------------------------- for assembly


def _pdf() -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(f"Interview with {PDF_TERM}")
    pdf.drawString(72, 760, f"Interview notes. The witness {PDF_TERM} described the convoy.")
    pdf.showPage()
    pdf.drawString(72, 760, "Second page: a sketch of the checkpoint.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _jpeg() -> bytes:
    image = Image.new("RGB", (200, 120), (200, 180, 40))
    exif = Image.Exif()
    exif[0x010E] = f"Photo of {EXIF_TERM} at the checkpoint"  # ImageDescription
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _add_item(
    session: Session,
    blobs: FileBlobStore,
    world: World,
    code: str,
    media_type: str,
    filename: str,
    data: bytes,
    marks: list[dict[str, Any]],
    *,
    cleared: bool = False,
) -> Item:
    """A granted candidate of the world's request, with ``marks``."""
    provider = make.stored(session, Provider, world.provider_id)
    authority = make.stored(session, Authority, world.authority_id)
    item = blob_item(
        session, blobs, provider, code, data,
        kind="video" if media_type.startswith("video/") else "document",
        title=f"Item {code}", media_type=media_type, original_filename=filename,
        cleared_as_is=cleared,
    )  # fmt: skip
    for mark in marks:
        make.redaction_mark(session, item, sealer=world.sealer, **mark)
    make.consent(session, provider, authority, item=item, at=utcnow() - timedelta(days=3))
    make.candidate(session, make.stored(session, Rfa, world.rfa_id), item)
    return item


def make_world(state: PortalState, *, leaky: bool = False, broken: bool = False) -> World:
    """build_world + a PDF with a term and a page box, a JPEG with a box and a name in its
    EXIF, (``leaky``) a cleared video whose bytes name a protected person, (``broken``) a
    damaged PDF shared as-is; a new decision."""
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        _add_item(
            session, state.blobs, world, "ITM-P0001", "application/pdf", "interview.pdf", _pdf(),
            [
                {"code": "M-P1", "kind": "term", "term": PDF_TERM, "reason": "Names a witness"},
                {"code": "M-P2", "kind": "pdf_box", "page": 2, "x0": 0.1, "y0": 0.05,
                 "x1": 0.6, "y1": 0.2, "reason": "Shows a protected location"},
            ],
        )  # fmt: skip
        _add_item(
            session, state.blobs, world, "ITM-J0001", "image/jpeg", "IMG 0001.JPG", _jpeg(),
            [
                {"code": "M-J1", "kind": "image_box", "x0": 0.2, "y0": 0.2, "x1": 0.5,
                 "y1": 0.6, "reason": "Shows a face"},
                {"code": "M-J2", "kind": "image_box", "x0": 0.0, "y0": 0.0, "x1": 0.1,
                 "y1": 0.1, "reason": "Shows a badge"},
            ],
        )  # fmt: skip
        if leaky:
            _add_item(
                session, state.blobs, world, "ITM-V0002", "video/mp4", "leak.mp4",
                b"ftypmp42 caption: " + SECRET_TERM.upper().replace(" ", "\n ").encode(),
                [], cleared=True,
            )  # fmt: skip
        if broken:
            _add_item(
                session, state.blobs, world, "ITM-P0009", "application/pdf", "broken.pdf",
                b"%PDF-1.7\n" + b"not really a PDF " * 40, [],
            )  # fmt: skip
        officer = user(session, world.officer_id)
        run_check(
            session,
            make.stored(session, Rfa, world.rfa_id),
            load_policy(POLICIES),
            requested_by=officer,
            actor=audit.actor_label(officer),
        )
        session.commit()
    return world


def signing_settings(settings: Settings) -> Settings:
    return settings.with_overrides(
        signing_key_file=KEYS / "mechanism-signing.sec.asc",
        signing_passphrase_file=KEYS / "mechanism-signing.passphrase",
    )


def new_package(state: PortalState, world: World) -> int:
    with state.sessions() as session:
        rfa = make.stored(session, Rfa, world.rfa_id)
        package = create_package(session, rfa, REDACTABLE, by=user(session, world.officer_id))
        session.commit()
        return package.id


def flip_a_bit(path: Path) -> None:
    """Damage a stored file the way bit rot does: one bit, in the middle."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o600)
    path.write_bytes(bytes(data))
