"""`portal policy check`, `portal rfa check` and `portal decision show`, and the app refusing
to start with a broken policy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from portal import create_app
from portal.config import REPO_ROOT, ConfigError, Settings
from tests.support.cli import Portal

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

OFFICER = "officer.one@mechanism.example"


def _broken_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "policies", target)
    sharing = target / "sharing.toml"
    sharing.write_text(sharing.read_text() + "\n[surprise]\nkey = 1\n")
    return target


def test_policy_check_accepts_the_shipped_policy(portal: Portal) -> None:
    result = portal("policy", "check")
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output


def test_policy_check_names_file_key_and_reason(portal: Portal, tmp_path: Path) -> None:
    portal.env["PORTAL_POLICIES_DIR"] = str(_broken_policies(tmp_path))
    result = portal("policy", "check")
    assert result.exit_code == 1
    assert "sharing.toml: surprise" in result.output


def test_the_app_refuses_to_start_with_a_broken_policy(tmp_path: Path) -> None:
    settings = Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)}).with_overrides(
        testing=True, policies_dir=_broken_policies(tmp_path)
    )
    with pytest.raises(ConfigError, match=r"sharing\.toml: surprise"):
        create_app(settings)


def test_rfa_check_and_decision_show(portal: Portal) -> None:
    assert portal("init").exit_code == 0
    assert portal("demo").exit_code == 0

    first = portal("rfa", "check", "RFA-2025-0041", "--as", OFFICER)
    assert first.exit_code == 0, first.output
    assert "Outcome:" in first.output and "First decision for this request." in first.output
    decision_id = first.output.splitlines()[0].removeprefix("Decision ").strip()

    again = portal("rfa", "check", "RFA-2025-0041", "--as", OFFICER, "--json")
    assert again.exit_code == 0, again.output
    payload = json.loads(again.output)
    assert payload["decision_id"] != decision_id
    assert payload["result"]["request"]["code"] == "RFA-2025-0041"
    assert payload["changes_since_previous"] == []

    shown = portal("decision", "show", decision_id, "--as", OFFICER)
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"Decision {decision_id}")

    blocked = portal("rfa", "check", "RFA-2025-0044", "--as", OFFICER, "--json")
    assert json.loads(blocked.output)["result"]["outcome"] == "ineligible"


def test_cli_checks_apply_the_same_authorization(portal: Portal) -> None:
    portal("init")
    portal("demo")
    requester = portal("rfa", "check", "RFA-2025-0041", "--as", "requester@nwu.example")
    assert requester.exit_code == 1
    assert "not an active user allowed" in requester.output
    unknown = portal("rfa", "check", "RFA-2025-0041", "--as", "nobody@example.test")
    assert unknown.exit_code == 1 and "not an active user allowed" in unknown.output
    missing = portal("rfa", "check", "RFA-1999-0001", "--as", OFFICER)
    assert missing.exit_code == 1 and "no request RFA-1999-0001" in missing.output
    no_decision = portal(
        "decision", "show", "00000000-0000-0000-0000-000000000000", "--as", OFFICER
    )
    assert no_decision.exit_code == 1
