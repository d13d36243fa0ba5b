"""The reviewer page in headless Chromium against the real server: log in, filter, open an
item, accept with a shortcut, correct via search, reject, skip, see history and progress."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.browser


def login(page: Any, site: Any, who: str = "alice", path: str = "/review") -> None:
    page.goto(site.url + "/review/login?next=" + path)
    page.get_by_label("API key").fill(site.keys[who])
    page.get_by_role("button", name="Sign in").click()
    # Anchored at the site: the login page's own URL ends with "?next=<path>", and an
    # unanchored pattern matched it before the redirect (a race that failed under load).
    target = re.escape(site.url + path.split("?")[0])
    page.wait_for_url(re.compile("^" + target + r"(\?.*)?$"))


def wait_status(page: Any, pattern: str) -> None:
    page.locator("#status").filter(has_text=re.compile(pattern)).wait_for()


def test_login_errors_and_redirect(page: Any, site: Any, shot: Any) -> None:
    page.goto(site.url + "/review")
    page.wait_for_url(re.compile(r"/review/login\?next="))
    shot(page, "01-login")
    page.get_by_label("API key").fill("iccs_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="Unknown or revoked").wait_for()
    page.get_by_label("API key").fill(site.keys["feeder"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="reviewer key").wait_for()
    shot(page, "02-login-error")
    page.get_by_label("API key").fill(site.keys["alice"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site.url + "/review")
    page.get_by_text("Signed in as alice").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/review/login"))
    page.goto(site.url + "/review/progress")
    page.wait_for_url(re.compile(r"/review/login"))  # the key went with the sign-out


def test_queue_filters_counts_and_order(page: Any, site: Any, shot: Any) -> None:
    login(page, site)
    counts = page.locator('[data-count="pending"]')
    counts.filter(has_text=re.compile(r"^\d+$")).wait_for()
    assert int(counts.inner_text()) == site.store.stats().by_status["pending"] > 0
    shot(page, "03-queue")
    page.get_by_label("Batch").fill("legacy-1998")
    page.get_by_label("Order").select_option("occurrences")
    page.get_by_role("button", name="Apply filters").click()
    wait_status(page, r"^3 items match")
    rows = page.locator("#items tbody tr")
    assert rows.count() == 3
    assert [rows.nth(i).locator("td").nth(4).inner_text() for i in range(3)] == [
        "40000",
        "900",
        "10",
    ]
    assert "batch=legacy-1998" in page.url and "order=occurrences" in page.url
    page.get_by_label("Suggested section").select_option("07")
    page.get_by_role("button", name="Apply filters").click()
    wait_status(page, r"^1 item matches")
    assert "Fraudulent cheque" in rows.first.inner_text()
    shot(page, "04-queue-filtered")
    # Filters survive a reload: they live in the URL.
    page.reload()
    wait_status(page, r"^1 item matches")
    assert page.get_by_label("Suggested section").input_value() == "07"


def test_open_item_accept_with_shortcut(page: Any, site: Any, shot: Any) -> None:
    login(page, site)
    page.get_by_label("Batch").fill("t-accept")
    page.get_by_role("button", name="Apply filters").click()
    wait_status(page, r"^1 item matches")
    page.get_by_role("link", name=f"#{site.items['accept']}").click()
    page.wait_for_url(re.compile(r"/review/items/\d+$"))
    wait_status(page, "Not claimed")
    # Viewing does not claim (issue 16 L10): browsing the queue locks nothing.
    assert site.store.get(site.items["accept"]).claimed_by is None
    assert page.locator("#item-text").inner_text() == "Punched neighbour causing serious injury"
    assert page.locator("#item-coded-as").inner_text() == "a record, service default"
    first = page.locator("#suggestions button").first
    assert "0201 Assaults and threats" in first.inner_text()
    assert "02 Acts causing harm" in first.inner_text()  # the path, with titles
    shot(page, "05-item")
    page.keyboard.press("2")  # accept the second suggestion, 020111
    wait_status(page, "Accepted 020111")
    page.locator("#item-status").filter(has_text="decided").wait_for()
    page.locator("#history tbody tr").filter(has_text="accept").wait_for()
    assert page.locator("#suggestions button").first.is_disabled()
    assert page.evaluate("document.activeElement.id") == "next-item"
    item = site.store.get(site.items["accept"])
    assert (item.decision, item.decided_code, item.decided_by) == ("accept", "020111", "alice")
    shot(page, "06-item-accepted")


def test_correct_via_search_then_history(page: Any, site: Any, shot: Any) -> None:
    login(page, site, "bob", f"/review/items/{site.items['correct']}")
    wait_status(page, "Not claimed")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search-q"
    page.keyboard.type("burglary")
    page.get_by_label("Level").select_option("2")
    page.keyboard.press("Enter")
    page.locator("#search-results li").filter(has_text="0501 Burglary").wait_for()
    # Typing in the search box must not fire shortcuts ("r" in "burglary" did not reject).
    assert site.store.get(site.items["correct"]).status == "pending"
    shot(page, "07-item-search")
    page.get_by_label("Note (optional)").fill("garage is a building: burglary")
    page.get_by_role("button", name="Correct to 0501").click()
    wait_status(page, "Corrected to 0501")
    history = page.locator("#history tbody")
    history.locator("tr").filter(has_text="correct").wait_for()
    text = history.inner_text()
    assert "bob" in text and "0502 → 0501" in text and "garage is a building" in text
    assert "browser-test-model" in text
    shot(page, "08-item-history")
    assert site.store.get(site.items["correct"]).decided_code == "0501"


def test_reject_and_skip_shortcuts(page: Any, site: Any) -> None:
    login(page, site, "carol", f"/review/items/{site.items['reject']}")
    wait_status(page, "Not claimed")
    # Flagged from a P(not an offence) of 0.2, next to the suggestions and the reject button.
    assert page.locator("#non-offence").inner_text() == "May not be an offence (62%)"
    reject = page.get_by_role("button", name=re.compile("^Reject"))
    assert reject.get_attribute("aria-describedby") == "non-offence"
    page.keyboard.press("r")
    wait_status(page, "Rejected as not an offence")
    assert site.store.get(site.items["reject"]).decided_code == "not_an_offence"
    page.goto(f"{site.url}/review/items/{site.items['skip']}")
    wait_status(page, "Not claimed")
    assert page.locator("#non-offence").is_hidden()  # 0.19: under the mark
    page.keyboard.press("s")
    wait_status(page, "Skipped")
    skipped = site.store.get(site.items["skip"])
    assert skipped.status == "pending" and skipped.claimed_by is None


def test_item_claimed_by_someone_else_is_read_only(page: Any, site: Any) -> None:
    login(page, site, "alice", f"/review/items/{site.items['locked']}")
    page.get_by_role("alert").filter(has_text="Claimed by bob").wait_for()
    assert page.locator("#suggestions button").first.is_disabled()
    assert page.get_by_role("button", name=re.compile("^Reject")).is_disabled()
    page.keyboard.press("1")
    page.get_by_role("alert").filter(has_text="cannot decide").wait_for()
    assert site.store.get(site.items["locked"]).claimed_by == "bob"


def test_review_next_follows_queue_filters(page: Any, site: Any) -> None:
    login(page, site, "carol")
    page.get_by_label("Batch").fill("t-next")
    page.get_by_role("button", name="Apply filters").click()
    wait_status(page, r"^1 item matches")
    page.get_by_role("button", name="Review next item").click()
    page.wait_for_url(f"{site.url}/review/items/{site.items['next']}")
    wait_status(page, "Claimed for you")
    page.keyboard.press("1")
    wait_status(page, "Accepted 050211")
    page.keyboard.press("n")
    wait_status(page, "Nothing left for you to review")


def test_progress_summary_shows_agreement(page: Any, site: Any, shot: Any) -> None:
    login(page, site, "bob", "/review/progress")
    wait_status(page, "Progress updated")
    assert page.locator('[data-agree="pairs"]').inner_text() == "3"
    assert page.locator('[data-agree="rate"]').inner_text() == "66.7%"
    kappa = page.locator('[data-agree="kappa"]').inner_text()
    assert re.fullmatch(r"-?\d\.\d\d", kappa)
    assert int(page.locator('[data-stat="reviewed_today"]').inner_text()) >= 6
    assert int(page.locator('[data-stat="remaining"]').inner_text()) >= 1
    assert "%" in page.locator('[data-stat="model_agreement"]').inner_text()
    assert "Acts against property only" in page.locator("#by-section").inner_text()
    shot(page, "09-progress")


def _relative_luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", rgb)[:3])

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def _contrast(fg: str, bg: str) -> float:
    a, b = sorted((_relative_luminance(fg), _relative_luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


@pytest.mark.parametrize("path", ["/review", "/review/progress", "/review/items/{skip}"])
def test_accessibility_labels_focus_contrast(page: Any, site: Any, path: str) -> None:
    login(page, site, "carol", path.format(skip=site.items["skip"]))
    page.wait_for_load_state("networkidle")
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
               .filter(e => e.type !== 'hidden' && e.labels.length === 0
                            && !e.getAttribute('aria-label')).map(e => e.id || e.name)"""
    )
    assert unlabeled == []
    nameless = page.evaluate(
        """() => [...document.querySelectorAll('button, a')]
               .filter(e => !(e.innerText || e.getAttribute('aria-label') || '').trim())
               .map(e => e.outerHTML.slice(0, 60))"""
    )
    assert nameless == []
    # The first Tab reaches the skip link, and it leads to the main content.
    page.locator("body").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.evaluate("document.querySelectorAll('h1').length") == 1
    # Text and buttons keep WCAG AA contrast (4.5:1).
    pairs = page.evaluate(
        """() => {
             const bg = e => { for (; e; e = e.parentElement) {
                 const c = getComputedStyle(e).backgroundColor;
                 if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; }
               return 'rgb(255, 255, 255)'; };
             return [...document.querySelectorAll('h1, h2, p, label, td, th, dt, dd, button, a')]
               .filter(e => e.offsetParent !== null && (e.innerText || '').trim())
               .map(e => [e.tagName, getComputedStyle(e).color, bg(e)]);
           }"""
    )
    low = [
        (tag, fg, bg, round(_contrast(fg, bg), 2))
        for tag, fg, bg in pairs
        if _contrast(fg, bg) < 4.5
    ]
    assert pairs and low == []
