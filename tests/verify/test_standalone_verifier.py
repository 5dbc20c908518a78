"""``portal-verify`` installs on its own: ``verifier/build.py`` (``make verifier``) builds a wheel
of ``portal/verify`` and exactly the modules it imports; installed into a clean virtual
environment with nothing of the portal (only the wheel's declared dependencies, from the package
index), it verifies a real package."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.packages import AUTHORITY, SENDER, SENDER_FPR, build_package, keyring

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("flask", "werkzeug", "sqlalchemy", "weasyprint", "reportlab", "huey")


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verifier_build", REPO / "verifier" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_import_closure_holds_no_server_module() -> None:
    build = builder()
    modules, third_party = build.closure()
    assert "portal.verify.cli" in modules and "portal.verify.transition" in modules
    assert all(name.startswith("portal.") for name in modules)
    assert not {name.split(".")[1] for name in modules} - {"verify", "canonical", "packages",
                                                            "registry"}  # fmt: skip
    assert not third_party & set(FORBIDDEN), third_party
    assert third_party <= set(build.DISTRIBUTIONS), third_party
    with pytest.raises(build.BuildRefused, match="flask"):
        build.check({"flask"}, ["python-gnupg"])
    with pytest.raises(build.BuildRefused, match="declare it"):
        build.check({"gnupg", "rfc3161_client"}, ["python-gnupg"])


def test_a_clean_install_verifies_a_real_package(tmp_path: Path) -> None:
    wheel = builder().build(tmp_path / "dist")
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(clean)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(clean / "bin" / "python"), "install",
         "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    probe = (
        "import sys, portal.verify.cli, portal.verify.transition\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "assert not bad, bad\n"
        "for name in ('flask', 'sqlalchemy', 'portal.web', 'portal.db'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    raise SystemExit(name + ' is importable in the clean environment')\n"
    )
    closed = subprocess.run(
        [str(clean / "bin" / "python"), "-c", probe], capture_output=True, text=True,
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert closed.returncode == 0, closed.stderr

    built = build_package(tmp_path / "package")
    with keyring(secret=(AUTHORITY,), public=(SENDER,)) as home:
        run = subprocess.run(
            [str(clean / "bin" / "portal-verify"), str(built.path), "--sender-fingerprint",
             SENDER_FPR, "--gnupghome", str(home)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED" in run.stdout
