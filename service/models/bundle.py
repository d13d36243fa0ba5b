"""The scoring half of a registry entry as plain arrays and JSON: no pickle anywhere.

``head.npz`` holds every array (read with ``allow_pickle=False``, so a file can hold numbers
and nothing that runs); ``head.json`` holds the class list, the n-gram vocabulary and the
scalars. Each part describes itself with a ``to_arrays``/``from_arrays`` pair, so what is
loaded is exactly what training fitted (a test holds the logits equal).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from service.errors import ModelIntegrityError
from service.models.linear_head import LinearHead
from service.models.multilingual import ChannelWeights
from service.models.neighbours import NearestExamples
from service.models.ngrams import CharNgrams

ARRAYS = "head.npz"
META = "head.json"
FORMAT = 1  # of head.npz + head.json; a reader refuses others


class ArrayPart(Protocol):
    """A fitted part that describes itself as arrays plus JSON-ready values."""

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The part's arrays, and everything else as JSON-ready values."""
        ...


@dataclass
class HeadBundle:
    """What scores a text once it is embedded: head, n-gram features, nearest examples, and
    the multilingual channel's settings."""

    head: LinearHead
    ngrams: CharNgrams | None
    projection: np.ndarray | None
    embedding_weight: float
    neighbours: NearestExamples | None
    neighbour_weight: float
    multilingual_encoder: str | None = None
    multilingual_weight: float = 1.0
    other_script_primary_weight: float = 1.0
    other_script_multilingual_weight: float | None = None
    vietnamese_primary_weight: float = 1.0
    vietnamese_multilingual_weight: float | None = None
    indonesian_primary_weight: float = 1.0
    indonesian_multilingual_weight: float | None = None

    def channel_weights(self) -> ChannelWeights:
        """How the multilingual channel is joined to the English one (as in training)."""
        return ChannelWeights(
            self.multilingual_weight,
            self.other_script_primary_weight,
            self.other_script_multilingual_weight,
            self.vietnamese_primary_weight,
            self.vietnamese_multilingual_weight,
            self.indonesian_primary_weight,
            self.indonesian_multilingual_weight,
        )

    def save(self, folder: Path) -> list[Path]:
        """Write ``head.npz`` and ``head.json`` into ``folder``; return their paths."""
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {"format": FORMAT}
        named: tuple[tuple[str, ArrayPart | None], ...] = (
            ("head", self.head),
            ("ngrams", self.ngrams),
            ("neighbours", self.neighbours),
        )
        for name, part in named:
            meta[name] = None
            if part is not None:
                own, meta[name] = part.to_arrays()
                arrays.update({f"{name}.{key}": np.asarray(v) for key, v in own.items()})
        if self.projection is not None:
            arrays["projection"] = np.asarray(self.projection)
        meta.update(
            embedding_weight=float(self.embedding_weight),
            neighbour_weight=float(self.neighbour_weight),
            multilingual_encoder=self.multilingual_encoder,
            multilingual_weight=float(self.multilingual_weight),
            other_script_primary_weight=float(self.other_script_primary_weight),
            other_script_multilingual_weight=self.other_script_multilingual_weight,
            vietnamese_primary_weight=float(self.vietnamese_primary_weight),
            vietnamese_multilingual_weight=self.vietnamese_multilingual_weight,
            indonesian_primary_weight=float(self.indonesian_primary_weight),
            indonesian_multilingual_weight=self.indonesian_multilingual_weight,
        )
        for key, value in arrays.items():
            if value.dtype.hasobject:  # would need pickle to read back
                raise TypeError(f"array {key} holds Python objects")
        with (folder / ARRAYS).open("wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
        (folder / META).write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
        return [folder / ARRAYS, folder / META]

    @classmethod
    def load(cls, folder: Path) -> HeadBundle:
        """Read a bundle written by :meth:`save` (the registry verified the files first)."""
        meta = json.loads((folder / META).read_text("utf-8"))
        if meta.get("format") != FORMAT:
            raise ModelIntegrityError(
                f"{META} has format {meta.get('format')!r}; this service reads {FORMAT}.",
                path=str(folder / META),
            )
        data = (folder / ARRAYS).read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}

        def part(name: str) -> dict[str, np.ndarray]:
            prefix = f"{name}."
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

        ngrams = meta["ngrams"]
        neighbours = meta["neighbours"]
        return cls(
            head=LinearHead.from_arrays(part("head"), meta["head"]),
            ngrams=None if ngrams is None else CharNgrams.from_arrays(part("ngrams"), ngrams),
            projection=arrays.get("projection"),
            embedding_weight=float(meta["embedding_weight"]),
            neighbours=(
                None
                if neighbours is None
                else NearestExamples.from_arrays(part("neighbours"), neighbours)
            ),
            neighbour_weight=float(meta["neighbour_weight"]),
            multilingual_encoder=meta["multilingual_encoder"],
            multilingual_weight=float(meta["multilingual_weight"]),
            # Entries written before per-script weights joined both channels alike.
            other_script_primary_weight=float(meta.get("other_script_primary_weight", 1.0)),
            other_script_multilingual_weight=meta.get("other_script_multilingual_weight"),
            vietnamese_primary_weight=float(meta.get("vietnamese_primary_weight", 1.0)),
            vietnamese_multilingual_weight=meta.get("vietnamese_multilingual_weight"),
            indonesian_primary_weight=float(meta.get("indonesian_primary_weight", 1.0)),
            indonesian_multilingual_weight=meta.get("indonesian_multilingual_weight"),
        )
