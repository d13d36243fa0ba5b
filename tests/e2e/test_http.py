"""The API over real HTTP against uvicorn: contract, policy, errors, auth, durability."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from service.auth import KeyStore
from service.db import session_factory
from service.review.store import init_db

# Realistic texts; the tiny model cannot split some of them below a level it is sure of.
OFFENCES = [
    "kidnapping",
    "robbery with a knife",
    "burglary of a dwelling",
    "threat to kill",
    "drink driving",
    "pickpocketing",
    "theft of livestock",
    "assault",
    "sexual assault",
    "possession of cannabis",
    "criminal damage",
    "trafficking in persons",
    "stalking",
]


def _post(http: httpx.Client, h: dict[str, str], **body: Any) -> dict[str, Any]:
    r = http.post("/v1/classify", json=body, headers=h)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_happy_path_single_and_batch(live: Any, http: httpx.Client) -> None:
    h = live.key("submitter")
    body = _post(http, h, text="ASSLT W/DW", id="A-1", top_k=2)
    assert body["id"] == "A-1" and len(body["suggestions"]) == 2
    assert body["model_version"] == live.app.state.services.predictor.version
    assert body["taxonomy_version"] == "ICCS v1.0" and body["source"] == "model"
    r = http.post(
        "/v1/classify/batch",
        headers=h,
        json={
            "items": [
                {"text": "robbery with a knife", "id": "1"},
                {"text": ["not", "a", "string"], "id": "2"},
                {"text": "N/A", "id": "3"},
            ]
        },
    )
    assert r.status_code == 200
    res = r.json()["results"]
    assert res[0]["id"] == "1" and res[0]["status"] in {"auto", "review"}
    assert res[1] == {"index": 1, "id": "2", "error": res[1]["error"]}
    assert res[1]["error"]["error"] == "validation_error" and res[1]["error"]["status"] == 422
    assert res[2]["status"] == "rejected" and res[2]["reason"] == "no_words"


def test_backoff_to_the_group_or_division_over_http(live: Any, http: httpx.Client) -> None:
    """Realistic texts at a few precisions: some answer with an ancestor of the top code."""
    h = live.key("submitter", "backoff")
    backoffs = []
    for precision in (0.8, 0.85, 0.9, 0.95):
        url = f"/v1/models/active?min_precision={precision}"
        thresholds = http.get(url, headers=h).json()["thresholds"]
        for text in OFFENCES:
            body = _post(http, h, text=text, min_precision=precision)
            top, assigned = (
                body["suggestions"][0] if body["suggestions"] else None,
                body["assigned"],
            )
            if body["status"] != "auto" or top is None:
                continue
            assert assigned["code"] in top["path"]
            assert assigned["confidence"] >= thresholds[str(assigned["level"])]
            if assigned["level"] < top["level"]:
                backoffs.append((text, top["code"], assigned["code"]))
    assert backoffs, "no realistic text backed off to a shallower code"
    for _, top_code, assigned_code in backoffs:
        assert top_code.startswith(assigned_code) and top_code != assigned_code


def test_non_offence_texts_are_rejected(live: Any, http: httpx.Client) -> None:
    h = live.key("submitter", "rejects")
    for text in ("N/A", "12345", ""):
        body = _post(http, h, text=text)
        assert body["status"] == "rejected" and body["reason"] and body["assigned"] is None


def test_error_paths_over_http(
    live: Any, http: httpx.Client, assert_error: Callable[..., Any]
) -> None:
    sub, rev = live.key("submitter", "errs"), live.key("reviewer", "errs-rev")
    settings = live.app.state.services.settings
    assert_error(http.post("/v1/classify", json={"text": "theft"}), 401, "unauthenticated")
    assert_error(
        http.post("/v1/classify", json={"text": "theft"}, headers={"Authorization": "Bearer nope"}),
        401,
    )
    assert_error(http.post("/v1/classify", json={"text": "theft"}, headers=rev), 403, "forbidden")
    assert_error(http.get("/v1/nope", headers=sub), 404, "not_found")
    assert_error(http.get("/v1/taxonomy/0999", headers=sub), 404, "unknown_code")
    assert_error(http.put("/v1/classify", headers=sub), 405, "method_not_allowed")
    assert_error(http.post("/v1/classify", json={"text": 1}, headers=sub), 422, "validation_error")
    assert_error(
        http.post(
            "/v1/classify", content=b"{", headers={**sub, "content-type": "application/json"}
        ),
        422,
        "invalid_json",
    )
    long_text = "x" * (settings.max_text_length + 1)
    assert_error(
        http.post("/v1/classify", json={"text": long_text}, headers=sub), 413, "text_too_long"
    )
    too_many = {"items": [{"text": "a"}] * (settings.max_batch_size + 1)}
    assert_error(
        http.post("/v1/classify/batch", json=too_many, headers=sub), 413, "batch_too_large"
    )


def test_body_limit_and_rate_limit_over_http(
    live_factory: Callable[..., Any], assert_error: Callable[..., Any]
) -> None:
    server = live_factory(max_body_bytes=4096, rate_limit_per_minute=4)
    h = {**server.key("submitter"), "content-type": "application/json"}
    big = b'{"text": "' + b"a" * 8000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert_error(http.post("/v1/classify", content=big, headers=h), 413, "payload_too_large")
        r = http.post("/v1/classify", content=chunks(), headers=h)
        assert r.request.headers.get("transfer-encoding") == "chunked"
        assert_error(r, 413, "payload_too_large")
    # Refused bodies counted against the first key (the key is checked before the body).
    h = {**server.key("submitter", "e2e-rate"), "content-type": "application/json"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        codes = [
            http.post("/v1/classify", json={"text": "theft"}, headers=h).status_code
            for _ in range(5)
        ]
        assert codes == [200, 200, 200, 200, 429]
        r = http.post("/v1/classify", json={"text": "theft"}, headers=h)
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1


def test_readyz_healthz_metrics(live: Any, http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    ready = http.get("/readyz").json()
    assert ready["checks"]["database"] == "ok"
    metrics = http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "iccs_http_requests_total" in metrics.text and "iccs_model_info" in metrics.text


def test_review_survives_a_killed_server(
    e2e_registry: Path, tmp_path: Path, serve_process: Callable[..., Any]
) -> None:
    """Queued, answered, SIGKILLed: the item is in the queue when the service comes back."""
    db = tmp_path / "durable.sqlite3"
    keys = KeyStore(session_factory(init_db(f"sqlite:///{db}")))
    sub = {"Authorization": f"Bearer {keys.create('agency', 'submitter')}"}
    rev = {"Authorization": f"Bearer {keys.create('alice', 'reviewer')}"}
    env = {
        "ICCS_REGISTRY_DIR": str(e2e_registry),
        "ICCS_STATE_DIR": str(tmp_path / "state"),
        "ICCS_DATABASE_URL": f"sqlite:///{db}",
    }
    first = serve_process(env)
    r = httpx.post(
        f"{first.url}/v1/classify",
        headers=sub,
        timeout=30,
        json={"text": "unlawful wounding, s.20 OAPA", "id": "DUR-1", "min_precision": 0.999},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "review"
    first.kill()  # no shutdown hook runs: only what was committed survives

    second = serve_process(env)
    item = httpx.get(f"{second.url}/v1/reviews/{body['review_id']}", headers=rev, timeout=30)
    assert item.status_code == 200, item.text
    got = item.json()
    assert got["record_id"] == "DUR-1" and got["status"] == "pending"
    assert got["text"] == "unlawful wounding, s.20 OAPA"
    assert got["model_version"] == body["model_version"]
    assert got["top_code"] == body["suggestions"][0]["code"]
