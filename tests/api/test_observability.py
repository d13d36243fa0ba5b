"""Request ids, Prometheus metrics, the access log line (never the text), OpenAPI docs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.normalize import text_fingerprint

SECRET_TEXT = "assault on Jane Doe at 14 Elm Road"


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "service.api.access"]


def test_access_log_has_fingerprint_and_length_never_the_text(
    shared_client: TestClient,
    headers: dict[str, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    r = shared_client.post(
        "/v1/classify", json={"text": SECRET_TEXT, "id": "L1"}, headers=headers["submitter"]
    )
    assert r.status_code == 200
    [line] = _access_lines(caplog)
    body = r.json()
    assert line["request_id"] == body["request_id"]
    assert line["route"] == "/v1/classify" and line["http_status"] == 200
    assert line["key"] == "test-submitter"
    # Keyed with the installation's secret: a list of candidate texts cannot be checked
    # against the log without it.
    assert line["text_fp"] != text_fingerprint(SECRET_TEXT)
    assert line["text_fp"] == shared_client.app.state.services.fingerprint(SECRET_TEXT)  # type: ignore[attr-defined]
    assert line["text_len"] == len(SECRET_TEXT)
    assert line["model_version"] == body["model_version"]
    assert line["result_status"] == body["status"]
    assert "code" in line and "confidence" in line
    assert "Jane" not in caplog.text and "Elm" not in caplog.text


def test_batch_and_error_lines_never_hold_texts(
    shared_client: TestClient,
    headers: dict[str, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    items = [{"text": SECRET_TEXT}, {"text": 5}, {"text": "N/A"}]
    shared_client.post("/v1/classify/batch", json={"items": items}, headers=headers["admin"])
    shared_client.post(
        "/v1/classify", json={"text": SECRET_TEXT, "top_k": 99}, headers=headers["submitter"]
    )
    batch, invalid = _access_lines(caplog)
    assert batch["items"] == 3 and batch["item_errors"] == 1 and batch["rejected"] == 1
    assert invalid["http_status"] == 422
    assert "Jane" not in caplog.text


def test_request_id_is_echoed_when_plain(shared_client: TestClient) -> None:
    r = shared_client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = shared_client.get("/healthz", headers={"X-Request-ID": "evil id with spaces"})
    assert (
        r.headers["x-request-id"] != "evil id with spaces" and len(r.headers["x-request-id"]) == 32
    )


def test_metrics_by_route_template_status_and_classification(
    make_client: Callable[..., TestClient],
    key_headers: Callable[..., dict[str, str]],
) -> None:
    client = make_client()
    h = key_headers(client.app, "submitter")
    client.post("/v1/classify", json={"text": "N/A"}, headers=h)
    client.post("/v1/classify", json={"text": "12345"}, headers=h)
    client.get("/v1/taxonomy/0101", headers=h)
    client.get("/v1/taxonomy/0999", headers=h)
    client.get("/v1/no-such-route")
    text = client.get("/metrics").text
    assert 'iccs_http_requests_total{method="POST",route="/v1/classify",status="200"} 2.0' in text
    assert 'route="/v1/taxonomy/{code}",status="200"} 1.0' in text
    assert 'route="/v1/taxonomy/{code}",status="404"} 1.0' in text
    assert 'route="unmatched",status="404"} 1.0' in text
    assert 'iccs_classifications_total{source="model",status="rejected"} 2.0' in text
    assert "iccs_http_request_duration_seconds_bucket" in text
    version = client.app.state.services.predictor.version
    assert f'iccs_model_info{{model_version="{version}",taxonomy_version="ICCS v1.0"}} 1.0' in text
    assert "iccs_startup_seconds" in text


def test_two_apps_keep_separate_metrics(
    make_client: Callable[..., TestClient],
) -> None:
    a, b = make_client(), make_client()
    a.get("/healthz")
    assert 'route="/healthz"' in a.get("/metrics").text
    assert 'route="/healthz"' not in b.get("/metrics").text


def test_openapi_documents_every_field(shared_client: TestClient) -> None:
    spec = shared_client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    mine = [
        "ClassifyRequest",
        "ClassifyResponse",
        "SuggestionOut",
        "AssignedOut",
        "BatchRequest",
        "BatchResponse",
        "BatchItemError",
        "ErrorResponse",
        "CategoryDetail",
        "ActiveModelResponse",
        "ModelsResponse",
        "TaxonomySearchResponse",
    ]
    for name in mine:
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
    for field, prop in schemas["ClassifyRequest"]["properties"].items():
        assert prop.get("examples") is not None, f"ClassifyRequest.{field} has no example"
    classify = spec["paths"]["/v1/classify"]["post"]
    for status in ("401", "403", "413", "422", "429"):
        ref = classify["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorResponse")
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
