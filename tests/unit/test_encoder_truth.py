"""What the service says it serves is what it loaded, and the library serves what the README says.

A registry entry may ship no int8 encoder (registration leaves it out when it disagrees with
fp32 too often); the predictor then falls back to fp32, and the API and the startup log must
say fp32, whatever ICCS_USE_INT8 asked for.
"""

from __future__ import annotations

import inspect
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from service.models.embedder import OnnxEncoder
from service.models.predictor import load_predictor


@pytest.fixture(scope="module")
def without_int8(tiny_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny registry whose entry ships no int8 encoder."""
    registry = tmp_path_factory.mktemp("no-int8") / "registry"
    shutil.copytree(tiny_registry, registry, ignore=shutil.ignore_patterns("model.int8.onnx"))
    for path in registry.glob("*/manifest.json"):  # as training writes an entry without int8
        manifest = json.loads(path.read_text("utf-8"))
        manifest.get("files", {}).pop("encoder/model.int8.onnx", None)
        path.write_text(json.dumps(manifest), "utf-8")
    assert not list(registry.rglob("model.int8.onnx"))
    return registry


def test_predictor_reports_the_encoder_it_loaded(tiny_registry: Path, without_int8: Path) -> None:
    assert load_predictor(tiny_registry, int8=True).loaded_encoder.int8 is True
    fallback = load_predictor(without_int8, int8=True)
    assert fallback.loaded_encoder.int8 is False
    assert fallback.loaded_encoder.name == "fp32"


@pytest.fixture(scope="module")
def client(
    without_int8: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, list[logging.LogRecord]]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("service.main")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    settings = Settings(
        registry_dir=without_int8,
        state_dir=tmp_path_factory.mktemp("state"),
        use_int8=True,
        rate_limit_per_minute=0,
    )
    try:
        with TestClient(create_app(settings)) as started:
            yield started, records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_models_active_names_the_loaded_encoder_not_the_setting(
    client: tuple[TestClient, list[logging.LogRecord]],
) -> None:
    http, _ = client
    app: FastAPI = http.app  # type: ignore[assignment]
    key = app.state.services.keys.create("truth", "admin")
    body = http.get("/v1/models/active", headers={"Authorization": f"Bearer {key}"}).json()
    assert body["int8"] is False
    assert body["encoder"] == "fp32"


def test_startup_log_names_the_loaded_encoder(
    client: tuple[TestClient, list[logging.LogRecord]],
) -> None:
    _, records = client
    startup = [
        json.loads(r.getMessage())
        for r in records
        if r.getMessage().startswith("{") and '"startup"' in r.getMessage()
    ]
    assert len(startup) == 1
    assert startup[0]["int8"] is False and startup[0]["encoder"] == "fp32"


def test_library_entry_points_default_to_fp32_as_the_service_does() -> None:
    from service.bulk import spark

    assert Settings().use_int8 is False
    assert inspect.signature(OnnxEncoder).parameters["int8"].default is False
    assert spark.ModelRef.__dataclass_fields__["int8"].default is False
    for entry in (spark.classify_spark, spark.classify_file_spark):
        assert inspect.signature(entry).parameters["int8"].default is False
