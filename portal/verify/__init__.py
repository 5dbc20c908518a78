"""``portal-verify``: the recipient's offline check of a package from the mechanism.

It runs on the recipient's machine, possibly years later: nothing here imports Flask,
SQLAlchemy or WeasyPrint (only python-gnupg, bagit, jsonschema, rfc3161-client and the
manifest module), and the decrypted tar is streamed to a private temporary file, never held in
memory.

``steps`` runs the named steps (``signatures``, ``decryption``, ``archive``, ``bag``,
``manifest`` do the work, in a ``workspace``), ``report`` renders the outcome, ``cli`` is the
command.
"""

from portal.verify.cli import main
from portal.verify.decryption import OutputLimit
from portal.verify.results import (
    EXIT_BAD_SIGNATURE,
    EXIT_BAG_INVALID,
    EXIT_CANNOT_DECRYPT,
    EXIT_KEY_REVOKED,
    EXIT_MANIFEST_INVALID,
    EXIT_OK,
    EXIT_OUTPUT_LIMIT,
    EXIT_RECALL_MISMATCH,
    EXIT_TRANSITION_INVALID,
    EXIT_TRANSITION_ONE_SIGNATURE,
    EXIT_UNSAFE_ARCHIVE,
    EXIT_USAGE,
    EXIT_WRONG_SIGNER,
    Check,
    Outcome,
)
from portal.verify.steps import verify_package

__all__ = [
    "EXIT_BAD_SIGNATURE",
    "EXIT_BAG_INVALID",
    "EXIT_CANNOT_DECRYPT",
    "EXIT_KEY_REVOKED",
    "EXIT_MANIFEST_INVALID",
    "EXIT_OK",
    "EXIT_OUTPUT_LIMIT",
    "EXIT_RECALL_MISMATCH",
    "EXIT_TRANSITION_INVALID",
    "EXIT_TRANSITION_ONE_SIGNATURE",
    "EXIT_UNSAFE_ARCHIVE",
    "EXIT_USAGE",
    "EXIT_WRONG_SIGNER",
    "Check",
    "Outcome",
    "OutputLimit",
    "main",
    "verify_package",
]
