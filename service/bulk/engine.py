"""The bulk engine: a file (or a DataFrame) in, the contract columns added, a summary out.

Legacy files repeat a few thousand descriptions millions of times, so the engine classifies
each distinct text (``service.normalize.dedupe_key``) once and fans the answer out to every
row that carries it. It reads in chunks and keeps only a bounded text-key -> result cache in
memory; for a file, the checkpoint (a SQLite file next to the output) is the complete cache,
so a text is classified once per file even after the memory cache evicts it or the run is
killed and resumed. Each chunk's rows are written to a part file and committed with the
checkpoint, so a resumed run writes exactly the output an uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from service.bulk import io as bio
from service.coding import CodedRecord, Coder, ReviewRequest, suggestion_dict
from service.errors import FileFormatError, ICCSError, InvalidInput
from service.models.policy import AUTO, REJECTED, REVIEW, unusable_text_reason
from service.normalize import dedupe_key

log = logging.getLogger(__name__)

# The output contract (PRODUCT.md "Command line"), in this order, then ``reason``.
RESULT_COLUMNS = (
    "iccs_code",
    "iccs_label",
    "confidence",
    "assigned_code",
    "status",
    "alternatives",
    "model_version",
    "language",
)
REASON_COLUMN = "reason"
OUTPUT_COLUMNS = (*RESULT_COLUMNS, REASON_COLUMN)
RESULT_SCHEMA = pa.schema(
    [
        ("iccs_code", pa.string()),
        ("iccs_label", pa.string()),
        ("confidence", pa.float64()),
        ("assigned_code", pa.string()),
        ("status", pa.string()),
        ("alternatives", pa.string()),
        ("model_version", pa.string()),
        ("language", pa.string()),
        (REASON_COLUMN, pa.string()),
    ]
)
STATUSES = (AUTO, REVIEW, REJECTED)
# Distinct texts sent to the model at once: bounds the probability matrices in memory.
CLASSIFY_BATCH = 4096
CHECKPOINT_SUFFIX = ".iccs-partial"
_NO_KEY = object()
_FORMAT_VERSION = 2  # 2: the language column

# (iccs_code, iccs_label, confidence, assigned_code, status, alternatives, model_version,
#  language, reason)
RowResult = tuple[
    str | None, str | None, float | None, str | None, str, str, str, str | None, str | None
]


class Interrupted(ICCSError):
    """The run was asked to stop between two chunks; its checkpoint lets it continue later."""

    code = "interrupted"
    http_status = 503


@dataclass
class BulkOptions:
    """How to read the input and code its rows."""

    text_column: str
    id_column: str | None = None
    code_column: str | None = None
    # A column with each record's language tag; rows where it is blank get the detected one.
    language_column: str | None = None
    min_precision: float | None = None
    top_k: int = 5
    to_review: bool = False
    batch_name: str | None = None
    origin: str = "bulk"
    encoding: str | None = None
    delimiter: str | None = None
    chunk_rows: int = 50_000
    cache_size: int = 100_000

    def fingerprint_fields(self) -> dict[str, Any]:
        """The options that change the output (chunking and caching do not)."""
        d = asdict(self)
        for k in ("chunk_rows", "cache_size", "to_review", "batch_name", "origin"):
            d.pop(k)
        return d


@dataclass
class BulkSummary:
    """What a run did; printed by the CLI, stored on jobs."""

    rows: int = 0
    distinct_texts: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    seconds: float = 0.0
    model_version: str = ""
    reviews_queued: int = 0
    resumed_at: int = 0
    input_description: str = ""
    output: str = ""

    @property
    def dedupe_ratio(self) -> float:
        """Rows per distinct text (1.0 when every text is different)."""
        return self.rows / self.distinct_texts if self.distinct_texts else 0.0

    @property
    def rows_per_second(self) -> float:
        """Throughput of this run (rows processed by it, not those restored from a checkpoint)."""
        done = self.rows - self.resumed_at
        return done / self.seconds if self.seconds > 0 else 0.0

    def share(self, status: str) -> float:
        """Fraction of rows with ``status``."""
        return self.counts.get(status, 0) / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "rows": self.rows,
            "distinct_texts": self.distinct_texts,
            "dedupe_ratio": round(self.dedupe_ratio, 2),
            "counts": dict(self.counts),
            "shares": {s: round(self.share(s), 4) for s in STATUSES},
            "seconds": round(self.seconds, 2),
            "rows_per_second": round(self.rows_per_second, 1),
            "model_version": self.model_version,
            "reviews_queued": self.reviews_queued,
            "resumed_at": self.resumed_at,
        }

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"rows: {self.rows:,}",
            f"distinct texts: {self.distinct_texts:,} (dedupe ratio {self.dedupe_ratio:.1f}x)",
        ]
        for s in STATUSES:
            out.append(f"{s}: {self.counts.get(s, 0):,} ({self.share(s):.1%})")
        rate = f"{self.rows_per_second:,.0f} rows/s"
        out.append(f"time: {self.seconds:.1f} s ({rate})")
        if self.resumed_at:
            out.append(f"resumed at row {self.resumed_at:,}")
        if self.reviews_queued:
            out.append(f"queued for review: {self.reviews_queued:,} distinct texts")
        out.append(f"model: {self.model_version}")
        return out


def row_result(coded: CodedRecord) -> RowResult:
    """The contract columns for one classification."""
    res = coded.result
    top = res.suggestions[0] if res.suggestions else None
    alternatives = json.dumps(
        [
            {"code": s.code, "label": s.label, "confidence": s.confidence}
            for s in res.suggestions[1:]
        ],
        ensure_ascii=False,
    )
    return (
        top.code if top else None,
        top.label if top else None,
        top.confidence if top else None,
        res.assigned.code if res.assigned else None,
        res.status,
        alternatives,
        res.model_version,
        coded.language.code if coded.language else None,
        res.reason,
    )


def with_declared_languages(
    results: list[RowResult], declared: Sequence[str | None]
) -> list[RowResult]:
    """Row results with the language the input names (primary subtag, lower case) where it
    names one. Results are shared by every row of a text, so this runs per row, after fan-out.
    """
    out = []
    for res, tag in zip(results, declared, strict=True):
        tag = (tag or "").strip()
        if tag:
            res = (*res[:7], tag.split("-")[0].split("_")[0].lower(), res[8])
        out.append(res)
    return out


def rejected_result(reason: str, model_version: str) -> RowResult:
    """The contract columns for a row no model looked at (no language either, as on Spark)."""
    return (None, None, None, None, REJECTED, "[]", model_version, None, reason)


def result_table(results: Sequence[RowResult]) -> pa.Table:
    """The contract columns (plus ``reason``) as an Arrow table."""
    cols = list(zip(*results, strict=True)) if results else [()] * len(RESULT_SCHEMA)
    return pa.table(
        [pa.array(list(c), f.type) for c, f in zip(cols, RESULT_SCHEMA, strict=True)],
        schema=RESULT_SCHEMA,
    )


def output_names(columns: Sequence[str]) -> dict[str, str]:
    """Input column -> output column; inputs clashing with the contract get an ``input_`` prefix.

    A re-run on an already coded file must not overwrite the old codes silently: they are
    kept next to the new ones.
    """
    taken = set(OUTPUT_COLUMNS)
    out: dict[str, str] = {}
    for c in columns:
        name = c
        while name in taken:
            name = f"input_{name}"
        taken.add(name)
        out[c] = name
    return out


# --- dedupe + classification --------------------------------------------------------------


@dataclass
class ChunkCoding:
    """The classified rows of one chunk and what the checkpoint must remember."""

    results: list[RowResult]
    key_counts: Counter[str]
    new: dict[str, tuple[RowResult, str, str | None, str]]  # key -> result, text, id, sugg.
    by_key: dict[str, RowResult] = field(default_factory=dict)

    def status(self, key: str) -> str:
        """Status of a key coded in this chunk."""
        return self.by_key[key][4]


class TextClassifier:
    """Classifies each distinct text once and fans the result out to its rows.

    ``lookup`` is the second-level cache (the checkpoint) consulted for keys the bounded
    in-memory cache no longer holds.
    """

    def __init__(
        self,
        coder: Coder,
        *,
        top_k: int = 5,
        min_precision: float | None = None,
        cache_size: int = 100_000,
        lookup: Callable[[Sequence[str]], dict[str, RowResult]] | None = None,
    ) -> None:
        self.coder = coder
        self.top_k = top_k
        self.min_precision = min_precision
        self.cache_size = cache_size
        self.lookup = lookup
        self.cache: OrderedDict[str, RowResult] = OrderedDict()
        # Raw text -> key: computing a key (NFKC, regex, SHA-1) costs more than the lookup.
        self._keys: dict[str, str | None] = {}
        self.model_calls = 0
        self.texts_classified = 0

    @property
    def model_version(self) -> str:
        """Version of the model behind the coder."""
        return str(self.coder.predictor.version)

    def key_of(self, text: str) -> str | None:
        """The dedupe key of a text, None for unusable text (memoised, bounded)."""
        key = self._keys.get(text, _NO_KEY)
        if key is _NO_KEY:
            if len(self._keys) >= self.cache_size:
                self._keys.clear()
            key = self._keys[text] = None if unusable_text_reason(text) else dedupe_key(text)
        return key  # type: ignore[return-value]

    def code(
        self,
        texts: Sequence[str],
        ids: Sequence[str | None] | None = None,
        reasons: Sequence[str | None] | None = None,
    ) -> ChunkCoding:
        """Results for the rows of one chunk, in row order."""
        version = self.model_version
        n = len(texts)
        ids = ids if ids is not None else [None] * n
        reasons = reasons if reasons is not None else [None] * n
        keys: list[str | None] = []
        first: dict[str, int] = {}
        for i, (text, reason) in enumerate(zip(texts, reasons, strict=True)):
            key = None if reason is not None else self.key_of(text)
            keys.append(key)
            if key is not None and key not in first:
                first[key] = i
        # This chunk's results by key, gathered before the bounded cache may evict any.
        local: dict[str, RowResult] = {}
        missing = []
        for k in first:
            hit = self.cache.get(k)
            if hit is None:
                missing.append(k)
            else:
                local[k] = hit
        if missing and self.lookup is not None:
            local.update(self.lookup(missing))
            missing = [k for k in missing if k not in local]
        new: dict[str, tuple[RowResult, str, str | None, str]] = {}
        for start in range(0, len(missing), CLASSIFY_BATCH):
            batch = missing[start : start + CLASSIFY_BATCH]
            coded = self.coder.code(
                [texts[first[k]] for k in batch],
                record_ids=[ids[first[k]] for k in batch],
                top_k=self.top_k,
                min_precision=self.min_precision,
                queue_review=False,
            )
            self.model_calls += 1
            self.texts_classified += len(batch)
            for k, rec in zip(batch, coded, strict=True):
                res = row_result(rec)
                local[k] = res
                suggestions = ""
                if res[4] == REVIEW:
                    suggestions = json.dumps(
                        [suggestion_dict(s) for s in rec.result.suggestions], ensure_ascii=False
                    )
                new[k] = (res, texts[first[k]], ids[first[k]], suggestions)
        results: list[RowResult] = []
        for i, row_key in enumerate(keys):
            if row_key is None:
                why = reasons[i] or unusable_text_reason(texts[i]) or "unusable_text"
                results.append(rejected_result(why, version))
            else:
                results.append(local[row_key])
        for k, res in local.items():
            self._remember(k, res)
        counts = Counter(k for k in keys if k is not None)
        return ChunkCoding(results, counts, new, local)

    def _remember(self, key: str, res: RowResult) -> None:
        self.cache[key] = res
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)


# --- checkpoint ---------------------------------------------------------------------------


class Checkpoint:
    """Durable progress of one output file: committed part files plus the per-text results.

    Lives in ``<output>.iccs-partial/`` next to the output. A part file is renamed into
    place before the transaction that records it commits, so a kill at any point leaves
    either a recorded part or one the resumed run overwrites.
    """

    def __init__(self, folder: Path, fingerprint: str, fresh: bool = False) -> None:
        self.folder = folder
        if folder.exists() and (fresh or self._stored_fingerprint(folder) != fingerprint):
            if folder.exists() and not fresh:
                log.warning(
                    "checkpoint %s is for another input or options; starting over", folder.name
                )
            shutil.rmtree(folder)
        (folder / "parts").mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(folder / "state.sqlite3", isolation_level=None)
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS parts (idx INTEGER PRIMARY KEY, rows INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS texts (
                key TEXT PRIMARY KEY, result TEXT NOT NULL, status TEXT NOT NULL,
                occurrences INTEGER NOT NULL, text TEXT, record_id TEXT, suggestions TEXT
            );
            """
        )
        if self.meta("fingerprint") is None:
            self._set_meta({"fingerprint": fingerprint})

    @staticmethod
    def _stored_fingerprint(folder: Path) -> str | None:
        db_path = folder / "state.sqlite3"
        if not db_path.exists():
            return None
        try:
            con = sqlite3.connect(db_path)
            try:
                row = con.execute("SELECT v FROM meta WHERE k='fingerprint'").fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            return None
        return str(row[0]) if row else None

    def meta(self, key: str) -> str | None:
        """A stored value."""
        row = self.db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def _set_meta(self, values: dict[str, str]) -> None:
        self.db.executemany(
            "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
            list(values.items()),
        )

    @property
    def rows_done(self) -> int:
        """Rows in committed parts."""
        return int(self.db.execute("SELECT COALESCE(SUM(rows), 0) FROM parts").fetchone()[0])

    @property
    def parts(self) -> list[int]:
        """Indices of committed parts, in order."""
        return [r[0] for r in self.db.execute("SELECT idx FROM parts ORDER BY idx")]

    def counts(self) -> dict[str, int]:
        """Row counts by status of the committed parts."""
        raw = self.meta("counts")
        stored: dict[str, int] = json.loads(raw) if raw else {}
        return {s: int(stored.get(s, 0)) for s in STATUSES}

    def part_path(self, idx: int, suffix: str) -> Path:
        """Where part ``idx`` lives."""
        return self.folder / "parts" / f"{idx:06d}{suffix}"

    def lookup(self, keys: Sequence[str]) -> dict[str, RowResult]:
        """Results already recorded for these keys."""
        out: dict[str, RowResult] = {}
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            marks = ",".join("?" * len(part))
            for key, res in self.db.execute(
                f"SELECT key, result FROM texts WHERE key IN ({marks})", part
            ):
                out[key] = tuple(json.loads(res))
        return out

    def commit(
        self,
        idx: int,
        tmp: Path,
        final: Path,
        rows: int,
        coding: ChunkCoding,
        counts: dict[str, int],
    ) -> None:
        """Record a written part and what its texts got, atomically."""
        os.replace(tmp, final)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO texts(key, result, status, occurrences, text, record_id, suggestions)"
                " VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                [
                    (
                        k,
                        json.dumps(res, ensure_ascii=False),
                        res[4],
                        text if res[4] == REVIEW else None,
                        rid if res[4] == REVIEW else None,
                        sugg or None,
                    )
                    for k, (res, text, rid, sugg) in coding.new.items()
                ],
            )
            # Occurrences matter only for what goes to review (queued with its count).
            db.executemany(
                "UPDATE texts SET occurrences = occurrences + ? WHERE key = ?",
                [(n, k) for k, n in coding.key_counts.items() if coding.status(k) == REVIEW],
            )
            db.execute("INSERT OR REPLACE INTO parts(idx, rows) VALUES (?, ?)", (idx, rows))
            self._set_meta({"counts": json.dumps(counts)})
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def distinct_texts(self) -> int:
        """Distinct texts seen so far."""
        return int(self.db.execute("SELECT COUNT(*) FROM texts").fetchone()[0])

    def review_rows(self, size: int = 1000) -> Iterator[list[tuple[Any, ...]]]:
        """Texts that went to review, with their occurrence counts, in batches."""
        cur = self.db.execute(
            "SELECT key, text, record_id, occurrences, suggestions, result FROM texts "
            "WHERE status = ? ORDER BY rowid",
            (REVIEW,),
        )
        while rows := cur.fetchmany(size):
            yield rows

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def remove(self) -> None:
        """Delete the checkpoint after a successful run."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def checkpoint_folder(output: Path) -> Path:
    """The checkpoint folder of an output file."""
    return output.with_name(output.name + CHECKPOINT_SUFFIX)


def _file_fingerprint(path: Path) -> dict[str, Any]:
    """Size plus hashes of the first and last MiB: cheap, and changes when the file does."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(size - (1 << 20))
            h.update(f.read(1 << 20))
    return {"size": size, "sha256_ends": h.hexdigest()}


# --- files --------------------------------------------------------------------------------


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
    out_fmt = bio.file_format(output_path)
    if output_path.resolve() == input_path.resolve():
        raise InvalidInput("The output file must not be the input file.")
    if options.to_review and coder.queue is None:
        raise InvalidInput("Queueing reviews needs a review store.")
    reader = bio.open_reader(input_path, encoding=options.encoding, delimiter=options.delimiter)
    text_col = bio.resolve_column(reader.columns, options.text_column, "--text-column")
    id_col = (
        bio.resolve_column(reader.columns, options.id_column, "--id-column")
        if options.id_column
        else None
    )
    if options.code_column:
        bio.resolve_column(reader.columns, options.code_column, "--code-column")
    if options.language_column:
        bio.resolve_column(reader.columns, options.language_column, "--language-column")
    names = output_names(reader.columns)
    version = str(coder.predictor.version)
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "v": _FORMAT_VERSION,
                "input": _file_fingerprint(input_path),
                "options": options.fingerprint_fields(),
                "model": version,
                "output": out_fmt,
                "columns": reader.columns,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpoint(checkpoint_folder(output_path), fingerprint, fresh=not resume)
    try:
        summary = _run(
            reader,
            ckpt,
            output_path,
            out_fmt,
            options,
            coder,
            text_col,
            id_col,
            names,
            progress,
            should_stop,
        )
    except BaseException:
        ckpt.close()
        raise
    summary.seconds = time.monotonic() - started
    summary.input_description = reader.description
    summary.output = str(output_path)
    ckpt.remove()
    log.info("bulk run done: %s", json.dumps(summary.as_dict()))
    return summary


def _run(
    reader: bio.CsvReader | bio.XlsxReader | bio.ParquetReader,
    ckpt: Checkpoint,
    output_path: Path,
    out_fmt: str,
    options: BulkOptions,
    coder: Coder,
    text_col: str,
    id_col: str | None,
    names: dict[str, str],
    progress: bio.ProgressCallback | None,
    should_stop: Callable[[], bool] | None,
) -> BulkSummary:
    classifier = TextClassifier(
        coder,
        top_k=options.top_k,
        min_precision=options.min_precision,
        cache_size=options.cache_size,
        lookup=ckpt.lookup,
    )
    part_suffix = ".csv" if out_fmt == "csv" else ".parquet"
    done = ckpt.rows_done
    counts = ckpt.counts()
    parts = ckpt.parts
    idx = (parts[-1] + 1) if parts else 0
    summary = BulkSummary(model_version=classifier.model_version, resumed_at=done)
    total = reader.estimate_rows() if progress is not None else None
    if done:
        log.info("resuming %s at row %d", output_path.name, done)
    if progress is not None:
        progress(done, total)
    for chunk in reader.chunks(options.chunk_rows, skip=done):
        texts = chunk.strings(text_col)
        ids = chunk.strings(id_col) if id_col else None
        coding = classifier.code(texts, ids, chunk.reasons)
        if options.language_column:
            lang_col = bio.resolve_column(reader.columns, options.language_column, "")
            coding.results = with_declared_languages(coding.results, chunk.strings(lang_col))
        for res in coding.results:
            counts[res[4]] = counts.get(res[4], 0) + 1
        final = ckpt.part_path(idx, part_suffix)
        tmp = final.with_name(final.name + ".tmp")
        _write_part(tmp, chunk.table, coding.results, names, part_suffix)
        ckpt.commit(idx, tmp, final, len(chunk), coding, counts)
        idx += 1
        done += len(chunk)
        if progress is not None:
            progress(done, total)
        if should_stop is not None and should_stop():
            raise Interrupted(
                "Stopped between chunks; the run resumes from its checkpoint.", rows_done=done
            )
    if options.to_review and ckpt.meta("reviews_queued") is None:
        queued = _enqueue_reviews(ckpt, coder, options)
        ckpt._set_meta({"reviews_queued": str(queued)})
    summary.reviews_queued = int(ckpt.meta("reviews_queued") or 0)
    _assemble(ckpt, output_path, out_fmt, part_suffix, reader, names)
    summary.rows = done
    summary.counts = counts
    summary.distinct_texts = ckpt.distinct_texts()
    return summary


def _output_table(
    inputs: pa.Table, results: Sequence[RowResult], names: dict[str, str]
) -> pa.Table:
    renamed = inputs.rename_columns([names[c] for c in inputs.column_names])
    res = result_table(results)
    for f, col in zip(res.schema, res.columns, strict=True):
        renamed = renamed.append_column(f, col)
    return renamed


def _write_part(
    path: Path,
    inputs: pa.Table,
    results: Sequence[RowResult],
    names: dict[str, str],
    suffix: str,
) -> None:
    if suffix == ".csv":
        columns = [bio.render_column(c) for c in inputs.columns]
        # Rows sharing a text share one result tuple: render its cells once.
        rendered: dict[int, str] = {}
        tail = []
        for res in results:
            line = rendered.get(id(res))
            if line is None:
                line = rendered[id(res)] = ",".join(bio.csv_field(bio.csv_text(v)) for v in res)
            tail.append(line)
        columns.append(tail)
        with path.open("w", encoding="utf-8", newline="") as f:
            f.write(bio.render_lines(columns))
            f.flush()
            os.fsync(f.fileno())
    else:
        pq.write_table(_output_table(inputs, results, names), path)


def _enqueue_reviews(ckpt: Checkpoint, coder: Coder, options: BulkOptions) -> int:
    """Queue each distinct review text once, with how many rows carry it."""
    assert coder.queue is not None
    queued = 0
    for rows in ckpt.review_rows():
        requests = []
        for key, text, record_id, occurrences, suggestions, result in rows:
            res = json.loads(result)
            requests.append(
                ReviewRequest(
                    text=text,
                    text_key=key,
                    suggestions=json.loads(suggestions) if suggestions else [],
                    top_code=res[0],
                    top_confidence=res[2],
                    model_version=res[6],
                    record_id=record_id,
                    origin=options.origin,
                    batch=options.batch_name,
                    occurrences=int(occurrences),
                )
            )
        coder.queue.enqueue(requests)
        queued += len(requests)
    return queued


def _assemble(
    ckpt: Checkpoint,
    output_path: Path,
    out_fmt: str,
    part_suffix: str,
    reader: bio.CsvReader | bio.XlsxReader | bio.ParquetReader,
    names: dict[str, str],
) -> None:
    """Join the committed parts into the output file (written aside, then renamed)."""
    tmp = ckpt.folder / ("output" + output_path.suffix)
    parts = [ckpt.part_path(i, part_suffix) for i in ckpt.parts]
    empty = _output_table(reader.empty_table(), [], names)
    columns = empty.column_names
    if out_fmt == "csv":
        with tmp.open("w", encoding="utf-8", newline="") as out:
            bio.write_csv_header(out, columns)
            out.flush()
            for p in parts:
                with p.open("r", encoding="utf-8", newline="") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
    elif out_fmt == "parquet":
        tables = (pq.read_table(p) for p in parts)
        with pq.ParquetWriter(tmp, empty.schema) as writer:
            writer.write_table(empty)
            for t in tables:
                writer.write_table(t.cast(empty.schema))
    else:
        bio.write_xlsx(tmp, columns, (pq.read_table(p) for p in parts))
    os.replace(tmp, output_path)


# --- DataFrames ---------------------------------------------------------------------------


def classify_frame(
    df: Any,
    text_column: str,
    *,
    id_column: str | None = None,
    coder: Coder | None = None,
    predictor: Any = None,
    model: str | None = None,
    registry_dir: Path | None = None,
    min_precision: float | None = None,
    top_k: int = 5,
    chunk_rows: int = 50_000,
) -> Any:
    """A copy of a pandas DataFrame with the contract columns added (same engine as files).

    The model comes from ``coder`` or ``predictor`` if given, else it is loaded once per
    process from the registry (``registry_dir``, default from settings; ``model`` version,
    default the promoted one). Each distinct text is classified once.
    """
    import pandas as pd

    if text_column not in df.columns:
        found = ", ".join(repr(str(c)) for c in df.columns)
        raise FileFormatError(
            f"Column '{text_column}' is not in the DataFrame. Columns found: {found}.",
            column=text_column,
            columns_found=[str(c) for c in df.columns],
        )
    if id_column is not None and id_column not in df.columns:
        raise FileFormatError(f"Column '{id_column}' is not in the DataFrame.", column=id_column)
    if coder is None:
        coder = Coder(predictor if predictor is not None else cached_predictor(registry_dir, model))
    classifier = TextClassifier(
        coder, top_k=top_k, min_precision=min_precision, cache_size=max(chunk_rows * 2, 100_000)
    )
    frames = []
    for start in range(0, len(df), chunk_rows):
        part = df.iloc[start : start + chunk_rows]
        texts = [bio._cell_text(None if _isna(v) else v) for v in part[text_column].tolist()]
        ids = None
        if id_column is not None:
            ids = [None if _isna(v) else str(v) for v in part[id_column].tolist()]
        coding = classifier.code(texts, ids)
        frames.append(result_table(coding.results))
    added = pa.concat_tables(frames) if frames else result_table([])
    out = df.copy()
    names = output_names([str(c) for c in df.columns])
    out.columns = [names[str(c)] for c in df.columns]
    for name in added.column_names:
        # Positional, not by index: the caller's index may repeat labels.
        out[name] = pd.Series(
            added.column(name).to_pylist(),
            index=df.index,
            dtype="float64" if name == "confidence" else "object",
        )
    return out


def _isna(v: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


_PREDICTORS: dict[tuple[str, str | None], Any] = {}


def cached_predictor(registry_dir: Path | None = None, version: str | None = None) -> Any:
    """A predictor loaded once per process for (registry, version)."""
    from service.config import Settings
    from service.models.predictor import load_predictor

    settings = Settings()
    folder = Path(registry_dir or settings.registry_dir).resolve()
    key = (str(folder), version)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = load_predictor(folder, version, int8=settings.use_int8)
    return _PREDICTORS[key]
