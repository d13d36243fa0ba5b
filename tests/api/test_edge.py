"""The HTTP edge under hostile or broken input (issue 16): auth before the body, bad text,
database trouble, cost-aware limits, the log fingerprint and the unauthenticated surface."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from service import shorthand
from service.api.limits import RateLimiter
from service.db import make_engine
from service.errors import RateLimited

MB = 1_000_000


def call_asgi(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes],
) -> tuple[int, int]:
    """Send one request straight to the app; its status and how many body bytes it read.

    The body is offered chunk by chunk and counted only when the app asks for it, so the count
    is exactly what the server received.
    """
    consumed = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    client.portal.call(client.app, scope, receive, send)  # type: ignore[arg-type]
    return status, consumed


def multipart_upload(total: int, chunk: int = 64 * 1024) -> tuple[str, Iterator[bytes]]:
    """Content type and chunks of a valid multipart upload whose file part is ``total`` bytes."""
    boundary = "iccs-edge-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="text_column"\r\n\r\ntext\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\ntext\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        sent = 0
        line = b"theft of a bicycle\n" * (chunk // 19)
        while sent < total:
            yield line
            sent += len(line)
        yield tail

    return f"multipart/form-data; boundary={boundary}", chunks()


def json_body(total: int) -> Iterator[bytes]:
    """A valid JSON batch of about ``total`` bytes, in chunks."""
    yield b'{"items": ['
    item = b'{"text": "theft of a bicycle"},' * 2000
    sent = 0
    while sent < total:
        yield item
        sent += len(item)
    yield b'{"text": "assault"}]}'


@pytest.fixture(scope="module")
def edge(shared_client: TestClient) -> TestClient:
    return shared_client


# --- #1: authentication before the body ----------------------------------------------------


@pytest.mark.parametrize("key", [None, "iccs_not-a-key"])
def test_upload_without_a_valid_key_is_refused_before_the_body_is_read(
    edge: TestClient, key: str | None
) -> None:
    content_type, chunks = multipart_upload(50 * MB)
    headers = {"content-type": content_type}
    if key:
        headers["authorization"] = f"Bearer {key}"
    status, consumed = call_asgi(edge, "POST", "/v1/jobs", headers, chunks)
    assert status == 401
    assert consumed < MB, consumed


def test_upload_with_a_key_of_the_wrong_role_is_refused_before_the_body(
    edge: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    content_type, chunks = multipart_upload(50 * MB)
    reviewer = {k.lower(): v for k, v in headers["reviewer"].items()}
    status, consumed = call_asgi(
        edge, "POST", "/v1/jobs", {**reviewer, "content-type": content_type}, chunks
    )
    assert status == 403
    assert consumed < MB, consumed


@pytest.mark.parametrize("path", ["/v1/classify/batch", "/v1/reviews/1/decision"])
def test_json_routes_refuse_without_a_key_before_the_body(edge: TestClient, path: str) -> None:
    status, consumed = call_asgi(
        edge, "POST", path, {"content-type": "application/json"}, json_body(4 * MB)
    )
    assert status == 401
    assert consumed < MB, consumed


def test_authenticated_requests_still_read_their_body(
    edge: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    submitter = {k.lower(): v for k, v in headers["submitter"].items()}
    status, consumed = call_asgi(
        edge,
        "POST",
        "/v1/classify",
        {**submitter, "content-type": "application/json"},
        iter([b'{"text": "theft of a bicycle"}']),
    )
    assert status == 200 and consumed > 0


def test_refusals_before_the_body_keep_the_error_shape_and_the_access_log(
    edge: TestClient,
    headers: dict[str, dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
) -> None:
    r = edge.post("/v1/classify", json={"text": "theft"})
    assert_error(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    r = edge.post("/v1/classify", json={"text": "theft"}, headers=headers["reviewer"])
    body = assert_error(r, 403, "forbidden")
    assert body["context"] == {"role": "reviewer", "action": "classify"}
    # Open routes stay open; unknown routes stay 404 (no key asked for what does not exist).
    assert edge.get("/healthz").status_code == 200
    assert_error(edge.post("/v1/nothing-here", content=b"x" * 1000), 404, "not_found")


# --- #5: bad text is a clear 4xx, per item in a batch --------------------------------------

BAD_TEXTS = {
    "lone surrogate": "theft of a \ud800 bicycle",
    "NUL": "zq7 unusual conduct \x00 near depot",
}


def post_json(client: TestClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    """POST ``body`` as ASCII JSON: lone surrogates travel as ``\\ud800`` escapes."""
    raw = json.dumps(body).encode()
    return client.post(path, content=raw, headers={**headers, "content-type": "application/json"})


@pytest.fixture
def backend_client(make_client: Callable[..., TestClient], backend: dict[str, Any]) -> TestClient:
    # Server errors come back as 500 answers, as a client would see them.
    return make_client(raise_server_exceptions=False, **backend)


@pytest.mark.parametrize("what", sorted(BAD_TEXTS))
def test_unstorable_text_is_a_422_not_a_500(
    backend_client: TestClient,
    key_headers: Callable[..., dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
    what: str,
) -> None:
    h = key_headers(backend_client.app, "submitter")
    # min_precision 0.999 sends the record to review: the text would be stored.
    body = {"text": BAD_TEXTS[what], "min_precision": 0.999}
    err = assert_error(post_json(backend_client, "/v1/classify", body, h), 422)
    assert err["error"] == "validation_error"
    assert err["context"]["errors"][0]["loc"] == ["body", "text"]
    assert "\ud800" not in str(err) and "\x00" not in str(err)
    for bad_id in (BAD_TEXTS[what], "x" * 201):
        body = {"text": "theft of a bicycle", "id": bad_id, "min_precision": 0.999}
        err = assert_error(post_json(backend_client, "/v1/classify", body, h), 422)
        assert err["context"]["errors"][0]["loc"] == ["body", "id"]


def test_a_bad_item_in_a_batch_fails_only_itself(
    backend_client: TestClient, key_headers: Callable[..., dict[str, str]]
) -> None:
    h = key_headers(backend_client.app, "submitter")
    items = [
        {"text": "theft of a bicycle", "id": "ok-1", "min_precision": 0.999},
        {"text": BAD_TEXTS["lone surrogate"], "id": "bad-1"},
        {"text": BAD_TEXTS["NUL"], "id": "bad-2", "min_precision": 0.999},
        {"text": "assault", "id": "bad-\ud800-3"},
        {"text": "burglary of a dwelling", "id": "x" * 300},
        {"text": "assault with a knife", "id": "ok-2", "min_precision": 0.999},
    ]
    r = post_json(backend_client, "/v1/classify/batch", {"items": items}, h)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [res.get("index") for res in results] == [None, 1, 2, 3, 4, None]
    assert [res["id"] for res in results] == ["ok-1", "bad-1", "bad-2", None, None, "ok-2"]
    for res in results[1:5]:
        assert res["error"]["status"] == 422 and res["error"]["error"] == "validation_error"
    for res in (results[0], results[5]):  # the good items are answered as any other
        assert "error" not in res and res["status"] in {"auto", "review"}
        assert (res["review_id"] is not None) == (res["status"] == "review")


def test_body_that_is_not_utf8_is_a_4xx(
    shared_client: TestClient,
    headers: dict[str, dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
) -> None:
    h = {**headers["submitter"], "content-type": "application/json"}
    for raw in (b'{"text": "theft \xff\xfe of a bicycle"}', b'\xff\xfe{\x00"\x00t\x00'):
        r = shared_client.post("/v1/classify", content=raw, headers=h)
        assert 400 <= r.status_code < 500, r.text
        assert_error(r, r.status_code)


# --- #6: database trouble is a 503, and offence texts stay out of the logs -----------------

CANARY = "CANARY-7731 kidnapping of Jane Roe"


def test_sql_errors_never_carry_the_bound_parameters(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT NOT NULL UNIQUE)"))
        conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": CANARY})
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": CANARY})
    assert "CANARY" not in str(info.value)
    engine.dispose()


def test_a_locked_database_is_a_503_with_retry_after_and_no_text_in_the_log(
    make_client: Callable[..., TestClient],
    key_headers: Callable[..., dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client(raise_server_exceptions=False, db_busy_timeout_seconds=0.2)
    h = key_headers(client.app, "submitter")
    settings = client.app.state.services.settings  # type: ignore[attr-defined]
    db_file = settings.state_dir / "iccs.sqlite3"
    locker = sqlite3.connect(db_file, isolation_level=None, timeout=0)
    locker.execute("BEGIN IMMEDIATE")  # holds the write lock, as a long writer elsewhere would
    try:
        with caplog.at_level(logging.DEBUG):
            r = client.post(
                "/v1/classify", json={"text": CANARY, "min_precision": 0.999}, headers=h
            )
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    body = assert_error(r, 503, "database_unavailable")
    assert int(r.headers["retry-after"]) >= 1
    assert "CANARY" not in r.text
    assert "CANARY" not in caplog.text
    assert any("database_unavailable" in rec.getMessage() for rec in caplog.records)
    assert body["context"]["request_id"] == r.headers["x-request-id"]
    # Once the lock is gone the same request goes through.
    r = client.post("/v1/classify", json={"text": CANARY, "min_precision": 0.999}, headers=h)
    assert r.status_code == 200, r.text


# --- #9: limits that see cost -----------------------------------------------------------------


def test_rate_limit_counts_records_not_requests() -> None:
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0])
    limiter.check("k", cost=8)
    with pytest.raises(RateLimited):
        limiter.check("k", cost=3)
    limiter.check("k", cost=2)
    with pytest.raises(RateLimited) as info:
        limiter.check("k")
    assert info.value.context["retry_after"] == 60
    now[0] += 60.5  # the window slid past all of them
    limiter.check("k", cost=10)
    # A batch larger than the whole limit is still allowed into an empty window.
    now[0] += 61
    limiter.check("k", cost=50)


def test_a_batch_costs_its_records_against_the_rate_limit(
    make_client: Callable[..., TestClient],
    key_headers: Callable[..., dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
) -> None:
    client = make_client(rate_limit_per_minute=30)
    h = key_headers(client.app, "submitter")
    batch = {"items": [{"text": f"theft of item {i}"} for i in range(20)]}
    assert client.post("/v1/classify/batch", json=batch, headers=h).status_code == 200
    r = client.post("/v1/classify/batch", json=batch, headers=h)
    body = assert_error(r, 429, "rate_limited")
    assert body["context"]["limit_per_minute"] == 30
    assert int(r.headers["retry-after"]) >= 1


def test_shorthand_cache_is_bounded_and_evicts_the_least_recently_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shorthand, "_CACHE_LIMIT", 3)
    resolver = shorthand.ShorthandResolver({"conduct": 9, "during": 9, "dwelling": 9})
    computed: list[str] = []
    real = shorthand.abbreviation_cost

    def counting(token: str, word: str, *args: Any, **kwargs: Any) -> float:
        computed.append(token)
        return real(token, word, *args, **kwargs)

    monkeypatch.setattr(shorthand, "abbreviation_cost", counting)

    def cost_of(token: str) -> int:
        before = len(computed)
        resolver.resolve(token)
        return len(computed) - before

    for token in ("cndct", "drng", "dwllng"):
        assert cost_of(token) > 0
    assert cost_of("cndct") == 0  # cached; now the most recently used
    assert cost_of("dng") > 0  # a fourth token: admitted, evicting "drng" (least recent)
    assert cost_of("dng") == 0
    assert cost_of("cndct") == 0
    assert cost_of("drng") > 0  # evicted, so computed again
    assert resolver("cndct drng") == "conduct during"


# --- #7: the log fingerprint is keyed ------------------------------------------------------


def _logged_fp(client: TestClient, caplog: pytest.LogCaptureFixture, text_: str) -> str:
    keys = client.app.state.services.keys  # type: ignore[attr-defined]
    key = keys.create(f"fp-{uuid.uuid4().hex[:8]}", "submitter")
    h = {"Authorization": f"Bearer {key}"}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="service.api.access"):
        assert client.post("/v1/classify", json={"text": text_}, headers=h).status_code == 200
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "service.api.access"]
    fp: str = line["text_fp"]
    return fp


def test_log_fingerprint_is_an_hmac_with_a_per_installation_secret(
    make_client: Callable[..., TestClient],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    the_text = "ASSLT W/DW"
    bare = hashlib.sha256(the_text.encode()).hexdigest()
    first = make_client()
    fp = _logged_fp(first, caplog, the_text)
    assert not bare.startswith(fp) and len(fp) >= 12
    secret_file = first.app.state.services.settings.state_dir / "fingerprint.key"  # type: ignore[attr-defined]
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = bytes.fromhex(secret_file.read_text().strip())
    assert len(secret) >= 32
    assert hmac.new(secret, the_text.encode(), hashlib.sha256).hexdigest().startswith(fp)
    # The secret is made once: the same installation keeps its fingerprints across restarts.
    assert _logged_fp(make_client(), caplog, the_text) == fp
    # Another installation (state dir) has another secret, so other fingerprints ...
    other = make_client(state_dir=tmp_path / "other-state")
    assert _logged_fp(other, caplog, the_text) != fp
    # ... unless the operator sets one key for all instances.
    shared = {"log_fingerprint_key": "a-key-shared-by-every-instance-0123456789"}
    a = _logged_fp(make_client(state_dir=tmp_path / "a", **shared), caplog, the_text)
    b = _logged_fp(make_client(state_dir=tmp_path / "b", **shared), caplog, the_text)
    assert a == b != fp


# --- Low: the unauthenticated surface (L5) and a liveness probe that never waits (L8) -------


def test_interactive_docs_are_off_unless_asked_for(
    make_client: Callable[..., TestClient], assert_error: Callable[..., dict[str, Any]]
) -> None:
    # Swagger UI and ReDoc load scripts from a CDN: on the origin of /review they could read
    # a reviewer's key from sessionStorage, so they are served only when the operator opts in.
    client = make_client()
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert_error(client.get(path), 404, "not_found")
    assert client.get("/openapi.json").status_code == 200  # the schema itself loads nothing
    opted_in = make_client(api_docs=True)
    assert "swagger-ui" in opted_in.get("/docs").text


def test_metrics_can_be_closed_to_callers_without_a_key(
    make_client: Callable[..., TestClient],
    key_headers: Callable[..., dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
) -> None:
    assert make_client().get("/metrics").status_code == 200  # default: open, for scrapers
    client = make_client(open_metrics=False)
    assert_error(client.get("/metrics"), 401, "unauthenticated")
    r = client.get("/metrics", headers=key_headers(client.app, "reviewer"))
    assert r.status_code == 200 and "iccs_http_requests_total" in r.text
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_healthz_answers_while_every_worker_thread_is_busy(edge: TestClient) -> None:
    # Sync routes wait for a thread of the pool that long batch calls share; a liveness probe
    # that waited there would get a busy-but-healthy server restarted.
    release = threading.Event()

    def shrink_and_occupy_the_pool() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1

    edge.portal.call(shrink_and_occupy_the_pool)  # type: ignore[union-attr]
    edge.portal.start_task_soon(anyio.to_thread.run_sync, release.wait)  # type: ignore[union-attr]
    answers: list[int] = []
    probe = threading.Thread(target=lambda: answers.append(edge.get("/healthz").status_code))
    try:
        probe.start()
        probe.join(timeout=20)  # a hang bound, not a speed requirement
        answered_while_busy = list(answers)
    finally:
        release.set()
        probe.join(timeout=20)
        edge.portal.call(  # type: ignore[union-attr]
            lambda: setattr(anyio.to_thread.current_default_thread_limiter(), "total_tokens", 40)
        )
    assert answered_while_busy == [200]


@pytest.mark.parametrize("batch_name", ["b" * 201, "night\x00shift"])
def test_a_job_with_an_unstorable_batch_name_is_refused_at_submit(
    edge: TestClient,
    headers: dict[str, dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
    batch_name: str,
) -> None:
    # The name reaches the database only when the job queues its review rows, after every row
    # was coded (PostgreSQL: VARCHAR(200), no NUL): refused before the job starts instead.
    boundary = "edge-batch-name"
    parts = [
        ("text_column", "text"),
        ("to_review", "true"),
        ("batch_name", batch_name),
    ]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
        + v.encode()
        + b"\r\n"
        for k, v in parts
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n'
        "Content-Type: text/csv\r\n\r\ntext\ntheft of a bicycle\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    h = {**headers["submitter"], "content-type": f"multipart/form-data; boundary={boundary}"}
    err = assert_error(edge.post("/v1/jobs", content=body, headers=h), 422)
    assert err["error"] == "validation_error", err


@pytest.mark.postgres
def test_values_postgres_cannot_store_are_a_4xx_on_every_route(
    make_client: Callable[..., TestClient],
    pg_url: str,
    key_headers: Callable[..., dict[str, str]],
) -> None:
    # Found by the schema fuzz on PostgreSQL: an id past INTEGER's range, or a NUL in a free
    # text field, is refused by the database; that is the client's mistake, not a 500.
    client = make_client(raise_server_exceptions=False, database_url=pg_url)
    sub = key_headers(client.app, "submitter")
    rev = key_headers(client.app, "reviewer")
    decision = {"action": "correct", "code": "0101"}
    huge = 2**40
    for r in (
        client.get(f"/v1/reviews/{huge}", headers=rev),
        client.post(f"/v1/reviews/{huge}/decision", json=decision, headers=rev),
        client.post(f"/v1/reviews/{huge}/claim", headers=rev),
    ):
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
    queued = client.post(
        "/v1/classify", json={"text": "aggravated burglary", "min_precision": 0.999}, headers=sub
    ).json()
    r = post_json(
        client,
        f"/v1/reviews/{queued['review_id']}/decision",
        {**decision, "note": "seen \x00 twice"},
        rev,
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)


def test_shorthand_resolves_a_bounded_number_of_unknown_tokens_per_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each unknown token costs a search of the vocabulary; a text of hundreds of junk tokens
    # must not cost hundreds of searches. The cut is by position, so the answer never depends
    # on what happens to be cached.
    monkeypatch.setattr(shorthand, "_MAX_UNKNOWN_PER_TEXT", 2, raising=False)
    resolver = shorthand.ShorthandResolver({"conduct": 9, "during": 9, "dwelling": 9})
    text_ = "cndct in drng the dwllng"
    assert resolver(text_) == "conduct in during the dwllng"
    resolver.resolve("dwllng")  # cached now: the text still reads the same
    assert resolver(text_) == "conduct in during the dwllng"
    assert resolver("dwllng") == "dwelling"


def test_one_key_streams_a_bounded_number_of_uploads_at_once(
    make_client: Callable[..., TestClient], key_headers: Callable[..., dict[str, str]]
) -> None:
    # An authenticated key may still send 500 MB per upload: how many it streams at once is
    # capped, and the one over the cap is refused before its body is read.
    client = make_client(max_uploads_per_key=1)
    h = {k.lower(): v for k, v in key_headers(client.app, "submitter").items()}
    content_type, _ = multipart_upload(0)
    h["content-type"] = content_type
    portal = client.portal
    assert portal is not None
    gate = portal.call(anyio.Event)
    first_status: list[int] = []
    pieces = list(multipart_upload(1000)[1])

    async def slow_receive() -> dict[str, Any]:
        if pieces:
            chunk = pieces.pop(0)
            if not pieces:
                await gate.wait()  # the last piece waits: the upload is still streaming
            return {"type": "http.request", "body": chunk, "more_body": bool(pieces)}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def first_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            first_status.append(int(message["status"]))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/jobs",
        "raw_path": b"/v1/jobs",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in h.items()],
        "client": ("127.0.0.1", 5001),
        "server": ("testserver", 80),
        "state": {},
    }
    first = portal.start_task_soon(client.app, scope, slow_receive, first_send)  # type: ignore[arg-type]
    try:
        # The first upload holds the key's only slot (its receive is waiting on the gate).
        while pieces and len(pieces) > 1:
            portal.call(anyio.sleep, 0.01)
        status, consumed = call_asgi(client, "POST", "/v1/jobs", h, multipart_upload(50 * MB)[1])
        assert status == 429 and consumed < MB, (status, consumed)
    finally:
        portal.call(gate.set)
        first.result(timeout=60)
    assert first_status == [202]
    status, _ = call_asgi(client, "POST", "/v1/jobs", h, multipart_upload(1000)[1])
    assert status == 202  # the slot was given back


@pytest.mark.parametrize(
    "body", [{"batch": "b", "share": 5e-324}, {"item_ids": [2**70]}, {"item_ids": [0]}]
)
def test_double_review_request_out_of_range_is_a_422(
    make_client: Callable[..., TestClient],
    key_headers: Callable[..., dict[str, str]],
    assert_error: Callable[..., dict[str, Any]],
    body: dict[str, Any],
) -> None:
    # Found by the schema fuzz: a share so small that 1/share overflows, and an id SQLite
    # cannot bind, were 500s.
    client = make_client(raise_server_exceptions=False)
    h = key_headers(client.app, "admin")
    assert_error(client.post("/v1/reviews/double-review", json=body, headers=h), 422)
