"""The OpenAPI 3.1 description of the API, served at ``GET /api/v1/openapi.json``.

Built from Python (not a static file) so that the request fields, scopes and statuses
come from the same constants the code uses; tests/api/test_api_schemathesis.py runs
Schemathesis against it to keep it true.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from portal.api.blueprint import PREFIX, bp
from portal.api.models import API_SCOPES
from portal.api.shapes import DATE_FIELDS, MAX_OFFENCES, TEXT_FIELDS
from portal.authz.permissions import public
from portal.packages.recalls import DISPOSITIONS
from portal.rfa.drafting import MESSAGE_MAX, REFERENCE_MAX, TEXT_MAX
from portal.rfa.models import PROCEEDINGS_TYPES, URGENCIES
from portal.rfa.status import LABELS

JSON = "application/json"
PROBLEM = "application/problem+json"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **more: Any) -> Schema:
    return {"type": [kind, "null"], **more}


TIMESTAMP = {"type": "string", "format": "date-time"}
N_TIMESTAMP = _nullable("string", format="date-time")
N_DATE = _nullable("string", format="date")
N_SHA256 = {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"}


def _problem(description: str) -> Schema:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


PROTECTED_ERRORS = {
    "401": _problem("No, or an unknown, expired or revoked, access token."),
    "403": _problem("The access token lacks the scope this needs, or the action is refused."),
    "404": _problem("No such object for the client's authority."),
    "429": _problem("Too many requests; wait and try again."),
    "default": _problem("Any other error (the same shape)."),
}


def _operation(
    summary: str,
    scope: str,
    responses: dict[str, Schema],
    *,
    operation_id: str,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    tag: str,
) -> Schema:
    op: Schema = {
        "summary": summary,
        "operationId": operation_id,
        "tags": [tag],
        "security": [{"oauth2": [scope]}],
        "responses": {**responses, **PROTECTED_ERRORS},
    }
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return op


CODE_PARAM = {
    "name": "code",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 32},
}


def _schemas() -> dict[str, Schema]:
    text_props: dict[str, Schema] = {
        name: {"type": "string", "maxLength": TEXT_MAX} for name in TEXT_FIELDS
    }
    text_props["their_reference"] = {"type": "string", "maxLength": REFERENCE_MAX}
    text_props["proceedings_type"] = {"type": "string", "enum": list(PROCEEDINGS_TYPES)}
    text_props["urgency"] = {"type": "string", "enum": list(URGENCIES), "default": "normal"}
    dates = {name: {"type": "string", "format": "date"} for name in DATE_FIELDS}
    offences = {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": MAX_OFFENCES,
        "description": "Offences of the mandate, by name (as listed in the request form).",
    }
    summary_props: dict[str, Schema] = {
        "code": {"type": "string", "examples": ["RFA-2026-0001"]},
        "status": {"type": "string", "enum": list(LABELS)},
        "status_label": {"type": "string"},
        "their_reference": {"type": "string"},
        "urgency": {"type": "string", "enum": list(URGENCIES)},
        "created_at": TIMESTAMP,
        "submitted_at": N_TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    detail_props = {
        **summary_props,
        **{name: {"type": "string"} for name in TEXT_FIELDS},
        "proceedings_type": {"type": "string", "enum": list(PROCEEDINGS_TYPES)},
        "urgency": {"type": "string", "enum": list(URGENCIES)},
        "offences": {"type": "array", "items": {"type": "string"}},
        **{name: N_DATE for name in DATE_FIELDS},
    }
    return {
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details; OAuth errors add error and "
            "error_description, invalid input adds errors (messages per field).",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "errors": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "error": {"type": "string"},
                "error_description": {"type": "string"},
                "reference": {"type": "string"},
            },
        },
        "Token": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "scope"],
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"type": "string", "enum": ["Bearer"]},
                "expires_in": {"type": "integer"},
                "scope": {"type": "string"},
            },
        },
        "NewRequest": {
            "type": "object",
            "description": "The fields of the request form. Submission needs "
            "their_reference, legal_basis, proceedings_type, offences, summary_of_facts, "
            "assistance_sought, period_from and period_to; the rules are the form's.",
            "additionalProperties": False,
            "properties": {**text_props, **dates, "offences": offences},
        },
        "RequestSummary": {
            "type": "object",
            "required": list(summary_props),
            "properties": summary_props,
        },
        "Request": {"type": "object", "required": list(detail_props), "properties": detail_props},
        "RequestPage": {
            "type": "object",
            "required": ["items", "page", "pages", "total", "size"],
            "properties": {
                "items": {"type": "array", "items": _ref("RequestSummary")},
                "page": {"type": "integer", "minimum": 1},
                "pages": {"type": "integer", "minimum": 1},
                "total": {"type": "integer", "minimum": 0},
                "size": {"type": "integer", "minimum": 1},
            },
        },
        "NewMessage": {
            "type": "object",
            "required": ["body"],
            "additionalProperties": False,
            "properties": {
                "body": {"type": "string", "minLength": 1, "maxLength": MESSAGE_MAX},
                "return_to_review": {
                    "type": "boolean",
                    "default": False,
                    "description": "Answers a clarification request and returns the "
                    "request to review.",
                },
            },
        },
        "Message": {
            "type": "object",
            "required": ["id", "body", "created_at", "author", "author_role"],
            "properties": {
                "id": {"type": "integer"},
                "body": {"type": "string"},
                "created_at": TIMESTAMP,
                "author": _nullable("string"),
                "author_role": _nullable("string"),
            },
        },
        "MessageList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("Message")}},
        },
        "Package": {
            "type": "object",
            "required": [
                "code",
                "status",
                "rfa",
                "released_at",
                "expires_at",
                "file_size",
                "file_sha256",
                "signature_sha256",
                "signer_fingerprint",
                "download_limit",
                "downloads_counted",
                "acknowledged_at",
            ],
            "properties": {
                "code": {"type": "string", "examples": ["PKG-2026-0001"]},
                "status": {
                    "type": "string",
                    "enum": ["released", "withdrawn", "recalled", "expired"],
                },
                "rfa": _nullable("string"),
                "released_at": N_TIMESTAMP,
                "expires_at": N_TIMESTAMP,
                "file_size": _nullable("integer"),
                "file_sha256": N_SHA256,
                "signature_sha256": N_SHA256,
                "signer_fingerprint": _nullable("string"),
                "download_limit": _nullable("integer"),
                "downloads_counted": {"type": "integer", "minimum": 0},
                "acknowledged_at": N_TIMESTAMP,
            },
        },
        "PackageList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("Package")}},
        },
        "Recall": {
            "type": "object",
            "required": [
                "id",
                "package",
                "reason",
                "created_at",
                "notice",
                "acknowledged_at",
                "disposition",
            ],
            "properties": {
                "id": {"type": "integer"},
                "package": {"type": "string"},
                "reason": {"type": "string"},
                "created_at": TIMESTAMP,
                "notice": {
                    "type": ["string", "null"],
                    "description": "The recall notice, clearsigned by the Mechanism "
                    "(null until issued).",
                },
                "acknowledged_at": N_TIMESTAMP,
                "disposition": {"type": ["string", "null"], "enum": [*DISPOSITIONS, None]},
            },
        },
        "RecallList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("Recall")}},
        },
        "RecallAcknowledgement": {
            "type": "object",
            "required": ["disposition"],
            "additionalProperties": False,
            "properties": {"disposition": {"type": "string", "enum": list(DISPOSITIONS)}},
        },
    }


def _oauth_paths() -> dict[str, Schema]:
    token_form = {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "scope": {
                "type": "string",
                "description": "Space-separated scopes; all of the client's when omitted.",
            },
            "client_id": {"type": "string", "description": "client_secret_post only"},
            "client_secret": {"type": "string", "description": "client_secret_post only"},
        },
    }
    revoke_form = {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string"},
            "token_type_hint": {"type": "string", "enum": ["access_token"]},
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
        },
    }
    errors = {
        "400": _problem("Invalid request, grant type or scope (RFC 6749 error member)."),
        "401": _problem("Client authentication failed (invalid_client)."),
        "429": _problem("Too many requests from this address."),
        "default": _problem("Any other error (the same shape)."),
    }
    form = "application/x-www-form-urlencoded"
    return {
        "/openapi.json": {
            "get": {
                "summary": "This description (public)",
                "operationId": "getOpenApi",
                "tags": ["oauth"],
                "security": [{}],
                "responses": {
                    "200": _json("The OpenAPI 3.1 document.", {"type": "object"}),
                    "429": _problem("Too many requests from this address."),
                    "default": _problem("Any other error (the same shape)."),
                },
            }
        },
        "/oauth/token": {
            "post": {
                "summary": "Obtain an access token (client credentials grant, 15 minutes)",
                "operationId": "issueToken",
                "tags": ["oauth"],
                "security": [{"clientBasic": []}, {}],
                "requestBody": {"required": True, "content": {form: {"schema": token_form}}},
                "responses": {"200": _json("An access token.", _ref("Token")), **errors},
            }
        },
        "/oauth/revoke": {
            "post": {
                "summary": "Revoke an access token (RFC 7009)",
                "operationId": "revokeToken",
                "tags": ["oauth"],
                "security": [{"clientBasic": []}, {}],
                "requestBody": {"required": True, "content": {form: {"schema": revoke_form}}},
                "responses": {
                    "200": _json("Revoked (or unknown: nothing to do).", {"type": "object"}),
                    **errors,
                },
            }
        },
    }


def _request_paths() -> dict[str, Schema]:
    page = {
        "name": "page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 1},
    }
    invalid = _problem("The entries are not valid; errors lists the messages per field.")
    bad = _problem("The body is not a JSON object.")
    refused = _problem("Not possible in the request's current state; nothing changed.")
    return {
        "/requests": {
            "post": _operation(
                "Submit a request for assistance",
                "rfa:write",
                {
                    "201": _json("Submitted.", _ref("Request")),
                    "400": bad,
                    "409": refused,
                    "422": invalid,
                },
                operation_id="submitRequest",
                body=_ref("NewRequest"),
                tag="requests",
            ),
            "get": _operation(
                "The authority's requests and their status, most recently changed first",
                "rfa:read",
                {"200": _json("A page of requests.", _ref("RequestPage")), "422": invalid},
                operation_id="listRequests",
                parameters=[page],
                tag="requests",
            ),
        },
        "/requests/{code}": {
            "get": _operation(
                "One request",
                "rfa:read",
                {"200": _json("The request.", _ref("Request"))},
                operation_id="getRequest",
                parameters=[CODE_PARAM],
                tag="requests",
            ),
        },
        "/requests/{code}/messages": {
            "get": _operation(
                "The clarification thread, oldest first",
                "rfa:read",
                {"200": _json("The messages.", _ref("MessageList"))},
                operation_id="listMessages",
                parameters=[CODE_PARAM],
                tag="requests",
            ),
            "post": _operation(
                "Write in the clarification thread",
                "rfa:write",
                {
                    "201": _json("Posted.", _ref("Message")),
                    "400": bad,
                    "409": refused,
                    "422": invalid,
                },
                operation_id="postMessage",
                parameters=[CODE_PARAM],
                body=_ref("NewMessage"),
                tag="requests",
            ),
        },
    }


def _package_paths() -> dict[str, Schema]:
    refused = _problem("Refused; the detail says why (nothing changed).")
    unavailable = _problem("The file is not available at the moment.")
    conditional = [
        {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "If-Range", "in": "header", "required": False, "schema": {"type": "string"}},
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
        },
    ]
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    file_headers = {
        "ETag": {"schema": {"type": "string"}, "description": "The file's SHA-256."},
        "Accept-Ranges": {"schema": {"type": "string"}},
    }
    recall_id = {
        "name": "recall_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
    return {
        "/packages": {
            "get": _operation(
                "The authority's released packages, newest first",
                "packages:read",
                {"200": _json("The packages.", _ref("PackageList"))},
                operation_id="listPackages",
                tag="packages",
            )
        },
        "/packages/{code}": {
            "get": _operation(
                "One package",
                "packages:read",
                {"200": _json("The package.", _ref("Package"))},
                operation_id="getPackage",
                parameters=[CODE_PARAM],
                tag="packages",
            )
        },
        "/packages/{code}/download": {
            "get": _operation(
                "Download the encrypted package (resumable with Range)",
                "packages:read",
                {
                    "200": {
                        "description": "The whole file (PKG-….tar.gpg).",
                        "headers": file_headers,
                        "content": {"application/octet-stream": {"schema": binary}},
                    },
                    "206": {
                        "description": "The requested range.",
                        "headers": file_headers,
                        "content": {"application/octet-stream": {"schema": binary}},
                    },
                    "304": {"description": "Not modified (If-None-Match matched)."},
                    "416": _problem("The range is outside the file."),
                    "503": unavailable,
                },
                operation_id="downloadPackage",
                parameters=[CODE_PARAM, *conditional],
                tag="packages",
            )
        },
        "/packages/{code}/signature": {
            "get": _operation(
                "The detached OpenPGP signature over the encrypted package",
                "packages:read",
                {
                    "200": {
                        "description": "The signature (ASCII-armoured or binary OpenPGP).",
                        "content": {
                            "application/pgp-signature": {
                                "schema": {
                                    "type": "string",
                                    "contentMediaType": "application/pgp-signature",
                                }
                            }
                        },
                    },
                    "304": {"description": "Not modified."},
                    "503": unavailable,
                },
                operation_id="getSignature",
                parameters=[CODE_PARAM, conditional[2]],
                tag="packages",
            )
        },
        "/packages/{code}/acknowledge": {
            "post": _operation(
                "Acknowledge receipt (after a download; once)",
                "packages:ack",
                {"200": _json("Acknowledged.", _ref("Package")), "409": refused},
                operation_id="acknowledgePackage",
                parameters=[CODE_PARAM],
                tag="packages",
            )
        },
        "/recalls": {
            "get": _operation(
                "The authority's recalls, unacknowledged first, with their signed notices",
                "packages:read",
                {"200": _json("The recalls.", _ref("RecallList"))},
                operation_id="listRecalls",
                tag="recalls",
            )
        },
        "/recalls/{recall_id}/acknowledge": {
            "post": _operation(
                "Confirm the recalled material was returned or destroyed",
                "packages:ack",
                {
                    "200": _json("Acknowledged.", _ref("Recall")),
                    "400": _problem("The body is not a JSON object."),
                    "409": refused,
                    "422": _problem("Say whether the material was returned or destroyed."),
                },
                operation_id="acknowledgeRecall",
                parameters=[recall_id],
                body=_ref("RecallAcknowledgement"),
                tag="recalls",
            )
        },
    }


def document(server_url: str) -> Schema:
    """The OpenAPI 3.1 document (``server_url``: the absolute URL the API is mounted at)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sharing Portal API",
            "version": "1",
            "description": "For authorities' case-management systems: submit requests for "
            "assistance, follow them, and fetch, verify and acknowledge packages. A client "
            "is registered by the Mechanism for one authority with fixed scopes, and sees "
            "that authority's objects only (others are 404). Errors are "
            "application/problem+json.",
        },
        "servers": [{"url": server_url}],
        "paths": {**_oauth_paths(), **_request_paths(), **_package_paths()},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "description": "Client credentials grant; send the access token as "
                    "Authorization: Bearer <token>.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{server_url}/oauth/token",
                            "scopes": dict(API_SCOPES),
                        }
                    },
                },
                "clientBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The client id and secret (client_secret_basic).",
                },
            },
        },
    }


@bp.get("/openapi.json")
@public("the description of the API is public, like any API's documentation")
def openapi_json() -> Response:
    return jsonify(document(request.host_url.rstrip("/") + request.script_root + PREFIX))
