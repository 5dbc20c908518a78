"""``portal-verify``: the command line of the recipient's offline verifier (arguments, exit
codes, printing the report)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from portal.verify.decryption import OutputLimit, default_limit
from portal.verify.release import release_beside
from portal.verify.report import render_json, render_text
from portal.verify.results import EXIT_USAGE
from portal.verify.signatures import normalise_fingerprint
from portal.verify.steps import verify_package
from portal.verify.timestamp import read_certificates

__all__ = ["main"]

EXIT_CODES_HELP = """\
exit codes:
  0   verified
  2   usage error (bad arguments, missing file, non-empty --out directory, a subkey
      fingerprint pinned instead of the primary one), or gpg could not be run
  10  bad or missing signature (detached or inline), or the sender's key is not in the keyring
  11  signed, but not by the pinned sender fingerprint
  12  cannot decrypt (no matching secret key in the keyring, or damaged ciphertext)
  13  the BagIt bag is invalid (incomplete, or a checksum does not match)
  14  the manifest is invalid (schema, its signature, or it disagrees with the bag)
  15  unsafe archive (absolute path, "..", link, device, duplicate name, oversize member)
  16  the recall notice (--recall) is not for this package or its items (its signature
      failing gives 10 or 11)
  17  decryption stopped: the package holds compressed data (refused unless
      --allow-compressed) or decrypts to more than the bound (--max-output); what was
      written is deleted
  30  a signing-key transition statement (--transition) is signed by only one of its keys
  31  a transition statement is malformed, badly signed, its signatures file is missing, a
      key it names is not in the keyring, or a key hands over twice
  32  a signing key is revoked in the keyring (the pinned key, a successor, or the signer)
  33  you gave --tsa-ca, but the package carries no time-stamp
  34  the time-stamp is damaged (unreadable, not granted, or its signature fails)
  35  the time-stamp is over other bytes than data/manifest.json.asc
  36  the time-stamp's TSA does not chain to --tsa-ca (or to the chain in the bag), or
      its certificate is not for time-stamping
  37  a transparency checkpoint (in the package, or one you kept) is not signed by the
      pinned sender key
  38  a transparency proof is for another tree size than its checkpoint's
  39  a transparency proof is truncated (too few hashes) or padded
  40  a leaf record of the package does not match its hash, is not included under the
      checkpoint, or is not this package's
  41  a checkpoint you kept and the package's are inconsistent: the log was rewritten
  42  the transparency evidence is missing or malformed, or a kept checkpoint is of
      another log
  43  the decision record (data/decision-record.json) is missing, altered, or disagrees
      with the manifest (another package, decision or policy; an item it does not share)
  44  the decision record's signature is missing, bad, or not by the pinned sender key
  45  the item index (data/item-index.csv, .json) is missing, altered, or disagrees with
      the manifest
  46  the release statement is for another package (its code or file SHA-256)
  47  the release statement is not clearsigned, altered, or not by the pinned sender key
"""

_MAX_BYTES = 1 << 60  # gpg's --max-output is an unsigned long
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class _UsageError(Exception):
    pass


def _byte_count(text: str) -> int:
    """``--max-output``: a whole number of bytes, optionally with K, M, G or T (powers of 1024)."""
    found = re.fullmatch(r"\s*(\d{1,16})\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if found is None or not 0 < int(found[1]) * _UNITS[found[2].upper()] <= _MAX_BYTES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a positive number of bytes (e.g. 800000000, 500M or 20G)"
        )
    return int(found[1]) * _UNITS[found[2].upper()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portal-verify",
        description=(
            "Verify a package from the mechanism offline: its signatures (against the sender "
            "fingerprint you obtained out of band), decryption with your keyring, safe "
            "extraction, the BagIt bag, and the signed manifest."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("package", type=Path, help="the package file, PKG-YYYY-NNNN.tar.gpg")
    parser.add_argument(
        "--sender-fingerprint",
        required=True,
        help="the mechanism's signing key fingerprint (40 hex digits; spaces allowed)",
    )
    parser.add_argument(
        "--signature",
        type=Path,
        help="detached signature over the package, checked before anything is decrypted "
        "(default: PACKAGE.sig beside the package; required unless --no-detached-signature)",
    )
    parser.add_argument(
        "--no-detached-signature",
        action="store_true",
        help="you have only the package file: decrypt without checking its origin first (the "
        "signature inside the package is still required; the report says origin was checked "
        "only after decryption)",
    )
    parser.add_argument(
        "--allow-compressed",
        action="store_true",
        help="accept compressed data inside the package (the portal never writes it); "
        "requires --max-output",
    )
    parser.add_argument(
        "--max-output",
        type=_byte_count,
        metavar="BYTES",
        help="the most decryption may write to disk (K, M, G, T allowed; default: the "
        "package's size plus 1M, as uncompressed data is never larger than its package)",
    )
    parser.add_argument(
        "--gnupghome",
        type=Path,
        help="your GnuPG keyring directory (default: ~/.gnupg); it must hold your secret key "
        "and the sender's public key",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="keep the verified bag in this directory (missing or empty; default: a temporary "
        "directory removed at exit)",
    )
    parser.add_argument(
        "--recall",
        type=Path,
        help="a recall notice (.asc) to check too: signed by the pinned sender key, for this "
        "package file, and naming items of it with their paths and SHA-256",
    )
    parser.add_argument(
        "--transition",
        type=Path,
        action="append",
        default=[],
        metavar="STATEMENT.json",
        help="a signing-key transition statement (signatures in STATEMENT.json.asc beside it) "
        "from the portal's /signing-key page; repeatable: the keys the pinned key handed "
        "over to are accepted too",
    )
    parser.add_argument(
        "--tsa-ca",
        type=Path,
        metavar="FILE",
        help="the time-stamping authority's CA certificate(s), PEM, obtained independently of "
        "the package: the manifest signature's RFC 3161 time-stamp must chain to it, and must "
        "be there (default: check the time-stamp, when there is one, against the chain the bag "
        "carries, which only names the TSA the mechanism used)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a transparency log checkpoint you kept (the JSON of the portal's "
        "/transparency/checkpoint, or a checkpoint.txt with its signature in FILE.asc, such as "
        "an earlier package's); the package's log must be consistent with it (repeatable)",
    )
    parser.add_argument(
        "--consistency-proof",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a consistency proof between a kept checkpoint and the package's (the JSON of the "
        "portal's /transparency/proofs/consistency?first=M&second=N; repeatable)",
    )
    parser.add_argument(
        "--release-statement",
        type=Path,
        metavar="FILE",
        help="the signed release statement to check too (default: PACKAGE.release.asc "
        "beside the package, when there)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _check_arguments(args: argparse.Namespace) -> tuple[str, Path | None, OutputLimit]:
    """Validate the arguments; return the pinned fingerprint, the detached signature and the
    bound on decryption."""
    try:
        pinned = normalise_fingerprint(args.sender_fingerprint)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    if not args.package.is_file():
        raise _UsageError(f"{args.package}: no such file")
    signature: Path | None = args.signature
    if args.recall is not None and not args.recall.is_file():
        raise _UsageError(f"{args.recall}: no such recall notice")
    for statement in args.transition:
        if not statement.is_file():
            raise _UsageError(f"{statement}: no such transition statement")
    if args.tsa_ca is not None:
        _check_tsa_ca(args.tsa_ca)
    for given in (*args.checkpoint, *args.consistency_proof):
        if not given.is_file():
            raise _UsageError(f"{given}: no such file")
    if signature is not None and not signature.is_file():
        raise _UsageError(f"{signature}: no such signature file")
    if args.release_statement is not None and not args.release_statement.is_file():
        raise _UsageError(f"{args.release_statement}: no such release statement")
    if signature is not None and args.no_detached_signature:
        raise _UsageError("--signature and --no-detached-signature contradict each other")
    if signature is None and not args.no_detached_signature:
        beside = args.package.with_name(args.package.name + ".sig")
        signature = beside if beside.is_file() else None
    if args.allow_compressed and args.max_output is None:
        raise _UsageError("--allow-compressed needs --max-output BYTES: a bound you choose")
    limit = default_limit(args.package)
    if args.max_output is not None:
        limit = OutputLimit(args.max_output, allow_compressed=args.allow_compressed)
    home = (args.gnupghome or Path("~/.gnupg")).expanduser()
    if not home.is_dir():
        raise _UsageError(f"{home}: no such keyring directory")
    out: Path | None = args.out
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise _UsageError(f"{out}: --out must be a missing or empty directory")
    return pinned, signature, limit


def _check_tsa_ca(path: Path) -> None:
    try:
        read_certificates(path.read_bytes())
    except OSError as exc:
        raise _UsageError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _UsageError(f"{path} (--tsa-ca) holds {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """The ``portal-verify`` command; returns the exit code (see ``--help``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        pinned, signature, limit = _check_arguments(args)
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"portal-verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for name in ("gnupg", "bagit"):  # their warnings repeat what the report says
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        outcome = verify_package(
            args.package,
            pinned,
            signature=signature,
            without_detached_signature=args.no_detached_signature,
            limit=limit,
            gnupghome=args.gnupghome,
            out=args.out,
            recall=args.recall,
            transitions=args.transition,
            tsa_ca=args.tsa_ca,
            checkpoints=args.checkpoint,
            consistency_proofs=args.consistency_proof,
            release=args.release_statement or release_beside(args.package),
        )
    except OSError as exc:  # gpg missing, unreadable files, full disk
        print(f"portal-verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(render_json(outcome), indent=2, ensure_ascii=False))
    else:
        print(render_text(outcome), end="")
    return outcome.exit_code
