"""One check of a caller's min_precision: the CLI, the API and job submission agree on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.cli import main
from service.config import HIGHEST_PRECISION, Settings
from service.errors import InvalidInput
from service.main import create_app

# With the default floor (0.80): below it, at the lowest setting value, above the highest.
REFUSED = (0.5, 0.79, 0.9995)
ACCEPTED = (0.8, 0.9, HIGHEST_PRECISION)


@pytest.mark.parametrize("value", REFUSED)
def test_settings_refuse_a_precision_outside_the_floor_and_the_highest(value: float) -> None:
    with pytest.raises(InvalidInput) as err:
        Settings().check_min_precision(value)
    assert err.value.context == {"field": "min_precision", "minimum": 0.8, "maximum": 0.999}


@pytest.mark.parametrize("value", ACCEPTED)
def test_settings_accept_a_precision_within_bounds(value: float) -> None:
    assert Settings().check_min_precision(value) == value


def test_the_floor_is_the_operators_setting() -> None:
    settings = Settings(min_precision_floor=0.9)
    with pytest.raises(InvalidInput):
        settings.check_min_precision(0.85)
    assert settings.check_min_precision(0.9) == 0.9


def _classify_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: float) -> str:
    # An empty registry: a precision the check accepts reaches model loading and fails there.
    monkeypatch.setenv("ICCS_REGISTRY_DIR", str(tmp_path / "empty-registry"))
    monkeypatch.setenv("ICCS_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "in.csv"
    source.write_text("text\ntheft of a bicycle\n", "utf-8")
    args = ["classify-file", str(source), "--text-column", "text"]
    args += ["--output", str(tmp_path / "out.csv"), "--min-precision", str(value)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    return result.output


@pytest.mark.parametrize("value", REFUSED)
def test_cli_refuses_what_the_api_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: float
) -> None:
    assert "invalid_input: min_precision must be between 0.8 and 0.999" in _classify_file(
        tmp_path, monkeypatch, value
    )


@pytest.mark.parametrize("value", ACCEPTED)
def test_cli_accepts_what_the_api_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: float
) -> None:
    output = _classify_file(tmp_path, monkeypatch, value)
    assert "invalid_input" not in output
    assert "model_not_found" in output


@pytest.fixture(scope="module")
def client(tiny_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("precision-state")
    settings = Settings(registry_dir=tiny_registry, state_dir=state, rate_limit_per_minute=0)
    with TestClient(create_app(settings)) as started:
        yield started


@pytest.fixture(scope="module")
def auth(client: TestClient) -> dict[str, str]:
    app: FastAPI = client.app  # type: ignore[assignment]
    return {"Authorization": f"Bearer {app.state.services.keys.create('precision', 'admin')}"}


def _answers(client: TestClient, auth: dict[str, str], value: float) -> list[int]:
    """Status of a classify call, a model query and a job submission asking for ``value``."""
    classify = client.post(
        "/v1/classify", json={"text": "theft of a bicycle", "min_precision": value}, headers=auth
    )
    model = client.get("/v1/models/active", params={"min_precision": value}, headers=auth)
    job = client.post(
        "/v1/jobs",
        files={"file": ("in.csv", b"text\ntheft of a bicycle\n", "text/csv")},
        data={"text_column": "text", "min_precision": str(value)},
        headers=auth,
    )
    return [classify.status_code, model.status_code, job.status_code]


@pytest.mark.parametrize("value", REFUSED)
def test_api_routes_and_jobs_refuse_the_same_values(
    client: TestClient, auth: dict[str, str], value: float
) -> None:
    assert _answers(client, auth, value) == [422, 422, 422]


@pytest.mark.parametrize("value", ACCEPTED)
def test_api_routes_and_jobs_accept_the_same_values(
    client: TestClient, auth: dict[str, str], value: float
) -> None:
    assert _answers(client, auth, value) == [200, 200, 202]


@pytest.mark.parametrize("value", [0.3, 1.0])
def test_a_training_config_refuses_a_target_the_service_could_not_serve(
    tmp_path: Path, value: float
) -> None:
    from training.config import TrainConfig

    path = tmp_path / "c.yaml"
    path.write_text(f"name: c\ntarget_precision: {value}\n", "utf-8")
    with pytest.raises(ValueError, match="target_precision must be between 0.5 and 0.999"):
        TrainConfig.load(path)
    assert TrainConfig(target_precision=0.9).target_precision == 0.9
