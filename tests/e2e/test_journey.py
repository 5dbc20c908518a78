"""The whole journey in a real browser (issue 8, item 6), with screenshots at 1280 and 390 px of
each step and of every page visited in ``e2e-artifacts/journey/``, and layout and axe-core
checks on each (issue 22, tests/e2e/layout.py):

a requester submits a request; a legal officer takes it, adds an item, checks it and asks the
provider for consent; the provider grants; the officer checks again, approves and assembles a
package; a second officer releases it; the recipient downloads it (the file verifies offline
with the authority's key) and acknowledges receipt; the provider revokes its consent; the
recipient sees the recall of that item, checks the signed notice against the package and
acknowledges it; the officer checks again and makes the replacement package of the item that
remains, a second officer releases it, and the recipient downloads and verifies it.

The revoked item is ITM-0019, a PDF medical certificate of the demo provider PRV-REP with two
redaction marks (the patient's name as a term, her line as a page box); PRV-REP has given the
Northland War Crimes Unit no consent for it, so the consent step is real and the shared
rendition is redacted. Beside it, ITM-0020 (of PRV-UNM, which gave the unit standing consent)
is shared throughout and is what the replacement holds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.browser import KEYS, Actors, Server, expect_flash
from tests.e2e.flows import (
    add_candidate,
    ask_for_consent,
    run_eligibility_check,
    submit_request,
    take_and_add_candidate,
)
from tests.e2e.layout import Inspector
from tests.support.packages import keyring

REQUESTER = "requester@nwu.example"
OFFICER = "officer.one@mechanism.example"
SECOND_OFFICER = "officer.two@mechanism.example"
PROVIDER = "provider@counsel.example"
RECIPIENT = "recipient@nwu.example"
AUTHORITY = "NWU-NL"
ITEM = "ITM-0019"
ITEM_TITLE = "Medical certificate concerning Witness V-07"
KEPT_ITEM = "ITM-0020"
KEPT_TITLE = "Transcription of the checkpoint 7 vehicle log"
PROTECTED_NAME = "Mirela Quenzi"  # the demo's fictional name behind mark M1 of ITM-0019
ASSEMBLY_SECONDS = 120


def _signing_fingerprint() -> str:
    fingerprints = json.loads((KEYS / "fingerprints.json").read_text(encoding="utf-8"))
    fingerprint: str = fingerprints["mechanism-signing"]
    return fingerprint


def _wait_for_status(page: Page, text: str, seconds: float) -> None:
    """Reload the package page (it refreshes itself too) until its heading shows ``text``."""
    heading = page.get_by_role("heading", level=1)
    deadline = time.monotonic() + seconds
    while text not in heading.inner_text():
        assert time.monotonic() < deadline, f"still {heading.inner_text()!r} after {seconds} s"
        assert "failed" not in heading.inner_text().lower(), page.inner_text("main")
        time.sleep(1)
        page.reload()


def _download(page: Page, link: str, target_dir: Path) -> Path:
    with page.expect_download() as info:
        page.get_by_role("link", name=link).click()
    download = info.value
    target = target_dir / download.suggested_filename
    download.save_as(target)
    return target


def _verify_offline(package: Path, bag_dir: Path, *extra: str) -> dict[str, object]:
    """``portal-verify`` as the recipient runs it, with the authority's secret key."""
    with keyring(secret=(AUTHORITY,), public=("mechanism-signing",)) as home:
        done = subprocess.run(
            [sys.executable, "-m", "portal.verify", str(package), "--sender-fingerprint",
             _signing_fingerprint(), "--gnupghome", str(home), "--out", str(bag_dir), "--json",
             *extra],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def _gpg_verify(notice: Path) -> str:
    """Check the recall notice's inline signature with the mechanism's public key only."""
    with keyring(secret=(), public=("mechanism-signing",)) as home:
        done = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--status-fd", "1", "--verify",
             str(notice)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_request_to_recall_in_the_browser(actors: Actors, server: Server, tmp_path: Path) -> None:
    # Each step and every page visited: screenshots at 1280 and 390 px, key columns, sideways
    # scrolling on phones, axe-core (tests/e2e/layout.py); checked at the end.
    shots = Inspector(server.artifacts / "journey")

    def person(email: str) -> Page:
        return shots.watch(actors.page(email), email)

    # 1. The requester submits a request for assistance.
    requester = person(REQUESTER)
    rfa_code = submit_request(
        requester, server, "NWU/2026/E2E-1", "Medical records concerning checkpoint 7."
    )
    shots.take(requester, "requester submitted the request")

    # 2. A legal officer takes it, adds the certificate, checks, and asks for consent.
    officer = person(OFFICER)
    take_and_add_candidate(officer, server, rfa_code, ITEM_TITLE)
    add_candidate(officer, server, rfa_code, KEPT_TITLE)
    shots.take(officer, "officer added the candidate items")
    first = run_eligibility_check(officer, server, rfa_code)
    assert "1 withheld" in first, first
    expect(officer.get_by_text("No consent of Quill & Marsh").first).to_be_visible()
    shots.take(officer, "first check withholds the item for want of consent")
    ask_for_consent(officer, server, rfa_code)
    shots.take(officer, "officer asked the provider for consent")

    # 3. The provider sees the request (by code, not the requester's reference) and grants.
    provider = person(PROVIDER)
    provider.goto(server.url("/consent"))
    request_box = provider.get_by_role("region", name=re.compile(rfa_code))
    expect(request_box).to_contain_text(ITEM_TITLE)
    expect(provider.locator("main")).not_to_contain_text("NWU/2026/E2E-1")
    shots.take(provider, "provider sees the consent request")
    request_box.get_by_label(re.compile(ITEM)).check()
    request_box.get_by_role("button", name="Grant consent").click()
    expect_flash(provider, "Consent granted for 1 item(s)")
    shots.take(provider, "provider granted consent")

    # 4. The officer checks again (shared redacted), approves and assembles the package.
    second = run_eligibility_check(officer, server, rfa_code)
    assert "Eligible" in second and "1 shared redacted" in second, second
    shots.take(officer, "second check shares the item redacted")
    officer.goto(server.url(f"/triage/{rfa_code}"))
    officer.get_by_label("Approved", exact=True).check()
    officer.get_by_label("Note on the decision").fill("Shared redacted, with consent.")
    officer.get_by_role("button", name="Record the decision").click()
    expect_flash(officer, f"{rfa_code} is approved")
    officer.get_by_role("link", name="Packages for this request").click()
    expect(officer.get_by_role("row").filter(has_text=ITEM)).to_contain_text("M1, M2")
    officer.get_by_label("I reviewed these items and their renditions.").check()
    officer.get_by_role("button", name="Make the package and assemble it").click()
    said = expect_flash(officer, re.compile(r"PKG-\d{4}-\d{4} is queued for assembly"))
    match = re.search(r"(PKG-\d{4}-\d{4}) is queued for assembly", said)
    assert match, said
    package_code = match.group(1)
    shots.take(officer, "package queued for assembly")
    _wait_for_status(officer, "Assembled, awaiting release", ASSEMBLY_SECONDS)
    expect(officer.get_by_text(re.compile(r"^Passed: none of the"))).to_be_visible()
    expect(officer.get_by_text("Four-eyes rule: you assembled this package")).to_be_visible()
    shots.take(officer, "package assembled and leak check passed")

    # 5. A second legal officer releases it.
    releaser = person(SECOND_OFFICER)
    releaser.goto(server.url(f"/packages/{package_code}"))
    releaser.get_by_label("I reviewed the manifest summary and the leak check.").check()
    releaser.get_by_role("button", name="Release to Northland War Crimes Unit").click()
    expect_flash(releaser, f"{package_code} is released")
    expect(releaser.get_by_role("heading", level=1)).to_contain_text("Released")
    shots.take(releaser, "second officer released the package")

    # 6. The recipient downloads it, verifies it offline and acknowledges receipt.
    recipient = person(RECIPIENT)
    recipient.goto(server.url("/received"))
    recipient.get_by_role("link", name=package_code).click()
    shots.take(recipient, "recipient sees the released package")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    package_file = _download(recipient, f"Download {package_code}.tar.gpg", downloads)
    signature = _download(recipient, "Detached signature (.sig)", downloads)
    assert package_file.name == f"{package_code}.tar.gpg"
    assert signature.name == f"{package_code}.tar.gpg.sig"
    report = _verify_offline(package_file, tmp_path / "bag")
    assert report["ok"] is True, report
    shared = [p for p in (tmp_path / "bag").rglob("*") if p.is_file() and ITEM in str(p)]
    assert shared, "the redacted certificate is not in the bag"
    for path in (tmp_path / "bag").rglob("*"):
        if path.is_file():
            assert PROTECTED_NAME.lower().encode() not in path.read_bytes().lower(), path
    recipient.reload()
    recipient.get_by_label(re.compile(rf"We received {package_code}")).check()
    recipient.get_by_role("button", name="Acknowledge receipt").click()
    expect_flash(recipient, f"Receipt of {package_code} acknowledged")
    shots.take(recipient, "recipient downloaded verified and acknowledged")

    # 7. The provider revokes its consent for the item.
    # Before confirming, the provider reads what revoking does (by authority and date only).
    provider.goto(server.url("/consent/given"))
    provider.get_by_role("link", name=f"Revoke {ITEM}").click()
    expect(provider.get_by_role("table", name="Packages this changes")).to_contain_text(
        "Recalled: the authority is asked to destroy every copy"
    )
    expect(provider.locator("main")).not_to_contain_text(package_code)
    provider.get_by_label("Reason for revoking").fill(
        "The witness withdrew her consent after renewed threats (fictional)."
    )
    provider.get_by_label("I revoke this consent and accept what it does").check()
    shots.take(provider, "provider reads what revoking does")
    provider.get_by_role("button", name="Revoke consent").click()
    expect_flash(provider, re.compile(r"Consent revoked .*recalled: 1\."))
    shots.take(provider, "provider revoked consent")

    # 8. The recipient sees the recall everywhere, reads the signed notice and acknowledges.
    recipient.goto(server.url("/received"))
    banner = recipient.locator(".recall-banner")
    expect(banner).to_contain_text("1 recall notice to acknowledge")
    shots.take(recipient, "recipient sees the recall banner")
    banner.get_by_role("link", name=re.compile("Read the recall notice")).click()
    recall = recipient.get_by_role("region", name=re.compile(f"Recall of {package_code}"))
    deadline = time.monotonic() + 60
    while recall.get_by_role("link", name=re.compile("Download the signed notice")).count() == 0:
        assert time.monotonic() < deadline, recall.inner_text()
        time.sleep(1)
        recipient.reload()
    notice = _download(recipient, "Download the signed notice (.asc)", downloads)
    status = _gpg_verify(notice)
    assert re.search(rf"VALIDSIG \S*{_signing_fingerprint()}", status), status
    assert package_code in notice.read_text(encoding="utf-8")
    # The notice names the withdrawn item; portal-verify checks it against the package held.
    expect(recall.get_by_role("table", name=f"Withdrawn items of {package_code}")).to_contain_text(
        ITEM
    )
    checked = _verify_offline(package_file, tmp_path / "recalled-bag", "--recall", str(notice))
    assert str(checked["message"]).startswith("VERIFIED, AND RECALLED"), checked
    recall.get_by_label("We destroyed them").check()
    recall.get_by_role("button", name="Acknowledge the recall").click()
    expect(recall).to_contain_text("material destroyed")
    expect(recipient.locator(".recall-banner")).to_have_count(0)
    shots.take(recipient, "recipient acknowledged the recall")

    # 9. The officer checks again (the revoked item is withheld now) and makes the replacement
    # of what remains; a second officer releases it; the recipient verifies it.
    third = run_eligibility_check(officer, server, rfa_code)
    assert "1 withheld" in third, third
    officer.goto(server.url(f"/packages/requests/{rfa_code}"))
    officer.get_by_label("I reviewed these items and their renditions.").check()
    officer.get_by_role("button", name="Make the package and assemble it").click()
    said = expect_flash(officer, re.compile(r"PKG-\d{4}-\d{4} is queued for assembly"))
    replaced = re.search(r"(PKG-\d{4}-\d{4}) is queued for assembly", said)
    assert replaced, said
    replacement = replaced.group(1)
    _wait_for_status(officer, "Assembled, awaiting release", ASSEMBLY_SECONDS)
    expect(officer.locator("main")).to_contain_text(f"{package_code}, without {ITEM}")
    releaser.goto(server.url(f"/packages/{replacement}"))
    releaser.get_by_label("I reviewed the manifest summary and the leak check.").check()
    releaser.get_by_role("button", name="Release to Northland War Crimes Unit").click()
    expect_flash(releaser, f"{replacement} is released")
    recipient.goto(server.url(f"/received/{replacement}"))
    replaces = recipient.locator(".summary-list__row").filter(has_text="Replaces")
    expect(replaces).to_contain_text(f"{package_code}, without {ITEM}")
    shots.take(recipient, "recipient sees the replacement package")
    new_file = _download(recipient, f"Download {replacement}.tar.gpg", downloads)
    renewed = _verify_offline(new_file, tmp_path / "replacement-bag", "--no-detached-signature")
    assert renewed["ok"] is True, renewed
    summary = renewed["package"]
    assert isinstance(summary, dict)
    assert summary["replaces"] == {"code": package_code, "items_left_out": [ITEM]}
    assert [item["code"] for item in summary["items"]] == [KEPT_ITEM]

    assert len(shots.taken) == 17
    shots.inspect_visited(actors.page)
    assert not shots.problems, "\n".join(shots.problems)
    log = server.log_file.read_text(encoding="utf-8", errors="replace")
    # No error in the log of any process (portal run's, or gunicorn's and the worker's).
    assert "Traceback" not in log and '" 500 ' not in log, server.log_tail()
