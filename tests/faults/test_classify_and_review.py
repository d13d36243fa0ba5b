"""Fault injection: the server killed by SIGKILL while it classifies and while it records decisions.

One ``iccs serve`` on SQLite or PostgreSQL is killed twice while clients keep calling it, and
started again on the same port and database. Only what the server acknowledged is promised:

* classify: every 2xx answer's review ids are in the queue afterwards with their texts (none
  lost); each text is queued once (one open item per text), and its occurrences are at least
  the acknowledged records and at most those plus the unacknowledged ones (never twice).
* decisions: every acknowledged decision is stored exactly once (item decided with its code,
  one decision row, one decision audit event); an unacknowledged one retried after the restart
  either succeeds or gets a 409 conflict because it was stored, never a second decision; no
  item is left half-decided.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.auth import KeyStore
from service.db import AuditEntry, ReviewDecision, ReviewItem, session_factory
from service.normalize import dedupe_key
from service.review.store import init_db

from .helpers import Proc, free_port, pg_schema_url, wait_ready

pytestmark = pytest.mark.slow

# Offence texts; min_precision 0.999 sends them to review (the tiny model is never that sure).
BASES = (
    "Theft of a motor vehicle",
    "Burglary of a dwelling at night",
    "Possession of cannabis for personal use",
    "Fraud by false representation",
    "Assault occasioning actual bodily harm",
    "Criminal damage to a shop window",
)
PRECISION = 0.999
KILLS = 2
ACKS_BEFORE_KILL = 12  # answered requests between a (re)start and the next kill


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    (tmp_path / "state").mkdir()
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'iccs.sqlite3'}"
        return
    gen = pg_schema_url()
    yield next(gen)
    next(gen, None)


class Server:
    """One ``iccs serve`` on a fixed port, killed and started again on the same database."""

    def __init__(self, procs: Callable[..., Proc], env: dict[str, str], tmp: Path) -> None:
        self.procs, self.env, self.tmp = procs, env, tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.starts = 0
        self.proc: Proc | None = None

    def start(self) -> None:
        self.starts += 1
        log = self.tmp / f"serve{self.starts}.log"
        self.proc = self.procs(["serve", "--port", str(self.port)], self.env, log)
        wait_ready(self.url, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()


@pytest.fixture
def service(
    db_url: str, procs: Callable[..., Proc], tiny_registry: Path, tmp_path: Path
) -> Iterator[tuple[Server, sessionmaker[Session], dict[str, str]]]:
    """The started server, a session factory on its database and a key per role."""
    engine = init_db(db_url)
    sessions = session_factory(engine)
    store = KeyStore(sessions)
    keys = {
        "submitter": store.create("loader", "submitter"),
        "alice": store.create("alice", "reviewer"),
        "bob": store.create("bob", "reviewer"),
    }
    env = {
        "ICCS_DATABASE_URL": db_url,
        "ICCS_STATE_DIR": str(tmp_path / "state"),
        "ICCS_REGISTRY_DIR": str(tiny_registry),
        "ICCS_RATE_LIMIT_PER_MINUTE": "0",
        "ICCS_INFERENCE_WORKERS": "1",
        "ICCS_KEY_CACHE_SECONDS": "0",
        # Re-scoring after a decision codes at the service's precision: the records are queued
        # at PRECISION, so the service's is the same, and no decision auto-codes the items the
        # reviewers are about to decide (the near-duplicate texts here would move each other).
        "ICCS_TARGET_PRECISION": str(PRECISION),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    server = Server(procs, env, tmp_path)
    try:
        server.start()
        yield server, sessions, keys
    finally:
        engine.dispose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Tally:
    """What the clients sent and what the server acknowledged; shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: list[tuple[str, str, int]] = field(default_factory=list)  # text, record id, review id
    unacked: Counter[str] = field(default_factory=Counter)  # text -> records sent, no answer
    answers: int = 0
    other: list[str] = field(default_factory=list)  # acknowledged, but not queued for review
    unexpected: list[str] = field(default_factory=list)  # answers neither 200 nor 503


def classify_client(
    url: str,
    key: str,
    worker: int,
    stop: threading.Event,
    tally: Tally,
    errors: list[BaseException],
) -> None:
    """Alternate single records and batches (with a text repeated inside) until stopped."""
    n = 0
    try:
        with httpx.Client(timeout=30, headers=bearer(key)) as http:
            while not stop.is_set():
                n += 1
                if n % 2:
                    texts = [f"{BASES[(n + worker) % len(BASES)]} ref {n % 3}"]
                else:
                    texts = [f"{BASES[(n + i) % len(BASES)]} ref {i % 3}" for i in range(4)]
                    texts.append(texts[0])  # the same text twice in one request
                ids = [f"W{worker}-{n}-{i}" for i in range(len(texts))]
                items = [
                    {"text": t, "id": rid, "min_precision": PRECISION}
                    for t, rid in zip(texts, ids, strict=True)
                ]
                try:
                    if len(items) == 1:
                        resp = http.post(f"{url}/v1/classify", json=items[0])
                    else:
                        resp = http.post(f"{url}/v1/classify/batch", json={"items": items})
                except httpx.ConnectError:  # the server is down: the request was never sent
                    time.sleep(0.05)
                    continue
                except httpx.TransportError:  # sent, answer lost: may or may not be stored
                    with tally.lock:
                        tally.unacked.update(texts)
                    time.sleep(0.05)
                    continue
                with tally.lock:
                    if resp.status_code not in (200, 503):
                        tally.unexpected.append(f"{resp.status_code} {resp.text[:300]}")
                    if resp.status_code != 200:  # 503 while starting: not promised
                        tally.unacked.update(texts)
                        continue
                    body = resp.json()
                    results = body["results"] if "results" in body else [body]
                    assert len(results) == len(texts), body
                    tally.answers += 1
                    for t, rid, res in zip(texts, ids, results, strict=True):
                        assert res["id"] == rid, res
                        if res["status"] == "review":
                            tally.acked.append((t, rid, int(res["review_id"])))
                        else:
                            tally.other.append(f"{t}: {res['status']}")
    except BaseException as exc:  # noqa: BLE001 - reported by the test thread
        errors.append(exc)


def wait_until(
    count: Callable[[], int], target: int, errors: list[BaseException], what: str
) -> None:
    """Wait until ``count()`` reaches ``target`` (or a client thread failed)."""
    deadline = time.monotonic() + 120
    while count() < target and not errors:
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_classify_under_sigkill_loses_and_duplicates_no_review_item(
    service: tuple[Server, sessionmaker[Session], dict[str, str]],
) -> None:
    server, sessions, keys = service
    tally = Tally()
    stop = threading.Event()
    errors: list[BaseException] = []
    clients = [
        threading.Thread(
            target=classify_client, args=(server.url, keys["submitter"], w, stop, tally, errors)
        )
        for w in range(2)
    ]
    for c in clients:
        c.start()
    try:
        for _ in range(KILLS):
            target = tally.answers + ACKS_BEFORE_KILL
            wait_until(lambda: tally.answers, target, errors, "the clients got no answers")
            server.kill()  # mid-stream: both clients have requests in flight or about to be
            server.start()
        target = tally.answers + 4
        wait_until(lambda: tally.answers, target, errors, "no answers after the last restart")
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=60)
    assert not errors, errors
    assert not tally.unexpected, tally.unexpected[:5]
    assert not tally.other, tally.other[:5]  # every acknowledged record went to review
    assert sum(tally.unacked.values()) > 0, "no request was caught by a kill"

    with sessions() as s:
        items = {it.id: it for it in s.scalars(select(ReviewItem))}
        enqueued = Counter(
            s.scalars(select(AuditEntry.item_id).where(AuditEntry.action == "enqueued"))
        )
    # None lost: every acknowledged review id is there, holding its text.
    for text, rid, review_id in tally.acked:
        assert review_id in items, (text, rid, review_id)
        assert items[review_id].text_key == dedupe_key(text), (text, items[review_id].text)
    # Never twice: one item per text (and batch), one "enqueued" event per item.
    per_key = Counter((it.text_key, it.batch) for it in items.values())
    assert max(per_key.values()) == 1, [k for k, n in per_key.items() if n > 1]
    assert enqueued == Counter(dict.fromkeys(items, 1)), enqueued
    assert {it.status for it in items.values()} == {"pending"}
    # Occurrences: every acknowledged record, plus at most the unanswered ones of that text.
    acked_n = Counter(dedupe_key(text) for text, _, _ in tally.acked)
    unacked_n: Counter[str] = Counter()
    for text, n in tally.unacked.items():
        unacked_n[dedupe_key(text)] += n
    by_key = {it.text_key: it for it in items.values()}
    assert set(acked_n) <= set(by_key) <= set(acked_n) | set(unacked_n)
    for key, item in by_key.items():
        assert acked_n[key] <= item.occurrences <= acked_n[key] + unacked_n[key], (
            item.text,
            item.occurrences,
            acked_n[key],
            unacked_n[key],
        )
    # And the restarted server serves every acknowledged item.
    with httpx.Client(timeout=30, headers=bearer(keys["alice"])) as http:
        for review_id in sorted({r for _, _, r in tally.acked}):
            got = http.get(f"{server.url}/v1/reviews/{review_id}")
            assert got.status_code == 200 and got.json()["status"] == "pending", got.text


@dataclass
class Decided:
    """Per item: the code a reviewer meant, and how the server answered."""

    reviewer: str
    code: str
    acked: bool = False  # 2xx on some attempt
    conflict_after_loss: bool = False  # 409 on a retry after an attempt without an answer
    lost_answers: int = 0  # attempts sent whose answer never came


def decision_client(
    url: str,
    key: str,
    plan: dict[int, Decided],
    errors: list[BaseException],
    answers: list[int],
) -> None:
    """Decide each planned item; retry after a lost answer until the server answers."""
    try:
        with httpx.Client(timeout=30, headers=bearer(key)) as http:
            for item_id, want in plan.items():
                deadline = time.monotonic() + 180
                while True:
                    assert time.monotonic() < deadline, f"item {item_id} never answered"
                    try:
                        resp = http.post(
                            f"{url}/v1/reviews/{item_id}/decision",
                            json={"action": "correct", "code": want.code, "note": "fault test"},
                        )
                    except httpx.ConnectError:  # the server is down: nothing was sent
                        time.sleep(0.05)
                        continue
                    except httpx.TransportError:  # sent, answer lost: may have been stored
                        want.lost_answers += 1
                        time.sleep(0.05)
                        continue
                    if resp.status_code == 503:  # starting up: nothing done
                        time.sleep(0.05)
                        continue
                    if resp.status_code == 409 and want.lost_answers:
                        assert resp.json()["error"] == "conflict", resp.text
                        want.conflict_after_loss = True
                        break
                    assert resp.status_code == 200, (item_id, resp.status_code, resp.text)
                    body = resp.json()
                    assert body["status"] == "decided" and body["decided_code"] == want.code, body
                    want.acked = True
                    break
                answers.append(item_id)
    except BaseException as exc:  # noqa: BLE001 - reported by the test thread
        errors.append(exc)


def test_review_decisions_under_sigkill_are_stored_exactly_once(
    service: tuple[Server, sessionmaker[Session], dict[str, str]],
) -> None:
    server, sessions, keys = service
    texts = [f"{b} case {i}" for i in range(12) for b in BASES[:5]]  # 60 items
    with httpx.Client(timeout=60, headers=bearer(keys["submitter"])) as http:
        items = [{"text": t, "min_precision": PRECISION} for t in texts]
        resp = http.post(f"{server.url}/v1/classify/batch", json={"items": items})
        assert resp.status_code == 200, resp.text
        ids = [int(r["review_id"]) for r in resp.json()["results"]]
    assert len(set(ids)) == len(texts)
    # Two reviewers, each with their own items; sections 01..11 as corrected codes.
    plans: dict[str, dict[int, Decided]] = {"alice": {}, "bob": {}}
    for n, item_id in enumerate(ids):
        who = "alice" if n % 2 else "bob"
        plans[who][item_id] = Decided(who, f"{n % 11 + 1:02d}")
    errors: list[BaseException] = []
    answers: list[int] = []
    clients = [
        threading.Thread(
            target=decision_client, args=(server.url, keys[who], plan, errors, answers)
        )
        for who, plan in plans.items()
    ]
    for c in clients:
        c.start()
    try:
        for k in range(KILLS):
            # Kill after a share of the items is answered, while both clients keep posting.
            target = (k + 1) * len(ids) // (KILLS + 2)
            wait_until(lambda: len(answers), target, errors, "no decisions answered")
            server.kill()
            server.start()
    finally:
        for c in clients:
            c.join(timeout=240)
    assert not errors, errors
    assert len(answers) == len(ids)
    plan_of = {i: d for plan in plans.values() for i, d in plan.items()}
    assert sum(d.lost_answers for d in plan_of.values()) > 0, "no decision was caught by a kill"

    with sessions() as s:
        rows = {it.id: it for it in s.scalars(select(ReviewItem).where(ReviewItem.id.in_(ids)))}
        decisions = Counter(
            (d.item_id, d.reviewer, d.action, d.code) for d in s.scalars(select(ReviewDecision))
        )
        audits = Counter(
            (a.item_id, a.actor, a.to_code)
            for a in s.scalars(select(AuditEntry).where(AuditEntry.action == "correct"))
        )
        n_decisions = s.scalar(select(func.count()).select_from(ReviewDecision))
    assert n_decisions == len(ids), n_decisions
    for item_id, want in plan_of.items():
        item = rows[item_id]
        assert want.acked or want.conflict_after_loss, item_id
        # Stored exactly once, whole: status, code, one decision row, one audit event.
        assert (item.status, item.decided_code, item.decided_by, item.decision) == (
            "decided",
            want.code,
            want.reviewer,
            "correct",
        ), item_id
        assert item.claimed_by is None and item.claim_expires_at is None, item_id
        assert decisions[(item_id, want.reviewer, "correct", want.code)] == 1, item_id
        assert audits[(item_id, want.reviewer, want.code)] == 1, item_id
    assert sum(audits.values()) == len(ids)
