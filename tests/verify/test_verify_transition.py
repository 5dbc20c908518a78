"""portal-verify follows signing-key transition statements from the pinned fingerprint: real gpg,
real packages, statements signed the way `portal keys rotate-signing` signs them (one armoured
block holding a signature by each key). Each failure has its own exit code and words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal import verify
from portal.registry.signing_keys import armor_signature, signature_packets
from portal.verify.transition import statement_bytes
from tests.support.packages import (
    AUTHORITY,
    SENDER,
    SENDER_FPR,
    BuiltPackage,
    FastSealer,
    build_package,
    gpg_run,
    keyring,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "signing"
SUCCESSOR = (DATA / "successor.fingerprint").read_text("ascii").strip()
REVOKED = (DATA / "revoked-signer.fingerprint").read_text("ascii").strip()
YESTERDAY = datetime.now(UTC) - timedelta(days=1)

Run = Callable[..., tuple[int, str]]


@pytest.fixture(scope="module")
def sealer() -> Iterator[FastSealer]:
    with FastSealer() as fast:
        fast.add_key("successor", DATA / "successor.sec.asc", SUCCESSOR)
        fast.add_key("revoked-signer", DATA / "revoked-signer.sec.asc", REVOKED)
        yield fast


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """The recipient: its secret key, the pinned key and the successor's public key."""
    files = (DATA / "successor.pub.asc",)
    with keyring(secret=(AUTHORITY,), public=(SENDER,), files=files) as path:
        yield path


@pytest.fixture(scope="module")
def by_successor(sealer: FastSealer, tmp_path_factory: pytest.TempPathFactory) -> BuiltPackage:
    return build_package(tmp_path_factory.mktemp("succ"), sealer=sealer, signed_by="successor")


@pytest.fixture
def run(home: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def call(
        package: Path, *extra: str, pin: str = SENDER_FPR, gnupghome: Path = home
    ) -> tuple[int, str]:
        capsys.readouterr()
        code = verify.main(
            [str(package), "--sender-fingerprint", pin, "--gnupghome", str(gnupghome), *extra]
        )
        return code, capsys.readouterr().out

    return call


def statement(
    sealer: FastSealer,
    where: Path,
    *,
    old: str = SENDER,
    new: str = "successor",
    signed_by: tuple[str, ...] = ("old", "new"),
    at: datetime = YESTERDAY,
    edit: Callable[[bytes], bytes] | None = None,
) -> Path:
    """A transition statement file with its signatures beside it (STATEMENT.json.asc)."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"transition-{old}-{new}.json"
    path.write_bytes(
        statement_bytes(sealer.fingerprint(old), sealer.fingerprint(new), at, "scheduled rotation")
    )
    names = {"old": old, "new": new}
    packets = b"".join(
        signature_packets(sealer.detached(path, names[who]).decode()) for who in signed_by
    )
    Path(f"{path}.asc").write_text(armor_signature(packets), encoding="ascii")
    if edit is not None:
        path.write_bytes(edit(path.read_bytes()))
    return path


def test_a_package_by_the_successor_verifies_through_the_statement(
    run: Run, sealer: FastSealer, by_successor: BuiltPackage, tmp_path: Path
) -> None:
    code, out = run(by_successor.path)
    assert code == verify.EXIT_WRONG_SIGNER, out  # without the statement: another key
    code, out = run(by_successor.path, "--transition", str(statement(sealer, tmp_path)))
    assert code == 0, out
    assert "VERIFIED" in out and "transition statement" in out


def test_stock_gpg_sees_two_signatures_on_a_statement(
    sealer: FastSealer, home: Path, tmp_path: Path
) -> None:
    path = statement(sealer, tmp_path)
    status = gpg_run(home, "--status-fd", "1", "--verify", f"{path}.asc", str(path)).stdout
    validsig = [line.split()[-1] for line in status.decode().splitlines() if " VALIDSIG " in line]
    assert sorted(validsig) == sorted([SENDER_FPR, SUCCESSOR])


@pytest.mark.parametrize("only", ["old", "new"])
def test_a_statement_signed_by_one_key_only(
    run: Run, sealer: FastSealer, by_successor: BuiltPackage, tmp_path: Path, only: str
) -> None:
    path = statement(sealer, tmp_path, signed_by=(only,))
    code, out = run(by_successor.path, "--transition", str(path))
    assert code == verify.EXIT_TRANSITION_ONE_SIGNATURE == 30, out
    assert f"is signed only by the {only} key" in out and "both the old and the new" in out


def test_an_altered_statement(
    run: Run, sealer: FastSealer, by_successor: BuiltPackage, tmp_path: Path
) -> None:
    path = statement(sealer, tmp_path, edit=lambda data: data.replace(b'","', b'", "'))
    code, out = run(by_successor.path, "--transition", str(path))
    assert code == verify.EXIT_TRANSITION_INVALID == 31, out
    assert "canonical form" in out


def test_a_retired_key_signs_nothing_new(run: Run, sealer: FastSealer, tmp_path: Path) -> None:
    """The old key handed over yesterday; a package it signed today is refused (the restart
    trap: a worker still configured with the old key)."""
    late = build_package(tmp_path / "late", sealer=sealer)
    assert run(late.path)[0] == 0  # without the statement nobody can know
    code, out = run(late.path, "--transition", str(statement(sealer, tmp_path / "t")))
    assert code == verify.EXIT_WRONG_SIGNER, out
    assert "after it handed over to its successor" in out


def test_a_fork_in_the_chain(
    run: Run, sealer: FastSealer, by_successor: BuiltPackage, tmp_path: Path, home: Path
) -> None:
    one = statement(sealer, tmp_path / "a")
    two = statement(sealer, tmp_path / "b", new="revoked-signer")
    with keyring(
        secret=(AUTHORITY,), public=(SENDER,),
        files=(DATA / "successor.pub.asc", DATA / "revoked-signer.pub.asc"),
    ) as both:  # fmt: skip
        code, out = run(by_successor.path, "--transition", str(one), "--transition", str(two),
                        gnupghome=both)  # fmt: skip
    assert code == verify.EXIT_TRANSITION_INVALID, out
    assert "hands over twice" in out


def test_a_revoked_key_fails_whatever_it_signed(
    run: Run, sealer: FastSealer, by_successor: BuiltPackage, tmp_path: Path
) -> None:
    signed = build_package(tmp_path / "rev", sealer=sealer, signed_by="revoked-signer")
    handover = statement(sealer, tmp_path / "t", old="revoked-signer")
    files = (DATA / "revoked-signer.pub.asc", DATA / "successor.pub.asc")
    with keyring(secret=(AUTHORITY,), public=(), files=files) as revoked_home:
        assert run(signed.path, pin=REVOKED, gnupghome=revoked_home)[0] == 0  # not yet revoked
        gpg_run(revoked_home, "--import", str(DATA / "revoked-signer.rev"))
        code, out = run(signed.path, pin=REVOKED, gnupghome=revoked_home)
        assert code == verify.EXIT_KEY_REVOKED == 32, out
        assert "REVOKED" in out
        code, out = run(
            by_successor.path, "--transition", str(handover), pin=REVOKED, gnupghome=revoked_home
        )
        assert code == verify.EXIT_KEY_REVOKED, out
