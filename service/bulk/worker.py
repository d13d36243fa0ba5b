"""``iccs worker``: a process that runs queued bulk jobs, apart from the API.

Run as many as you like, on any host that reaches the database and the shared jobs folder
(``ICCS_JOBS_DIR``); give the API instances ``ICCS_JOB_RUNNER=off`` so only workers run jobs.
Each claims one job at a time with a lease (see :mod:`service.bulk.jobs`). SIGTERM or Ctrl-C
stops it after the current chunk and puts the unfinished job back in the queue; SIGKILL leaves
the job to the next worker once its lease expires.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

import click
from sqlalchemy.engine import Engine

from service.bulk.jobs import JOB_CHUNK_ROWS, JobRunner
from service.coding import Coder
from service.config import Settings
from service.db import session_factory
from service.review.rescoring import ValuedQueue, embeddings_of

log = logging.getLogger(__name__)


def build_worker(
    settings: Settings, poll_seconds: float = 2.0, chunk_rows: int = JOB_CHUNK_ROWS
) -> tuple[JobRunner, Engine]:
    """A job runner over the settings' database and model, with a review store; not started."""
    from service.models.predictor import load_predictor
    from service.review.store import ReviewStore, init_db

    if not settings.database_url:
        settings.ensure_state_dir()
    engine = init_db(settings.resolved_database_url())
    store = ReviewStore(
        engine,
        lease_seconds=settings.review_lease_seconds,
        memory_min_agreeing=settings.memory_min_agreeing,
    )
    predictor = load_predictor(
        settings.registry_dir,
        settings.model_version,
        int8=settings.use_int8,
        target_precision=settings.target_precision,
        threads=settings.inference_threads or None,
        workers=settings.inference_workers or os.cpu_count() or 1,
    )
    runner = JobRunner(
        settings,
        # Valued like the API's: the items a job queues get their list's expected values.
        Coder(
            predictor,
            ValuedQueue(store, store, embeddings_of(predictor)),
            decided_refresh_s=settings.decided_refresh_s,
        ),
        session_factory(engine),
        poll_seconds=poll_seconds,
        chunk_rows=chunk_rows,
    )
    return runner, engine


@click.command("worker")
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="How often an idle worker looks for queued jobs.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=JOB_CHUNK_ROWS,
    show_default=True,
    help="Rows coded between two checkpoints (a job resumes from its last checkpoint).",
)
@click.pass_obj
def worker(settings: Settings, poll_seconds: float, chunk_rows: int) -> None:
    """Run queued bulk jobs until stopped (SIGTERM or Ctrl-C)."""
    runner, engine = build_worker(settings, poll_seconds, chunk_rows)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    runner.start()
    click.echo(f"worker {runner.worker_id} running jobs from {runner.root}", err=True)
    try:
        while not stop.wait(1.0):
            if not runner.running:
                raise click.ClickException("the job runner stopped")
    finally:
        runner.stop()
        engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("worker %s stopped", runner.worker_id)
