"""Taxonomy and model routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from service.taxonomy import load_taxonomy


def test_taxonomy_tree_and_flat(
    shared_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["submitter"]
    tax = load_taxonomy()
    tree = shared_client.get("/v1/taxonomy", headers=h).json()
    assert tree["format"] == "tree" and tree["taxonomy_version"] == "ICCS v1.0"
    assert [c["code"] for c in tree["categories"]] == tax.codes(1)
    count = 0
    stack = list(tree["categories"])
    while stack:
        node = stack.pop()
        count += 1
        assert [c["code"] for c in node["children"]] == list(tax.children(node["code"]))
        stack.extend(node["children"])
    assert count == len(tax)

    flat = shared_client.get("/v1/taxonomy?format=flat", headers=h).json()
    assert flat["format"] == "flat" and len(flat["categories"]) == len(tax)
    classes = shared_client.get("/v1/taxonomy?level=4", headers=h).json()
    assert [c["code"] for c in classes["categories"]] == tax.codes(4)
    assert all(c["level"] == 4 and c["level_name"] == "class" for c in classes["categories"])


def test_taxonomy_code_and_search(
    shared_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["reviewer"]
    tax = load_taxonomy()
    code = tax.codes(4)[0]
    body = shared_client.get(f"/v1/taxonomy/{code}", headers=h).json()
    assert body["code"] == code and body["label"] == tax.title(code)
    assert [p["code"] for p in body["path"]] == tax.path(code)
    assert body["is_leaf"] and body["children"] == [] and body["level"] == 4
    section = shared_client.get("/v1/taxonomy/02", headers=h).json()
    assert section["parent"] is None and [c["code"] for c in section["children"]] == list(
        tax.children("02")
    )

    hits = shared_client.get("/v1/taxonomy/search?q=robbery", headers=h).json()
    assert hits["query"] == "robbery" and hits["results"]
    assert all("robbery" in r["label"].lower() for r in hits["results"])
    lvl = shared_client.get("/v1/taxonomy/search?q=robbery&level=3&limit=2", headers=h).json()
    assert 0 < len(lvl["results"]) <= 2 and all(r["level"] == 3 for r in lvl["results"])
    assert (
        shared_client.get("/v1/taxonomy/search?q=0401", headers=h).json()["results"][0]["code"]
        == "0401"
    )


def test_models_and_active(shared_client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    h = headers["submitter"]
    services = shared_client.app.state.services
    version = services.predictor.version
    listing = shared_client.get("/v1/models", headers=h).json()
    assert listing["serving"] == version and listing["promoted"] == version
    [entry] = [m for m in listing["models"] if m["version"] == version]
    assert entry["promoted"] and entry["serving"] and entry["complete"]

    active = shared_client.get("/v1/models/active", headers=h).json()
    assert active["version"] == version and active["promoted"]
    assert active["target_precision"] == services.settings.target_precision
    assert set(active["thresholds"]) <= {"1", "2", "3", "4"} and active["thresholds"]
    assert active["metrics_summary"] == services.manifest.get("metrics_summary", {})
    assert active["loaded_at"] and active["int8"] is services.settings.use_int8


def test_active_thresholds_at_another_precision(
    shared_client: TestClient,
    headers: dict[str, dict[str, str]],
    assert_error: Callable[..., Any],
) -> None:
    h = headers["reviewer"]
    lax = shared_client.get("/v1/models/active?min_precision=0.8", headers=h).json()
    strict = shared_client.get("/v1/models/active?min_precision=0.99", headers=h).json()
    assert lax["target_precision"] == 0.8 and strict["target_precision"] == 0.99
    for level, t in lax["thresholds"].items():
        assert strict["thresholds"][level] >= t  # asking for more precision never lowers a bar
    # A list coded as a table: its bar rises with the target too.
    assert lax["table_threshold"] is not None
    table95 = shared_client.get("/v1/models/active?min_precision=0.95", headers=h).json()
    assert (
        table95["table_threshold"] is None or table95["table_threshold"] >= lax["table_threshold"]
    )
    # Rejecting as "not an offence" is held to the target too: never below 0.5, never laxer
    # at a stricter target (null: content is never rejected at it).
    for body in (lax, table95, strict):
        assert body["reject_threshold"] is None or 0.5 <= body["reject_threshold"] <= 1.0
    if strict["reject_threshold"] is not None:
        assert lax["reject_threshold"] is not None
        assert strict["reject_threshold"] >= lax["reject_threshold"]
    err = assert_error(shared_client.get("/v1/models/active?min_precision=0.6", headers=h), 422)
    assert err["error"] == "invalid_input" and err["context"]["field"] == "min_precision"
