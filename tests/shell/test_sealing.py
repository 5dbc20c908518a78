"""Sealing secrets at rest (portal.sealing): AES-GCM bound to a purpose, the key file that
`portal init` makes, and errors that never hold the plaintext."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from portal.cli import main
from portal.config import Settings
from portal.sealing import (
    MAX_PLAINTEXT_BYTES,
    CannotUnseal,
    RotatingSealer,
    Sealer,
    SealingError,
    SealingKeyUnavailable,
    ensure_sealing_key,
    is_sealed,
    key_id,
    pending_key_path,
    read_sealing_key,
    sealed_by,
    sealer_for,
)
from tests.conftest import DatabaseUnderTest

SECRET = "Nadia Qorvel"  # fictional
PURPOSE = "protected_identifier:PID-2026-00012"


@pytest.fixture
def sealer() -> Sealer:
    return Sealer.random()


def test_round_trip_in_any_script(sealer: Sealer) -> None:
    for value in (SECRET, "نادية قورفل", "နာဒီယာ ကော်ဗယ်", "+679 555 0100", "x" * 500):
        assert sealer.unseal(sealer.seal(value, PURPOSE), PURPOSE) == value


def test_the_format_is_versioned_text_with_a_fresh_nonce(sealer: Sealer) -> None:
    sealed = sealer.seal(SECRET, PURPOSE)
    version, key_id, nonce, body = sealed.split(":")
    assert version == "v1"
    assert key_id == sealer.key_id and len(key_id) == 8
    assert len(base64.b64decode(nonce)) == 12
    assert len(base64.b64decode(body)) == len(SECRET.encode()) + 16  # the GCM tag
    assert SECRET not in sealed and SECRET.encode() not in base64.b64decode(body)
    assert sealer.seal(SECRET, PURPOSE) != sealed  # a new nonce every time


def _refused(sealer: Sealer, sealed: str, purpose: str = PURPOSE) -> str:
    with pytest.raises(CannotUnseal) as caught:
        sealer.unseal(sealed, purpose)
    message = str(caught.value)
    assert SECRET not in message and SECRET.lower() not in message.lower()
    return message


def test_a_value_moved_to_another_row_does_not_open(sealer: Sealer) -> None:
    sealed = sealer.seal(SECRET, PURPOSE)
    message = _refused(sealer, sealed, "protected_identifier:PID-2026-00013")
    assert "PID-2026-00013" in message
    _refused(sealer, sealed, "totp_seed:12")


def test_another_key_is_named_by_its_id(sealer: Sealer) -> None:
    other = Sealer.random()
    message = _refused(other, sealer.seal(SECRET, PURPOSE))
    assert "another key" in message and sealer.key_id in message
    assert "PORTAL_SEALING_KEY_FILE" in message


def test_altered_or_malformed_values_do_not_open(sealer: Sealer) -> None:
    version, key_id, nonce, body = sealer.seal(SECRET, PURPOSE).split(":")
    raw = bytearray(base64.b64decode(body))
    raw[0] ^= 1
    altered = ":".join((version, key_id, nonce, base64.b64encode(bytes(raw)).decode()))
    assert "altered" in _refused(sealer, altered)
    assert "version" in _refused(sealer, ":".join(("v9", key_id, nonce, body)))
    assert "format" in _refused(sealer, SECRET)
    assert "base64" in _refused(sealer, ":".join((version, key_id, "!!", body)))
    short_nonce = base64.b64encode(b"123").decode()
    assert "nonce" in _refused(sealer, ":".join((version, key_id, short_nonce, body)))


def test_a_long_value_is_refused_without_showing_it(sealer: Sealer) -> None:
    value = SECRET * (MAX_PLAINTEXT_BYTES // len(SECRET) + 1)
    with pytest.raises(SealingError) as caught:
        sealer.seal(value, PURPOSE)
    assert SECRET not in str(caught.value)


def test_the_key_never_shows(sealer: Sealer) -> None:
    sealer.seal(SECRET, PURPOSE)
    assert repr(sealer) == f"<Sealer key {sealer.key_id}>"


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path), **env})


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.sealing_key_path == tmp_path / "sealing_key"
    assert ensure_sealing_key(settings) is True
    assert stat.S_IMODE(settings.sealing_key_path.stat().st_mode) == 0o600
    key = read_sealing_key(settings.sealing_key_path)
    assert len(key) == 32
    assert ensure_sealing_key(settings) is False
    assert read_sealing_key(settings.sealing_key_path) == key
    # two sealers on one key file open each other's values
    sealed = sealer_for(settings).seal(SECRET, PURPOSE)
    assert sealer_for(settings).unseal(sealed, PURPOSE) == SECRET


def test_the_key_file_setting(tmp_path: Path) -> None:
    elsewhere = tmp_path / "keys" / "sealing.hex"
    settings = _settings(tmp_path, PORTAL_SEALING_KEY_FILE=str(elsewhere))
    assert settings.sealing_key_path == elsewhere
    ensure_sealing_key(settings)
    assert elsewhere.is_file()
    assert not (tmp_path / "sealing_key").exists()


def test_a_missing_key_is_a_clear_error_on_first_use(tmp_path: Path) -> None:
    sealer = sealer_for(_settings(tmp_path))  # the portal starts without it
    with pytest.raises(SealingKeyUnavailable, match="portal init"):
        sealer.seal(SECRET, PURPOSE)


def test_bad_key_files_are_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ensure_sealing_key(settings)
    path = settings.sealing_key_path
    os.chmod(path, 0o644)
    with pytest.raises(SealingKeyUnavailable, match="chmod 600"):
        read_sealing_key(path)
    os.chmod(path, 0o600)
    path.write_text("not hex at all")
    with pytest.raises(SealingKeyUnavailable, match="64 hex digits"):
        read_sealing_key(path)
    path.write_text("ab" * 16)
    with pytest.raises(SealingKeyUnavailable, match="64 hex digits"):
        read_sealing_key(path)


def test_test_mode_gives_each_app_its_own_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path, PORTAL_TESTING="1")
    first, second = sealer_for(settings), sealer_for(settings)
    assert first.key_id != second.key_id
    assert not settings.sealing_key_path.exists()


def test_portal_init_creates_the_sealing_key(tmp_path: Path, database: DatabaseUnderTest) -> None:
    env = {
        "PORTAL_INSTANCE_DIR": str(tmp_path / "instance"),
        "PORTAL_DATABASE_URL": database.url,
        "PORTAL_DEMO": "",
        "PORTAL_TESTING": "",
    }
    runner = CliRunner()
    result = runner.invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert "Created sealing key" in result.output and "Back it up" in result.output
    path = tmp_path / "instance" / "sealing_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_bytes()
    again = runner.invoke(main, ["init"], env=env)
    assert again.exit_code == 0, again.output
    assert "Created sealing key" not in again.output
    assert path.read_bytes() == key


def _key_file(path: Path) -> Path:
    path.write_text(os.urandom(32).hex())
    path.chmod(0o600)
    return path


def test_a_rotating_sealer_seals_with_the_pending_key_and_opens_under_either(
    tmp_path: Path,
) -> None:
    current = _key_file(tmp_path / "totp_key")
    sealer = RotatingSealer(current, key_setting="the TOTP key")
    before = sealer.seal(SECRET, PURPOSE)
    assert sealed_by(before) == key_id(read_sealing_key(current))
    pending = _key_file(pending_key_path(current))
    during = sealer.seal(SECRET, PURPOSE)  # the same instance sees the rotation begin
    assert sealed_by(during) == key_id(read_sealing_key(pending))
    assert sealer.unseal(before, PURPOSE) == sealer.unseal(during, PURPOSE) == SECRET
    os.replace(pending, current)
    assert sealer.unseal(during, PURPOSE) == SECRET
    message = _refused(sealer, before)  # the retired key is gone
    assert "another key" in message and "the TOTP key" in message
    assert not is_sealed("JBSWY3DPEHPK3PXP") and is_sealed(during)
