"""A loaded model: text in, suggestions with calibrated confidence and a decision out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeAlias

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax

from service.models.bundle import HeadBundle
from service.models.calibration import PrecisionCurve
from service.models.decided import DecidedExamples, DecidedNeighbour, DecidedSnapshot
from service.models.embedder import OnnxEncoder
from service.models.linear_head import LinearHead
from service.models.multilingual import JoinedEncoder, MultilingualEncoder
from service.models.neighbours import NearestExamples
from service.models.ngrams import CharNgrams
from service.models.policy import (
    REJECT_PROBABILITY,
    REJECTED,
    ClassColumns,
    Thresholds,
    decide_row,
    unusable_text_reason,
)
from service.models.registry import Registry
from service.normalize import Normalizer, dedupe_key
from service.shorthand import ShorthandResolver, tokenizer_words
from service.taxonomy import TAXONOMY_VERSION, Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suggestion:
    """One candidate ICCS code."""

    code: str
    label: str
    level: int
    path: list[str]
    confidence: float


@dataclass
class Classification:
    """The model's answer for one record."""

    suggestions: list[Suggestion]
    assigned: Suggestion | None
    status: str
    reason: str | None
    model_version: str
    taxonomy_version: str = TAXONOMY_VERSION
    # Review item ids of the reviewers' decisions this answer relied on: decided examples
    # that beat the training examples for the answer's code, or the decision-memory entry.
    relied_on: list[int] = field(default_factory=list)
    # The head's P(not an offence), shown to reviewers so they can reject quickly; None where
    # the model did not score the text (rejected by rule, answered from decision memory) or
    # has no "not an offence" class.
    non_offence_probability: float | None = None


# What the head reads: dense rows, or sparse ones when the n-grams are not projected.
Features: TypeAlias = np.ndarray | sp.csr_matrix


class FittedReducer(Protocol):
    """A fitted TruncatedSVD, as far as :meth:`FeatureBuilder.projection_of` reads it."""

    components_: np.ndarray


@dataclass(frozen=True)
class LoadedEncoder:
    """The encoder a predictor runs, read from the loaded objects (after any fallback)."""

    int8: bool
    multilingual: str | None = None  # the multilingual channel's name, None without one

    @property
    def name(self) -> str:
        """``int8`` or ``fp32``."""
        return "int8" if self.int8 else "fp32"


class FeatureBuilder:
    """Joins sentence embeddings with character n-gram features of the normalised text.

    The n-gram TF-IDF is projected to a few hundred dense dimensions (``projection``, the
    components of a TruncatedSVD fitted in training) so the head trains with dense BLAS: ten
    times faster than a sparse matrix with hundreds of dense columns in it, at a small cost in
    accuracy (measured in the evaluation report). Without a projection the raw sparse n-grams
    are used.
    """

    def __init__(
        self,
        ngrams: CharNgrams | None,
        embedding_weight: float = 1.0,
        projection: np.ndarray | None = None,
    ) -> None:
        self.ngrams = ngrams
        self.embedding_weight = embedding_weight
        # C-ordered float32: scipy copies a transposed (Fortran-ordered) matrix on every
        # product (measured: 25 ms and 82 MB per request).
        self.projection = (
            None if projection is None else np.ascontiguousarray(projection, dtype=np.float32)
        )

    @staticmethod
    def projection_of(reducer: FittedReducer) -> np.ndarray:
        """The matrix of a fitted TruncatedSVD (its ``transform`` is ``X @ components_.T``)."""
        return np.ascontiguousarray(reducer.components_.T, dtype=np.float32)

    def transform(self, normalised: list[str], embeddings: np.ndarray) -> Features:
        """Feature matrix for the head."""
        dense = embeddings * self.embedding_weight
        if self.ngrams is None:
            return dense
        grams = self.ngrams.transform(normalised)
        if self.projection is not None:
            return np.hstack([dense, np.asarray(grams @ self.projection, dtype=np.float32)])
        joined: sp.csr_matrix = sp.hstack([sp.csr_matrix(dense), grams]).tocsr()
        return joined


@dataclass(frozen=True)
class NeighbourScores:
    """Per-class similarities of one scoring pass: training examples, and decided ones."""

    train: np.ndarray  # (n, classes): best similarity to a training example of the class
    decided: DecidedSnapshot  # the decided examples scored against
    decided_sims: np.ndarray  # (n, examples): similarity to each decided example
    decided_classes: np.ndarray  # (n, classes): best decided similarity, -inf where none

    @property
    def combined(self) -> np.ndarray:
        """What the scorer adds (times its weight): the better of the two per class."""
        return np.asarray(np.maximum(self.train, self.decided_classes))


class Scorer:
    """Logits over the head's classes: the linear head plus the nearest-example bonus.

    Training (out-of-fold predictions) and serving both score through this class, so the
    calibration is fitted on exactly the logits the service computes.
    """

    def __init__(
        self,
        features: FeatureBuilder,
        head: LinearHead,
        neighbours: NearestExamples | None = None,
        neighbour_weight: float = 0.0,
    ) -> None:
        self.features = features
        self.head = head
        self.neighbours = neighbours
        self.neighbour_weight = neighbour_weight

    @property
    def uses_neighbours(self) -> bool:
        """Whether the nearest-example component takes part in the logits."""
        return self.neighbours is not None and bool(self.neighbour_weight)

    def neighbour_scores(
        self, embeddings: np.ndarray, decided: DecidedSnapshot, keys: list[str]
    ) -> NeighbourScores | None:
        """Similarities to training and decided examples (None without the component).

        ``keys`` are the texts' dedupe keys: a decided example never counts for its own text.
        """
        if self.neighbours is None or not self.neighbour_weight:
            return None
        sims = decided.similarities(self.neighbours.project(embeddings), keys)
        return NeighbourScores(
            train=self.neighbours.scores(embeddings),
            decided=decided,
            decided_sims=sims,
            decided_classes=decided.class_scores(sims, len(self.head.classes_)),
        )

    def logits(
        self,
        normalised: list[str],
        embeddings: np.ndarray,
        near: NeighbourScores | None = None,
    ) -> np.ndarray:
        """Uncalibrated logits, one column per ``head.classes_``.

        ``near`` (from :meth:`neighbour_scores`) brings reviewers' decided examples in: the
        per-class similarity added is then the better of training and decided examples.
        """
        logits = self.head.logits(self.features.transform(normalised, embeddings))
        if self.neighbours is not None and self.neighbour_weight:
            sims = near.combined if near is not None else self.neighbours.scores(embeddings)
            logits = logits + self.neighbour_weight * sims
        return logits

    def probabilities(
        self,
        normalised: list[str],
        embeddings: np.ndarray,
        near: NeighbourScores | None = None,
    ) -> np.ndarray:
        """Calibrated probabilities (the head's fitted temperature)."""
        logits = self.logits(normalised, embeddings, near)
        return np.asarray(softmax(logits / self.head.temperature, axis=1))


class Predictor:
    """Everything needed to classify: normaliser, encoder, head, thresholds."""

    def __init__(
        self,
        version: str,
        normalizer: Normalizer,
        encoder: OnnxEncoder | JoinedEncoder,
        scorer: Scorer,
        curves: dict[int, PrecisionCurve],
        default_precision: float,
        taxonomy: Taxonomy | None = None,
        target_map: list[list[float]] | None = None,
        table_thresholds: list[list[float]] | None = None,
        non_offence_curve: PrecisionCurve | None = None,
    ) -> None:
        self.version = version
        self.normalizer = normalizer
        self.encoder = encoder
        self.scorer = scorer
        self.head = head = scorer.head
        self.thresholds = Thresholds(curves, target_map, table_thresholds, non_offence_curve)
        self.default_precision = default_precision
        self.taxonomy = taxonomy or load_taxonomy()
        self.columns = ClassColumns(head.classes_)
        self._node_index = {n: i for i, n in enumerate(head.nodes_)}

    @classmethod
    def load(
        cls,
        registry: Registry,
        version: str | None = None,
        int8: bool = False,
        target_precision: float | None = None,
        threads: int | None = None,
        workers: int = 1,
    ) -> Predictor:
        """Load a registry entry (the promoted one unless ``version`` is given), once every
        file of it matches the SHA-256 its manifest lists."""
        version = registry.resolve(version)
        folder = registry.verify(version)
        manifest = registry.manifest(version)
        bundle = HeadBundle.load(folder)
        normalizer = entry_normalizer(folder, expand=bool(manifest["config"].get("expand", True)))
        if int8 and not (folder / "encoder" / "model.int8.onnx").exists():
            # Registration leaves int8 out when it disagrees with fp32 too often.
            log.warning("%s ships no int8 encoder (it failed its agreement check): fp32", version)
            int8 = False
        encoder: OnnxEncoder | JoinedEncoder = OnnxEncoder(
            folder / "encoder", int8=int8, threads=threads, workers=workers
        )
        if bundle.multilingual_encoder:
            encoder = JoinedEncoder(encoder, MultilingualEncoder(), bundle.channel_weights())
        curves = {
            int(lvl): PrecisionCurve.from_dict(c)
            for lvl, c in manifest["calibration"]["curves"].items()
        }
        stored = manifest["calibration"].get("non_offence_curve")
        non_offence_curve = PrecisionCurve.from_dict(stored) if stored else None
        head = bundle.head
        head.temperature = float(manifest["calibration"]["temperature"])
        return cls(
            version=version,
            normalizer=normalizer,
            encoder=encoder,
            scorer=Scorer(
                FeatureBuilder(bundle.ngrams, bundle.embedding_weight, bundle.projection),
                head,
                bundle.neighbours,
                bundle.neighbour_weight,
            ),
            curves=curves,
            default_precision=target_precision or float(manifest["target_precision"]),
            target_map=manifest["calibration"].get("target_map"),
            table_thresholds=manifest["calibration"].get("table_thresholds"),
            non_offence_curve=non_offence_curve,
        )

    @property
    def loaded_encoder(self) -> LoadedEncoder:
        """What this predictor encodes with: an entry without int8 falls back to fp32."""
        multilingual = None
        if isinstance(self.encoder, JoinedEncoder):
            multilingual = str(self.encoder.multilingual.name)
        return LoadedEncoder(bool(self.encoder.int8), multilingual)

    def class_probabilities(
        self, texts: list[str], decided: DecidedExamples | None = None
    ) -> np.ndarray:
        """Calibrated probabilities over the head's classes for raw texts."""
        return self._scored(texts, decided)[0]

    def embed(self, texts: list[str]) -> np.ndarray:
        """The encoder's embeddings of raw texts (normalised first, as for classifying)."""
        return np.asarray(self.encoder.encode([self.normalizer(t) for t in texts]))

    def decided_index(self) -> DecidedExamples | None:
        """An empty index of decided examples for this model, None when the model has no
        nearest-example component for them to join (neighbour weight 0)."""
        neighbours = self.scorer.neighbours
        if neighbours is None or not self.scorer.neighbour_weight:
            return None
        return DecidedExamples(self.head.classes_, neighbours.project)

    def decided_neighbours(
        self, texts: list[str], decided: DecidedExamples, k: int = 3
    ) -> list[list[DecidedNeighbour]]:
        """The ``k`` decided examples nearest each text (an example of the same text key is
        left out)."""
        snap = decided.snapshot()
        neighbours = self.scorer.neighbours
        if not texts or len(snap) == 0 or neighbours is None or k <= 0:
            return [[] for _ in texts]
        queries = neighbours.project(self.embed(texts))
        sims = snap.similarities(queries, [dedupe_key(t) for t in texts])
        return [snap.nearest(row, k) for row in sims]

    def _scored(
        self, texts: list[str], decided: DecidedExamples | None
    ) -> tuple[np.ndarray, NeighbourScores | None]:
        normalised = [self.normalizer(t) for t in texts]
        emb = self.encoder.encode(normalised)
        near = None
        if decided is not None:
            snap = decided.snapshot()
            if len(snap):
                near = self.scorer.neighbour_scores(emb, snap, [dedupe_key(t) for t in texts])
        return self.scorer.probabilities(normalised, emb, near), near

    def classify(
        self,
        texts: list[str],
        top_k: int = 5,
        min_precision: float | None = None,
        decided: DecidedExamples | None = None,
        table_precision: float | None = None,
    ) -> list[Classification]:
        """Classify records in one inference pass (identical texts are scored once).

        ``decided``: reviewers' decided examples joining the nearest-example component (see
        :mod:`service.models.decided`); each answer's ``relied_on`` names those it relied on.
        ``table_precision``: the records are entries of a national list coded as a
        correspondence table that people finish by reviewing the rest; the target is the
        precision of that finished table, and an entry whose top code clears the table
        threshold is auto-coded whole (see :meth:`Thresholds.table_at`). The per-level walk
        still applies below it, at ``min_precision``.
        """
        precision = min_precision or self.default_precision
        thresholds = self.thresholds.at(precision)
        reject_at = self.thresholds.reject_at(precision)
        table = None if table_precision is None else self.thresholds.table_at(table_precision)
        results: list[Classification | None] = [None] * len(texts)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            reason = unusable_text_reason(text)
            if reason:
                results[i] = Classification([], None, REJECTED, reason, self.version)
            else:
                todo.setdefault(text, []).append(i)
        if todo:
            unique = list(todo)
            proba, near = self._scored(unique, decided)
            nodes = proba @ self.head.node_matrix_
            for row, text in enumerate(unique):
                res = self._decide_one(proba[row], nodes[row], top_k, thresholds, table, reject_at)
                if near is not None:
                    res.relied_on = self._relied_on(res, near, row)
                for i in todo[text]:
                    results[i] = res
        return [r for r in results if r is not None]

    def _relied_on(self, res: Classification, near: NeighbourScores, row: int) -> list[int]:
        """Decided examples that beat the training examples for the answer's code: the
        assigned code (any class under it, when backed off), else the top suggestion."""
        chosen = res.assigned or (res.suggestions[0] if res.suggestions else None)
        if chosen is None:
            return []
        columns = np.flatnonzero(self.head.node_matrix_[:, self._node_index[chosen.code]])
        return near.decided.relied_on(near.decided_sims[row], near.train[row], columns)

    def _decide_one(
        self,
        proba: np.ndarray,
        nodes: np.ndarray,
        top_k: int,
        thresholds: dict[int, float],
        table: float | None = None,
        reject_at: float = REJECT_PROBABILITY,
    ) -> Classification:
        order = self.columns.ranked_offences(proba)
        suggestions = [self._suggestion(self.columns.classes[c], nodes) for c in order[:top_k]]
        decision = decide_row(
            proba,
            nodes,
            self._node_index,
            self.columns,
            thresholds,
            self.taxonomy.path,
            table,
            reject_at,
        )
        assigned = None
        if decision.assigned:
            assigned = self._suggestion(decision.assigned, nodes)
        non_offence = None
        if self.columns.non_offence >= 0:  # a head without the class has no such probability
            non_offence = round(float(self.columns.non_offence_probability(proba)), 4)
        return Classification(
            suggestions,
            assigned,
            decision.status,
            decision.reason,
            self.version,
            non_offence_probability=non_offence,
        )

    def _suggestion(self, code: str, nodes: np.ndarray) -> Suggestion:
        cat = self.taxonomy.get(code)
        return Suggestion(
            code=code,
            label=cat.title,
            level=cat.level,
            path=self.taxonomy.path(code),
            confidence=round(float(nodes[self._node_index[code]]), 4),
        )


def load_predictor(
    registry_dir: Path,
    version: str | None = None,
    *,
    int8: bool = False,
    target_precision: float | None = None,
    threads: int | None = None,
    workers: int = 1,
) -> Predictor:
    """Shortcut used by the CLI, the API and the bulk engine (see :meth:`Predictor.load`)."""
    return Predictor.load(Registry(registry_dir), version, int8, target_precision, threads, workers)


def entry_normalizer(folder: Path, expand: bool = True) -> Normalizer:
    """The normaliser a registry entry was trained with: its abbreviation table, plus its
    shorthand vocabulary and glossary when it has them (older entries have neither)."""
    vocabulary = folder / "vocabulary.json"
    shorthand = None
    if expand and vocabulary.exists():
        shorthand = ShorthandResolver.load(
            vocabulary, tokenizer_words(folder / "encoder" / "tokenizer.json")
        )
    glossary = [folder / "glossary.csv"] if (folder / "glossary.csv").exists() else []
    return Normalizer.from_files(
        [folder / "abbreviations.csv"], expand=expand, shorthand=shorthand, glossaries=glossary
    )
