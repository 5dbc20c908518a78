"""The policy engine: the sharing rules as data (``policies/``) and small pure functions.

- :func:`load_policy` reads and validates ``sharing.toml`` and ``mandate.toml``
  (:class:`PolicyError` lists every problem as ``file: key: reason``);
- :func:`build_snapshot` collects everything the rules look at from the database;
- :func:`evaluate` applies the policy to a snapshot, with no database and no clock;
- :func:`diff_results` says what changed between two evaluations.

Decision records (storing an evaluation immutably) are in :mod:`portal.eligibility.decisions`.
"""

from portal.eligibility.policy.diff import Change, diff_results
from portal.eligibility.policy.engine import (
    ENGINE_VERSION,
    ITEM_OUTCOMES,
    REQUEST_OUTCOMES,
    EvaluationResult,
    ItemResult,
    RuleColumn,
    RuleResult,
    evaluate,
)
from portal.eligibility.policy.inputs import Snapshot
from portal.eligibility.policy.jsonread import SnapshotFormatError
from portal.eligibility.policy.rules import RULES
from portal.eligibility.policy.schema import Policy, PolicyError, load_policy, parse_policy
from portal.eligibility.policy.snapshot import SnapshotError, build_snapshot

__all__ = [
    "ENGINE_VERSION",
    "ITEM_OUTCOMES",
    "REQUEST_OUTCOMES",
    "RULES",
    "Change",
    "EvaluationResult",
    "ItemResult",
    "Policy",
    "PolicyError",
    "RuleColumn",
    "RuleResult",
    "Snapshot",
    "SnapshotError",
    "SnapshotFormatError",
    "build_snapshot",
    "diff_results",
    "evaluate",
    "load_policy",
    "parse_policy",
]
