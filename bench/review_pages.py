"""The redaction review over real HTTP: a cached page image served by gunicorn, beside
``/healthz`` (one ``SELECT 1``) on the same server in the same run, and the review page itself.

Sets up a fresh demo instance (``portal init`` + ``portal demo``, SQLite) in a temporary
directory, renders page 1 of the demo's ITM-0013 into the page cache (what the worker's
``render_pages`` job does; its first-render time per page is ``bench/page_images.py``),
starts gunicorn (``bench/load.py``'s), signs in as a legal officer (password, then TOTP) and
requests each URL ``--runs`` times, one at a time. Prints min / median / p95 wall time per
request and the ratio to ``/healthz``. The issue's target: a cached page image in under 300 ms.

    .venv/bin/python bench/review_pages.py [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load import gunicorn, sign_in
from seed import Login

REPO_ROOT = Path(__file__).resolve().parent.parent
OFFICER = "officer.one@mechanism.example"
REVIEW = "/review/RFA-2025-0041/items/ITM-0013"


def _portal(env: dict[str, str], *args: str) -> None:
    portal = Path(sys.executable).with_name("portal")
    subprocess.run([str(portal), *args], cwd=REPO_ROOT, env=env, check=True, capture_output=True)


def _times(get: object, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = get(url, timeout=60)  # type: ignore[operator]
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        instance = Path(tmp)
        database = f"sqlite:///{instance / 'portal.db'}"
        env = {
            **os.environ,
            "PORTAL_DEMO": "1",
            "PORTAL_INSTANCE_DIR": str(instance),
            "PORTAL_DATABASE_URL": database,
        }
        env.pop("PORTAL_REDIS_URL", None)
        _portal(env, "init")
        _portal(env, "demo")
        os.environ.update({k: env[k] for k in ("PORTAL_INSTANCE_DIR", "PORTAL_DATABASE_URL")})

        from sqlalchemy import create_engine, text

        from portal.config import Settings
        from portal.redaction.page_images import PageImages
        from portal.storage import FileBlobStore

        settings = Settings.from_env(env)
        with create_engine(database).connect() as connection:
            row = connection.execute(
                text("SELECT sha256, media_type FROM item WHERE code = 'ITM-0013'")
            ).one()
        source = FileBlobStore(settings.blob_dir).path(row.sha256)
        start = time.perf_counter()
        PageImages(settings.page_cache_dir).render(source, row.media_type, row.sha256, 1)
        first = (time.perf_counter() - start) * 1000
        logins = json.loads((instance / "demo_logins.json").read_text())["logins"]
        entry = logins[OFFICER]
        login = Login(OFFICER, entry["password"], entry["totp_secret"], "legal_officer")
        with gunicorn(database, instance, None, 2) as server:
            http = sign_in(server.base, login, None)
            rows = {
                "/healthz (baseline)": _times(http.get, f"{server.base}/healthz", args.runs),
                "cached page image": _times(
                    http.get, f"{server.base}{REVIEW}/pages/1.png", args.runs
                ),
                "review page (HTML)": _times(http.get, f"{server.base}{REVIEW}", args.runs),
            }
    base = statistics.median(rows["/healthz (baseline)"])
    print(f"first render of the page (the worker's part): {first:.0f} ms")
    print(f"{'request':24} {'min ms':>8} {'median':>8} {'p95':>8} {'x healthz':>10}")
    for name, times in rows.items():
        ordered = sorted(times)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        median = statistics.median(times)
        print(f"{name:24} {ordered[0]:8.1f} {median:8.1f} {p95:8.1f} {median / base:10.1f}")


if __name__ == "__main__":
    main()
