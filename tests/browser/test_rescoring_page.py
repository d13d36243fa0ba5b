"""A reviewer's correction moves a similar pending item, seen on the page without a reload.

Issue 14 (done when): the records are queued by the served model (real suggestions), a
reviewer corrects one statute reference on its item page, and the near-duplicate of the same
list then leaves the list shown on that page (auto-coded) or shows the corrected code as its
new top suggestion, while the page stays the same document. Its own page then shows the
decided neighbour that drove the change.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .test_review_page import login, wait_status

pytestmark = pytest.mark.browser

TEXTS = [
    "Violation of the Customs Modernization Act, Sec. 3601",
    "Violation of the Customs Modernization Act, Sec. 3602",
    "Theft of a bicycle from a shed",
]
CODE = "08051"
BATCH = "t-customs"


def test_correction_moves_a_similar_pending_item_without_reload(
    page: Any, site: Any, shot: Any
) -> None:
    coder = site.app.state.services.coder
    # Queued by the served model, as a job would (0.999: all of them go to review).
    recs = coder.code(TEXTS, batch=BATCH, origin="job", min_precision=0.999)
    first, similar, other = (r.review_id for r in recs)
    assert None not in (first, similar, other)
    before = site.store.get(similar)
    assert before.top_code != CODE and before.status == "pending"

    login(page, site, "alice", f"/review?batch={BATCH}&order=value")
    wait_status(page, r"^3 items match")
    # Worth most: the two statute references settle each other's records.
    rows = page.locator("#items tbody tr")
    assert {rows.nth(i).locator("td").first.inner_text() for i in range(2)} == {
        f"#{first}",
        f"#{similar}",
    }
    page.get_by_role("link", name=f"#{first}", exact=True).click()
    page.wait_for_url(f"{site.url}/review/items/{first}")
    wait_status(page, "Not claimed")
    listed = page.locator(f'#list-items tbody tr[data-item-id="{similar}"]')
    listed.wait_for()
    assert CODE not in listed.locator("td.top-code").inner_text()
    shot(page, "20-rescoring-before")

    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Search ICCS titles or codes").fill(CODE)
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("button", name=f"Correct to {CODE}").click()
    wait_status(page, rf"Corrected to {CODE}\. .*re-scored")
    after = site.store.get(similar)
    if after.status == "auto_coded":
        # It left the queue: the list on the page no longer shows it.
        listed.wait_for(state="detached")
    else:
        assert after.top_code == CODE
        listed.locator("td.top-code").filter(has_text=re.compile("^" + CODE)).wait_for()
    assert page.evaluate("window.__sameDocument") is True  # no reload, no navigation
    assert page.locator(f'#list-items tbody tr[data-item-id="{other}"]').count() == 1
    shot(page, "21-rescoring-after")

    # The moved item's page names the decision that drove it.
    page.goto(f"{site.url}/review/items/{similar}")
    page.locator("#neighbours li").filter(has_text=f"#{first}").filter(has_text=CODE).wait_for()
    shot(page, "22-rescoring-neighbours")
