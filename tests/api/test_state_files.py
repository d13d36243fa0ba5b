"""State files are the owner's only (issue 16 L10): the state folder the service makes is 0700
and the SQLite database 0600, whatever the process umask, so offence texts, review decisions,
job files and the fingerprint secret are not readable by other users of a shared host."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from service.api.observability import fingerprint_secret
from service.cli import main as cli
from service.config import Settings

pytestmark = pytest.mark.model


@pytest.fixture(autouse=True)
def _permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default: files 0644, folders 0755
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_state_dir_and_its_database_are_the_owners_only(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    state = make_settings().state_dir
    assert not state.exists()
    make_client()
    assert _mode(state) == 0o700
    database = state / "iccs.sqlite3"
    assert database.exists() and _mode(database) & 0o077 == 0
    wal = state / "iccs.sqlite3-wal"
    assert not wal.exists() or _mode(wal) & 0o077 == 0
    assert _mode(state / "fingerprint.key") & 0o077 == 0


def test_the_cli_makes_the_state_dir_owner_only_too(tmp_path: Path) -> None:
    state = tmp_path / "cli-state"
    env = {"ICCS_STATE_DIR": str(state), "ICCS_DATABASE_URL": ""}
    result = CliRunner().invoke(cli, ["keys", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert _mode(state) == 0o700
    assert _mode(state / "iccs.sqlite3") & 0o077 == 0


def test_the_fingerprint_secret_makes_its_folder_owner_only(tmp_path: Path) -> None:
    # With PostgreSQL (ICCS_DATABASE_URL) the state folder is made first for this secret.
    state = tmp_path / "pg-state"
    fingerprint_secret(None, state)
    assert _mode(state) == 0o700
    assert _mode(state / "fingerprint.key") == 0o600
