"""Schemathesis keeps the OpenAPI description true: for every operation it describes,
generated requests (with a valid token of a client holding every scope, against an
authority with a released package and a recall) never get a server error, and every
response matches the description. Also checks the description is complete: every API
route is in it, and the document is valid OpenAPI 3.1.

Runs on both databases; ``MAX_EXAMPLES`` keeps it well under a minute each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.packages.models import Recall
from portal.state import portal_state
from tests.support.api import api_client, bearer, token_for
from tests.support.recipient import Cipher, make_shipment

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]

MAX_EXAMPLES = 15
CHECKS = [not_a_server_error, response_schema_conformance]


def _world(app: Flask, db: Session, cipher: Cipher) -> dict[str, Any]:
    ship = make_shipment(app, db, cipher)
    recall = Recall(
        package_id=ship.package_id,
        reason="Consent withdrawn.",
        notice_sha256=portal_state(app).blobs.put_bytes(b"signed notice").sha256,
        created_at=utcnow(),
    )
    db.add(recall)
    db.commit()
    return {"code": ship.code, "recall_id": recall.id}


def test_every_api_route_is_described(app: Flask) -> None:
    described = app.test_client().get("/api/v1/openapi.json").get_json()
    paths = {
        (path, method)
        for path, item in described["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix("/api/v1")
            for arg in rule.arguments:
                path = path.replace(f"<int:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    assert routes == paths
    assert described["openapi"] == "3.1.0"


def test_api_conforms_to_its_description(make_app: Callable[..., Flask], cipher: Cipher) -> None:
    app = make_app(extra={"API_RATE_LIMIT": "100000 per minute"})
    with portal_state(app).sessions() as db:
        operations = _run(app, db, cipher)
    # Every described operation but the description itself (Schemathesis loads it, it
    # does not fuzz the address it was loaded from).
    assert operations == 14


def _run(app: Flask, db: Session, cipher: Cipher) -> int:
    world = _world(app, db, cipher)
    client = app.test_client()
    token = token_for(client, api_client(app, authority_code="AUTH-A"))
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.validate()
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        for mode in GenerationMode:  # valid and invalid input

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def generated(case: Any) -> None:
                case.call_and_validate(headers=bearer(token), checks=CHECKS)

            try:
                generated()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters and no body).
                assert mode is GenerationMode.NEGATIVE and not operation.body
        # And once with the real objects, so the success responses are checked too.
        known = {k: v for k, v in world.items() if k in operation.path_parameters}
        case = operation.Case(path_parameters=known) if known else operation.Case()
        if operation.body:
            case.body = {}
        case.call_and_validate(headers=bearer(token), checks=CHECKS)
        ran += 1
    return ran
