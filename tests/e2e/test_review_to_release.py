"""Issue 16's "Done when", in a real browser under the real CSP, screenshots in
``e2e-artifacts/review-to-release/``:

officer one opens a scanned statement (ITM-0034: an image-only PDF whose trader is named only
in its pixels), adds a term and draws a box on page 2 with the mouse; officer two confirms
both; officer one checks, approves and previews the redacted rendition (made by the worker
with assembly's own code), then assembles; officer two releases; the recipient's package,
verified and decrypted offline, has the box's area black in the page image and the term absent
from its text and from OCR of its pages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2
from playwright.sync_api import expect

from portal.demo.dataset import SCANNED_NAME
from portal.redaction.ocr import read_image, scripts_of
from tests.e2e.browser import Actors, Screenshots, Server, expect_flash, page_image_on_screen
from tests.e2e.flows import run_eligibility_check, submit_request, take_and_add_candidate
from tests.e2e.test_journey import _download, _verify_offline, _wait_for_status

REQUESTER = "requester@nwu.example"
FIRST = "officer.one@mechanism.example"
SECOND = "officer.two@mechanism.example"
RECIPIENT = "recipient@nwu.example"
ITEM = "ITM-0034"
TITLE = "Scanned statement of a market trader, Marrovel"
BOX = (0.08, 0.11, 0.8, 0.16)  # page 2: the line with the cousin's telephone number
ASSEMBLY_SECONDS = 240


def test_scan_marked_confirmed_previewed_released_and_black(
    actors: Actors, server: Server, tmp_path: Path
) -> None:
    shots = Screenshots(server.artifacts / "review-to-release")
    requester = actors.page(REQUESTER)
    rfa = submit_request(requester, server, "NWU/2026/E2E-2", "Statements of market traders.")
    one = actors.page(FIRST)
    take_and_add_candidate(one, server, rfa, TITLE)

    # Officer one: a term, and a box drawn on page 2.
    one.goto(server.url(f"/triage/{rfa}"))
    one.get_by_role("link", name=f"Pages and marks of {ITEM}").click()
    expect(one.get_by_role("heading", level=1)).to_contain_text(f"Review {ITEM}")
    one.get_by_label("Term", exact=True).fill(SCANNED_NAME)
    one.get_by_role("button", name="Propose the term").click()
    expect_flash(one, "Mark M1 proposed")
    box = page_image_on_screen(one, one.locator("#page-2 img.page-image"))
    x0, y0, x1, y1 = BOX
    one.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
    one.mouse.down()
    one.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=8)
    one.mouse.up()
    expect(one.locator("#box-page")).to_have_value("2")
    one.locator("#box-reason").select_option(label="Contact details or address of a person at risk")
    one.get_by_role("button", name="Propose the box").click()
    expect_flash(one, "Box M2 proposed")
    shots.take(one, "officer one proposed a term and a box")

    # Officer two confirms both.
    two = actors.page(SECOND)
    two.goto(server.url(f"/review/{rfa}/items/{ITEM}"))
    two.get_by_role("button", name="Confirm all pending marks I looked at").click()
    expect_flash(two, "Confirmed: M1, M2.")
    shots.take(two, "officer two confirmed both")

    # Officer one: check, approve, preview, assemble.
    checked = run_eligibility_check(one, server, rfa)
    assert "Eligible" in checked and "1 shared redacted" in checked, checked
    one.goto(server.url(f"/triage/{rfa}"))
    one.get_by_label("Approved", exact=True).check()
    one.get_by_label("Note on the decision").fill("Shared redacted.")
    one.get_by_role("button", name="Record the decision").click()
    expect_flash(one, f"{rfa} is approved")
    one.goto(server.url(f"/review/{rfa}/items/{ITEM}"))
    one.get_by_role("link", name=f"Preview {ITEM} as it will be shared").click()
    one.get_by_role("button", name="Make the preview").click()
    expect(one.get_by_text("The leak check found no protected identifier or term.")).to_be_visible(
        timeout=ASSEMBLY_SECONDS * 1000
    )
    expect(one.get_by_role("heading", name="Page 2")).to_be_visible()
    shots.take(one, "officer one previewed the redacted scan")
    one.goto(server.url(f"/packages/requests/{rfa}"))
    one.get_by_label("I reviewed these items and their renditions.").check()
    one.get_by_role("button", name="Make the package and assemble it").click()
    said = expect_flash(one, re.compile(r"PKG-\d{4}-\d{4} is queued for assembly"))
    match = re.search(r"(PKG-\d{4}-\d{4}) is queued", said)
    assert match, said
    package = match.group(1)
    _wait_for_status(one, "Assembled, awaiting release", ASSEMBLY_SECONDS)

    # Officer two looks at the scan as bagged (pages rendered by the worker), then releases;
    # the recipient downloads and verifies offline.
    two.goto(server.url(f"/packages/{package}"))
    two.get_by_role("link", name=f"Pages as bagged of {ITEM}").click()
    expect(two.get_by_role("heading", level=1)).to_contain_text(f"{ITEM} as bagged")
    page_image_on_screen(two, two.locator("#page-2 img.page-image"))
    shots.take(two, "officer two looked at the assembled scan")
    two.goto(server.url(f"/packages/{package}"))
    two.get_by_label("I reviewed the manifest summary and the leak check.").check()
    two.get_by_role("button", name="Release to Northland War Crimes Unit").click()
    expect_flash(two, f"{package} is released")
    gone = two.goto(server.url(f"/preview/packages/{package}/items/{ITEM}"))
    assert gone is not None and gone.status == 404  # deleted with the release
    recipient = actors.page(RECIPIENT)
    recipient.goto(server.url("/received"))
    recipient.get_by_role("link", name=package).click()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    received = _download(recipient, f"Download {package}.tar.gpg", downloads)
    report = _verify_offline(received, tmp_path / "bag", "--no-detached-signature")
    assert report["ok"] is True, report
    shots.take(recipient, "recipient downloaded the package")

    [rendition] = [p for p in (tmp_path / "bag").rglob("*.pdf") if ITEM in str(p)]
    document = pypdfium2.PdfDocument(str(rendition))
    assert len(document) == 2
    pages = [document[i].render(scale=150 / 72).to_pil().convert("L") for i in range(2)]
    for page in pages:
        assert page.width > 1000
        textpage = document[pages.index(page)].get_textpage()
        assert SCANNED_NAME.lower() not in textpage.get_text_range().lower()
        reading = read_image(page, scripts_of([SCANNED_NAME]))
        assert "brask" not in reading.text.lower() and "talen" not in reading.text.lower()
    second = pages[1]
    area = second.crop(
        (
            round(x0 * second.width) + 4,
            round(y0 * second.height) + 4,
            round(x1 * second.width) - 4,
            round(y1 * second.height) - 4,
        )
    )
    dark = sum(area.histogram()[:60])
    assert dark >= 0.7 * area.width * area.height, "the box's area is not black"
    assert "0177" not in read_image(second, scripts_of([])).text  # the number is gone too
    for path in (tmp_path / "bag").rglob("*"):
        if path.is_file():
            assert SCANNED_NAME.lower().encode() not in path.read_bytes().lower(), path
