"""Every model of every domain, imported in one place so that ``Base.metadata`` is complete
(Alembic, tests) and every relationship can be resolved.

Each model is defined in its domain (``portal.<domain>.models``); import it from there.
"""

from portal.accounts.models import Invitation, LoginSession, RecoveryCode, User
from portal.api.models import OAuthClient, OAuthToken
from portal.audit import AuditEvent
from portal.consent.models import Consent, ConsentRequest, ConsentRequestItem
from portal.db import Base
from portal.eligibility.models import Decision, DecisionItem
from portal.notifications.models import Notification
from portal.packages.models import Download, Package, PackageItem, Recall
from portal.registry.models import (
    Assessment,
    Authority,
    Item,
    ItemPerson,
    Person,
    Provider,
    RecipientKey,
    RedactionMark,
)
from portal.rfa.models import Assurance, Attachment, Message, Rfa, RfaItem, RfaStatusChange

__all__ = [
    "Assessment",
    "Assurance",
    "Attachment",
    "AuditEvent",
    "Authority",
    "Base",
    "Consent",
    "ConsentRequest",
    "ConsentRequestItem",
    "Decision",
    "DecisionItem",
    "Download",
    "Invitation",
    "Item",
    "ItemPerson",
    "LoginSession",
    "Message",
    "Notification",
    "OAuthClient",
    "OAuthToken",
    "Package",
    "PackageItem",
    "Person",
    "Provider",
    "Recall",
    "RecipientKey",
    "RecoveryCode",
    "RedactionMark",
    "Rfa",
    "RfaItem",
    "RfaStatusChange",
    "User",
]
