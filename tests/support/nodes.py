"""Several nodes of one portal on one machine, laid out as they are on several machines
(issue 23; docs/deployment.md, "Several nodes"): one database, one Redis (and one queue name),
one data directory (the blob store, with its ``tmp/`` and the assemblies' ``staging/``) for
all; for each node an instance directory of its own.

Every node reads its own copy of the same :data:`SHARED_KEYS`, made once by ``portal init``:
the secret key (sessions and CSRF tokens: a user whose next request lands on another node
stays signed in), the sealing key (protected identifiers and mark terms, sealed by a web node,
read by whichever worker assembles) and the TOTP key (the authenticator seeds). A worker node
also has its own local copy of the signing key and passphrase (never on the shared
filesystem, never on a web node); the keyrings it makes from them are per process, under the
local ``/tmp`` and locked by their process (:mod:`portal.registry.openpgp`).

Used by ``bench/multinode.py`` and ``tests/integrity/test_nodes.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from portal import audit
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.eligibility.policy import load_policy
from portal.registry.models import Authority, Item, Provider
from portal.state import PortalState
from tests.support import factories as make
from tests.support.package_world import POLICIES, World, blob_item, build_world, user
from tests.support.packages import KEYS, REPO

#: Files of an instance directory every node must share (``portal init`` makes them).
SHARED_KEYS = ("secret_key", "sealing_key", "totp_key")
#: The worker's signing key and passphrase (the example ones), a copy per node.
SIGNING = (
    ("PORTAL_SIGNING_KEY", "mechanism-signing.sec.asc"),
    ("PORTAL_SIGNING_PASSPHRASE_FILE", "mechanism-signing.passphrase"),
)
_CLAIMED = re.compile(r"package (\d+): run \d+ claimed")
_STARTED = "Huey consumer started"


@dataclass(frozen=True)
class Node:
    name: str
    instance: Path
    env: dict[str, str]  # PORTAL_* for its web server and its worker
    signing: dict[str, str]  # and, for its worker only, the signing key's copy

    @property
    def worker_log(self) -> Path:
        return self.instance / "worker.log"


def _copy_private(source: Path, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o600)


def portal_command() -> str:
    return str(Path(sys.executable).with_name("portal"))


def portal_init(env: Mapping[str, str], instance: Path) -> None:
    """``portal init`` with ``env`` into ``instance``: the shared keys, and the schema."""
    done = subprocess.run(
        [portal_command(), "init"],
        env={**_base_env(), **env, "PORTAL_INSTANCE_DIR": str(instance)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"portal init failed: {done.stderr.strip()}")


def make_nodes(root: Path, count: int, env: Mapping[str, str], keys_from: Path) -> list[Node]:
    """``count`` nodes under ``root`` sharing ``env`` (database, Redis, queue name, data
    directory), each with an instance directory of its own holding copies of the shared keys
    of the instance directory ``keys_from``, and its own copy of the signing key."""
    nodes = []
    for n in range(1, count + 1):
        name = f"node{n}"
        instance = root / name / "instance"
        instance.mkdir(mode=0o700, parents=True)
        for key in SHARED_KEYS:
            _copy_private(keys_from / key, instance / key)
        signing = {}
        for variable, filename in SIGNING:
            _copy_private(KEYS / filename, root / name / "keys" / filename)
            signing[variable] = str(root / name / "keys" / filename)
        node_env = {**env, "PORTAL_INSTANCE_DIR": str(instance)}
        nodes.append(Node(name, instance, node_env, signing))
    return nodes


def _base_env() -> dict[str, str]:
    """This process's environment without any PORTAL_* setting of its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to the worker's process group (running jobs finish first), then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def workers(nodes: Sequence[Node], threads: int = 1) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A ``portal worker --workers threads`` on every node (its log: ``node.worker_log``),
    once all have started their consumers; stopped with SIGINT at the end."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for node in nodes:
            with node.worker_log.open("ab") as log:
                started.append(
                    subprocess.Popen(
                        [portal_command(), "worker", "--workers", str(threads)],
                        cwd=REPO,
                        env={**_base_env(), **node.env, **node.signing},
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + 120
        for node, process in zip(nodes, started, strict=True):
            while _STARTED not in node.worker_log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = node.worker_log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the worker of {node.name} did not start:\n{tail}")
                time.sleep(0.1)
        yield started
    finally:
        for process in started:
            _stop(process)


def claims(node: Node) -> list[int]:
    """The package ids whose assembly this node's worker claimed, in its log's order."""
    text = node.worker_log.read_text(errors="replace") if node.worker_log.exists() else ""
    return [int(found) for found in _CLAIMED.findall(text)]


def package_requests(state: PortalState, count: int, video_bytes: int) -> tuple[World, list[str]]:
    """The package world (tests/support/package_world.py) and ``count`` approved requests for
    its items, decided, each with a cleared video of its own (``video_bytes`` random bytes,
    so every package differs); the requests' codes."""
    with state.sessions() as db:
        world = build_world(db, state.blobs, state.sealer)
        authority = make.stored(db, Authority, world.authority_id)
        provider = make.stored(db, Provider, world.provider_id)
        shared = [make.stored(db, Item, item_id) for item_id in world.items.values()]
        officer = user(db, world.officer_id)
        policy = load_policy(POLICIES)
        now = utcnow()
        codes = []
        for n in range(1, count + 1):
            video = blob_item(
                db, state.blobs, provider, f"ITM-N{n:04d}",
                b"\x00\x00\x00\x18ftypmp42" + os.urandom(video_bytes),
                kind="video", title=f"Video {n}", media_type="video/mp4",
                original_filename=f"clip-{n}.mp4", cleared_as_is=True,
            )  # fmt: skip
            make.consent(db, provider, authority, item=video, at=now - timedelta(days=3))
            rfa = make.rfa(
                db, authority, f"RFA-2026-{500 + n:04d}", status="approved",
                items=[*shared, video], submitted_at=now - timedelta(days=9),
            )  # fmt: skip
            run_check(db, rfa, policy, requested_by=officer, actor=audit.actor_label(officer))
            codes.append(rfa.code)
        db.commit()
    return world, codes
