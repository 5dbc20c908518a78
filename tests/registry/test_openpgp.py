"""Tests for portal.registry.openpgp with the real gpg: example keys accepted, bad keys refused.

The keys are files made once with gpg (keys_example/generate.sh, tests/data/keys/generate.sh);
nothing here generates keys.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portal.registry import openpgp
from portal.registry.openpgp import (
    KeyInfo,
    KeyRejected,
    example_fingerprints,
    inspect_public_key,
    refuse_example_key,
    temporary_keyring,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "keys_example"
BAD = Path(__file__).resolve().parents[1] / "data" / "keys"
FINGERPRINTS: dict[str, str] = json.loads((EXAMPLES / "fingerprints.json").read_text("utf-8"))

EXPECTED_NAMES = {
    "mechanism-signing",
    "mechanism-archive",
    "NWU-NL",
    "SPR-ES",
    "ECT-EV",
    "WJD-WR",
    "RCP-RV",
}


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii")


def _agent_pids_for(home: str) -> list[int]:
    """PIDs of live processes whose command line names ``home`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if home in cmdline and "\nState:\tZ" not in status:
            pids.append(int(entry.name))
    return pids


def test_fingerprints_json_lists_every_example_key() -> None:
    assert set(FINGERPRINTS) == EXPECTED_NAMES
    for name in FINGERPRINTS:
        assert (EXAMPLES / f"{name}.pub.asc").is_file()
        assert (EXAMPLES / f"{name}.sec.asc").is_file()
    assert (EXAMPLES / "mechanism-signing.passphrase").read_text().strip()


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_example_public_keys_are_accepted(name: str) -> None:
    info = inspect_public_key(_read(EXAMPLES / f"{name}.pub.asc"))

    assert isinstance(info, KeyInfo)
    assert info.fingerprint == FINGERPRINTS[name]
    assert info.algorithm == "ed25519"
    assert info.key_length in {255, 256}
    assert info.can_encrypt
    assert not info.revoked
    assert info.expires_at is None
    assert info.created_at.tzinfo is not None
    assert info.created_at <= datetime.now(UTC)
    assert len(info.uids) == 1
    assert "(DEMO ONLY)" in info.uids[0]


def test_uid_and_leading_text_are_read() -> None:
    armored = "Here is our key, as agreed:\n\n" + _read(EXAMPLES / "NWU-NL.pub.asc")
    info = inspect_public_key(armored)
    assert info.uids == ("Northland War Crimes Unit (DEMO ONLY) <nwu@authority.example>",)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        "hello, this is not a key",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5IGF0IGFsbA==\n"
        "=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n",
        "-----BEGIN PGP MESSAGE-----\n\nhF4DAAAAAAAAAAASAQdAAAAA\n-----END PGP MESSAGE-----\n",
    ],
    ids=["empty", "blank", "prose", "garbage-armor", "message-armor"],
)
def test_non_keys_are_rejected(text: str) -> None:
    with pytest.raises(KeyRejected) as caught:
        inspect_public_key(text)
    assert caught.value.reason == "not an OpenPGP public key"
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", ["NWU-NL", "mechanism-signing"])
def test_secret_key_is_rejected(name: str) -> None:
    with pytest.raises(KeyRejected, match="secret key; send only the public key"):
        inspect_public_key(_read(EXAMPLES / f"{name}.sec.asc"))


def test_secret_key_under_a_public_armor_header_is_rejected() -> None:
    disguised = _read(EXAMPLES / "NWU-NL.sec.asc").replace("PRIVATE KEY BLOCK", "PUBLIC KEY BLOCK")
    assert "PRIVATE" not in disguised
    with pytest.raises(KeyRejected, match="secret key"):
        inspect_public_key(disguised)


def test_public_and_secret_key_pasted_together_is_rejected() -> None:
    both = _read(EXAMPLES / "NWU-NL.pub.asc") + "\n" + _read(EXAMPLES / "SPR-ES.sec.asc")
    with pytest.raises(KeyRejected, match="secret key"):
        inspect_public_key(both)


def test_expired_key_is_rejected() -> None:
    with pytest.raises(KeyRejected, match="expired on 2020-12-31") as caught:
        inspect_public_key(_read(BAD / "expired.pub.asc"))
    assert caught.value.fingerprint is not None
    assert len(caught.value.fingerprint) == 40


def test_expiry_is_judged_at_now() -> None:
    info = inspect_public_key(_read(BAD / "expired.pub.asc"), now=datetime(2020, 6, 1, tzinfo=UTC))
    assert info.created_at == datetime(2020, 1, 1, tzinfo=UTC)
    assert info.expires_at is not None
    assert info.expires_at.year == 2020
    assert info.can_encrypt


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        inspect_public_key(_read(EXAMPLES / "NWU-NL.pub.asc"), now=datetime(2030, 1, 1))


def test_revoked_key_is_rejected() -> None:
    with pytest.raises(KeyRejected, match="revoked"):
        inspect_public_key(_read(BAD / "revoked.pub.asc"))


def test_rsa_2048_key_is_rejected() -> None:
    with pytest.raises(KeyRejected, match=r"rsa2048; RSA, DSA and ElGamal keys must have at least"):
        inspect_public_key(_read(BAD / "rsa2048.pub.asc"))


def test_sign_only_key_is_rejected() -> None:
    with pytest.raises(KeyRejected, match="no valid encryption subkey"):
        inspect_public_key(_read(BAD / "signonly.pub.asc"))


def test_two_keys_in_one_block_are_rejected() -> None:
    text = _read(BAD / "two-keys.pub.asc")
    assert text.count("BEGIN PGP PUBLIC KEY BLOCK") == 1
    with pytest.raises(KeyRejected, match="contains 2 keys"):
        inspect_public_key(text)


def test_two_armored_blocks_are_rejected() -> None:
    text = _read(EXAMPLES / "NWU-NL.pub.asc") + _read(EXAMPLES / "SPR-ES.pub.asc")
    with pytest.raises(KeyRejected, match="contains 2 keys"):
        inspect_public_key(text)


def test_example_fingerprints_match_the_json() -> None:
    assert example_fingerprints() == frozenset(FINGERPRINTS.values())
    assert example_fingerprints() == openpgp.EXAMPLE_FINGERPRINTS
    with pytest.raises(AttributeError):
        _ = openpgp.NO_SUCH_THING


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_example_keys_are_refused_outside_demo_or_test(name: str) -> None:
    fingerprint = FINGERPRINTS[name]
    with pytest.raises(KeyRejected) as caught:
        refuse_example_key(fingerprint, demo_or_test=False)
    assert caught.value.reason == (
        "this is a fictional example key from keys_example/; it is accepted only in demo or "
        "test mode"
    )
    # spacing and case do not matter
    spaced = " ".join(fingerprint[i : i + 4] for i in range(0, 40, 4)).lower()
    with pytest.raises(KeyRejected):
        refuse_example_key(spaced, demo_or_test=False)
    refuse_example_key(fingerprint, demo_or_test=True)


def test_other_keys_are_not_refused_as_examples() -> None:
    refuse_example_key("0" * 40, demo_or_test=False)
    refuse_example_key("0" * 40, demo_or_test=True)


def test_temporary_keyring_is_private_and_cleaned_up() -> None:
    with temporary_keyring() as gpg:
        home = gpg.gnupghome
        assert Path(home).parent == Path("/", "tmp")
        assert Path(home).name.startswith("portal-gpg-")
        assert len(home) < 40
        assert os.stat(home).st_mode & 0o777 == 0o700
        assert gpg.import_keys(_read(EXAMPLES / "NWU-NL.pub.asc")).count == 1
        # make sure an agent runs, so there is one to stop
        assert gpg.import_keys(_read(EXAMPLES / "RCP-RV.sec.asc")).sec_imported == 1
        assert _agent_pids_for(home)

    assert not os.path.exists(home)
    deadline = time.monotonic() + 10
    while _agent_pids_for(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _agent_pids_for(home) == []


def test_inspection_leaves_no_agent_or_directory_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    # A spy, not a mock: the real keyring is used, its directory is noted.
    homes: list[str] = []
    real = openpgp.temporary_keyring

    @contextmanager
    def spy() -> Iterator[Any]:
        with real() as gpg:
            homes.append(gpg.gnupghome)
            yield gpg

    monkeypatch.setattr(openpgp, "temporary_keyring", spy)
    inspect_public_key(_read(EXAMPLES / "ECT-EV.pub.asc"))
    with pytest.raises(KeyRejected):
        inspect_public_key(_read(BAD / "rsa2048.pub.asc"))
    with pytest.raises(KeyRejected):
        inspect_public_key(_read(BAD / "two-keys.pub.asc"))

    assert len(homes) == 3
    for home in homes:
        assert not os.path.exists(home)
        assert _agent_pids_for(home) == []


def test_grouped_fingerprint_reads_in_fours() -> None:
    from portal.registry.openpgp import grouped_fingerprint

    fpr = "4DA66F21B774DD004FC8AD4E71CB3574A170734D"
    assert grouped_fingerprint(fpr) == "4DA6 6F21 B774 DD00 4FC8 AD4E 71CB 3574 A170 734D"
    assert grouped_fingerprint(fpr, middle_gap=True) == (
        "4DA6 6F21 B774 DD00 4FC8  AD4E 71CB 3574 A170 734D"
    )
