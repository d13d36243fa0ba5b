"""Fixtures of the fault-injection tests; plain helpers live in helpers.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .helpers import Proc


@pytest.fixture
def procs() -> Iterator[Callable[..., Proc]]:
    """Start ``iccs`` subprocesses; every one still running at the end is killed."""
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> Proc:
        started.append(Proc(args, env, log))
        return started[-1]

    yield start
    for p in started:
        p.kill()
