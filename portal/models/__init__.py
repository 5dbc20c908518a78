"""Every domain's models, imported in one place so that ``Base.metadata`` is complete (Alembic,
tests) and every relationship can be resolved.

Each model is defined in its domain (``portal.<domain>.models``, the audit log in
:mod:`portal.audit`); import it from there. Only :class:`~portal.db.Base` is exported here.
"""

from portal import audit
from portal.accounts import models as accounts
from portal.api import models as api
from portal.consent import models as consent
from portal.db import Base
from portal.eligibility import models as eligibility
from portal.eligibility.freshness import install_schema_hooks as install_freshness_triggers
from portal.notifications import models as notifications
from portal.packages import models as packages
from portal.registry import models as registry
from portal.rfa import models as rfa
from portal.rfa.search_fts import install_schema_hooks as install_search_index
from portal.transparency import models as transparency

__all__ = ["Base"]

install_search_index(Base.metadata.tables["item"])  # SQLite's search index (portal.rfa.search_fts)
install_freshness_triggers(Base.metadata)  # the decisions' freshness (portal.eligibility.freshness)

#: The modules whose models are in ``Base.metadata``.
MODEL_MODULES = (
    accounts,
    api,
    audit,
    consent,
    eligibility,
    notifications,
    packages,
    registry,
    rfa,
    transparency,
)
