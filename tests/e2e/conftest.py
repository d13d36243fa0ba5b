"""End-to-end fixtures: the real app on a real uvicorn, reached over real HTTP.

``LiveServer`` runs uvicorn in a thread on a socket bound to port 0 (no port race); the
restart test instead runs ``iccs serve`` in a subprocess, so it can kill the process outright.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from service.config import Settings
from service.main import create_app

ERROR_KEYS = {"error", "detail", "status", "context"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error in the one shape, with this status (and code)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS and body["status"] == status, body
    assert isinstance(body["context"], dict) and body["detail"]
    if code is not None:
        assert body["error"] == code, body
    return body


class LiveServer:
    """uvicorn serving ``create_app(settings)`` in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    def key(self, role: str, name: str | None = None) -> dict[str, str]:
        """Authorization header of a new key."""
        key = self.app.state.services.keys.create(name or f"e2e-{role}", role)
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def e2e_registry(tiny_registry: Path) -> Path:
    """The registry the end-to-end tests serve (the session's tiny real model)."""
    return tiny_registry


@pytest.fixture(scope="module")
def live(e2e_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server per module."""
    settings = Settings(
        registry_dir=e2e_registry,
        state_dir=tmp_path_factory.mktemp("e2e-state"),
        rate_limit_per_minute=0,
    )
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def http(live: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client bound to the live server."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture
def live_factory(e2e_registry: Path, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start extra live servers with setting overrides; stopped at teardown."""
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        base: dict[str, Any] = {"registry_dir": e2e_registry, "state_dir": tmp_path / "state"}
        server = LiveServer(Settings(**{**base, **overrides})).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def free_port() -> int:
    """A port that was free a moment ago (for subprocesses, which bind it themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """``iccs serve`` in a subprocess, configured through ICCS_* environment variables."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "ICCS_LOG_LEVEL": "WARNING"}
        code = "from service.cli import main; main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Poll /readyz until 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"iccs serve exited: {err[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("iccs serve did not become ready")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as when a machine dies."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture(name="assert_error", scope="session")
def assert_error_fixture() -> Callable[..., dict[str, Any]]:
    """:func:`assert_error` for tests (fixtures avoid importing from conftest)."""
    return assert_error


@pytest.fixture
def serve_process() -> Iterator[Callable[[dict[str, str]], ServeProcess]]:
    """Start ``iccs serve`` subprocesses; any still running are killed at teardown."""
    procs: list[ServeProcess] = []

    def start(env: dict[str, str]) -> ServeProcess:
        proc = ServeProcess(env)
        procs.append(proc)
        proc.wait_ready()
        return proc

    yield start
    for proc in procs:
        if proc.proc.poll() is None:
            proc.kill()


PG_URL = os.environ.get("ICCS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL schema (dropped afterwards); libpq's options set the path."""
    schema = f"e2e_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
