"""Helpers shared by the fault-injection tests (imported relatively; fixtures in conftest.py).

``iccs`` subprocesses whose logs go to files, free ports, a throwaway PostgreSQL schema per
test, and waiting for ``/readyz``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("ICCS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """An ``iccs`` subprocess whose log goes to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        code = "from service.cli import main; main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=self._out,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._out.close()

    def text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


def pg_schema_url() -> Iterator[str]:
    """A fresh schema on the test server: yields its URL, then drops it."""
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def wait_ready(url: str, proc: Proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"iccs serve exited:\n{proc.text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("iccs serve did not become ready")
