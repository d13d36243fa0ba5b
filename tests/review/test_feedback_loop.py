"""Reviewed decisions flow back into training, end to end.

A text the model codes wrong goes to review; a reviewer corrects it; decision memory answers
the next identical record at once; ``iccs review export`` writes the decision into the
labelled corpus; the quick config retrains; the new model gets the text right on its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.coding import Coder
from service.config import Settings
from service.models.predictor import load_predictor
from service.review.commands import review
from service.review.store import ReviewStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Texts a quick model is unlikely to know, each with the code a reviewer would give it
# (leaves, so "right" means the deepest suggestion, not a lucky ancestor).
CANDIDATES = [
    ("siphoned diesel out of the depot's parked tractors overnight", "050239"),
    ("rigged the tombola at the village fete", "07019"),
    ("kept a pangolin in the flat without papers", "100311"),
    ("slipped the planning officer an envelope of cash", "070311"),
]


def test_review_correction_is_learned(
    tiny_registry: Path, tmp_path: Path, shared_dir: Path
) -> None:
    from service.taxonomy import load_taxonomy
    from training.pipeline import train_and_register

    tax = load_taxonomy()
    assert all(c in tax and tax.is_leaf(c) for _, c in CANDIDATES)
    candidates = CANDIDATES
    work_registry = tmp_path / "registry"
    shutil.copytree(tiny_registry, work_registry)
    settings = Settings(
        registry_dir=work_registry,
        data_dir=shared_dir,
        state_dir=tmp_path / "state",
        database_url=f"sqlite:///{tmp_path / 'review.sqlite3'}",
    )
    predictor = load_predictor(work_registry)
    before = predictor.classify([t for t, _ in candidates], top_k=5)
    wrong = [
        (text, code)
        for (text, code), res in zip(candidates, before, strict=True)
        if not res.suggestions or res.suggestions[0].code != code
    ]
    assert wrong, "the quick model already knows every candidate; pick harder texts"
    text, code = wrong[0]

    # 1. The record goes to review (queue_review forces it even if the model were sure).
    store = ReviewStore.from_url(settings.resolved_database_url())
    store.memory_min_agreeing = 1  # one reviewer's code applies at once (agreement: elsewhere)
    coder = Coder(predictor, store)
    (first,) = coder.code([text], batch="feedback")
    if first.review_id is None:
        (first,) = coder.code([text], batch="feedback", min_precision=0.999)
    assert first.review_id is not None and first.result.status == "review"

    # 2. A reviewer corrects it; memory codes the next identical record straight away.
    store.decide(first.review_id, "alice", "correct", code=code, note="feedback-loop test")
    (again,) = coder.code([text.upper()])
    assert again.source == "review_memory" and again.result.assigned.code == code

    # 3. Export into a copy of the labelled corpus, as `iccs review export` does.
    labelled = tmp_path / "labelled_data"
    shutil.copytree(ROOT / "labelled_data", labelled)
    out = CliRunner().invoke(
        review,
        ["export", "--output", str(labelled / "review" / "reviewed.csv")],
        obj=settings,
        catch_exceptions=False,
    )
    assert out.exit_code == 0 and "wrote 1 reviewed rows" in out.output, out.output
    store.engine.dispose()

    # 4. Retrain the quick config on it; the new model gets the text right without memory.
    version = train_and_register(settings, quick=True, promote=True, labelled_dir=labelled)
    retrained = load_predictor(work_registry, version)
    (after,) = retrained.classify([text], top_k=5)
    assert after.suggestions[0].code == code, [
        (s.code, round(s.confidence, 3)) for s in after.suggestions
    ]
