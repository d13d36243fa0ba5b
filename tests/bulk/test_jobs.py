"""Bulk jobs: the runner (restart, failure isolation) and the HTTP routes in the one error shape."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.bulk.engine import BulkOptions, Interrupted, classify_file
from service.bulk.jobs import DONE, FAILED, QUEUED, RUNNING, JobRunner
from service.coding import Coder
from service.config import Settings
from service.db import Job, session_factory, utcnow
from service.review.store import init_db

from .helpers import legacy_rows


def csv_bytes(rows: list[list[str]]) -> bytes:
    return "".join(",".join(r) + "\n" for r in rows).encode()


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[Any]:
    engine = init_db(f"sqlite:///{tmp_path / 'iccs.sqlite3'}")
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture()
def settings(tmp_path: Path, tiny_registry: Path) -> Settings:
    return Settings(state_dir=tmp_path, registry_dir=tiny_registry, max_upload_bytes=200_000)


def test_job_runs_in_the_background(settings: Settings, db: Any, tiny_predictor: Any) -> None:
    runner = JobRunner(settings, tiny_predictor, db, poll_seconds=0.05, chunk_rows=20)
    runner.start()
    try:
        job = runner.submit(
            "legacy.csv",
            io.BytesIO(csv_bytes(legacy_rows(50))),
            {"text_column": "Description", "output_format": "parquet"},
            created_by="alice",
        )
        assert job.status == QUEUED and job.options["text_column"] == "description"
        done = runner.wait(job.id, timeout=60)
    finally:
        runner.stop()
    assert done.status == DONE, done.error
    assert done.rows_done == done.rows_total == 50
    assert done.counts["rows"] == 50 and sum(done.counts["counts"].values()) == 50
    assert runner.result_path(job.id).suffix == ".parquet"


def test_restart_resumes_a_job_left_running(
    settings: Settings, db: Any, tiny_predictor: Any, tmp_path: Path
) -> None:
    coder = Coder(tiny_predictor)
    runner = JobRunner(settings, coder, db, poll_seconds=0.05, chunk_rows=20)
    job = runner.submit(
        "x.csv",
        io.BytesIO(csv_bytes(legacy_rows(100, distinct=40))),
        {"text_column": "description"},
    )
    # A process died while coding it: status "running", a checkpoint half-way.
    opts = BulkOptions(
        text_column="description", batch_name=job.options["batch_name"], origin="job", chunk_rows=20
    )
    n = {"calls": 0}

    def stop_soon() -> bool:
        n["calls"] += 1
        return n["calls"] >= 2

    with pytest.raises(Interrupted):
        classify_file(
            Path(job.input_path), Path(str(job.output_path)), opts, coder, should_stop=stop_soon
        )
    with db() as s, s.begin():
        s.get(Job, job.id).status = RUNNING
    runner.start()
    try:
        done = runner.wait(job.id, timeout=60)
    finally:
        runner.stop()
    assert done.status == DONE, done.error
    assert done.counts["resumed_at"] == 40
    expected = tmp_path / "expected.csv"
    classify_file(Path(job.input_path), expected, opts, coder)
    assert Path(str(done.output_path)).read_bytes() == expected.read_bytes()


def test_a_failing_job_does_not_stop_the_runner(
    settings: Settings, db: Any, tiny_predictor: Any
) -> None:
    runner = JobRunner(settings, tiny_predictor, db, poll_seconds=0.05)
    bad = runner.submit(
        "bad.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
    )
    Path(bad.input_path).write_bytes(b"")  # the stored upload got damaged
    good = runner.submit(
        "good.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
    )
    runner.start()
    try:
        failed = runner.wait(bad.id, timeout=60)
        finished = runner.wait(good.id, timeout=60)
        assert runner.running
    finally:
        runner.stop()
    assert failed.status == FAILED and failed.error.startswith("file_format_error")
    assert finished.status == DONE


def test_submit_checks_the_file_at_once(settings: Settings, db: Any, tiny_predictor: Any) -> None:
    from service.bulk.jobs import UploadTooLarge
    from service.errors import FileFormatError, InvalidInput

    runner = JobRunner(settings, tiny_predictor, db)
    with pytest.raises(FileFormatError, match="Columns found"):
        runner.submit("a.csv", io.BytesIO(b"id,text\n1,x\n"), {"text_column": "offence"})
    with pytest.raises(FileFormatError, match="Unsupported"):
        runner.submit("a.doc", io.BytesIO(b"x"), {"text_column": "text"})
    with pytest.raises(UploadTooLarge):
        runner.submit("a.csv", io.BytesIO(b"text\n" + b"x\n" * 150_000), {"text_column": "text"})
    with pytest.raises(InvalidInput, match="output_format"):
        runner.submit(
            "a.csv", io.BytesIO(b"text\nx\n"), {"text_column": "text", "output_format": "json"}
        )
    # Nothing half-stored is left behind.
    assert list((settings.state_dir / "jobs").iterdir()) == []


# --- HTTP ---------------------------------------------------------------------------------


@pytest.fixture()
def client(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from service.api.v1.jobs import router
    from service.main import create_app

    app = create_app(settings)
    if not any(getattr(r, "path", "") == "/v1/jobs" for r in app.routes):
        app.include_router(router, prefix="/v1")  # until service.main includes it
    with TestClient(app) as c:
        services = app.state.services
        own_runner = services.job_runner is None
        if own_runner:  # until the lifespan starts one
            services.job_runner = JobRunner(
                settings, lambda: services.coder, services.sessions, poll_seconds=0.05
            )
            services.job_runner.start()
        keys = {
            "alice": services.keys.create("alice", "submitter"),
            "bob": services.keys.create("bob", "submitter"),
            "admin": services.keys.create("root", "admin"),
            "reviewer": services.keys.create("rev", "reviewer"),
        }
        try:
            yield c, keys
        finally:
            if own_runner:
                services.job_runner.stop()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error_shape(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "detail", "status", "context"}
    assert body["status"] == status
    if code:
        assert body["error"] == code
    return body


def wait_done(c: TestClient, job_id: str, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = c.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        if body["status"] in (DONE, FAILED):
            return body
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_http_job_round_trip(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    data = csv_bytes(legacy_rows(30))
    resp = c.post(
        "/v1/jobs",
        headers=auth(keys["alice"]),
        files={"file": ("legacy 2019.csv", data, "text/csv")},
        data={"text_column": "description", "id_column": "record_id"},
    )
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["status"] in (QUEUED, RUNNING) and job["filename"] == "legacy 2019.csv"
    body = wait_done(c, job["id"], keys["alice"])
    assert body["status"] == DONE and body["progress"] == 1.0
    assert sum(body["counts"].values()) == 30 and body["distinct_texts"] > 0
    assert body["result_url"] == f"/v1/jobs/{job['id']}/result"
    result = c.get(body["result_url"], headers=auth(keys["alice"]))
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/csv")
    assert "legacy%202019.coded.csv" in result.headers["content-disposition"]
    lines = result.text.splitlines()
    assert lines[0].startswith("record_id,agency_code,description,iccs_code,iccs_label")
    assert len(lines) == 31
    # Admins see every job; other submitters get the same 404 as for an unknown id.
    assert c.get(f"/v1/jobs/{job['id']}", headers=auth(keys["admin"])).status_code == 200
    assert_error_shape(c.get(f"/v1/jobs/{job['id']}", headers=auth(keys["bob"])), 404)
    assert_error_shape(c.get(f"/v1/jobs/{job['id']}/result", headers=auth(keys["bob"])), 404)


def test_http_job_errors(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    good = {"file": ("a.csv", b"id,text\n1,Murder\n", "text/csv")}
    assert_error_shape(c.post("/v1/jobs", files=good, data={"text_column": "text"}), 401)
    assert_error_shape(
        c.post(
            "/v1/jobs", headers=auth(keys["reviewer"]), files=good, data={"text_column": "text"}
        ),
        403,
    )
    body = assert_error_shape(
        c.post(
            "/v1/jobs", headers=auth(keys["alice"]), files=good, data={"text_column": "offence"}
        ),
        422,
        "file_format_error",
    )
    assert body["context"]["columns_found"] == ["id", "text"]
    assert_error_shape(
        c.post("/v1/jobs", headers=auth(keys["alice"]), data={"text_column": "text"}), 422
    )
    assert_error_shape(
        c.post(
            "/v1/jobs",
            headers=auth(keys["alice"]),
            files=good,
            data={"text_column": "text", "min_precision": "0.3"},
        ),
        422,
        "invalid_input",
    )
    big = {"file": ("big.csv", b"text\n" + b"Theft of a bicycle\n" * 12_000, "text/csv")}
    assert_error_shape(
        c.post("/v1/jobs", headers=auth(keys["alice"]), files=big, data={"text_column": "text"}),
        413,
    )
    assert_error_shape(c.get("/v1/jobs/nope", headers=auth(keys["alice"])), 404, "not_found")


def test_http_result_not_ready_is_409(
    client: tuple[TestClient, dict[str, str]], settings: Settings
) -> None:
    c, keys = client
    sessions = c.app.state.services.sessions  # type: ignore[attr-defined]
    with sessions() as s, s.begin():
        s.add(
            Job(
                id="queued-job",
                status=QUEUED,
                filename="q.csv",
                input_path="/nowhere.csv",
                options={"text_column": "text"},
                created_by="alice",
                created_at=utcnow(),
            )
        )
    # The runner will fail it (no file); before or after, its result is not there.
    body = assert_error_shape(
        c.get("/v1/jobs/queued-job/result", headers=auth(keys["alice"])), 409, "conflict"
    )
    assert body["context"]["job_id"] == "queued-job"
