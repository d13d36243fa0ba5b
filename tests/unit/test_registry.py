import json

import pytest

from service.errors import ModelNotFound, RegistryError
from service.models.registry import REQUIRED_FILES, Registry


def _entry(root, version, complete=True):
    d = root / version
    (d / "encoder").mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"version": version}))
    if complete:
        for f in REQUIRED_FILES:
            (d / f).touch()
    return d


def test_promote_and_rollback(tmp_path):
    reg = Registry(tmp_path)
    _entry(tmp_path, "v1")
    _entry(tmp_path, "v2")
    assert reg.versions() == ["v1", "v2"] and reg.active() is None
    reg.promote("v1")
    reg.promote("v2")
    assert reg.active() == "v2"
    assert reg.rollback() == "v1"
    assert reg.active() == "v1"
    assert [e["action"] for e in reg.history()] == ["promote", "promote", "rollback"]


def test_refuses_incomplete_and_unknown(tmp_path):
    reg = Registry(tmp_path)
    _entry(tmp_path, "v1", complete=False)
    with pytest.raises(RegistryError):
        reg.promote("v1")
    with pytest.raises(ModelNotFound):
        reg.resolve("nope")
    with pytest.raises(ModelNotFound):
        reg.resolve(None)


def test_rollback_needs_history(tmp_path):
    reg = Registry(tmp_path)
    _entry(tmp_path, "v1")
    reg.promote("v1")
    with pytest.raises(RegistryError):
        reg.rollback()
