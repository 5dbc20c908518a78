"""A TOTP seed that cannot be opened (the TOTP key file is missing, shared or another key)
answers 503 saying so, on the pages that check codes, instead of a 500."""

from __future__ import annotations

import logging

from flask import Blueprint
from werkzeug.wrappers.response import Response as BaseResponse

from portal.pages.errors import error_response
from portal.sealing import SealingError

logger = logging.getLogger(__name__)


def _seed_unavailable(exc: SealingError) -> BaseResponse:
    # The message names the key file or the user id, never a seed or a code.
    logger.error("TOTP seeds unavailable: %s", exc)
    return error_response(
        503,
        title="Sign-in unavailable",
        message=(
            "Authenticator codes cannot be checked just now (the portal's TOTP key is missing "
            "or does not open the stored secrets). Nothing was changed. Tell the portal "
            "administrators."
        ),
    )


def handle_seed_errors(bp: Blueprint) -> None:
    """Answer :class:`SealingError` on ``bp``'s pages with a 503 (see the module docstring)."""
    bp.register_error_handler(SealingError, _seed_unavailable)
