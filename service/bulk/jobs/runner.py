"""The worker: claims queued jobs (and jobs whose worker died) and codes them, one at a time.

See :mod:`service.bulk.jobs` for how several workers share one database and jobs folder.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.bulk.jobs.lease import Lease
from service.bulk.jobs.queue import DONE, FAILED, QUEUED, RUNNING, CoderSource, JobQueue
from service.config import Settings
from service.db import Job, utcnow
from service.errors import ICCSError

if TYPE_CHECKING:
    from service.bulk.engine import BulkOptions

log = logging.getLogger(__name__)

# Smaller chunks than the CLI's: progress over HTTP moves visibly on a modest file.
JOB_CHUNK_ROWS = 10_000
# Longest wait between two tries when the database keeps failing.
MAX_BACKOFF_SECONDS = 30.0


def worker_name() -> str:
    """A name for this process's runner, unique across hosts and restarts."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner(JobQueue):
    """A worker: claims queued jobs (and jobs whose worker died) and codes them in a thread."""

    def __init__(
        self,
        settings: Settings,
        coder: CoderSource,
        sessions: sessionmaker[Session],
        *,
        poll_seconds: float = 2.0,
        chunk_rows: int = JOB_CHUNK_ROWS,
        worker_id: str | None = None,
    ) -> None:
        super().__init__(settings, coder, sessions)
        self.poll_seconds = poll_seconds
        self.chunk_rows = chunk_rows
        self.worker_id = (worker_id or worker_name())[:100]
        self.errors = 0  # database errors the loop survived
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread; jobs other workers hold are left alone."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="iccs-job-runner", daemon=True)
        self._thread.start()
        log.info("job runner %s started", self.worker_id)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current chunk; the unfinished job goes back to the queue."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def lease_until(self) -> datetime:
        """When a lease taken or renewed now expires."""
        return utcnow() + timedelta(seconds=self.settings.job_lease_seconds)

    # --- the worker -------------------------------------------------------------------------

    def _loop(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                job_id = self._claim_next()
                if job_id is not None:
                    self._run(job_id)
            except Exception as exc:  # the database is away: back off, then try again
                self.errors += 1
                backoff = min(max(backoff * 2, self.poll_seconds / 4, 0.05), MAX_BACKOFF_SECONDS)
                log.warning("job runner: %s; trying again in %.1f s", type(exc).__name__, backoff)
                self._stop.wait(backoff)
                continue
            backoff = 0.0
            if job_id is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def _claimable(self, now: datetime) -> Any:
        stale = or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)
        return or_(Job.status == QUEUED, and_(Job.status == RUNNING, stale))

    def _claim_next(self) -> str | None:
        """Take the oldest queued job, or a running one whose lease expired; its id or None."""
        now = utcnow()
        claimable = self._claimable(now)
        limit = self.settings.job_max_attempts
        with self.sessions() as s, s.begin():
            query = (
                select(Job.id, Job.status, Job.attempts)
                .where(claimable)
                .order_by(Job.created_at)
                .limit(5)
            )
            if s.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for job_id, status, attempts in s.execute(query).all():
                if (attempts or 0) >= limit:
                    self._give_up(s, job_id, status, int(attempts or 0), claimable, now)
                    continue
                claimed = s.execute(
                    update(Job)
                    .where(Job.id == job_id, claimable)
                    .values(
                        status=RUNNING,
                        lease_owner=self.worker_id,
                        lease_expires_at=self.lease_until(),
                        attempts=func.coalesce(Job.attempts, 0) + 1,
                        started_at=now,
                        error=None,
                    )
                ).rowcount  # type: ignore[attr-defined]
                if claimed:
                    if status == RUNNING:
                        log.info("job %s: its worker stopped renewing; resuming it", job_id)
                    return str(job_id)
        return None

    def _give_up(
        self, s: Session, job_id: str, status: str, attempts: int, claimable: Any, now: datetime
    ) -> None:
        if status == RUNNING:
            why = (
                f"abandoned: the job was started {attempts} times and its worker stopped "
                "each time (killed, out of memory, or cut off from the database)."
            )
        else:
            why = f"internal_error: the job failed {attempts} times; see the worker's log."
        s.execute(
            update(Job)
            .where(Job.id == job_id, claimable)
            .values(status=FAILED, error=why, finished_at=now, lease_owner=None)
        )
        log.warning("job %s failed after %d attempts", job_id, attempts)

    def _run(self, job_id: str) -> None:
        from service.bulk.engine import Interrupted, classify_file

        job = self.get(job_id)
        options = job_options(job, self.chunk_rows, settings=self.settings)
        input_path = self.path(job.input_path)
        output_path = self.path(str(job.output_path))
        if not input_path.exists():
            self._finish(
                job_id,
                status=FAILED,
                error="file_format_error: the job's upload is not in this worker's jobs folder; "
                "every instance and worker must share one ICCS_JOBS_DIR.",
                finished_at=utcnow(),
            )
            return
        log.info("job %s started (attempt %d) by %s", job_id, job.attempts, self.worker_id)
        with Lease(self, job_id) as lease:
            try:
                summary = classify_file(
                    input_path,
                    output_path,
                    options,
                    self._coder(),
                    progress=lease.progress,
                    should_stop=lambda: self._stop.is_set() or lease.lost.is_set(),
                )
            except Interrupted:
                if lease.lost.is_set():
                    log.info("job %s left to the worker that holds it now", job_id)
                    return
                log.info("job %s paused by shutdown; it resumes from its checkpoint", job_id)
                # A shutdown is not a failed attempt.
                self._finish(job_id, status=QUEUED, attempts=Job.attempts - 1)
                return
            except ICCSError as exc:  # the file or its options are wrong: trying again won't help
                log.warning("job %s failed: %s", job_id, exc.code)
                self._finish(
                    job_id,
                    status=FAILED,
                    error=f"{exc.code}: {exc.message}",
                    finished_at=utcnow(),
                )
                return
            except Exception as exc:  # a bug or a database error: retry up to the limit
                self._failed_attempt(job_id, job.attempts, exc)
                return
        self._finish(
            job_id,
            status=DONE,
            rows_done=summary.rows,
            rows_total=summary.rows,
            counts=summary.as_dict(),
            finished_at=utcnow(),
        )
        log.info("job %s done: %d rows, by %s", job_id, summary.rows, self.worker_id)

    def _failed_attempt(self, job_id: str, attempts: int, exc: Exception) -> None:
        # The type and the frames, never the message: it may quote record texts.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error(
            "job %s: attempt %d failed with %s\n%s", job_id, attempts, type(exc).__name__, frames
        )
        if attempts < self.settings.job_max_attempts:
            self._finish(
                job_id,
                status=QUEUED,
                error=f"internal_error: attempt {attempts} failed ({type(exc).__name__}); "
                "it will be tried again.",
            )
        else:
            self._finish(
                job_id,
                status=FAILED,
                error=f"internal_error: the job failed {attempts} times; see the worker's log.",
                finished_at=utcnow(),
            )

    def _finish(self, job_id: str, **values: Any) -> bool:
        """Write the end of an attempt, if this worker still holds the job; retried on errors.

        Answers False when the lease passed to another worker (which then owns the outcome).
        """
        values = {"lease_owner": None, "lease_expires_at": None, **values}
        deadline = time.monotonic() + self.settings.job_lease_seconds
        delay = 0.05
        while True:
            try:
                with self.sessions() as s, s.begin():
                    held = s.execute(
                        update(Job)
                        .where(
                            Job.id == job_id,
                            Job.lease_owner == self.worker_id,
                            Job.status == RUNNING,
                        )
                        .values(**values)
                    ).rowcount  # type: ignore[attr-defined]
            except Exception as exc:  # keep trying while the lease lasts
                if time.monotonic() > deadline:
                    raise
                log.warning("job %s: state not saved (%s); retrying", job_id, type(exc).__name__)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if not held:
                log.warning("job %s: another worker holds it now; its outcome stands", job_id)
            return bool(held)


def job_options(
    job: Job, chunk_rows: int = JOB_CHUNK_ROWS, *, settings: Settings | None = None
) -> BulkOptions:
    """The engine options a job runs with (the same for every worker that takes it).

    The text cap is the one recorded at submit (the worker's ``settings`` for older rows);
    the unpacked-size limit is the worker's. Without ``settings``, the settings' defaults.
    """
    from service.bulk.engine import BulkOptions

    opts = dict(job.options or {})
    options = BulkOptions(
        text_column=str(opts["text_column"]),
        id_column=opts.get("id_column"),
        code_column=opts.get("code_column"),
        min_precision=opts.get("min_precision"),
        table_precision=opts.get("table_precision"),
        to_review=bool(opts.get("to_review")),
        batch_name=opts.get("batch_name"),
        origin="job",
        created_by=job.created_by,
        encoding=opts.get("encoding"),
        delimiter=opts.get("delimiter"),
        chunk_rows=chunk_rows,
    )
    if settings is not None:
        options.max_text_length = settings.max_text_length
        options.max_decompressed_bytes = settings.max_decompressed_bytes
    if opts.get("max_text_length"):
        options.max_text_length = int(opts["max_text_length"])
    return options


def open_jobs(settings: Settings, coder: CoderSource, sessions: sessionmaker[Session]) -> JobQueue:
    """The API's jobs: with ``job_runner=embedded`` a started runner, else a plain queue."""
    if settings.job_runner == "embedded":
        runner = JobRunner(settings, coder, sessions)
        runner.start()
        return runner
    return JobQueue(settings, coder, sessions)
