"""Eligibility: the policy engine (``policy/``), immutable decision records and decision
documents."""
