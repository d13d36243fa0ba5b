"""Shared fixtures: a tiny real model, trained once per test session with the quick config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared").resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The reference data folder (../shared)."""
    return SHARED


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry folder holding one promoted model built by `iccs train --quick`."""
    from service.config import Settings
    from training.pipeline import train_and_register

    root = tmp_path_factory.mktemp("registry")
    settings = Settings(registry_dir=root, data_dir=SHARED, state_dir=root / "state")
    train_and_register(settings, quick=True, promote=True)
    return root


@pytest.fixture(scope="session")
def tiny_predictor(tiny_registry: Path):  # type: ignore[no-untyped-def]
    """The tiny model loaded as the service loads it."""
    from service.models.predictor import load_predictor

    return load_predictor(tiny_registry)
