"""Click commands of the bulk tool: ``iccs classify-file`` and ``iccs crosswalk``.

The ``iccs`` group (``service.cli``) adds these objects; each also runs on its own (tests,
``python -m service.bulk.commands``), reading settings from the environment then.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from service.bulk.crosswalk import build_crosswalk, write_crosswalk
from service.bulk.engine import BulkOptions, BulkSummary
from service.bulk.engine import classify_file as run_classify_file
from service.config import Settings
from service.errors import ICCSError

log = logging.getLogger(__name__)


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.find_object(Settings)
    return obj if obj is not None else Settings()


class _Progress:
    """A tqdm bar with rows/s and ETA, created on the first report."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=done,
                unit="rows",
                unit_scale=True,
                dynamic_ncols=True,
                file=sys.stderr,
                smoothing=0.1,
            )
        else:
            if total is not None and done > total:
                self.bar.total = done  # the line count was an estimate
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def open_review_store(settings: Settings, required: bool) -> Any:
    """The review store, when asked for or when a database already exists (decision memory).

    Without ``--to-review`` the bulk tool still applies reviewers' decision memory if the
    service's database is there, so a file gets the same codes as the API would give.
    """
    from service.review.store import ReviewStore

    url = settings.resolved_database_url()
    if not required and settings.database_url is None:
        if not (settings.state_dir / "iccs.sqlite3").exists():
            return None
    if url.startswith("sqlite"):
        settings.ensure_state_dir()
    return ReviewStore.from_url(
        url,
        lease_seconds=settings.review_lease_seconds,
        memory_min_agreeing=settings.memory_min_agreeing,
    )


@click.command("classify-file")
@click.argument(
    "input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--text-column", required=True, help="Column holding the offence text.")
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file; .csv, .xlsx or .parquet by extension.",
)
@click.option("--id-column", default=None, help="Record id column (kept on review items).")
@click.option(
    "--code-column",
    default=None,
    help="The agency's own offence code column (for correspondence tables).",
)
@click.option(
    "--language-column",
    default=None,
    help="Column with each record's language tag (blank cells: detected).",
)
@click.option("--model", "version", default=None, help="Registry version (default: promoted).")
@click.option(
    "--min-precision",
    type=float,
    default=None,
    help="Target precision of automatic coding, from ICCS_MIN_PRECISION_FLOOR to 0.999 "
    "(default: the model's).",
)
@click.option(
    "--table-precision",
    type=float,
    default=None,
    help="INPUT is a national offence list coded as a correspondence table that people "
    "finish by reviewing the rest (with --to-review): the precision the finished table must "
    "reach. Entries whose top code clears the model's table threshold for it are auto-coded "
    "whole (local engine).",
)
@click.option(
    "--to-review",
    is_flag=True,
    help="Queue the review rows in the review store (one item per distinct text).",
)
@click.option(
    "--batch-name",
    default=None,
    help="Batch name of queued review items (default: the input file name).",
)
@click.option(
    "--encoding",
    default=None,
    help="CSV encoding (default: detected; UTF-8, UTF-8 with BOM or Latin-1).",
)
@click.option("--delimiter", default=None, help="CSV delimiter (default: sniffed; 'tab' for TAB).")
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="Run in this process or as a Spark job.",
)
@click.option(
    "--crosswalk",
    "crosswalk_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the correspondence table (.csv or .xlsx); needs --code-column.",
)
@click.option("--restart", is_flag=True, help="Ignore a checkpoint and start from the top.")
@click.option("--chunk-rows", type=click.IntRange(1), default=50_000, hidden=True)
@click.pass_context
def classify_file(
    ctx: click.Context,
    input_path: Path,
    text_column: str,
    output_path: Path,
    id_column: str | None,
    code_column: str | None,
    language_column: str | None,
    version: str | None,
    min_precision: float | None,
    table_precision: float | None,
    to_review: bool,
    batch_name: str | None,
    encoding: str | None,
    delimiter: str | None,
    engine: str,
    crosswalk_path: Path | None,
    restart: bool,
    chunk_rows: int,
) -> None:
    """Code every row of INPUT (CSV, XLSX or Parquet) and write the coded file.

    Keeps every input column and adds iccs_code, iccs_label, confidence, assigned_code,
    status, alternatives, model_version (and reason, for rejected rows). Each distinct text
    is classified once. Killed half-way, the same command continues where it stopped.
    """
    settings = _settings(ctx)
    if min_precision is not None:
        settings.check_min_precision(min_precision)
    if table_precision is not None:
        settings.check_min_precision(table_precision, field="table_precision")
    if crosswalk_path is not None and not code_column:
        raise click.UsageError("--crosswalk needs --code-column.")
    options = BulkOptions(
        text_column=text_column,
        id_column=id_column,
        code_column=code_column,
        language_column=language_column,
        min_precision=min_precision,
        table_precision=table_precision,
        to_review=to_review,
        batch_name=batch_name or input_path.name,
        encoding=encoding,
        delimiter=delimiter,
        chunk_rows=chunk_rows,
        max_text_length=settings.max_text_length,
        max_decompressed_bytes=settings.max_decompressed_bytes,
    )
    try:
        if engine == "spark":
            if to_review or language_column or table_precision is not None:
                raise click.UsageError(
                    "--to-review, --language-column and --table-precision run with "
                    "--engine local only."
                )
            from service.bulk.spark import classify_file_spark

            summary = classify_file_spark(
                input_path,
                output_path,
                options,
                registry_dir=settings.registry_dir,
                version=version,
                int8=settings.use_int8,
            )
        else:
            summary = _classify_local(settings, input_path, output_path, options, version, restart)
        for line in summary.lines():
            click.echo(line, err=True)
        click.echo(f"wrote {output_path}", err=True)
        if crosswalk_path is not None and code_column:
            table = build_crosswalk(output_path, code_column)
            write_crosswalk(table, crosswalk_path)
            click.echo(
                f"wrote {crosswalk_path} ({len(table.national)} national codes, "
                f"{table.splits} splits, {table.merges} merges)",
                err=True,
            )
    except ICCSError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc


def _classify_local(
    settings: Settings,
    input_path: Path,
    output_path: Path,
    options: BulkOptions,
    version: str | None,
    restart: bool,
) -> BulkSummary:
    from service.coding import Coder
    from service.models.predictor import load_predictor
    from service.review.rescoring import ValuedQueue, embeddings_of

    predictor = load_predictor(settings.registry_dir, version, int8=settings.use_int8)
    if options.table_precision is not None:
        predictor.thresholds.table_at(options.table_precision)  # refuses an entry without them
    store = open_review_store(settings, required=options.to_review)
    # Valued like the API's: the items the file queues get their list's expected values.
    queue = ValuedQueue(store, store, embeddings_of(predictor)) if store is not None else None
    coder = Coder(predictor, queue, decided_refresh_s=settings.decided_refresh_s)
    # A bar only for a person watching; logs and pipes stay quiet.
    progress = _Progress() if sys.stderr.isatty() else None
    try:
        return run_classify_file(
            input_path, output_path, options, coder, progress=progress, resume=not restart
        )
    finally:
        if progress is not None:
            progress.close()
        if store is not None:
            store.engine.dispose()


@click.command("crosswalk")
@click.argument(
    "coded_path", metavar="CODED_FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--code-column", required=True, help="The agency's own offence code column.")
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Correspondence table: .csv, or .xlsx (with a per-national-code sheet).",
)
@click.option(
    "--level",
    type=click.IntRange(1, 4),
    default=None,
    help="Aggregate ICCS codes at this level (1 section .. 4 class).",
)
@click.option(
    "--min-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.05,
    show_default=True,
    help="Mappings below this share of a national code do not flag splits/merges.",
)
@click.option("--encoding", default=None, help="CSV encoding (default: detected).")
@click.option("--delimiter", default=None, help="CSV delimiter (default: sniffed).")
def crosswalk(
    coded_path: Path,
    code_column: str,
    output_path: Path,
    level: int | None,
    min_share: float,
    encoding: str | None,
    delimiter: str | None,
) -> None:
    """Correspondence table of a coded file: national code -> ICCS codes, counts, shares.

    Flags national codes that split over several ICCS codes (1-to-many) and ICCS codes that
    several national codes merge into (many-to-1).
    """
    try:
        table = build_crosswalk(
            coded_path,
            code_column,
            level=level,
            min_share=min_share,
            encoding=encoding,
            delimiter=delimiter,
        )
        write_crosswalk(table, output_path)
    except ICCSError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    click.echo(
        f"{len(table.national)} national codes, {len(table.pairs)} mappings, "
        f"{table.splits} splits (1-to-many), {table.merges} merged ICCS codes "
        f"(many-to-1); wrote {output_path}"
    )


@click.group()
def _standalone() -> None:
    """Bulk commands outside the ``iccs`` group."""
    logging.basicConfig(
        level=Settings().log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


_standalone.add_command(classify_file)
_standalone.add_command(crosswalk)

if __name__ == "__main__":
    _standalone()
