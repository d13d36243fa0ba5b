"""The reviewer page's HTML shells and static files (the browser tests drive them for real)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("path", "marker"),
    [
        ("/review", 'data-page="queue"'),
        ("/review/login", 'id="api-key"'),
        ("/review/progress", 'data-page="progress"'),
        ("/review/items/7", 'data-item-id="7"'),
    ],
)
def test_pages_render_with_csp(api: Any, path: str, marker: str) -> None:
    r = api.client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert marker in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    # No inline script may run under that policy: only the JSON data block is inline.
    assert r.text.count("<script") == 2 and 'type="application/json"' in r.text
    assert '<html lang="en">' in r.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_static_files_and_errors(api: Any, assert_error) -> None:
    js = api.client.get("/review/static/review.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert api.client.get("/review/static/review.css").status_code == 200
    assert_error(api.client.get("/review/static/../pages.py"), 404)
    assert_error(api.client.get("/review/static/secret.txt"), 404, "not_found")
    assert_error(api.client.get("/review/items/abc"), 422)
    slash = api.client.get("/review/", follow_redirects=False)
    assert slash.status_code == 307 and slash.headers["location"] == "/review"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_item_page_has_a_place_for_the_not_an_offence_mark(api: Any) -> None:
    # The script fills it from the item's non_offence_probability (at 0.2 and up) and shows
    # it; the browser tests check the rendering.
    html = api.client.get("/review/items/7").text
    assert '<p id="non-offence" class="non-offence" hidden></p>' in html
    assert html.index('id="non-offence"') < html.index('id="suggestions"')
    assert 'id="reject" class="danger" aria-keyshortcuts="r" aria-describedby="non-offence"' in (
        html
    )
    js = api.client.get("/review/static/review.js").text
    assert "NON_OFFENCE_FLAG = 0.2;" in js and '"May not be an offence ("' in js


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_queue_page_lists_every_section(api: Any) -> None:
    html = api.client.get("/review").text
    assert html.count('<option value="0') + html.count('<option value="1') >= 11
    assert '<label for="f-section">' in html
