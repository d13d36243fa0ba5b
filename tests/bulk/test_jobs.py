"""Bulk jobs: the runner (leases, restarts, failure isolation, database errors), retention and
the HTTP routes in the one error shape."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text, update
from sqlalchemy.exc import OperationalError

from service.bulk.engine import BulkOptions, Interrupted, classify_file
from service.bulk.jobs import DONE, FAILED, QUEUED, RUNNING, JobQueue, JobRunner
from service.coding import Coder
from service.config import Settings
from service.db import Job, session_factory, utcnow
from service.errors import Gone
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
            runner.path(job.input_path),
            runner.path(str(job.output_path)),
            opts,
            coder,
            should_stop=stop_soon,
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
    classify_file(runner.path(job.input_path), expected, opts, coder)
    assert runner.result_path(job.id).read_bytes() == expected.read_bytes()


def test_a_failing_job_does_not_stop_the_runner(
    settings: Settings, db: Any, tiny_predictor: Any
) -> None:
    runner = JobRunner(settings, tiny_predictor, db, poll_seconds=0.05)
    bad = runner.submit(
        "bad.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
    )
    runner.path(bad.input_path).write_bytes(b"")  # the stored upload got damaged
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
    from service.errors import FileFormatError, InvalidInput, UploadTooLarge

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


def test_http_job_codes_a_list_as_a_table(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    rows = legacy_rows(30)
    plain, table = (
        c.post(
            "/v1/jobs",
            headers=auth(keys["alice"]),
            files={"file": ("list.csv", csv_bytes(rows), "text/csv")},
            data={"text_column": "description", "min_precision": "0.9", **extra},
        )
        for extra in ({}, {"table_precision": "0.9"})
    )
    assert plain.status_code == table.status_code == 202, table.text
    assert table.json()["id"] != plain.json()["id"]
    done = [wait_done(c, r.json()["id"], keys["alice"]) for r in (plain, table)]
    assert [d["status"] for d in done] == [DONE, DONE]
    auto = [d["counts"].get("auto", 0) for d in done]
    assert auto[1] >= auto[0]
    err = assert_error_shape(
        c.post(
            "/v1/jobs",
            headers=auth(keys["alice"]),
            files={"file": ("list.csv", csv_bytes(rows), "text/csv")},
            data={"text_column": "description", "table_precision": "0.5"},
        ),
        422,
        "invalid_input",
    )
    assert err["context"]["field"] == "table_precision"


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


# --- several instances: shared files, leases, attempts (issue 16 #3, #2) ------------------

PG_URL = os.environ.get("ICCS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database two instances share: an SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    schema = f"jobs_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture()
def instances(db_url: str) -> Iterator[Callable[[], Any]]:
    """Each call: the sessions of one more instance on the shared database (its own engine)."""
    engines: list[Any] = []

    def open_instance() -> Any:
        engines.append(init_db(db_url))
        return session_factory(engines[-1])

    yield open_instance
    for engine in engines:
        engine.dispose()


def instance_settings(tiny_registry: Path, state: Path, **kw: Any) -> Settings:
    state.mkdir(parents=True, exist_ok=True)
    return Settings(state_dir=state, registry_dir=tiny_registry, **kw)


def test_a_job_submitted_on_one_instance_runs_on_another(
    tiny_registry: Path, tiny_predictor: Any, instances: Callable[[], Any], tmp_path: Path
) -> None:
    # Two hosts share the jobs folder but mount it in different places (here: symlinks).
    shared = tmp_path / "nfs-jobs"
    shared.mkdir()
    a_state, b_state = tmp_path / "a", tmp_path / "b"
    for state in (a_state, b_state):
        state.mkdir()
        (state / "jobs").symlink_to(shared)
    a = JobRunner(instance_settings(tiny_registry, a_state), tiny_predictor, instances())
    b = JobRunner(
        instance_settings(tiny_registry, b_state),
        tiny_predictor,
        instances(),
        poll_seconds=0.05,
        chunk_rows=20,
    )
    job = a.submit("x.csv", io.BytesIO(csv_bytes(legacy_rows(30))), {"text_column": "description"})
    (a_state / "jobs").unlink()  # host A's mount point does not exist on host B
    b.start()
    try:
        done = b.wait(job.id, timeout=60)
    finally:
        b.stop()
    assert done.status == DONE, done.error
    assert b.result_path(job.id).read_bytes().count(b"\n") == 31


def test_a_starting_instance_leaves_a_running_job_to_its_worker(
    tiny_registry: Path,
    tiny_predictor: Any,
    instances: Callable[[], Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = instance_settings(tiny_registry, tmp_path / "state")
    coder = Coder(tiny_predictor)
    coding, release = threading.Event(), threading.Event()

    def slow_coder() -> Coder:  # instance A is in the middle of the job until released
        coding.set()
        release.wait(60)
        return coder

    a = JobRunner(settings, slow_coder, instances(), poll_seconds=0.05)
    b = JobRunner(settings, coder, instances(), poll_seconds=0.05)
    job = a.submit("x.csv", io.BytesIO(csv_bytes(legacy_rows(30))), {"text_column": "description"})
    caplog.set_level(logging.INFO, logger="service.bulk.jobs")
    a.start()
    try:
        assert coding.wait(30)
        b.start()  # instance B restarts while A codes the job
        time.sleep(0.5)  # B polls the queue several times meanwhile
        release.set()
        done = a.wait(job.id, timeout=60)
    finally:
        release.set()
        b.stop()
        a.stop()
    assert done.status == DONE, done.error
    started = [r for r in caplog.records if r.getMessage().startswith(f"job {job.id} started")]
    assert len(started) == 1, [r.getMessage() for r in started]


def _set(sessions: Any, job_id: str, **values: Any) -> None:
    with sessions() as s, s.begin():
        s.execute(update(Job).where(Job.id == job_id).values(**values))


def test_only_an_expired_lease_is_taken_over_and_the_result_is_the_same(
    tiny_registry: Path, tiny_predictor: Any, instances: Callable[[], Any], tmp_path: Path
) -> None:
    settings = instance_settings(tiny_registry, tmp_path / "state")
    coder = Coder(tiny_predictor)
    sessions = instances()
    b = JobRunner(settings, coder, sessions, poll_seconds=0.05, chunk_rows=20)
    job = b.submit(
        "x.csv",
        io.BytesIO(csv_bytes(legacy_rows(100, distinct=40))),
        {"text_column": "description"},
    )
    # Worker A (another host) claimed it and coded 40 rows, then it stopped answering.
    opts = BulkOptions(
        text_column="description", batch_name=job.options["batch_name"], origin="job", chunk_rows=20
    )
    calls = {"n": 0}

    def stop_soon() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    with pytest.raises(Interrupted):
        classify_file(
            b.path(job.input_path),
            b.path(str(job.output_path)),
            opts,
            coder,
            should_stop=stop_soon,
        )
    alive = utcnow() + timedelta(seconds=60)
    _set(
        sessions,
        job.id,
        status=RUNNING,
        lease_owner="host-a:1:x",
        lease_expires_at=alive,
        attempts=1,
    )
    b.start()
    try:
        time.sleep(0.5)  # several polls: B must not touch a job whose lease is alive
        held = b.get(job.id)
        assert (held.status, held.lease_owner, held.attempts) == (RUNNING, "host-a:1:x", 1)
        _set(sessions, job.id, lease_expires_at=utcnow() - timedelta(seconds=1))
        b._wake.set()
        done = b.wait(job.id, timeout=60)
    finally:
        b.stop()
    assert done.status == DONE, done.error
    assert done.attempts == 2 and done.lease_owner is None
    assert done.counts["resumed_at"] == 40
    expected = tmp_path / "expected.csv"
    classify_file(b.path(job.input_path), expected, opts, coder, resume=False)
    assert b.result_path(job.id).read_bytes() == expected.read_bytes()


def test_a_job_whose_workers_keep_dying_is_failed_not_retried_forever(
    settings: Settings, db: Any, tiny_predictor: Any
) -> None:
    runner = JobRunner(settings, tiny_predictor, db, poll_seconds=0.05)
    job = runner.submit(
        "x.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
    )
    expired = utcnow() - timedelta(seconds=1)
    # Killed (e.g. out of memory) during each of its three starts.
    _set(db, job.id, status=RUNNING, lease_owner="h:1:x", lease_expires_at=expired, attempts=3)
    runner.start()
    try:
        failed = runner.wait(job.id, timeout=30)
    finally:
        runner.stop()
    assert failed.status == FAILED and failed.error.startswith("abandoned:"), failed.error
    assert failed.attempts == 3


class _Boom(RuntimeError):
    pass


def test_unexpected_errors_are_retried_then_fail_without_the_text_in_the_log(
    settings: Settings, db: Any, tiny_predictor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "-".join(("SECRET", "OFFENCE", "TEXT"))  # a value, as a record text would be

    def broken_coder() -> Coder:
        raise _Boom(f"{secret} in the message")

    runner = JobRunner(settings, broken_coder, db, poll_seconds=0.05)
    job = runner.submit(
        "x.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
    )
    runner.start()
    try:
        failed = runner.wait(job.id, timeout=30)
        assert runner.running
    finally:
        runner.stop()
    assert failed.status == FAILED and failed.attempts == settings.job_max_attempts
    assert failed.error.startswith("internal_error:"), failed.error
    assert secret not in caplog.text and "_Boom" in caplog.text


class FlakySessions:
    """A session factory whose next ``failures`` sessions fail as a locked database would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failures = 0

    def __call__(self) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))
        return self.inner()


def test_the_runner_survives_database_errors_during_a_job(
    settings: Settings, db: Any, tiny_predictor: Any
) -> None:
    flaky = FlakySessions(db)
    coder = Coder(tiny_predictor)

    def coder_then_outage() -> Coder:
        flaky.failures = 4  # the database goes away as the job starts coding
        return coder

    runner = JobRunner(settings, coder_then_outage, flaky, poll_seconds=0.05, chunk_rows=10)
    api = JobQueue(settings, None, db)  # another process, whose database answers
    first = api.submit(
        "a.csv", io.BytesIO(csv_bytes(legacy_rows(30))), {"text_column": "description"}
    )
    runner.start()
    try:
        done = api.wait(first.id, timeout=60)
        assert runner.running
        second = api.submit(
            "b.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
        )
        after = api.wait(second.id, timeout=60)
    finally:
        runner.stop()
    assert done.status == DONE, done.error
    assert after.status == DONE, after.error


def test_a_failed_insert_leaves_no_upload_behind(
    settings: Settings, db: Any, tiny_predictor: Any
) -> None:
    flaky = FlakySessions(db)
    runner = JobRunner(settings, tiny_predictor, flaky)
    flaky.failures = 1
    with pytest.raises(OperationalError):
        runner.submit(
            "x.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
        )
    assert list((settings.state_dir / "jobs").iterdir()) == []


# --- retention (issue 16 #7) --------------------------------------------------------------


def test_purge_removes_old_job_files_and_orphans_and_keeps_the_rows(
    settings: Settings, db: Any, tiny_predictor: Any
) -> None:
    from service.bulk.jobs import purge_jobs

    settings = settings.model_copy(
        update={"database_url": f"sqlite:///{settings.state_dir / 'iccs.sqlite3'}"}
    )
    runner = JobRunner(settings, tiny_predictor, db, poll_seconds=0.05)
    old = runner.submit(
        "old.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
    )
    new = runner.submit(
        "new.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
    )
    runner.start()
    try:
        for job in (old, new):
            assert runner.wait(job.id).status == DONE
    finally:
        runner.stop()
    queued = runner.submit(
        "q.csv", io.BytesIO(csv_bytes(legacy_rows(5))), {"text_column": "description"}
    )
    _set(db, old.id, finished_at=utcnow() - timedelta(days=100))
    root = settings.resolved_jobs_dir()
    stale_orphan, young_orphan = root / "left-by-a-crash", root / "being-uploaded"
    for folder in (stale_orphan, young_orphan):
        folder.mkdir()
        (folder / "input.csv").write_bytes(b"text\nMurder\n")
    month_ago = time.time() - 30 * 86400
    os.utime(stale_orphan, (month_ago, month_ago))

    assert purge_jobs(settings, timedelta(days=7)) == 2
    assert not (root / old.id).exists() and not stale_orphan.exists()
    assert (root / new.id).exists() and (root / queued.id).exists() and young_orphan.exists()
    kept = runner.get(old.id)
    assert kept.status == DONE and kept.counts["rows"] == 5 and kept.purged_at is not None
    with pytest.raises(Gone):
        runner.result_path(old.id)
    assert purge_jobs(settings, timedelta(days=7)) == 0


# --- HTTP: delete, quota, readiness, an API without a runner (issue 16 #7, #9, #6, #3) -----


def test_http_delete_removes_the_job_and_its_files(
    client: tuple[TestClient, dict[str, str]], settings: Settings
) -> None:
    c, keys = client
    resp = c.post(
        "/v1/jobs",
        headers=auth(keys["alice"]),
        files={"file": ("a.csv", csv_bytes(legacy_rows(5)), "text/csv")},
        data={"text_column": "description"},
    )
    job_id = resp.json()["id"]
    assert wait_done(c, job_id, keys["alice"])["status"] == DONE
    folder = settings.resolved_jobs_dir() / job_id
    assert (folder / "result.csv").exists()
    assert_error_shape(c.delete(f"/v1/jobs/{job_id}", headers=auth(keys["bob"])), 404)
    assert_error_shape(c.delete(f"/v1/jobs/{job_id}", headers=auth(keys["reviewer"])), 403)
    assert_error_shape(c.delete(f"/v1/jobs/{job_id}"), 401)
    deleted = c.delete(f"/v1/jobs/{job_id}", headers=auth(keys["alice"]))
    assert deleted.status_code == 204 and not deleted.content
    assert not folder.exists()
    assert_error_shape(c.get(f"/v1/jobs/{job_id}", headers=auth(keys["alice"])), 404)
    assert_error_shape(c.delete(f"/v1/jobs/{job_id}", headers=auth(keys["alice"])), 404)
    # A running job is its worker's until it ends; an admin may delete any other job.
    sessions = c.app.state.services.sessions  # type: ignore[attr-defined]
    for job_id, status in (("running-job", RUNNING), ("failed-job", FAILED)):
        with sessions() as s, s.begin():
            s.add(
                Job(
                    id=job_id,
                    status=status,
                    filename="r.csv",
                    input_path=f"{job_id}/input.csv",
                    options={"text_column": "text"},
                    created_by="alice",
                    created_at=utcnow(),
                    lease_owner="elsewhere:1:x",
                    lease_expires_at=utcnow() + timedelta(minutes=5),
                )
            )
    body = assert_error_shape(
        c.delete("/v1/jobs/running-job", headers=auth(keys["admin"])), 409, "conflict"
    )
    assert body["context"]["status"] == RUNNING
    assert c.delete("/v1/jobs/failed-job", headers=auth(keys["admin"])).status_code == 204


@pytest.fixture()
def queue_only(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An API instance with ICCS_JOB_RUNNER=off and a quota of two active jobs per key."""
    from service.main import create_app

    app = create_app(
        settings.model_copy(update={"job_runner": "off", "max_active_jobs_per_key": 2})
    )
    with TestClient(app) as c:
        keys = {
            "alice": app.state.services.keys.create("alice", "submitter"),
            "bob": app.state.services.keys.create("bob", "submitter"),
        }
        yield c, keys


def test_http_api_without_a_runner_queues_and_caps_jobs_per_key(
    queue_only: tuple[TestClient, dict[str, str]],
) -> None:
    c, keys = queue_only
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["job_runner"] == "off"
    upload = {"file": ("a.csv", csv_bytes(legacy_rows(5)), "text/csv")}
    form = {"text_column": "description"}
    ids = []
    for _ in range(2):
        resp = c.post("/v1/jobs", headers=auth(keys["alice"]), files=upload, data=form)
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    over = c.post("/v1/jobs", headers=auth(keys["alice"]), files=upload, data=form)
    body = assert_error_shape(over, 429, "job_quota_exceeded")
    assert body["context"]["limit"] == 2 and int(over.headers["Retry-After"]) >= 1
    # Another key has its own quota; a finished (here: deleted) job frees a place.
    assert c.post("/v1/jobs", headers=auth(keys["bob"]), files=upload, data=form).status_code == 202
    assert c.delete(f"/v1/jobs/{ids[0]}", headers=auth(keys["alice"])).status_code == 204
    again = c.post("/v1/jobs", headers=auth(keys["alice"]), files=upload, data=form)
    assert again.status_code == 202, again.text
    time.sleep(0.3)  # nothing in this instance runs them
    states = {c.get(f"/v1/jobs/{i}", headers=auth(keys["alice"])).json()["status"] for i in ids[1:]}
    assert states == {QUEUED}


def test_readyz_reports_a_stopped_job_runner(client: tuple[TestClient, dict[str, str]]) -> None:
    c, _ = client
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["job_runner"] == "running"
    c.app.state.services.job_runner.stop()  # type: ignore[attr-defined]
    body = assert_error_shape(c.get("/readyz"), 503, "service_not_ready")
    assert body["context"]["component"] == "job_runner"


def _gated(coder: Coder) -> tuple[Callable[[], Coder], threading.Event, threading.Event]:
    """A coder factory that holds the job at its start until released."""
    coding, release = threading.Event(), threading.Event()

    def factory() -> Coder:
        coding.set()
        release.wait(60)
        return coder

    return factory, coding, release


def test_a_shutdown_puts_the_job_back_without_counting_an_attempt(
    settings: Settings, db: Any, tiny_predictor: Any
) -> None:
    factory, coding, release = _gated(Coder(tiny_predictor))
    runner = JobRunner(settings, factory, db, poll_seconds=0.05, chunk_rows=10)
    job = runner.submit(
        "x.csv", io.BytesIO(csv_bytes(legacy_rows(30))), {"text_column": "description"}
    )
    runner.start()
    assert coding.wait(30)
    stopper = threading.Thread(target=runner.stop)
    stopper.start()  # stop() waits for the job to pause at its first chunk
    while not runner._stop.is_set():
        time.sleep(0.01)
    release.set()
    stopper.join(60)
    paused = runner.get(job.id)
    assert (paused.status, paused.attempts, paused.lease_owner) == (QUEUED, 0, None)
    assert 0 < paused.rows_done < 30


def test_a_worker_that_lost_its_lease_leaves_the_job_to_the_new_owner(
    settings: Settings, db: Any, tiny_predictor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    factory, coding, release = _gated(Coder(tiny_predictor))
    runner = JobRunner(settings, factory, db, poll_seconds=0.05, chunk_rows=10)
    job = runner.submit(
        "x.csv", io.BytesIO(csv_bytes(legacy_rows(30))), {"text_column": "description"}
    )
    caplog.set_level(logging.INFO, logger="service.bulk.jobs")
    runner.start()
    try:
        assert coding.wait(30)
        # It stalled past its lease, and another worker took the job over meanwhile.
        _set(db, job.id, lease_owner="other:2:y", lease_expires_at=utcnow() + timedelta(minutes=1))
        release.set()
        deadline = time.monotonic() + 60
        while "another worker holds it now" not in caplog.text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        release.set()
        runner.stop()
    held = runner.get(job.id)
    assert (held.status, held.lease_owner) == (RUNNING, "other:2:y")
    assert f"job {job.id} done" not in caplog.text
