"""Fakes of the coder for the re-scoring tests: answers by text, as the model would give."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.models.policy import AUTO, REVIEW
from service.models.predictor import Suggestion
from service.taxonomy import load_taxonomy


def sugg(code: str, confidence: float) -> Suggestion:
    tax = load_taxonomy()
    return Suggestion(code, tax.title(code), tax.level(code), tax.path(code), confidence)


@dataclass
class Answer:
    """What the fake model says about one text (the attributes re-scoring reads)."""

    suggestions: list[Suggestion]
    assigned: Suggestion | None
    status: str
    model_version: str = "test-model-2"
    relied_on: list[int] = field(default_factory=list)
    reason: str | None = None
    non_offence_probability: float | None = None


class FakeCoder:
    """``rescore`` answers from a table by text (unknown texts: unchanged review answer)."""

    def __init__(self, answers: dict[str, Answer] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[list[str]] = []
        self.precisions: list[float | None] = []
        self.tables: list[float | None] = []

    def rescore(
        self,
        texts: list[str],
        min_precision: float | None = None,
        table_precision: float | None = None,
    ) -> list[Answer]:
        self.asked.append(list(texts))
        self.precisions.append(min_precision)
        self.tables.append(table_precision)
        default = Answer([sugg("020111", 0.5)], None, REVIEW)
        return [self.answers.get(t, default) for t in texts]


def auto(code: str, confidence: float, relied_on: list[int]) -> Answer:
    s = sugg(code, confidence)
    return Answer([s, sugg("0201", 0.02)], s, AUTO, relied_on=relied_on)


def review(code: str, confidence: float) -> Answer:
    return Answer([sugg(code, confidence), sugg("020111", 0.2)], None, REVIEW)
