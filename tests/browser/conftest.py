"""Browser fixtures: the real app on a real uvicorn, a seeded queue, headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, or ``ICCS_TEST_CHROMIUM``; the ``chromium`` fixture
and the skip rule are in ``tests/conftest.py``), driven by Playwright; screenshots of every page
go to ``test-artifacts/browser/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from service.auth import KeyStore
from service.coding import ReviewRequest
from service.config import Settings
from service.db import session_factory
from service.main import create_app
from service.normalize import dedupe_key
from service.review.store import ReviewStore
from service.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _suggestion(code: str, confidence: float) -> dict[str, Any]:
    tax = load_taxonomy()
    return {
        "code": code,
        "label": tax.title(code),
        "level": tax.level(code),
        "path": tax.path(code),
        "confidence": confidence,
    }


def review_request(
    text: str,
    codes: tuple[str, ...],
    top: float,
    batch: str,
    occurrences: int = 1,
    non_offence: float | None = None,
) -> ReviewRequest:
    return ReviewRequest(
        text=text,
        text_key=dedupe_key(text),
        suggestions=[_suggestion(c, round(top / (i + 1), 3)) for i, c in enumerate(codes)],
        top_code=codes[0],
        top_confidence=top,
        model_version="browser-test-model",
        origin="bulk" if batch.startswith("legacy") else "api",
        batch=batch,
        occurrences=occurrences,
        non_offence_probability=non_offence,
    )


@dataclass
class Site:
    """The running server, its store and the keys of the people using it."""

    url: str
    store: ReviewStore
    keys: dict[str, str]
    items: dict[str, int] = field(default_factory=dict)
    app: Any = None  # the served app: its coder queues records as the API would


class LiveServer:
    """uvicorn serving ``create_app(settings)`` in a background thread on a free port."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", access_log=False)
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


SEED: dict[str, tuple[str, tuple[str, ...], float, str, int]] = {
    # name: (text, suggested codes, top confidence, batch, occurrences)
    "accept": (
        "Punched neighbour causing serious injury",
        ("0201", "020111", "020121"),
        0.48,
        "t-accept",
        1,
    ),
    "correct": (
        "Broke into a garage at night and took tools",
        ("0502", "050211"),
        0.31,
        "t-correct",
        2,
    ),
    "reject": ("see attached file", ("0701",), 0.08, "t-reject", 1),
    "skip": ("poss w/i", ("0601",), 0.35, "t-skip", 1),
    "locked": ("Threatened a shopkeeper", ("020121",), 0.52, "t-locked", 1),
    "next": ("Stole a car from a driveway", ("050211", "0502"), 0.44, "t-next", 1),
    "filter-a": ("Theft of cattle by night", ("0502",), 0.21, "legacy-1998", 40_000),
    "filter-b": ("Shoplifting", ("0502",), 0.27, "legacy-1998", 900),
    "filter-c": ("Fraudulent cheque", ("0701",), 0.33, "legacy-1998", 10),
}
# The model's P(not an offence) of seeded items (the others: none, as if not scored).
NON_OFFENCE = {"reject": 0.62, "skip": 0.19}


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, tiny_registry: Path) -> Iterator[Site]:
    state = tmp_path_factory.mktemp("browser-state")
    settings = Settings(
        registry_dir=tiny_registry,
        state_dir=state,
        rate_limit_per_minute=0,
        database_url=f"sqlite:///{state / 'browser.sqlite3'}",
        use_int8=False,
    )
    store = ReviewStore.from_url(settings.resolved_database_url())
    keys = KeyStore(session_factory(store.engine))
    made = {
        name: keys.create(name, role)
        for name, role in [
            ("alice", "reviewer"),
            ("bob", "reviewer"),
            ("carol", "reviewer"),
            ("feeder", "submitter"),
        ]
    }
    items = {}
    for name, (text, codes, top, batch, occ) in SEED.items():
        request = review_request(text, codes, top, batch, occ, NON_OFFENCE.get(name))
        (items[name],) = store.enqueue([request])
    store.claim(items["locked"], "bob")
    # Double-reviewed items, so the progress page has an inter-reviewer agreement to show.
    pairs = [
        ("Assault with a bottle", "020111", "020111"),
        ("Took a bike from outside a shop", "0502", "0502"),
        ("Sold cannabis to a minor", "0601", "06"),
    ]
    for text, first, second in pairs:
        (i,) = store.enqueue([review_request(text, (first,), 0.4, "t-double")])
        store.flag_double_review("boss", item_ids=[i])
        store.decide(i, "bob", "correct", code=first)
        store.decide(i, "carol", "correct", code=second)
    with LiveServer(settings) as server:
        yield Site(server.url, store, made, items, server.app)
    store.engine.dispose()


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "status of 4" not in msg.text
            else None
        ),
    )
    yield pg
    context.close()
    # A script error or a CSP violation fails the test that caused it.
    assert not errors, errors


@pytest.fixture(scope="session")
def shot() -> Any:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
