"""The identifiers withheld from a package are compiled into one matcher once per package,
not once per redacted item (security review of issue 14, finding 2: with 100,000 identifiers
compiling is what costs), and a prebuilt matcher redacts exactly as the marks alone do."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from portal.packages.assembly.assemble import assemble_package
from portal.packages.models import Package
from portal.redaction import matcher as matcher_module
from portal.redaction.matcher import Matcher
from portal.redaction.renditions import MarkSpec, redact
from portal.state import portal_state
from tests.packages.test_hidden_identifiers import HIDDEN, SIGNING, _package, _world
from tests.support.identifiers import LATIN_NAME

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

IDENTIFIER = MarkSpec(code="PID-1", kind="term", reason="protected identifier", term=LATIN_NAME)
OWN = MarkSpec(code="M-1", kind="term", reason="Identifies a witness", term="the mill")


def test_one_package_compiles_its_identifiers_once(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(**SIGNING)
    state = portal_state(app)
    items = {code: HIDDEN[code] for code in ("ITM-H0001", "ITM-H0013", "ITM-H0014")}
    world, code = _world(state, items)
    package_id, _package_code = _package(state, world)
    compiled: list[int] = []
    original = Matcher.__init__

    def counting(self: Matcher, terms: Iterable[tuple[str, str]]) -> None:
        listed = list(terms)
        if any(term_code == code for term_code, _term in listed):
            compiled.append(len(listed))
        original(self, listed)

    monkeypatch.setattr(matcher_module.Matcher, "__init__", counting)

    assemble_package(state, package_id)

    with state.sessions() as session:
        package = session.scalars(select(Package).where(Package.id == package_id)).one()
        assert package.status == "assembled", package.failure_reason
    assert compiled == [1]  # three items redacted for the identifier, one compilation


@pytest.mark.parametrize(
    ("media_type", "name", "data"),
    [
        ("text/plain", "soft.txt", HIDDEN["ITM-H0013"][2]),
        ("text/plain", "partial.txt", HIDDEN["ITM-H0014"][2]),
        ("application/pdf", "pages.pdf", HIDDEN["ITM-H0001"][2]),
    ],
)
def test_a_prebuilt_matcher_redacts_as_the_marks_do(
    tmp_path: Path, media_type: str, name: str, data: bytes
) -> None:
    source = tmp_path / name
    source.write_bytes(data)
    marks = (OWN, IDENTIFIER)
    alone = redact(source, media_type, marks, tmp_path / "alone")
    prebuilt = Matcher([(IDENTIFIER.code, LATIN_NAME), ("PID-2", "Someone Else Entirely")])
    shared = redact(source, media_type, marks, tmp_path / "shared", matcher=prebuilt)
    assert shared == alone
    assert [applied.code for applied in shared.applied] == ["M-1", "PID-1"]  # not PID-2
    assert any(applied.occurrences for applied in shared.applied)
