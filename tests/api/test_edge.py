"""The HTTP edge under hostile or broken input (issue 16): auth before the body, bad text,
database trouble, cost-aware limits, the log fingerprint and the unauthenticated surface."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

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
