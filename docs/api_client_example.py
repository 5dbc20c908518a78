#!/usr/bin/env python3
"""An authority's system talking to the Sharing Portal API with nothing but the Python
standard library (urllib): no portal code, no third-party packages.

    export PORTAL_API=https://portal.example.org/api/v1
    export PORTAL_CLIENT_ID=spc_...  PORTAL_CLIENT_SECRET=...
    python3 api_client_example.py submit request.json      # prints the request's code
    python3 api_client_example.py status RFA-2026-0001
    python3 api_client_example.py fetch RFA-2026-0001 --out ./received

``fetch`` downloads every package of the request that is available (resuming an
interrupted download with Range), checks the file's SHA-256 against the portal's record,
saves the detached signature beside it, and acknowledges receipt. Verify the package
offline afterwards with ``portal-verify`` or with gpg, tar and bagit.py.

Exit codes: 0 done, 1 the portal refused (its problem+json is printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024


class Refused(Exception):
    """The portal answered with an error (application/problem+json)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem


class Portal:
    def __init__(self, base: str, client_id: str, secret: str) -> None:
        if urllib.parse.urlsplit(base).scheme not in ("https", "http"):
            raise ValueError("PORTAL_API must be an https:// (or, locally, http://) URL")
        self.base = base.rstrip("/")
        self.client_id = client_id
        self.secret = secret
        self.token: str | None = None

    def _open(self, request: urllib.request.Request) -> Any:
        try:
            return urllib.request.urlopen(request, timeout=60)  # noqa: S310 - http(s) only
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            try:
                problem = json.loads(body)
            except ValueError:
                problem = {"title": exc.reason, "detail": body[:200]}
            raise Refused(exc.code, problem) from None

    def obtain_token(self) -> str:
        """Client credentials grant (HTTP Basic); tokens live 15 minutes."""
        basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - http(s) only (checked above)
            self.base + "/oauth/token",
            data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
            headers={"Authorization": f"Basic {basic}"},
            method="POST",
        )
        with self._open(request) as response:
            self.token = json.load(response)["access_token"]
        return self.token

    def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        if self.token is None:
            self.obtain_token()
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - http(s) only (checked above)
            self.base + path, data=data, headers=all_headers, method=method
        )
        return self._open(request)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        with self._request(method, path, body) as response:
            return json.load(response)

    def download(self, path: str, target: Path) -> None:
        """Fetch to ``target``, resuming from what is already there."""
        have = target.stat().st_size if target.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            response = self._request("GET", path, headers=headers)
        except Refused as exc:
            if exc.status == 416:  # nothing left to fetch
                return
            raise
        with response, target.open("ab" if response.status == 206 else "wb") as sink:
            while chunk := response.read(CHUNK):
                sink.write(chunk)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def submit(portal: Portal, request_file: Path) -> str:
    created = portal.call("POST", "/requests", json.loads(request_file.read_text("utf-8")))
    return str(created["code"])


def fetch(portal: Portal, rfa_code: str, out: Path) -> list[str]:
    """Download, check and acknowledge every available package of the request."""
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for package in portal.call("GET", "/packages")["items"]:
        if package["rfa"] != rfa_code or package["status"] != "released":
            continue
        code = package["code"]
        target = out / f"{code}.tar.gpg"
        portal.download(f"/packages/{code}/download", target)
        if sha256_of(target) != package["file_sha256"]:
            target.unlink()
            raise Refused(0, {"title": "Corrupt download", "detail": f"{code}: SHA-256 differs"})
        signature = out / f"{code}.tar.gpg.sig"
        signature.unlink(missing_ok=True)
        portal.download(f"/packages/{code}/signature", signature)
        if package["acknowledged_at"] is None:
            portal.call("POST", f"/packages/{code}/acknowledge")
        done.append(code)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("submit").add_argument("request_file", type=Path)
    commands.add_parser("status").add_argument("rfa_code")
    fetching = commands.add_parser("fetch")
    fetching.add_argument("rfa_code")
    fetching.add_argument("--out", type=Path, default=Path("received"))
    args = parser.parse_args(argv)
    try:
        portal = Portal(
            os.environ["PORTAL_API"],
            os.environ["PORTAL_CLIENT_ID"],
            os.environ["PORTAL_CLIENT_SECRET"],
        )
    except KeyError as missing:
        print(f"set {missing.args[0]}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        if args.command == "submit":
            print(submit(portal, args.request_file))
        elif args.command == "status":
            found = portal.call("GET", f"/requests/{urllib.parse.quote(args.rfa_code)}")
            print(f"{found['code']}: {found['status_label']}")
        else:
            for code in fetch(portal, args.rfa_code, args.out):
                print(f"{code}: downloaded, checked and acknowledged")
    except Refused as exc:
        print(json.dumps(exc.problem, indent=2), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
