"""Steps of the journey as people take them in the browser, shared by the journey and the
keyboard tests. Each function starts on a page of its own and leaves the page where a person
would end up; it asserts only that the step visibly worked."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.browser import Server, expect_flash

OFFENCE = "War crime of sexual violence"


def submit_request(page: Page, server: Server, reference: str, sought: str) -> str:
    """A requester fills in and submits a new request for assistance; returns its code."""
    page.goto(server.url("/requests/new"))
    page.get_by_label("Your reference").fill(reference)
    page.get_by_label("Legal basis").fill("Cooperation arrangement with the Mechanism (demo).")
    page.get_by_label("Type of proceedings").select_option("investigation")
    page.get_by_label(OFFENCE, exact=True).check()
    page.get_by_label("Persons concerned").fill("The commander of checkpoint 7 (fictional).")
    page.get_by_label("Summary of the facts").fill(
        "Detention and ill-treatment of travellers at checkpoint 7 on the Brenna Vale road "
        "in September 2023 (fictional)."
    )
    page.get_by_label("Assistance sought").fill(sought)
    page.get_by_label("Period from").fill("2023-09-01")
    page.get_by_label("Period to").fill("2023-09-30")
    page.get_by_role("button", name="Submit request").click()
    said = expect_flash(page, re.compile(r"Request RFA-\d{4}-\d{4} submitted"))
    match = re.search(r"Request (RFA-\d{4}-\d{4}) submitted", said)
    assert match, said
    expect(page.get_by_role("heading", level=1)).to_contain_text("Submitted")
    return match.group(1)


def take_and_add_candidate(page: Page, server: Server, rfa_code: str, title: str) -> None:
    """A legal officer takes the request, starts the review and adds one repository item
    found by its title as a candidate."""
    page.goto(server.url(f"/triage/{rfa_code}"))
    page.get_by_label("Assign to").select_option(label="Me")
    page.get_by_role("button", name="Assign", exact=True).click()
    page.get_by_role("button", name="Start the review").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("In review")
    add_candidate(page, server, rfa_code, title)


def add_candidate(page: Page, server: Server, rfa_code: str, title: str) -> None:
    """Add one repository item found by its title as a candidate of a request in review."""
    page.goto(server.url(f"/triage/{rfa_code}"))
    page.get_by_role("link", name="Search the repository").click()
    page.get_by_label("Title contains").fill(title)
    page.get_by_role("button", name="Search", exact=True).click()
    row = page.get_by_role("row").filter(has_text=title)
    expect(row).to_have_count(1)
    row.get_by_role("checkbox").check()
    page.get_by_role("button", name="Add the chosen items as candidates").click()
    expect_flash(page, "1 item(s) added as candidates")


def ask_for_consent(page: Page, server: Server, rfa_code: str) -> None:
    """A legal officer sends the consent requests the candidates need."""
    page.goto(server.url(f"/triage/{rfa_code}"))
    page.get_by_role("button", name="Ask providers for consent").click()
    expect_flash(page, "1 consent request(s) sent to providers")


def run_eligibility_check(page: Page, server: Server, rfa_code: str) -> str:
    """A legal officer runs the check from the request's eligibility page; returns the
    decision page's outcome line (``Outcome: Eligible Eligible: 1 candidate item; ...``)."""
    page.goto(server.url(f"/triage/{rfa_code}"))
    page.get_by_role("link", name="eligibility page").click()
    page.get_by_role("button", name="Run eligibility check").click()
    expect_flash(page, f"Eligibility check recorded for {rfa_code}")
    outcome = page.locator(".decision-outcome")
    expect(outcome).to_contain_text("Outcome:")
    return " ".join(outcome.inner_text().split())
