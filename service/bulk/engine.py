"""The bulk engine: a file in, the contract columns added, a summary out.

Legacy files repeat a few thousand descriptions millions of times, so the engine classifies
each distinct text (``service.normalize.dedupe_key``) once and fans the answer out to every
row that carries it (:mod:`service.bulk.dedupe`). It reads in chunks and keeps only a bounded
text-key -> result cache in memory; for a file, the checkpoint (:mod:`service.bulk.checkpoint`,
a SQLite file next to the output) is the complete cache, so a text is classified once per file
even after the memory cache evicts it or the run is killed and resumed. Each chunk's rows are
written to a part file and committed with the checkpoint, so a resumed run writes exactly the
output an uninterrupted run would have.

The pieces live in their own modules (contract, summary, dedupe, checkpoint, frame); the
names callers used to import from here are re-exported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.bulk import io as bio
from service.bulk.checkpoint import (
    CHECKPOINT_SUFFIX,
    Checkpoint,
    checkpoint_folder,
    file_fingerprint,
)
from service.bulk.contract import (
    OUTPUT_COLUMNS,
    REASON_COLUMN,
    RESULT_COLUMNS,
    RESULT_SCHEMA,
    STATUSES,
    RowResult,
    output_names,
    output_schema,
    rejected_result,
    result_table,
    row_result,
    with_declared_languages,
)
from service.bulk.dedupe import CLASSIFY_BATCH, ChunkCoding, TextClassifier
from service.bulk.frame import cached_predictor, classify_frame
from service.bulk.summary import BulkOptions, BulkSummary
from service.coding import Coder, ReviewRequest
from service.errors import Interrupted, InvalidInput

__all__ = [
    "CHECKPOINT_SUFFIX",
    "CLASSIFY_BATCH",
    "OUTPUT_COLUMNS",
    "REASON_COLUMN",
    "RESULT_COLUMNS",
    "RESULT_SCHEMA",
    "STATUSES",
    "BulkOptions",
    "BulkSummary",
    "Checkpoint",
    "ChunkCoding",
    "Interrupted",
    "RowResult",
    "RunPlan",
    "TextClassifier",
    "cached_predictor",
    "checkpoint_folder",
    "classify_file",
    "classify_frame",
    "output_names",
    "rejected_result",
    "result_table",
    "row_result",
    "with_declared_languages",
]

log = logging.getLogger(__name__)

# 2: the language column; 3: texts cut to max_text_length; 4: the relied_on column
_FORMAT_VERSION = 4


@dataclass
class RunPlan:
    """Everything one run of :func:`classify_file` works from, resolved before the first row."""

    reader: bio.Reader
    checkpoint: Checkpoint
    output_path: Path
    output_format: bio.Format
    options: BulkOptions
    coder: Coder
    text_column: str
    id_column: str | None
    language_column: str | None
    names: dict[str, str]  # input column -> output column
    progress: bio.ProgressCallback | None = None
    should_stop: Callable[[], bool] | None = None


def classify_file(
    input_path: Path,
    output_path: Path,
    options: BulkOptions,
    coder: Coder,
    *,
    progress: bio.ProgressCallback | None = None,
    resume: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> BulkSummary:
    """Code every row of ``input_path`` into ``output_path`` (format by extension).

    Resumes from the checkpoint next to the output when one exists for the same input,
    options and model; ``resume=False`` starts over. ``should_stop`` is polled between
    chunks; when it answers True the run raises :class:`Interrupted` and can be resumed.
    """
    started = time.monotonic()
    input_path, output_path = Path(input_path), Path(output_path)
    out_fmt = bio.format_of(output_path)
    if output_path.resolve() == input_path.resolve():
        raise InvalidInput("The output file must not be the input file.")
    if options.to_review and coder.queue is None:
        raise InvalidInput("Queueing reviews needs a review store.")
    reader = bio.open_reader(
        input_path,
        encoding=options.encoding,
        delimiter=options.delimiter,
        max_decompressed_bytes=options.max_decompressed_bytes,
        # A cut cell must stay longer than the text cap, so the engine still flags it.
        max_cell_chars=max(bio.MAX_CELL_CHARS, options.max_text_length + 1),
    )
    text_col = bio.resolve_column(reader.columns, options.text_column, "--text-column")
    id_col = (
        bio.resolve_column(reader.columns, options.id_column, "--id-column")
        if options.id_column
        else None
    )
    if options.code_column:
        bio.resolve_column(reader.columns, options.code_column, "--code-column")
    lang_col = (
        bio.resolve_column(reader.columns, options.language_column, "--language-column")
        if options.language_column
        else None
    )
    version = str(coder.predictor.version)
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "v": _FORMAT_VERSION,
                "input": file_fingerprint(input_path),
                "options": options.fingerprint_fields(),
                "model": version,
                "output": out_fmt.name,
                "columns": reader.columns,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpoint(checkpoint_folder(output_path), fingerprint, fresh=not resume)
    plan = RunPlan(
        reader=reader,
        checkpoint=ckpt,
        output_path=output_path,
        output_format=out_fmt,
        options=options,
        coder=coder,
        text_column=text_col,
        id_column=id_col,
        language_column=lang_col,
        names=output_names(reader.columns),
        progress=progress,
        should_stop=should_stop,
    )
    try:
        summary = _run(plan)
    except BaseException:
        ckpt.close()
        raise
    summary.seconds = time.monotonic() - started
    summary.input_description = reader.description
    summary.output = str(output_path)
    ckpt.remove()
    log.info("bulk run done: %s", json.dumps(summary.as_dict()))
    return summary


def _run(plan: RunPlan) -> BulkSummary:
    ckpt, options = plan.checkpoint, plan.options
    classifier = TextClassifier(
        plan.coder,
        top_k=options.top_k,
        min_precision=options.min_precision,
        table_precision=options.table_precision,
        cache_size=options.cache_size,
        lookup=ckpt.lookup,
        max_text_length=options.max_text_length,
    )
    parts = plan.output_format.parts
    done = ckpt.rows_done
    counts = ckpt.counts()
    committed = ckpt.parts
    idx = (committed[-1] + 1) if committed else 0
    summary = BulkSummary(model_version=classifier.model_version, resumed_at=done)
    total = plan.reader.estimate_rows() if plan.progress is not None else None
    if done:
        log.info("resuming %s at row %d", plan.output_path.name, done)
    if plan.progress is not None:
        plan.progress(done, total)
    for chunk in plan.reader.chunks(options.chunk_rows, skip=done):
        texts = chunk.strings(plan.text_column)
        ids = chunk.strings(plan.id_column) if plan.id_column else None
        coding = classifier.code(texts, ids, chunk.reasons)
        if plan.language_column:
            declared = chunk.strings(plan.language_column)
            coding.results = with_declared_languages(coding.results, declared)
        for res in coding.results:
            counts[res.status] = counts.get(res.status, 0) + 1
        final = ckpt.part_path(idx, parts.suffix)
        tmp = final.with_name(final.name + ".tmp")
        inputs = chunk.table.rename_columns([plan.names[c] for c in chunk.table.column_names])
        parts.write(tmp, inputs, coding.results, RESULT_SCHEMA)
        ckpt.commit(idx, tmp, final, len(chunk), coding, counts)
        idx += 1
        done += len(chunk)
        if plan.progress is not None:
            plan.progress(done, total)
        if plan.should_stop is not None and plan.should_stop():
            raise Interrupted(
                "Stopped between chunks; the run resumes from its checkpoint.", rows_done=done
            )
    if options.to_review and ckpt.meta("reviews_queued") is None:
        queued = _enqueue_reviews(ckpt, plan.coder, options)
        ckpt.set_meta({"reviews_queued": str(queued)})
    summary.reviews_queued = int(ckpt.meta("reviews_queued") or 0)
    _assemble(plan)
    summary.rows = done
    summary.counts = counts
    summary.distinct_texts = ckpt.distinct_texts()
    return summary


def _enqueue_reviews(ckpt: Checkpoint, coder: Coder, options: BulkOptions) -> int:
    """Queue each distinct review text once, with how many rows carry it."""
    assert coder.queue is not None
    # The run's identity (input, options, model, batch): a run repeated after a crash queues
    # nothing twice (the review store keeps one contribution per run and text).
    run = json.dumps([options.origin, options.batch_name, ckpt.meta("fingerprint")])
    source = "run:" + hashlib.sha256(run.encode()).hexdigest()[:40]
    queued = 0
    for rows in ckpt.review_rows():
        requests = []
        for key, text, record_id, occurrences, suggestions, result, non_offence in rows:
            res = RowResult(*json.loads(result))
            requests.append(
                ReviewRequest(
                    text=text,
                    text_key=key,
                    suggestions=json.loads(suggestions) if suggestions else [],
                    top_code=res.iccs_code,
                    top_confidence=res.confidence,
                    model_version=res.model_version,
                    record_id=record_id,
                    origin=options.origin,
                    batch=options.batch_name,
                    occurrences=int(occurrences),
                    created_by=options.created_by,
                    min_precision=options.min_precision or coder.predictor.default_precision,
                    table_precision=options.table_precision,
                    non_offence_probability=non_offence,
                )
            )
        coder.queue.enqueue(requests, source=source)
        queued += len(requests)
    return queued


def _assemble(plan: RunPlan) -> None:
    """Join the committed parts into the output file (written aside, then renamed)."""
    ckpt = plan.checkpoint
    tmp = ckpt.folder / ("output" + plan.output_path.suffix)
    suffix = plan.output_format.parts.suffix
    parts = [ckpt.part_path(i, suffix) for i in ckpt.parts]
    schema = output_schema(plan.reader.empty_table().schema, plan.names)
    plan.output_format.assemble(tmp, schema, parts)
    os.replace(tmp, plan.output_path)
