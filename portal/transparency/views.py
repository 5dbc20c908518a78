"""The public endpoint of the transparency log, ``/transparency/...`` (no sign-in, GET only,
rate-limited per address): checkpoints, proofs and leaf records — public digests only.

- ``checkpoint`` (JSON), ``checkpoint.txt`` and ``checkpoint.txt.asc``: the latest signed one;
- ``checkpoints/<size>`` (JSON), ``checkpoints/<size>.txt`` and ``.txt.asc``: one by its size;
- ``proofs/inclusion?index=I&size=N`` (or ``leaf_hash=`` base64 or hex instead of ``index``);
- ``proofs/consistency?first=M&second=N``;
- ``leaves?start=I&count=C`` (at most :data:`MAX_LEAVES`) and ``leaves/<index>``.

Proofs are served for tree sizes up to the latest signed checkpoint, from the stored nodes (no
rehashing). The web process only reads: the worker appends and signs.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from flask_limiter import Limiter

from portal.authz.limiter import EXTENSION_KEY, client_address
from portal.authz.permissions import public
from portal.db import db
from portal.transparency import checkpoints, log
from portal.transparency.models import TransparencyCheckpoint
from portal.verify.merkle import b64

__all__ = ["MAX_LEAVES", "RATE_LIMIT", "bp", "register"]

bp = Blueprint("transparency", __name__, url_prefix="/transparency")

RATE_LIMIT = "120 per minute"
MAX_LEAVES = 1000
_MAX_NUMBER = 10**18
_WHY = "the transparency log is public: signed checkpoints, proofs and public digests only"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def register(app: Flask) -> None:
    """Register the blueprint, rate-limited per client address (after the limiter)."""
    limiter: Limiter = app.extensions[EXTENSION_KEY]
    limiter.shared_limit(RATE_LIMIT, scope="transparency", key_func=client_address)(bp)
    app.register_blueprint(bp)


@bp.errorhandler(_BadRequest)
def _refused(exc: _BadRequest) -> tuple[Response, int]:
    return jsonify(error=exc.message), exc.status


def _number(name: str, *, default: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise _BadRequest(400, f"give {name} (a whole number)")
        return default
    if not raw.isdecimal() or len(raw) > 18:
        raise _BadRequest(400, f"{name} must be a whole number")
    return int(raw)


def _signed_size() -> int:
    head = checkpoints.latest(db())
    if head is None:
        raise _BadRequest(404, "no checkpoint has been signed yet")
    return head.tree_size


def _size_within(size: int, what: str) -> int:
    signed = _signed_size()
    if not 0 < size <= signed:
        raise _BadRequest(
            404, f"{what} must be between 1 and {signed}, the latest signed checkpoint's size"
        )
    return size


def _checkpoint_json(checkpoint: TransparencyCheckpoint) -> dict[str, Any]:
    return {
        "origin": checkpoint.origin,
        "tree_size": checkpoint.tree_size,
        "root_hash": b64(bytes.fromhex(checkpoint.root_hash)),
        "checkpoint": checkpoint.body,
        "signature": checkpoint.signature,
        "signer_fingerprint": checkpoint.signer_fingerprint,
        "signed_at": checkpoint.signed_at.isoformat(),
    }


def _checkpoint(size: int | None) -> TransparencyCheckpoint:
    found = checkpoints.latest(db()) if size is None else checkpoints.by_size(db(), size)
    if found is None:
        raise _BadRequest(404, "no checkpoint of that size" if size else "no checkpoint yet")
    return found


def _text(body: str, media_type: str) -> Response:
    return Response(body, mimetype=media_type, content_type=f"{media_type}; charset=utf-8")


@bp.get("/checkpoint")
@public(_WHY)
def latest_checkpoint() -> Response:
    return jsonify(_checkpoint_json(_checkpoint(None)))


@bp.get("/checkpoint.txt")
@public(_WHY)
def latest_checkpoint_text() -> Response:
    return _text(_checkpoint(None).body, "text/plain")


@bp.get("/checkpoint.txt.asc")
@public(_WHY)
def latest_checkpoint_signature() -> Response:
    return _text(_checkpoint(None).signature, "application/pgp-signature")


@bp.get("/checkpoints/<int:size>")
@public(_WHY)
def checkpoint_by_size(size: int) -> Response:
    return jsonify(_checkpoint_json(_checkpoint(size)))


@bp.get("/checkpoints/<int:size>.txt")
@public(_WHY)
def checkpoint_text(size: int) -> Response:
    return _text(_checkpoint(size).body, "text/plain")


@bp.get("/checkpoints/<int:size>.txt.asc")
@public(_WHY)
def checkpoint_signature(size: int) -> Response:
    return _text(_checkpoint(size).signature, "application/pgp-signature")


def _leaf_hash_arg(raw: str) -> bytes:
    text = raw.strip()
    try:
        digest = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        digest = b""
    if len(digest) != 32:
        raise _BadRequest(400, "leaf_hash must be a SHA-256 hash, base64 or hex")
    return digest


@bp.get("/proofs/inclusion")
@public(_WHY)
def inclusion() -> Response:
    session = db()
    size = _size_within(_number("size", default=_signed_size()), "size")
    raw_hash = request.args.get("leaf_hash")
    if raw_hash:
        found = log.find_leaf(session, _leaf_hash_arg(raw_hash))
        if found is None:
            raise _BadRequest(404, "no leaf has that hash")
        index = found.index
    else:
        index = _number("index")
    if index >= size:
        raise _BadRequest(404, f"leaf {index} is not in the tree of {size} leaves")
    entry = log.leaves(session, index, 1)[0]
    return jsonify(
        index=index,
        tree_size=size,
        leaf=entry.record,
        leaf_hash=b64(entry.leaf_hash),
        inclusion_proof=[b64(h) for h in log.inclusion_proof(session, index, size)],
    )


@bp.get("/proofs/consistency")
@public(_WHY)
def consistency() -> Response:
    first = _size_within(_number("first"), "first")
    second = _size_within(_number("second", default=_signed_size()), "second")
    if first > second:
        raise _BadRequest(400, "first must not be larger than second")
    proof = log.consistency_proof(db(), first, second)
    return jsonify(first=first, second=second, proof=[b64(h) for h in proof])


def _leaf_json(entry: log.LeafEntry) -> dict[str, Any]:
    return {"index": entry.index, "leaf": entry.record, "leaf_hash": b64(entry.leaf_hash)}


@bp.get("/leaves")
@public(_WHY)
def leaf_records() -> Response:
    start = _number("start", default=0)
    count = min(_number("count", default=100), MAX_LEAVES)
    signed = _signed_size()
    entries = log.leaves(db(), start, max(0, min(count, signed - start)))
    return jsonify(tree_size=signed, leaves=[_leaf_json(entry) for entry in entries])


@bp.get("/leaves/<int:index>")
@public(_WHY)
def leaf_record(index: int) -> Response:
    if index >= _signed_size():
        raise _BadRequest(404, f"leaf {index} is not under the latest signed checkpoint")
    return jsonify(_leaf_json(log.leaves(db(), index, 1)[0]))
