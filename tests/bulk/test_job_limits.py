"""Bulk jobs keep the service's limits and formats: the text cap, the unpacked-size cap, text
encodings checked at submit, and output formats (names, extensions, media types) from the
format registry."""

from __future__ import annotations

import csv
import gzip
import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from service.bulk import io as bio
from service.bulk.contract import TRUNCATED
from service.bulk.jobs import DONE, FAILED, JobQueue, JobRunner, job_options
from service.coding import Coder
from service.config import Settings
from service.db import session_factory
from service.review.store import init_db

from .helpers import CountingPredictor, legacy_rows

LONG = "burglary of a dwelling at night " * 100  # 3,200 characters, over the default cap too


def csv_bytes(rows: list[list[str]]) -> bytes:
    return "".join(",".join(r) + "\n" for r in rows).encode()


def xlsx_bytes(rows: list[list[str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_bomb(copies: int) -> bytes:
    """An XLSX of a few hundred KB whose shared strings unpack to ``copies`` x 1.8 MB."""
    base = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["text"], ["theft"]])))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for item in base.infolist():
            if item.filename != "xl/sharedStrings.xml":
                out.writestr(item, base.read(item.filename))
        with out.open("xl/sharedStrings.xml", "w") as f:
            f.write(
                b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
                b'openxmlformats.org/spreadsheetml/2006/main"><si><t>text</t></si>'
                b"<si><t>theft</t></si>"
            )
            for _ in range(copies):
                f.write(b"<si><t>xy</t></si>" * 100_000)
            f.write(b"</sst>")
    return buf.getvalue()


@pytest.fixture()
def sessions(tmp_path: Path) -> Iterator[Any]:
    engine = init_db(f"sqlite:///{tmp_path / 'iccs.sqlite3'}")
    yield session_factory(engine)
    engine.dispose()


def test_a_job_cuts_texts_at_the_configured_cap_and_flags_them(
    tmp_path: Path,
    tiny_registry: Path,
    tiny_predictor: Any,
    sessions: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ICCS_MAX_TEXT_LENGTH", "300")
    settings = Settings(state_dir=tmp_path, registry_dir=tiny_registry)
    assert settings.max_text_length == 300
    counting = CountingPredictor(tiny_predictor)
    runner = JobRunner(settings, Coder(counting), sessions, poll_seconds=0.05)  # type: ignore[arg-type]
    job = runner.submit(
        "long.csv",
        io.BytesIO(csv_bytes([["id", "text"], ["1", LONG], ["2", "Theft of a bicycle"]])),
        {"text_column": "text", "id_column": "id"},
    )
    runner.start()
    try:
        done = runner.wait(job.id, timeout=60)
    finally:
        runner.stop()
    assert done.status == DONE, done.error
    assert counting.texts_seen and max(len(t) for t in counting.texts_seen) <= 300
    assert LONG[:300] in counting.texts_seen
    with runner.result_path(job.id).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["text"] == LONG  # the input column is kept whole
    assert rows[0]["status"] == "rejected" or rows[0]["reason"] == TRUNCATED
    assert rows[1]["reason"] != TRUNCATED


def test_a_job_keeps_its_text_cap_whichever_worker_runs_it(
    tmp_path: Path, tiny_registry: Path, sessions: Any
) -> None:
    # The cap changes the output (and the checkpoint's fingerprint): it is the submitting
    # instance's, recorded with the job, not that of the worker that happens to run it.
    api = Settings(state_dir=tmp_path, registry_dir=tiny_registry, max_text_length=300)
    worker = Settings(state_dir=tmp_path, registry_dir=tiny_registry, max_text_length=900)
    job = JobQueue(api, None, sessions).submit(
        "a.csv", io.BytesIO(b"text\nx\n"), {"text_column": "text"}
    )
    assert job.options["max_text_length"] == 300
    options = job_options(JobQueue(worker, None, sessions).get(job.id), settings=worker)
    assert options.max_text_length == 300
    assert options.max_decompressed_bytes == worker.max_decompressed_bytes


def test_a_job_queued_without_a_cap_runs_with_the_workers(
    tmp_path: Path, tiny_registry: Path, sessions: Any
) -> None:
    settings = Settings(
        state_dir=tmp_path,
        registry_dir=tiny_registry,
        max_text_length=700,
        max_decompressed_bytes=5_000_000,
    )
    queue = JobQueue(settings, None, sessions)
    job = queue.submit("a.csv", io.BytesIO(b"text\nx\n"), {"text_column": "text"})
    with sessions() as s, s.begin():  # a row queued before jobs recorded their cap
        row = s.get(type(job), job.id)
        row.options = {k: v for k, v in row.options.items() if k != "max_text_length"}
    options = job_options(queue.get(job.id), settings=settings)
    assert (options.max_text_length, options.max_decompressed_bytes) == (700, 5_000_000)


def test_non_text_encodings_are_refused_at_submit_whatever_the_format(
    tmp_path: Path, tiny_registry: Path, sessions: Any
) -> None:
    from service.errors import FileFormatError

    settings = Settings(state_dir=tmp_path, registry_dir=tiny_registry)
    runner = JobQueue(settings, None, sessions)
    uploads = {
        "a.csv": csv_bytes([["text"], ["theft"]]),
        "a.xlsx": xlsx_bytes([["text"], ["theft"]]),
    }
    for name, data in uploads.items():
        for encoding in ("base64", "rot13", "no-such-codec"):
            with pytest.raises(FileFormatError, match="ncoding") as err:
                runner.submit(name, io.BytesIO(data), {"text_column": "text", "encoding": encoding})
            assert err.value.http_status == 422
    jobs_dir = settings.resolved_jobs_dir()
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []  # nothing stored
    # A real text encoding is kept, and is ignored by formats that carry their own.
    job = runner.submit(
        "a.xlsx", io.BytesIO(uploads["a.xlsx"]), {"text_column": "text", "encoding": "Latin-1"}
    )
    assert job.options["encoding"] == "Latin-1"


# --- HTTP ---------------------------------------------------------------------------------


@pytest.fixture()
def client(tmp_path: Path, tiny_registry: Path) -> Iterator[tuple[TestClient, str]]:
    from service.main import create_app

    settings = Settings(
        state_dir=tmp_path, registry_dir=tiny_registry, max_decompressed_bytes=10_000_000
    )
    app = create_app(settings)
    with TestClient(app) as c:
        key = app.state.services.keys.create("alice", "submitter")
        yield c, key


def post_job(c: TestClient, key: str, name: str, data: bytes, **form: str) -> Any:
    return c.post(
        "/v1/jobs",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": (name, data, "application/octet-stream")},
        data={"text_column": "text", **form},
    )


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "detail", "status", "context"}
    assert (body["error"], body["status"]) == (code, status)
    return body


def test_an_xlsx_zip_bomb_is_refused_at_submit(client: tuple[TestClient, str]) -> None:
    c, key = client
    bomb = xlsx_bomb(copies=20)  # 36 MB of XML, over this service's 10 MB
    assert len(bomb) < 1_000_000
    body = assert_error(post_job(c, key, "bomb.xlsx", bomb), 413, "file_too_large")
    assert body["context"]["limit"] == 10_000_000
    jobs_dir = c.app.state.services.settings.resolved_jobs_dir()  # type: ignore[attr-defined]
    assert list(jobs_dir.iterdir()) == []


def test_a_non_text_encoding_is_422_at_submit(client: tuple[TestClient, str]) -> None:
    c, key = client
    for name, data in (
        ("a.csv", csv_bytes([["text"], ["theft"]])),
        ("a.xlsx", xlsx_bytes([["text"], ["theft"]])),
    ):
        body = assert_error(
            post_job(c, key, name, data, encoding="base64"), 422, "file_format_error"
        )
        assert body["context"]["encoding"] == "base64"
        # A NUL in the name made the codec lookup raise ValueError: a 500 before.
        assert_error(post_job(c, key, name, data, encoding="utf-8\x00"), 422, "file_format_error")


def test_an_unknown_output_format_is_422_naming_the_registrys(
    client: tuple[TestClient, str],
) -> None:
    c, key = client
    resp = post_job(c, key, "a.csv", csv_bytes([["text"], ["theft"]]), output_format="json")
    body = assert_error(resp, 422, "invalid_input")
    for name in bio.FORMATS:
        assert name in body["detail"]


@pytest.mark.parametrize("name", list(bio.FORMATS))
def test_every_registered_format_is_a_job_result(client: tuple[TestClient, str], name: str) -> None:
    c, key = client
    rows = [[r[2]] for r in legacy_rows(12)]
    resp = post_job(c, key, "legacy.csv", csv_bytes([["text"], *rows]), output_format=name)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    deadline = time.monotonic() + 60
    while (body := c.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}).json())[
        "status"
    ] not in (DONE, FAILED):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert body["status"] == DONE, body["error"]
    fmt = bio.FORMATS[name]
    result = c.get(body["result_url"], headers={"Authorization": f"Bearer {key}"})
    assert result.status_code == 200
    assert result.headers["content-type"].split(";")[0] == fmt.media_type
    assert f'legacy.coded{fmt.extension}"' in result.headers["content-disposition"]
    stored = c.app.state.services.job_runner.result_path(job_id)  # type: ignore[attr-defined]
    assert stored.name == f"result{fmt.extension}"


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["theft of a car from a driveway"]}), buf)
    return buf.getvalue()


def _zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("records.xlsx", csv_bytes([["text"], ["theft"]])),  # not a zip at all
        ("records.xlsx", _zip_of("notes.txt", b"text\ntheft\n")),  # a zip, not a workbook
        ("records.parquet", csv_bytes([["text"], ["theft"]])),  # no PAR1 magic
        ("records.parquet", b"PAR1" + b"\x00" * 64 + b"PAR1"),  # the magic, no file inside
        ("records.csv", xlsx_bytes([["text"], ["theft"]])),  # a workbook named .csv
        ("records.csv", _parquet_bytes()),  # Parquet named .csv: its header echoed texts
        ("records.csv", gzip.compress(b"text\ntheft\n")),  # compressed, not text
    ],
    ids=[
        "xlsx-csv",
        "xlsx-zip",
        "parquet-csv",
        "parquet-magic-only",
        "csv-xlsx",
        "csv-parquet",
        "csv-gzip",
    ],
)
def test_an_upload_whose_content_is_not_its_extension_is_422_at_submit(
    client: tuple[TestClient, str], name: str, data: bytes
) -> None:
    c, key = client
    body = assert_error(post_job(c, key, name, data), 422, "file_format_error")
    # The refusal names the problem, never the file's content (a header of binary data
    # read as CSV held the offence texts).
    assert "theft" not in body["detail"] and "theft" not in str(body["context"])
    jobs_dir = c.app.state.services.settings.resolved_jobs_dir()  # type: ignore[attr-defined]
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []
