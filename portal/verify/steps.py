"""The verification as named steps, run in order by :func:`verify_package`, which stops at the
first failure.

A package is ``PKG-YYYY-NNNN.tar.gpg`` (a tar holding one BagIt bag, signed by the mechanism and
encrypted to the authority) with ``PKG-YYYY-NNNN.tar.gpg.sig`` beside it (a detached signature
over the ciphertext). The steps, each named as the report names it:

1. ``sender_key``: the pinned sender key is in the recipient's keyring, as a primary key, not
   revoked; with transition statements, ``signing_key_chain``: each is signed by both of its
   keys, and the keys the pinned one handed over to are accepted too (see
   :mod:`portal.verify.transition`);
2. ``detached_signature``: the detached signature is good and made by the pinned sender key. It
   is checked before anything is decrypted, so data of unknown origin never reaches gpg's
   decompressor or the disk; only with ``without_detached_signature`` (a recipient who has the
   package file alone) is it skipped, and the report says origin was checked after decryption;
3. ``decryption`` and ``inline_signature``: the package decrypts with the recipient's keyring,
   within a bound on what is written and without compressed data unless allowed (see
   :mod:`portal.verify.decryption`), and its inline signature (mandatory) is good and made by
   the pinned sender key;
4. ``archive_safety``: the tar is safe to extract (see :mod:`portal.verify.archive`);
5. ``bag``: the bag is valid (Library of Congress ``bagit``: complete, every checksum right);
6. ``manifest_schema`` and ``manifest_signature``: ``data/manifest.json`` matches its JSON
   Schema and ``data/manifest.json.asc`` is a good signature over it by the pinned sender key;
7. ``timestamp``: when the bag carries an RFC 3161 time-stamp over the manifest signature, it
   is over those bytes and its TSA chains to the recipient's ``tsa_ca`` (else to the chain in
   the bag); see :mod:`portal.verify.timestamp`;
8. ``cross_check``: the manifest and the bag agree: every file the manifest names is in the bag
   with the same SHA-256 and size, and every payload file is named by the manifest;
9. ``decision_record``, ``decision_signature`` and ``item_index`` (manifest schema 3): the
   signed decision record and the item index match the manifest (see
   :mod:`portal.verify.records`);
10. ``transparency``: the package's events are in the mechanism's transparency log under a
    checkpoint signed by the pinned key, and that log is consistent with the checkpoints the
    recipient kept (see :mod:`portal.verify.transparency`);
11. ``recall_notice`` (with ``recall``): the notice is signed by the pinned sender key and
    applies to this package (see :mod:`portal.verify.recall`);
12. ``release_statement`` (with ``release``, found beside the package by the command): the
    statement is signed by the pinned sender key and releases this very package file (see
    :mod:`portal.verify.release`).

Each step returns :class:`~portal.verify.results.Passed` (what later steps need, and the detail
the report shows) or raises :class:`~portal.verify.results.VerifyFailed`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import bagit
import gnupg

from portal.packages.assembly.manifest import MANIFEST_PATH, SIGNATURE_PATH
from portal.verify.archive import extract
from portal.verify.bag import validate_bag
from portal.verify.decryption import OutputLimit, decrypt_bounded, default_limit
from portal.verify.manifest import cross_check, read_manifest
from portal.verify.recall import check_recall, read_notice
from portal.verify.records import (
    check_decision_record,
    check_decision_signature,
    check_item_index,
    not_in,
)
from portal.verify.release import check_release, read_statement
from portal.verify.results import (
    EXIT_BAD_SIGNATURE,
    EXIT_MANIFEST_INVALID,
    EXIT_WRONG_SIGNER,
    Check,
    Outcome,
    Passed,
    VerifyFailed,
)
from portal.verify.signatures import (
    GPG_OFFLINE,
    FailureCodes,
    SenderKey,
    check_detached,
    format_fingerprint,
    judge_signer,
    normalise_fingerprint,
    require_sender_key,
)
from portal.verify.timestamp import check_bag_timestamp
from portal.verify.transition import follow_chain
from portal.verify.transparency import check_transparency
from portal.verify.workspace import Workspace, workspace

__all__ = ["ORIGIN_AFTER_DECRYPTION", "RECALLED", "VERIFIED", "verify_package"]

VERIFIED = (
    "VERIFIED: the package is complete and unaltered, and was signed by the pinned sender key"
)

RECALLED = (
    "VERIFIED, AND RECALLED: the package is complete and unaltered and was signed by the "
    "pinned sender key; the recall notice, signed by the same key, applies to it (see above "
    "what to return or destroy)"
)

ORIGIN_AFTER_DECRYPTION = (
    "the origin of the package was checked only after decryption (--no-detached-signature)"
)

_PACKAGE_SIGNATURE = FailureCodes(wrong_signer=EXIT_WRONG_SIGNER, bad=EXIT_BAD_SIGNATURE)
_MANIFEST_SIGNATURE = FailureCodes(wrong_signer=EXIT_MANIFEST_INVALID, bad=EXIT_MANIFEST_INVALID)

P = ParamSpec("P")
T = TypeVar("T")


def verify_package(
    package: Path,
    sender_fingerprint: str,
    *,
    signature: Path | None = None,
    without_detached_signature: bool = False,
    limit: OutputLimit | None = None,
    gnupghome: Path | None = None,
    out: Path | None = None,
    recall: Path | None = None,
    transitions: Sequence[Path] = (),
    tsa_ca: Path | None = None,
    checkpoints: Sequence[Path] = (),
    consistency_proofs: Sequence[Path] = (),
    release: Path | None = None,
) -> Outcome:
    """Run every step on ``package``; the :class:`Outcome` says which passed and why not.

    ``signature`` is the detached signature; it is required unless
    ``without_detached_signature``. ``limit`` bounds what decryption writes (default: the
    package's size plus a margin, no compressed data). ``gnupghome`` is the
    recipient's keyring (default ``~/.gnupg``): it must hold the authority's secret key and the
    sender's public key; it is only read. ``out``, when given, must be an empty or missing
    directory; the bag is kept there when, and only when, the package verifies.
    ``transitions`` are signing-key transition statements (``NAME.json``, signatures in
    ``NAME.json.asc``) to follow from the pinned key. ``tsa_ca`` holds the time-stamping
    authority's CA certificates (PEM) as the recipient obtained them. ``checkpoints`` are
    transparency-log checkpoints the recipient kept, ``consistency_proofs`` the proofs joining
    them to the package's checkpoint.
    """
    pinned = normalise_fingerprint(sender_fingerprint)
    home = (gnupghome or Path("~/.gnupg")).expanduser()
    outcome = Outcome(package=package, sender_fingerprint=pinned)
    bound = limit or default_limit(package)
    check = _Recorder(outcome)
    with workspace(out) as space:
        gpg = gnupg.GPG(gnupghome=str(home))
        try:
            sender = check("sender_key", sender_key, gpg, pinned, home)
            if transitions:
                sender = check("signing_key_chain", follow_chain, gpg, sender, transitions)
            check(
                "detached_signature",
                detached_signature,
                gpg,
                package,
                signature,
                sender,
                without=without_detached_signature,
            )
            outcome.signature_checked = signature is not None
            decrypted = check("decryption", decryption, gpg, package, space.plaintext, bound)
            signer = check("inline_signature", inline_signature, decrypted, sender)
            bag_dir = check("archive_safety", archive_safety, space)
            bag = check("bag", validate_bag, bag_dir)
            manifest = check("manifest_schema", manifest_schema, bag_dir)
            check("manifest_signature", manifest_signature, gpg, bag_dir, sender)
            stamp = check("timestamp", check_bag_timestamp, bag_dir, tsa_ca)
            outcome.timestamp = stamp.to_json() if stamp is not None else None
            check("cross_check", manifest_matches_bag, bag, bag_dir, manifest, signer)
            check("decision_record", decision_record, bag_dir, manifest)
            check("decision_signature", decision_signature, gpg, bag_dir, manifest, sender)
            check("item_index", item_index, bag_dir, manifest)
            check(
                "transparency", transparency, gpg, bag_dir, sender, manifest,
                checkpoints, consistency_proofs,
            )  # fmt: skip
            if recall is not None:
                check("recall_notice", recall_notice, gpg, recall, sender, manifest, package)
            if release is not None:
                check("release_statement", release_statement, gpg, release, sender, manifest,
                      package)  # fmt: skip
        except VerifyFailed:
            return outcome  # recorded by check(); leaving the workspace empties --out
        outcome.extracted_to = space.keep(bag_dir)
    outcome.manifest = manifest
    outcome.message = VERIFIED if recall is None else RECALLED
    if release is not None:
        outcome.message += "; the release statement, signed by the same key, releases this file"
    if signature is None:
        outcome.message += f"; {ORIGIN_AFTER_DECRYPTION}"
    return outcome


class _Recorder:
    """Runs a step under its name and records it in the outcome, passed or failed."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def __call__(
        self, name: str, step: Callable[P, Passed[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            passed = step(*args, **kwargs)
        except VerifyFailed as failure:
            self.outcome.checks.append(Check(name, False, failure.message))
            self.outcome.exit_code = failure.exit_code
            self.outcome.message = failure.message
            raise
        self.outcome.checks.append(Check(name, True, passed.detail, passed.skipped))
        return passed.value


# --------------------------------------------------------------------------- the steps


def sender_key(gpg: gnupg.GPG, pinned: str, home: Path) -> Passed[SenderKey]:
    sender = require_sender_key(gpg, pinned, home)
    return Passed(sender, f"the pinned sender key {format_fingerprint(pinned)} is in {home}")


def detached_signature(
    gpg: gnupg.GPG, package: Path, signature: Path | None, sender: SenderKey, *, without: bool
) -> Passed[None]:
    if signature is None and without:
        return Passed(
            None,
            "not checked (--no-detached-signature): the origin of the package is checked only "
            "after decryption, by the signature inside it; until then gpg decrypts data of "
            "unknown origin (within the output bound)",
            skipped=True,
        )
    if signature is None:
        raise VerifyFailed(
            EXIT_BAD_SIGNATURE,
            f"the detached signature {package.name}.sig is missing; it is checked before "
            "anything is decrypted. Put it beside the package or name it with --signature; "
            "if you have only the package file, pass --no-detached-signature (its origin is "
            "then checked only after decryption)",
        )
    detail = check_detached(
        gpg,
        signature,
        package,
        sender,
        role="detached signature",
        label=signature.name,
        codes=_PACKAGE_SIGNATURE,
    )
    return Passed(None, detail)


def decryption(gpg: gnupg.GPG, package: Path, plaintext: Path, limit: OutputLimit) -> Passed[Any]:
    """The package decrypted into ``plaintext``; gpg's result carries the inline signature."""
    result = decrypt_bounded(gpg, package, plaintext, limit, GPG_OFFLINE)
    compressed = ", compressed data allowed" if limit.allow_compressed else ", not compressed"
    return Passed(
        result,
        f"decrypted with a secret key of your keyring; {plaintext.stat().st_size} bytes, "
        f"within the bound of {limit.max_bytes} bytes{compressed}",
    )


def inline_signature(decrypted: Any, sender: SenderKey) -> Passed[str]:
    """Good and by an accepted key; the value is that key's fingerprint (the manifest must
    name it)."""
    what = "the signature inside the package"
    detail, signer = judge_signer(decrypted, sender, what, _PACKAGE_SIGNATURE)
    return Passed(signer, detail)


def archive_safety(space: Workspace) -> Passed[Path]:
    """The decrypted tar checked and extracted (into ``--out``'s staging directory when
    given); the tar itself is removed."""
    extracted = extract(space.plaintext, space.staging())
    space.plaintext.unlink()
    return extracted


def manifest_schema(bag_dir: Path) -> Passed[dict[str, Any]]:
    manifest = read_manifest(bag_dir)
    return Passed(manifest, f"{MANIFEST_PATH} matches schema version {manifest['schema_version']}")


def manifest_signature(gpg: gnupg.GPG, bag_dir: Path, sender: SenderKey) -> Passed[None]:
    signature = bag_dir / SIGNATURE_PATH
    if not signature.is_file():
        raise VerifyFailed(EXIT_MANIFEST_INVALID, f"the bag has no {SIGNATURE_PATH}")
    detail = check_detached(
        gpg,
        signature,
        bag_dir / MANIFEST_PATH,
        sender,
        role="manifest signature",
        label=SIGNATURE_PATH,
        codes=_MANIFEST_SIGNATURE,
    )
    return Passed(None, detail)


def manifest_matches_bag(
    bag: bagit.Bag, bag_dir: Path, manifest: dict[str, Any], pinned: str
) -> Passed[None]:
    return Passed(None, cross_check(bag, bag_dir, manifest, pinned))


def transparency(
    gpg: gnupg.GPG,
    bag_dir: Path,
    sender: SenderKey,
    manifest: dict[str, Any],
    checkpoints: Sequence[Path],
    proofs: Sequence[Path],
) -> Passed[None]:
    detail, skipped = check_transparency(gpg, bag_dir, sender, manifest, checkpoints, proofs)
    return Passed(None, detail, skipped=skipped)


def recall_notice(
    gpg: gnupg.GPG, notice: Path, sender: SenderKey, manifest: dict[str, Any], package: Path
) -> Passed[None]:
    return Passed(None, check_recall(read_notice(gpg, notice, sender), manifest, package))


def decision_record(bag_dir: Path, manifest: dict[str, Any]) -> Passed[None]:
    absent = not_in(manifest)
    if absent is not None:
        return Passed(None, absent, skipped=True)
    return Passed(None, check_decision_record(bag_dir, manifest))


def decision_signature(
    gpg: gnupg.GPG, bag_dir: Path, manifest: dict[str, Any], sender: SenderKey
) -> Passed[None]:
    absent = not_in(manifest)
    if absent is not None:
        return Passed(None, absent, skipped=True)
    return Passed(None, check_decision_signature(gpg, bag_dir, manifest, sender))


def item_index(bag_dir: Path, manifest: dict[str, Any]) -> Passed[None]:
    absent = not_in(manifest)
    if absent is not None:
        return Passed(None, absent, skipped=True)
    return Passed(None, check_item_index(bag_dir, manifest))


def release_statement(
    gpg: gnupg.GPG, statement: Path, sender: SenderKey, manifest: dict[str, Any], package: Path
) -> Passed[None]:
    return Passed(None, check_release(read_statement(gpg, statement, sender), manifest, package))
