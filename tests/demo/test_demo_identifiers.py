"""The demo's protected identifiers: fictional, for persons at risk only, in several scripts
with a partial-name case; loaded sealed into the register by `portal demo`."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, select

from portal.config import Settings
from portal.demo import run_demo
from portal.demo.dataset import IDENTIFIERS, PERSONS, build_dataset
from portal.registry.identifiers import identifiers_of
from portal.registry.models import Person
from portal.state import build_state
from tests.support.identifiers import stored_text

KEYS = Path(__file__).resolve().parents[2] / "keys_example"


def test_the_demo_identifiers_show_what_the_register_is_for() -> None:
    dataset = build_dataset(KEYS)
    records = dataset.of_type("protected_identifier")
    assert [(r["person"], r["kind"], r["value"]) for r in records] == list(IDENTIFIERS)
    assert {r["person"] for r in records} <= {code for code, p in PERSONS.items() if p[2]}
    values = [r["value"] for r in records]
    assert any(re.search("[\u0600-\u06ff]", value) for value in values)  # Arabic script
    assert any(re.search("[\u1000-\u109f]", value) for value in values)  # Myanmar script
    texts = "\n".join(data.decode("utf-8", "ignore") for data in dataset.files.values())
    names = [r["value"] for r in records if r["kind"] == "name"]
    partial = [v for v in names if len(v.split()) >= 3 and " ".join(v.split()[:2]) in texts]
    assert partial and all(value not in texts for value in partial)  # only a part is written


def test_the_demo_loads_them_sealed(settings: Settings, engine: Engine) -> None:
    state = build_state(settings, engine=engine)
    run_demo(state, logins_file=settings.instance_dir / "demo_logins.json")
    with state.sessions() as session:
        assert not any(value in stored_text(session) for _, _, value in IDENTIFIERS)
        found = set()
        for person in session.scalars(select(Person)):
            found |= {
                (person.code, entry.row.kind, entry.value)
                for entry in identifiers_of(session, state.sealer, person)
            }
    assert found == set(IDENTIFIERS)
