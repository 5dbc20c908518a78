"""Compute slots: at most N requests of a web process run the application at once, and a
response's body goes out after the slot is given back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portal import create_web_app
from portal.config import DEFAULT_SLOTS, ConfigError
from portal.web.compute_slots import ComputeSlots

App = Callable[[dict[str, Any], Any], Iterable[bytes]]


class Busy:
    """A WSGI app that works for a while and records how many requests ran it at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]


def _start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    """A WSGI server's start_response that sends nothing."""
    return lambda data: None


def _at_once(app: App, requests: int) -> list[bytes]:
    bodies: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: bodies.append(b"".join(app({}, _start))))
        for _ in range(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return bodies


def test_at_most_the_slots_run_the_application_at_once() -> None:
    free = Busy(0.05)
    assert _at_once(free, 6) == [b"done"] * 6
    assert free.most > 2  # without slots the six overlap (this test can fail)

    limited = Busy(0.05)
    assert _at_once(ComputeSlots(limited, 2), 6) == [b"done"] * 6
    assert limited.most == 2


def test_a_body_is_sent_after_the_slot_is_given_back() -> None:
    """A download's body (here a generator still to be read) holds no slot: with one slot,
    another request runs while the first body is unread."""
    sent = threading.Event()

    def download(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def body() -> Iterator[bytes]:
            yield b"first chunk"
            sent.wait(timeout=30)
            yield b"last chunk"

        return body()

    gated = ComputeSlots(download, 1)
    first = iter(gated({}, _start))
    assert next(first) == b"first chunk"
    second: list[bytes] = []
    other = threading.Thread(target=lambda: second.append(next(iter(gated({}, _start)))))
    other.start()
    other.join(timeout=10)
    assert second == [b"first chunk"]  # the second request did not wait for the first body
    sent.set()
    assert list(first) == [b"last chunk"]


def test_a_failing_request_gives_its_slot_back() -> None:
    def failing(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("the application failed")

    gated = ComputeSlots(failing, 1)
    for _ in range(3):  # a slot kept by the first failure would block the second for good
        with pytest.raises(RuntimeError):
            gated({}, _start)


def test_zero_slots_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        ComputeSlots(Busy(0), 0)


def _web_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slots: str | None) -> Any:
    monkeypatch.setenv("PORTAL_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_TESTING", "1")
    monkeypatch.delenv("PORTAL_DATABASE_URL", raising=False)
    if slots is None:
        monkeypatch.delenv("PORTAL_COMPUTE_SLOTS", raising=False)
    else:
        monkeypatch.setenv("PORTAL_COMPUTE_SLOTS", slots)
    return create_web_app()


def test_the_web_app_computes_in_slots_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _web_app(monkeypatch, tmp_path, None)
    assert isinstance(app.wsgi_app, ComputeSlots)
    assert app.wsgi_app.slots == DEFAULT_SLOTS == 2
    client = app.test_client()
    for _ in range(DEFAULT_SLOTS + 1):  # served through the slots, each given back
        assert client.get("/healthz").status_code == 200

    assert not isinstance(_web_app(monkeypatch, tmp_path, "0").wsgi_app, ComputeSlots)
    with pytest.raises(ConfigError, match="PORTAL_COMPUTE_SLOTS must be a whole number"):
        _web_app(monkeypatch, tmp_path, "two")
