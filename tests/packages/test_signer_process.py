"""Only a separate worker process holds the signing key: the serving app (``wsgi.py``,
``portal run``) is built without it, ``portal run`` starts ``portal worker`` as a child
process, and that child signs. Key files others can read are refused outside demo/test mode;
a killed worker's temporary keyrings are removed when the next one starts."""

from __future__ import annotations

import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from portal.cli import main
from portal.config import ConfigError, Settings, check_signing_files
from portal.db import make_engine, make_session_factory
from portal.packages.assembly.jobs import make_jobs
from portal.packages.assembly.worker_process import start_worker_process
from portal.packages.lifecycle import create_package
from portal.packages.models import Package
from portal.registry.openpgp import (
    KEYRING_DIR,
    KEYRING_PREFIX,
    remove_stale_keyrings,
    temporary_keyring,
)
from portal.rfa.models import Rfa
from portal.sealing import sealer_for
from portal.state import portal_state
from portal.storage import FileBlobStore
from tests.conftest import DatabaseUnderTest
from tests.support.cli import Portal
from tests.support.package_world import REDACTABLE, build_world, user

pytest_plugins = ["tests.support.cli"]  # fixture portal

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"


def _private_copies(tmp_path: Path, mode: int = 0o600) -> dict[str, str]:
    key = tmp_path / "signing.sec.asc"
    passphrase = tmp_path / "signing.passphrase"
    shutil.copyfile(KEYS / "mechanism-signing.sec.asc", key)
    shutil.copyfile(KEYS / "mechanism-signing.passphrase", passphrase)
    key.chmod(mode)
    passphrase.chmod(mode)
    return {"PORTAL_SIGNING_KEY": str(key), "PORTAL_SIGNING_PASSPHRASE_FILE": str(passphrase)}


def test_the_serving_app_is_built_without_the_signing_key(
    portal: Portal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert portal("init").exit_code == 0
    keys = _private_copies(tmp_path)
    for name, value in {**portal.env, **keys}.items():
        monkeypatch.setenv(name, value)
    opened: list[str] = []
    watched = set(keys.values())

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and args and str(args[0]) in watched:
            opened.append(str(args[0]))

    sys.addaudithook(hook)  # cannot be removed; it records only the two files of this test
    app = runpy.run_path(str(REPO / "wsgi.py"))["app"]
    settings = portal_state(app).settings
    assert settings.signing_key_file is None and settings.signing_passphrase_file is None
    assert app.test_client().get("/login").status_code == 200
    assert opened == []


def test_portal_run_starts_the_worker_as_a_child_process_and_serves_without_the_key(
    portal: Portal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`portal run` (Flask's run replaced by a command that reports what would be served)."""
    import click
    import flask.cli

    assert portal("init").exit_code == 0
    keys = _private_copies(tmp_path)
    served: list[object] = []

    @click.command("run")
    @click.pass_context
    def fake_run(ctx: click.Context, **_: object) -> None:
        served.append(ctx.ensure_object(flask.cli.ScriptInfo).load_app())

    monkeypatch.setattr(flask.cli, "run_command", fake_run)
    before = _children()
    result = CliRunner().invoke(main, ["run"], env={**portal.env, **keys})
    new = _children() - before
    try:
        assert result.exit_code == 0, result.output
        assert "child process" in result.output
        assert served and portal_state(served[0]).settings.signing_key_file is None  # type: ignore[arg-type]
        assert any(b"worker" in _cmdline(pid) for pid in new), new
    finally:
        for pid in new:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)


def _children() -> set[int]:
    me = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_the_worker_child_process_signs_a_package(
    portal: Portal, database: DatabaseUnderTest, tmp_path: Path
) -> None:
    assert portal("init").exit_code == 0
    env = {**portal.env, **_private_copies(tmp_path)}
    settings = Settings.from_env(env)
    engine = make_engine(database.url)
    try:
        sessions = make_session_factory(engine)
        with sessions() as session:
            world = build_world(session, FileBlobStore(settings.blob_dir), sealer_for(settings))
            rfa = session.get(Rfa, world.rfa_id)
            assert rfa is not None
            package = create_package(session, rfa, REDACTABLE, by=user(session, world.officer_id))
            session.commit()
            package_id = package.id
        worker = start_worker_process({**os.environ, **env})
        try:
            # Before any package: the worker has loaded the renderers its document workers
            # are forked with (WeasyPrint's Pango), so they do not import them per package.
            _wait_for_library(worker, "libpango-1.0")
            make_jobs(settings).enqueue_assembly(package_id)
            deadline = time.monotonic() + 120
            status, signer = "queued", None
            while status in ("queued", "assembling") and time.monotonic() < deadline:
                time.sleep(0.5)
                with sessions() as session:
                    found = session.get(Package, package_id)
                    assert found is not None
                    status, signer, reason = (
                        found.status,
                        found.signer_fingerprint,
                        found.failure_reason,
                    )
            assert status == "assembled", reason
            assert signer
        finally:
            _end(worker)
    finally:
        engine.dispose()


def _end(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def _wait_for_library(process: subprocess.Popen[bytes], name: str, seconds: float = 60) -> None:
    """Wait until ``process`` has ``name`` (a shared library) mapped."""
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + seconds
    while name not in maps.read_text():
        assert process.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"{name} not loaded within {seconds:.0f} s"
        time.sleep(0.2)


def test_signing_files_others_can_read_are_refused_outside_demo_and_test(tmp_path: Path) -> None:
    keys = _private_copies(tmp_path, mode=0o640)
    settings = Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path), **keys})
    with pytest.raises(ConfigError, match="readable by other users; run `chmod 600"):
        check_signing_files(settings)
    Path(keys["PORTAL_SIGNING_KEY"]).chmod(0o600)
    with pytest.raises(ConfigError, match="signing passphrase file"):
        check_signing_files(settings)
    Path(keys["PORTAL_SIGNING_PASSPHRASE_FILE"]).chmod(0o600)
    check_signing_files(settings)
    check_signing_files(settings.with_overrides(signing_key_file=KEYS / "x", demo=True))
    # the example keys come from git as 0644: demo mode warns and goes on
    check_signing_files(
        settings.with_overrides(signing_key_file=KEYS / "mechanism-signing.sec.asc", demo=True)
    )


def test_portal_worker_refuses_to_start_with_a_readable_key(tmp_path: Path) -> None:
    keys = _private_copies(tmp_path, mode=0o644)
    result = CliRunner().invoke(
        main,
        ["worker"],
        env={"PORTAL_INSTANCE_DIR": str(tmp_path / "instance"), "PORTAL_DEMO": "", **keys},
    )
    assert result.exit_code != 0
    assert "readable by other users" in result.output


def test_portal_worker_without_its_renderer_says_what_to_check_and_works_on(
    portal: Portal, tmp_path: Path
) -> None:
    """A WeasyPrint that cannot be loaded (here: an import that fails, as a missing Pango
    library does) is named in the worker's log at start, with what to check; the worker
    goes on (its checkpoints, notices and the packages' own failures with the reason)."""
    assert portal("init").exit_code == 0
    shim = tmp_path / "shim" / "weasyprint"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise OSError('cannot load library libpango-1.0.so.0')\n")
    env = {**os.environ, **portal.env, **_private_copies(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join([str(shim.parent), str(REPO)])
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "portal"), "worker", "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Swept" not in log.read_text():  # logged after the renderers, before serving
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(1)
        assert worker.poll() is None, log.read_text()  # still serving
        text_ = log.read_text()
        assert "Could not load the package documents' renderers" in text_
        assert "libpango-1.0.so.0" in text_ and "make system-packages" in text_
        assert "Traceback" not in text_
    finally:
        _end(worker)


@pytest.fixture
def keyrings() -> Iterator[str]:
    """A directory of this test's own for temporary keyrings, short as /tmp's (gpg-agent's
    socket name must fit): a `portal worker` of a test running beside it sweeps /tmp."""
    directory = tempfile.mkdtemp(prefix="kr-", dir=KEYRING_DIR)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _age(path: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_killed_workers_keyrings_are_removed_but_not_those_in_use(keyrings: str) -> None:
    stale = tempfile.mkdtemp(prefix=KEYRING_PREFIX, dir=keyrings)
    Path(stale, ".in-use").touch()  # its holder is gone: nobody has the lock
    Path(stale, "private-keys-v1.d").mkdir()
    being_made = tempfile.mkdtemp(prefix=KEYRING_PREFIX, dir=keyrings)  # no lock file yet
    Path(being_made, ".in-use.new").touch()
    abandoned = tempfile.mkdtemp(prefix=KEYRING_PREFIX, dir=keyrings)  # the same, long ago
    _age(abandoned, 120)
    other = tempfile.mkdtemp(prefix="pg-", dir=keyrings)  # not ours by prefix
    _age(other, 120)
    with temporary_keyring(keyrings) as gpg:
        assert Path(gpg.gnupghome, ".in-use").is_file()
        assert not Path(gpg.gnupghome, ".in-use.new").exists()
        _age(gpg.gnupghome, 120)  # old, but locked
        assert remove_stale_keyrings(keyrings) == 2
        assert not os.path.exists(stale)
        assert not os.path.exists(abandoned)
        assert os.path.isdir(gpg.gnupghome)  # in use: kept
        assert os.path.isdir(being_made)  # a moment old: kept
        assert os.path.isdir(other)


def test_a_killed_process_leaves_a_keyring_the_next_worker_removes(keyrings: str) -> None:
    code = (
        "import os, signal, sys\n"
        "from portal.registry.openpgp import temporary_keyring\n"
        "with temporary_keyring(sys.argv[1]) as gpg:\n"
        "    print(gpg.gnupghome, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", code, keyrings], capture_output=True, check=False)
    home = child.stdout.decode().strip()
    assert (
        Path(home).parent == Path(keyrings)
        and Path(home).name.startswith(KEYRING_PREFIX)
        and os.path.isdir(home)
    )
    assert remove_stale_keyrings(keyrings) == 1  # its lock is free at once
    assert not os.path.exists(home)
