"""Bulk fixtures: a coder over the session's tiny model, and small legacy-style files."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from service.coding import Coder

from .helpers import CountingPredictor


@pytest.fixture(scope="session")
def coder(tiny_predictor: Any) -> Coder:
    """A coder without a review store."""
    return Coder(tiny_predictor)


@pytest.fixture()
def counting(tiny_predictor: Any) -> CountingPredictor:
    return CountingPredictor(tiny_predictor)


@pytest.fixture()
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (first row the header) to a CSV file and return its path."""

    def make(
        rows: Sequence[Sequence[Any]],
        name: str = "in.csv",
        delimiter: str = ",",
        encoding: str = "utf-8",
    ) -> Path:
        p = tmp_path / name
        with p.open("w", encoding=encoding, newline="") as f:
            csv.writer(f, delimiter=delimiter, lineterminator="\n").writerows(rows)
        return p

    return make
