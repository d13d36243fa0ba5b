"""Encoder comparison (a script, not a test): which sentence encoder should the head sit on?

Every encoder embeds the same normalised corpus (embeddings cached by text hash under
``--cache``), then the same head recipe is fitted once per held-out fold and scored on it:

- ``frozen``: embeddings + the hierarchical logistic head only (no n-grams, no nearest examples),
  the recipe the accuracy issue quotes;
- ``full``: the production recipe of the promoted model's config (n-grams, nearest examples).

Folds: each national list (leave one source out), plus, with ``--hw-folds``, the hand-written
groups named ``hw-<language>-<origin>`` in three folds (each language's origins spread over the
three, so every held-out group is predicted by a head that saw that language's other origins).
The promoted encoder was fine-tuned on hand-written rows, so its hand-written figures are
optimistic; the frozen encoders' are not.

    .venv/bin/python bench/encoder_compare.py --encoder finetuned --encoder mpnet \\
        --encoder minilm --encoder usem --encoder finetuned+usem --recipe frozen --recipe full

Encoders: ``finetuned`` (the promoted entry's ONNX encoder), ``minilm`` (all-MiniLM-L6-v2 as
shipped), ``mpnet`` (all-mpnet-base-v2 from its PyPI parts, SHA-256 verified), ``usem``
(Universal Sentence Encoder multilingual v3), ``a+b`` for the two concatenated, and ``a*w`` for
one scaled by ``w`` (``finetuned+usem*1.5`` is ``multilingual_weight: 1.5``).

``--set FIELD=VALUE`` changes one field of the head's recipe on the same cached embeddings
(``--set ngram_components=768``, ``--set C=8``): a head setting measured in minutes, not a build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("encoder_compare")


def embed(name: str, texts: list[str], cache: Path, entry: Path) -> np.ndarray:
    """Unit-norm embeddings of ``texts`` by one encoder, cached on disk by content hash."""
    if "+" in name:
        return np.hstack([embed(part, texts, cache, entry) for part in name.split("+")])
    if "*" in name:  # "usem*1.5": a channel scaled as `multilingual_weight` scales it
        base, weight = name.split("*")
        return embed(base, texts, cache, entry) * np.float32(float(weight))
    tag = entry.name if name == "finetuned" else name
    key = hashlib.sha256(("\n".join(texts) + "\0" + tag).encode("utf-8")).hexdigest()[:16]
    path = cache / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    if name == "finetuned":
        from service.models.embedder import OnnxEncoder

        emb = OnnxEncoder(entry / "encoder", int8=False).encode(texts)
    elif name in ("minilm", "mpnet"):
        from training.encoders import load_sentence_transformer

        model = load_sentence_transformer(name, max_seq_length=48)
        emb = model.encode(texts, batch_size=64, normalize_embeddings=True)
    elif name == "usem":
        from service.models.multilingual import MultilingualEncoder

        emb = MultilingualEncoder().encode(texts)
    else:
        raise SystemExit(f"unknown encoder {name!r}")
    emb = np.asarray(emb, dtype=np.float32)
    seconds = time.perf_counter() - t0
    log.info(
        "%s: %d texts in %.0f s (%.0f texts/s)", name, len(texts), seconds, len(texts) / seconds
    )
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return emb


def summarise(pred: np.ndarray, truth: np.ndarray, grp: np.ndarray, lang: np.ndarray) -> dict:
    """Pooled and mean-over-sources figures for national lists; per language for hand-written."""
    from training.metrics import by_group_metrics

    out: dict[str, Any] = {}
    national = np.array([not g.startswith("hw-") for g in grp])
    if national.any():
        m = by_group_metrics(pred[national], truth[national], grp[national])
        out["national_pooled"] = {k: v["accuracy"] for k, v in m["pooled_weighted_by_rows"].items()}
        out["national_mean"] = {
            k: v["accuracy"] for k, v in m["unweighted_mean_over_sources"].items()
        }
        out["per_source_section"] = {
            g: v["section"]["accuracy"] for g, v in m["per_source"].items()
        }
    if (~national).any():
        m = by_group_metrics(pred[~national], truth[~national], lang[~national])
        out["hw_per_language"] = {
            g: {k: round(v[k]["accuracy"], 3) for k in ("section", "division", "exact") if k in v}
            | {"rows": v["exact"]["n"]}
            for g, v in m["per_source"].items()
        }
    return out


def config_overrides(pairs: list[str], known: set[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs as config fields (values read as YAML: 512, true, [2, 5])."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        field = field.strip()
        if not sep or field not in known:
            raise SystemExit(f"--set wants FIELD=VALUE with a training config field, got {pair!r}")
        parsed = yaml.safe_load(value)
        out[field] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


def main() -> None:
    """Parse arguments, embed, fit per fold, print a table and write JSON."""
    from service.config import Settings
    from service.models.predictor import entry_normalizer
    from service.models.registry import Registry
    from training.config import TrainConfig
    from training.evaluate import recipe_oof
    from training.head import calibration_rows, fold_assignment, top_codes
    from training.pipeline import normalise_corpus, training_rows

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", action="append", required=True)
    ap.add_argument("--recipe", action="append", choices=["frozen", "full"], default=None)
    ap.add_argument("--hw-folds", action="store_true", help="also hold out hand-written groups")
    ap.add_argument("--model", default=None, help="registry version (default: promoted)")
    ap.add_argument(
        "--sample-training",
        type=int,
        default=None,
        help="hold out the national lists only, and train on this many other rows (seeded): "
        "for slow encoders on CPU; every encoder gets the same rows, so the comparison is fair",
    )
    ap.add_argument(
        "--hw-only",
        action="store_true",
        help="hold out the hand-written groups only (national lists train): per-language figures "
        "in a third of the time",
    )
    ap.add_argument(
        "--text",
        choices=["entry", "config"],
        default=None,
        help="normalise with the entry's files (default when it has them) or with the current "
        "code and data as the entry's config would train (glossaries included)",
    )
    ap.add_argument("--no-glossary", action="store_true", help="with --text config: no glossary")
    ap.add_argument(
        "--other-script",
        default=None,
        metavar="A,B",
        help="for a+b encoders: records in Cyrillic, Arabic, Thai, Hangul, kana or Han get the "
        "first channel times A and the rest times B (other_script_primary_weight and "
        "other_script_multilingual_weight with multilingual_weight 1); Vietnamese "
        "and Indonesian records take the config's vietnamese_* and indonesian_* weights (--set "
        "to change them)",
    )
    ap.add_argument(
        "--hw-rotation",
        choices=["on", "off"],
        default=None,
        help="hand-written fold layout (handwritten_fold_rotation; default: the entry's config): "
        "off holds out one style of every language together",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of the entry's training config for the head (YAML value), "
        "e.g. ngram_components=512; repeatable",
    )
    ap.add_argument("--cache", type=Path, default=Path("state/embedding_cache"))
    ap.add_argument("--output", type=Path, default=Path("bench/out/encoder_compare.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    settings = Settings()
    registry = Registry(settings.registry_dir)
    entry = registry.path(registry.resolve(args.model))
    cfg = TrainConfig.load(entry / "config.yaml")
    rows = training_rows(settings, cfg)
    groups = np.array([r.split_group for r in rows], dtype=object)
    labels = np.array([r.iccs_code for r in rows], dtype=object)
    langs = np.array([r.language for r in rows], dtype=object)
    if args.hw_folds or args.hw_only:
        cfg = replace(cfg, handwritten_folds=3)
    if args.hw_rotation:
        cfg = replace(cfg, handwritten_fold_rotation=args.hw_rotation == "on")
    if args.no_glossary:
        cfg = replace(cfg, glossary=False)
    if args.set:
        cfg = replace(cfg, **config_overrides(args.set, {f.name for f in fields(cfg)}))
    folds = fold_assignment(groups, labels, cfg)
    if args.hw_only:
        folds = np.where(np.char.startswith(groups.astype(str), "hw-"), folds, "")
    if args.sample_training is not None:
        # Only the national lists stay held out; the hand-written groups become training rows.
        folds = calibration_rows(folds)
        others = np.flatnonzero(folds == "")
        rng = np.random.default_rng(0)
        drop = set(rng.permutation(others)[args.sample_training :].tolist())
        keep = np.array([i for i in range(len(rows)) if i not in drop])
        rows = [rows[i] for i in keep]
        groups, labels, langs, folds = groups[keep], labels[keep], langs[keep], folds[keep]
    text_from = args.text or ("entry" if (entry / "abbreviations.csv").exists() else "config")
    if text_from == "entry":
        norm = entry_normalizer(entry, expand=True)
        texts = [norm(r.text) for r in rows]
    else:
        texts = normalise_corpus(rows, cfg)[1]
    log.info(
        "%d rows, %d held out in %d folds", len(rows), (folds != "").sum(), len(set(folds)) - 1
    )

    recipes = {
        "frozen": replace(cfg, char_ngrams=False, neighbour_weight=0.0),
        "full": cfg,
    }
    results: dict[str, Any] = {
        "model": entry.name,
        "rows": len(rows),
        "text": text_from + ("" if cfg.glossary else ", no glossary"),
        "config_overrides": args.set,
        "runs": {},
    }
    for name in args.encoder:
        emb = embed(name, texts, args.cache, entry)
        if args.other_script and "+" in name:
            first = embed(name.split("+")[0], texts, args.cache, entry).shape[1]
            a, b = (float(x) for x in args.other_script.split(","))
            weights = replace(
                cfg.channel_weights(), multilingual=1.0, other_primary=a, other_multilingual=b
            )
            scale_first, scale_rest = weights.per_row(texts)
            emb = np.hstack([emb[:, :first] * scale_first, emb[:, first:] * scale_rest])
            name = f"{name} (other scripts {a:g},{b:g})"
        for recipe in args.recipe or ["frozen"]:
            t0 = time.perf_counter()
            proba, classes, idx = recipe_oof(texts, emb, labels, folds, recipes[recipe])
            pred = top_codes(proba, classes)
            summary = summarise(pred, labels[idx], groups[idx], langs[idx])
            summary["seconds"] = round(time.perf_counter() - t0, 1)
            results["runs"][f"{name}/{recipe}"] = summary
            log.info("%s/%s: %s", name, recipe, json.dumps(summary.get("national_pooled")))
            # Written after every run, so a long comparison leaves its figures as it goes.
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(results, indent=2), "utf-8")
    print("| encoder / recipe | section | division | group | exact | section, mean over sources |")
    print("|---|---|---|---|---|---|")
    for run, s in results["runs"].items():
        p, m = s.get("national_pooled", {}), s.get("national_mean", {})
        cells = [f"{p.get(k, float('nan')):.3f}" for k in ("section", "division", "group", "exact")]
        print(f"| {run} | " + " | ".join(cells) + f" | {m.get('section', float('nan')):.3f} |")
    for run, s in results["runs"].items():
        if "hw_per_language" in s:
            print(run, json.dumps(s["hw_per_language"]))


if __name__ == "__main__":
    main()
