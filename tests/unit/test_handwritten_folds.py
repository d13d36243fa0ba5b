"""The hand-written hw-<language>-<origin> groups' held-out folds."""

from dataclasses import replace

from training.config import TrainConfig
from training.head import held_out_groups

GROUPS = [
    f"hw-{lang}-{origin}"
    for lang in ("ar", "ko", "vi")
    for origin in ("narrative", "police", "statute")
]


def _folds(rotation: bool) -> dict[str, str]:
    cfg = replace(
        TrainConfig(), calibration_folds={}, handwritten_folds=3, handwritten_fold_rotation=rotation
    )
    return held_out_groups(["handwritten", *GROUPS], cfg)


def test_each_language_spreads_its_origins_over_the_folds() -> None:
    for rotation in (False, True):
        folds = _folds(rotation)
        assert "handwritten" not in folds  # always trains
        for lang in ("ar", "ko", "vi"):
            mine = {folds[g] for g in GROUPS if g.startswith(f"hw-{lang}-")}
            assert len(mine) == 3


def test_rotation_keeps_other_languages_narratives_in_training() -> None:
    # Without rotation one fold holds out every language's narratives at once.
    narratives = {g: f for g, f in _folds(False).items() if g.endswith("-narrative")}
    assert len(set(narratives.values())) == 1
    rotated = _folds(True)
    for g in GROUPS:
        same_fold = [h for h in GROUPS if h != g and rotated[h] == rotated[g]]
        assert not any(h.split("-")[2] == g.split("-")[2] for h in same_fold), (g, same_fold)
