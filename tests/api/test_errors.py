"""Every error path answers in the one shape {"error", "detail", "status", "context"}."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from service.api.limits import RateLimiter


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_unknown_route_and_method(
    shared_client: TestClient, assert_error: Callable[..., Any]
) -> None:
    assert_error(shared_client.get("/v1/nothing"), 404, "not_found")
    assert_error(shared_client.get("/"), 404, "not_found")
    assert_error(shared_client.delete("/v1/classify"), 405, "method_not_allowed")
    assert_error(shared_client.post("/v1/taxonomy"), 405, "method_not_allowed")


def test_taxonomy_code_errors(
    shared_client: TestClient, headers: dict[str, dict[str, str]], assert_error: Callable[..., Any]
) -> None:
    h = headers["reviewer"]
    body = assert_error(shared_client.get("/v1/taxonomy/0999", headers=h), 404, "unknown_code")
    assert body["context"] == {"code": "0999"}
    assert_error(shared_client.get("/v1/taxonomy/101", headers=h), 422, "invalid_code")
    assert_error(shared_client.get("/v1/taxonomy/abc", headers=h), 422, "invalid_code")
    assert_error(shared_client.get("/v1/taxonomy?level=5", headers=h), 422, "validation_error")
    assert_error(shared_client.get("/v1/taxonomy/search", headers=h), 422, "validation_error")


def test_invalid_json_and_wrong_content(
    shared_client: TestClient, headers: dict[str, dict[str, str]], assert_error: Callable[..., Any]
) -> None:
    h = {**headers["submitter"], "content-type": "application/json"}
    assert_error(
        shared_client.post("/v1/classify", content=b'{"text": ', headers=h), 422, "invalid_json"
    )
    assert_error(shared_client.post("/v1/classify", content=b"\xff\xfe", headers=h), 422)
    plain = {**headers["submitter"], "content-type": "text/plain"}
    assert_error(shared_client.post("/v1/classify", content=b"theft", headers=plain), 422)
    assert_error(
        shared_client.post("/v1/classify", headers=headers["submitter"]), 422, "validation_error"
    )


def test_body_limit_by_content_length_and_by_stream(
    make_client: Callable[..., TestClient],
    assert_error: Callable[..., Any],
    key_headers: Callable[..., dict[str, str]],
) -> None:
    client = make_client(max_body_bytes=2048)
    h = {**key_headers(client.app, "submitter"), "content-type": "application/json"}
    big = b'{"text": "' + b"a" * 3000 + b'"}'
    body = assert_error(
        client.post("/v1/classify", content=big, headers=h), 413, "payload_too_large"
    )
    assert body["context"] == {"limit_bytes": 2048}
    # No Content-Length (chunked): the streamed count catches it.
    r = client.post("/v1/classify", content=_chunks(big, 500), headers=h)
    assert "content-length" not in r.request.headers
    assert assert_error(r, 413, "payload_too_large")["context"] == {"limit_bytes": 2048}
    # Under the limit, chunked works.
    r = client.post("/v1/classify", content=_chunks(b'{"text": "theft"}', 5), headers=h)
    assert r.status_code == 200, r.text
    # Without a key the answer is 401 before any of the body is read (the key comes first).
    assert_error(client.post("/v1/classify", content=big), 401, "unauthenticated")


def test_rate_limit_per_key(
    make_client: Callable[..., TestClient],
    assert_error: Callable[..., Any],
    key_headers: Callable[..., dict[str, str]],
) -> None:
    client = make_client(rate_limit_per_minute=3)
    a, b = key_headers(client.app, "submitter", "a"), key_headers(client.app, "admin", "b")
    for _ in range(3):
        assert client.get("/v1/taxonomy/01", headers=a).status_code == 200
    r = client.post("/v1/classify", json={"text": "theft"}, headers=a)
    body = assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert body["context"]["limit_per_minute"] == 3
    assert client.get("/v1/taxonomy/01", headers=b).status_code == 200  # per key
    assert client.get("/healthz").status_code == 200  # probes are not limited


def test_rate_limiter_window_slides() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    limiter.check("k")
    now[0] += 30
    limiter.check("k")
    with pytest.raises(Exception, match="per minute") as err:
        limiter.check("k")
    assert err.value.context["retry_after"] == 30  # type: ignore[attr-defined]
    now[0] += 30.5  # the first hit left the window
    limiter.check("k")
    RateLimiter(0).check("k")  # 0 disables


def test_unexpected_error_is_500_in_shape_and_logged(
    make_client: Callable[..., TestClient],
    assert_error: Callable[..., Any],
    key_headers: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client(raise_server_exceptions=False)
    h = key_headers(client.app, "submitter")

    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(client.app.state.services.predictor, "classify", broken)
    r = client.post("/v1/classify", json={"text": "theft of a Volvo from Jane Doe"}, headers=h)
    body = assert_error(r, 500, "internal_error")
    assert body["context"]["request_id"]
    assert "boom" not in r.text and "Jane" not in r.text
    assert "Jane" not in caplog.text
    # The service keeps serving.
    monkeypatch.undo()
    assert client.post("/v1/classify", json={"text": "theft"}, headers=h).status_code == 200


def test_readyz_is_503_when_the_database_is_gone(
    make_client: Callable[..., TestClient], assert_error: Callable[..., Any]
) -> None:
    client = make_client()
    services = client.app.state.services
    assert client.get("/readyz").status_code == 200
    good = services.engine
    services.engine = create_engine("sqlite:////nonexistent-dir/x.sqlite3")
    try:
        assert_error(client.get("/readyz"), 503, "database_unavailable")
    finally:
        services.engine.dispose()
        services.engine = good
    predictor = services.predictor
    services.predictor = None
    try:
        assert_error(client.get("/readyz"), 503, "model_not_ready")
        assert_error(
            client.post("/v1/classify", json={"text": "theft"}), 401
        )  # auth comes first; with a key it would be 503
    finally:
        services.predictor = predictor
    assert client.get("/readyz").status_code == 200


def test_lifespan_fails_fast_without_a_model(
    make_settings: Callable[..., Any], tmp_path: Any
) -> None:
    from service.errors import ModelNotFound
    from service.main import create_app

    app = create_app(make_settings(registry_dir=tmp_path / "empty-registry"))
    with pytest.raises(ModelNotFound), TestClient(app):
        pass
