"""Eligibility: policy schema, rules, engine, decision records, pages, CLI."""
