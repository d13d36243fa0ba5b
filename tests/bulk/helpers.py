"""Helpers shared by the bulk tests (imported relatively; fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

# Texts a legacy file repeats: offences, shorthand, variants that share a dedupe key, junk.
TEXTS = (
    "Theft of a motor vehicle",
    "THEFT OF A MOTOR VEHICLE.",  # same dedupe key as the line above
    "ASSLT W/DW",
    "Burglary of a dwelling at night",
    "Murder",
    "Possession of cannabis for personal use",
    "Fraud by false representation",
    "see file",
    "",
    "12345",
    "Diebstahl mit Waffen",
    "Vol qualifi\u00e9",
)


class CountingPredictor:
    """Wraps the real predictor and records how many texts reach the model."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.version = inner.version
        self.default_precision = inner.default_precision
        self.calls: list[list[str]] = []

    def classify(self, texts: list[str], top_k: int = 5, min_precision: float | None = None):  # type: ignore[no-untyped-def]
        self.calls.append(list(texts))
        return self.inner.classify(texts, top_k=top_k, min_precision=min_precision)

    @property
    def texts_seen(self) -> list[str]:
        return [t for call in self.calls for t in call]


def legacy_rows(n: int, distinct: int | None = None) -> list[list[str]]:
    """A header and ``n`` rows cycling through :data:`TEXTS` (or ``distinct`` numbered texts)."""
    rows = [["record_id", "agency_code", "description"]]
    for i in range(n):
        if distinct is None:
            text = TEXTS[i % len(TEXTS)]
        else:
            text = f"Theft of property number {i % distinct} from a shop"
        rows.append([f"R{i:06d}", f"N{i % 4}", text])
    return rows
