"""All models, imported here so metadata is complete for Alembic and tests."""

from portal.db import Base
from portal.models.accounts import Invitation, LoginSession, Notification, RecoveryCode, User
from portal.models.api import OAuthClient, OAuthToken
from portal.models.audit import AuditEvent
from portal.models.consent import Consent, ConsentRequest, ConsentRequestItem
from portal.models.decisions import Decision, DecisionItem
from portal.models.packages import Download, Package, PackageItem, Recall
from portal.models.registry import (
    Assessment,
    Authority,
    Item,
    ItemPerson,
    Person,
    Provider,
    RecipientKey,
    RedactionMark,
)
from portal.models.requests import Assurance, Attachment, Message, Rfa, RfaItem, RfaStatusChange

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
