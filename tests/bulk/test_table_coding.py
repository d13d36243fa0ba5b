"""A national list coded as a correspondence table (`iccs classify-file --table-precision`)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from service.bulk.commands import classify_file
from service.config import Settings
from service.errors import InvalidInput
from service.models.predictor import load_predictor

from .helpers import legacy_rows


def _run(src: Path, out: Path, registry: Path, state: Path, *extra: str):  # type: ignore[no-untyped-def]
    args = [str(src), "--text-column", "description", "--output", str(out), *extra]
    return CliRunner().invoke(
        classify_file, args, obj=Settings(registry_dir=registry, state_dir=state)
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_a_list_coded_as_a_table_auto_codes_at_the_table_threshold(  # type: ignore[no-untyped-def]
    write_csv, tiny_registry: Path, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from service.db import ReviewItem, make_engine, session_factory

    src = write_csv(legacy_rows(60))
    state = tmp_path / "state"
    every_code = _run(src, tmp_path / "codes.csv", tiny_registry, state, "--min-precision", "0.9")
    assert every_code.exit_code == 0, every_code.output
    args = ("--min-precision", "0.9", "--table-precision", "0.9", "--to-review")
    table = _run(src, tmp_path / "table.csv", tiny_registry, state, *args, "--batch-name", "l")
    assert table.exit_code == 0, table.output

    threshold = load_predictor(tiny_registry).thresholds.table_at(0.9)
    assert threshold < 1.0
    before, after = _rows(tmp_path / "codes.csv"), _rows(tmp_path / "table.csv")
    gained = 0
    for b, a in zip(before, after, strict=True):
        if b["status"] == "auto":  # what every-code coding auto-codes, the table keeps
            assert a["status"] == "auto"
        if a["status"] == "auto" and b["assigned_code"] != a["assigned_code"]:
            gained += b["status"] != "auto"
            # ... the rest it codes whole, at the table threshold, with the top code.
            assert a["assigned_code"] == a["iccs_code"]
            assert float(a["confidence"]) >= threshold - 1e-4
    # Review rows remember they are a table's entries, for re-scoring after decisions.
    engine = make_engine(f"sqlite:///{state / 'iccs.sqlite3'}")
    with session_factory(engine)() as s:
        items = s.scalars(select(ReviewItem)).all()
    engine.dispose()
    assert items and {(i.table_precision, i.min_precision) for i in items} == {(0.9, 0.9)}
    review_rows = sum(1 for a in after if a["status"] == "review")
    assert sum(i.occurrences for i in items) == review_rows
    deeper = sum(
        1
        for a, b in zip(after, before, strict=True)
        if a["status"] == b["status"] == "auto" and a["assigned_code"] != b["assigned_code"]
    )
    print(gained, deeper, threshold)
    assert gained + deeper > 0, "the table threshold coded nothing more"


def test_table_precision_is_checked_like_min_precision(  # type: ignore[no-untyped-def]
    write_csv, tiny_registry: Path, tmp_path: Path
) -> None:
    src = write_csv(legacy_rows(3))
    result = _run(
        src, tmp_path / "o.csv", tiny_registry, tmp_path / "s", "--table-precision", "0.5"
    )
    # The `iccs` group prints an ICCSError as "code: message" (service/cli_support.py).
    assert isinstance(result.exception, InvalidInput)
    assert "table_precision must be between" in str(result.exception)


def test_a_model_built_before_table_thresholds_says_so(  # type: ignore[no-untyped-def]
    write_csv, tiny_registry: Path, tmp_path: Path
) -> None:
    old = tmp_path / "registry"
    shutil.copytree(tiny_registry, old, ignore=shutil.ignore_patterns("state"))
    for manifest in old.glob("*/manifest.json"):
        data = json.loads(manifest.read_text("utf-8"))
        data["calibration"].pop("table_thresholds")
        manifest.write_text(json.dumps(data), "utf-8")
    src = write_csv(legacy_rows(3))
    out = tmp_path / "o.csv"
    result = _run(src, out, old, tmp_path / "s", "--table-precision", "0.97")
    assert result.exit_code == 1
    assert "table_thresholds_missing" in result.output and "retrain" in result.output
    assert not out.exists()
    plain = _run(src, out, old, tmp_path / "s")  # coding code by code still works
    assert plain.exit_code == 0, plain.output
