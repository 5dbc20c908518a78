"""What every page template can use, registered once for the whole app by :mod:`portal.web`.

A blueprint's own context processor adds only the labels of its own pages.
"""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from portal.accounts.models import ROLE_LABELS
from portal.authz.permissions import allowed
from portal.documents.fonts import PDF_FONTS
from portal.pages.formatting import fingerprint_groups, when_in
from portal.pages.i18n import Translated, format_size, locale_code
from portal.pages.labels import label
from portal.registry.models import CRITERION_LABELS, FINDING_LABELS


def can(action: str) -> bool:
    """Whether the signed-in user's role may do ``action`` (pages show links and buttons by it;
    the permission guard still checks every request)."""
    return bool(current_user.is_authenticated) and allowed(current_user.role, action)


def template_helpers() -> dict[str, Any]:
    """The app-wide template context: ``can``, ``when``, sizes, fingerprints and the labels
    several domains' pages show."""
    return {
        "can": can,
        "when": when_in(locale_code()),
        "human_size": format_size,  # the locale's digits and unit names
        "fingerprint_groups": fingerprint_groups,
        "role_labels": Translated(ROLE_LABELS),
        "criterion_labels": CRITERION_LABELS,
        "finding_labels": FINDING_LABELS,
        "label": label,  # label('provider_kind', p.kind): portal.pages.labels, one place
        "pdf_fonts": PDF_FONTS,  # the CSS font stacks of templates/*/documents/
    }
