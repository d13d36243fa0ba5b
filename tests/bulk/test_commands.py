"""`iccs classify-file` and `iccs crosswalk` through click, and a run killed half-way."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.bulk.commands import classify_file, crosswalk
from service.bulk.engine import checkpoint_folder
from service.config import Settings

from .helpers import legacy_rows

ROOT = Path(__file__).resolve().parents[2]


def settings_for(registry: Path, state: Path) -> Settings:
    return Settings(registry_dir=registry, state_dir=state)


def test_classify_file_cli(write_csv, tiny_registry: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_csv(legacy_rows(48), delimiter=";")
    out = tmp_path / "coded.csv"
    cw = tmp_path / "crosswalk.xlsx"
    result = CliRunner().invoke(
        classify_file,
        [
            str(src),
            "--text-column",
            "description",
            "--output",
            str(out),
            "--id-column",
            "record_id",
            "--code-column",
            "agency_code",
            "--crosswalk",
            str(cw),
        ],
        obj=settings_for(tiny_registry, tmp_path / "state"),
    )
    assert result.exit_code == 0, result.output
    # Not a terminal: a summary, no progress bar.
    assert "rows: 48" in result.output
    assert "distinct texts:" in result.output and "dedupe ratio" in result.output
    assert "rows/s" in result.output and "%|" not in result.output
    for status in ("auto:", "review:", "rejected:"):
        assert status in result.output
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 48 and rows[0]["record_id"] == "R000000"
    assert cw.exists()
    assert not (tmp_path / "state").exists()  # no database was asked for or created


def test_missing_column_message(write_csv, tiny_registry: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_csv(legacy_rows(3))
    result = CliRunner().invoke(
        classify_file,
        [str(src), "--text-column", "offence", "--output", str(tmp_path / "o.csv")],
        obj=settings_for(tiny_registry, tmp_path / "state"),
    )
    assert result.exit_code == 1
    assert "file_format_error" in result.output
    assert "Columns found: 'record_id', 'agency_code', 'description'" in result.output


def test_crosswalk_needs_code_column(write_csv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_csv(legacy_rows(3))
    result = CliRunner().invoke(
        classify_file,
        [
            str(src),
            "--text-column",
            "description",
            "--output",
            str(tmp_path / "o.csv"),
            "--crosswalk",
            str(tmp_path / "c.csv"),
        ],
        obj=Settings(),
    )
    assert result.exit_code == 2 and "--code-column" in result.output


def test_to_review_queues_in_the_review_store(  # type: ignore[no-untyped-def]
    write_csv, tiny_registry: Path, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from service.db import ReviewItem, make_engine, session_factory

    src = write_csv(legacy_rows(30))
    state = tmp_path / "state"
    result = CliRunner().invoke(
        classify_file,
        [
            str(src),
            "--text-column",
            "description",
            "--output",
            str(tmp_path / "o.csv"),
            "--to-review",
            "--batch-name",
            "police-2018",
        ],
        obj=settings_for(tiny_registry, state),
    )
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{state / 'iccs.sqlite3'}")
    with session_factory(engine)() as s:
        items = s.scalars(select(ReviewItem)).all()
    engine.dispose()
    review_rows = sum(
        1 for line in (tmp_path / "o.csv").read_text("utf-8").splitlines() if ",review," in line
    )
    assert sum(i.occurrences for i in items) == review_rows
    assert {i.batch for i in items} <= {"police-2018"}


def test_items_a_file_queues_are_valued_like_the_apis(  # type: ignore[no-untyped-def]
    write_csv, tiny_registry: Path, tmp_path: Path
) -> None:
    """Queue order by value: an item's priority counts the records of the similar open items
    of its list, for items queued by ``iccs classify-file`` as for those the API queues."""
    from sqlalchemy import select

    from service.db import ReviewItem, make_engine, session_factory

    src = write_csv(legacy_rows(40, distinct=8))  # near-identical wordings, one list
    state = tmp_path / "state"
    args = [str(src), "--text-column", "description", "--output", str(tmp_path / "o.csv")]
    args += ["--to-review", "--batch-name", "shops", "--min-precision", "0.99"]
    result = CliRunner().invoke(classify_file, args, obj=settings_for(tiny_registry, state))
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{state / 'iccs.sqlite3'}")
    with session_factory(engine)() as s:
        items = s.scalars(select(ReviewItem)).all()
    engine.dispose()
    assert len(items) >= 2
    own = {i.id: (1 - (i.top_confidence or 0.0)) * i.occurrences for i in items}
    assert all(i.priority is not None and i.priority >= own[i.id] - 1e-9 for i in items)
    assert any(i.priority > own[i.id] + 1e-9 for i in items), "no item counted a neighbour"


def test_killed_run_resumes_to_the_same_output(  # type: ignore[no-untyped-def]
    write_csv, tiny_registry: Path, tmp_path: Path
) -> None:
    src = write_csv(legacy_rows(1200, distinct=300))
    args = ["--text-column", "description", "--output"]
    env = {
        **os.environ,
        "ICCS_REGISTRY_DIR": str(tiny_registry),
        "ICCS_STATE_DIR": str(tmp_path / "state"),
        "ICCS_LOG_LEVEL": "WARNING",
    }
    cmd = [
        sys.executable,
        "-m",
        "service.bulk.commands",
        "classify-file",
        str(src),
        "--chunk-rows",
        "50",
    ]

    expected = tmp_path / "expected.csv"
    done = CliRunner().invoke(
        classify_file,
        [str(src), "--chunk-rows", "50", *args, str(expected)],
        obj=settings_for(tiny_registry, tmp_path / "state"),
    )
    assert done.exit_code == 0, done.output

    out = tmp_path / "out.csv"
    parts = checkpoint_folder(out) / "parts"
    proc = subprocess.Popen(
        [*cmd, *args, str(out)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.exists() and len([p for p in parts.iterdir() if p.suffix == ".csv"]) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists() and parts.exists()

    resumed = subprocess.run(
        [*cmd, *args, str(out)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at row" in resumed.stderr
    assert out.read_bytes() == expected.read_bytes()
    assert not checkpoint_folder(out).exists()


def test_crosswalk_command(tmp_path: Path) -> None:
    coded = tmp_path / "coded.csv"
    header = [
        "id",
        "agency_code",
        "text",
        "iccs_code",
        "iccs_label",
        "confidence",
        "assigned_code",
        "status",
        "alternatives",
        "model_version",
        "reason",
    ]
    rows = [header]
    rows += [
        [f"a{i}", "N1", "t", "010100", "", "0.9", "0101", "auto", "[]", "v", ""] for i in range(8)
    ]
    rows += [[f"b{i}", "N1", "t", "0102", "", "0.4", "", "review", "[]", "v", ""] for i in range(2)]
    rows += [
        [f"c{i}", "N2", "t", "0101", "", "0.97", "0101", "auto", "[]", "v", ""] for i in range(5)
    ]
    rows += [["d0", "N3", "", "", "", "", "", "rejected", "[]", "v", "empty_text"]]
    rows += [
        [f"e{i}", "N3", "t", "050121", "", "0.99", "050121", "auto", "[]", "v", ""]
        for i in range(3)
    ]
    with coded.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    out = tmp_path / "cw.csv"
    result = CliRunner().invoke(
        crosswalk, [str(coded), "--code-column", "agency_code", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "3 national codes" in result.output
    with out.open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    n1 = [r for r in table if r["national_code"] == "N1"]
    assert [(r["iccs_code"], r["records"], r["share"], r["dominant"]) for r in n1] == [
        ("0101", "8", "0.8", "True"),
        ("0102", "2", "0.2", "False"),
    ]
    assert {r["split"] for r in n1} == {"True"}
    assert n1[0]["merge"] == "True" and n1[0]["relation"] == "many-to-many"
    assert n1[1]["review_records"] == "2" and n1[1]["relation"] == "1-to-many"
    n3 = {r["iccs_code"]: r for r in table if r["national_code"] == "N3"}
    assert n3["050121"]["relation"] == "1-to-1" and n3["050121"]["dominant"] == "True"
    assert n3[""]["records"] == "1" and n3[""]["iccs_label"].startswith("(rejected")

    missing = CliRunner().invoke(
        crosswalk, [str(coded), "--code-column", "offence_code", "--output", str(out)]
    )
    assert missing.exit_code == 1 and "Columns found" in missing.output


@pytest.mark.parametrize("level", ["2", "1"])
def test_crosswalk_level_and_xlsx(tmp_path: Path, level: str) -> None:
    from openpyxl import load_workbook

    coded = tmp_path / "coded.csv"
    with coded.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "iccs_code", "assigned_code", "status"])
        w.writerow(["X", "050121", "050121", "auto"])
        w.writerow(["X", "050122", "05012", "auto"])
    out = tmp_path / "cw.xlsx"
    result = CliRunner().invoke(
        crosswalk, [str(coded), "--code-column", "code", "--output", str(out), "--level", level]
    )
    assert result.exit_code == 0, result.output
    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames == ["correspondence", "national_codes"]
    pairs = list(wb["correspondence"].iter_rows(values_only=True))
    national = list(wb["national_codes"].iter_rows(values_only=True))
    wb.close()
    code = "0501" if level == "2" else "05"
    # Two classes of one division: no split once rolled up to the division.
    assert [(p[2], p[4], p[8]) for p in pairs[1:]] == [(code, 2, False)]
    assert national[1][:3] == ("X", 2, code)


def test_no_progress_bar_without_a_terminal(tmp_path: Path) -> None:
    """The bar appears only for a person at a terminal (checked on the helper itself)."""
    from service.bulk.commands import _Progress

    progress = _Progress()
    progress(0, 10)
    progress(10, 10)
    assert progress.bar.n == 10
    progress.close()
