"""Bulk jobs submitted over HTTP: a durable queue in the database, files in the jobs folder.

:class:`JobQueue` is the API's side: it stores an upload in ``ICCS_JOBS_DIR/<id>/`` and queues
a row in the ``jobs`` table; it reads, deletes and purges jobs. :class:`JobRunner` adds the
worker that codes queued jobs, one at a time, through the same engine as
``iccs classify-file``. It runs in a thread of the API process (``ICCS_JOB_RUNNER=embedded``)
or in processes of its own (``iccs worker``, for several instances).

Several instances and workers may share one database and one jobs folder:

- A worker claims a job with one conditional ``UPDATE`` (on PostgreSQL the candidates are read
  ``FOR UPDATE SKIP LOCKED``), which names it the lease owner until ``now + lease``. A heartbeat
  thread renews the lease while the job runs; a worker that cannot renew it stops the job at
  the next chunk and leaves it to whoever claims it next.
- A job whose lease has expired (its worker died) is claimed again and resumes from the
  engine's checkpoint in the shared folder, so its result is the same bytes whichever worker
  finishes it. Nothing else is re-queued: a starting worker leaves the other workers' jobs alone.
- Each claim counts an attempt. A job started ``ICCS_JOB_MAX_ATTEMPTS`` times without finishing
  (its workers kept dying, or it hit an unexpected error each time) is marked failed with the
  reason, never retried forever. A job whose input is wrong fails at once.
- Only the lease owner may finish a job, so a job is marked done once.

Paths in the table are relative to the jobs folder, so every instance may mount it elsewhere.
The runner survives database errors (it backs off and tries again) and never logs a record
text: errors are logged by type.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.coding import Coder
from service.config import Settings
from service.db import Job, session_factory, utcnow
from service.errors import (
    Conflict,
    Gone,
    ICCSError,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    UploadTooLarge,
)
from service.models.predictor import Predictor

if TYPE_CHECKING:
    from service.bulk.engine import BulkOptions

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED)
FINISHED = (DONE, FAILED)
# Smaller chunks than the CLI's: progress over HTTP moves visibly on a modest file.
JOB_CHUNK_ROWS = 10_000
# Longest wait between two tries when the database keeps failing.
MAX_BACKOFF_SECONDS = 30.0
# An upload folder without a row may be a submission still being stored: purge leaves
# orphans younger than this alone, whatever the cut-off.
ORPHAN_GRACE = timedelta(hours=1)
OPTION_KEYS = (
    "text_column",
    "id_column",
    "code_column",
    "min_precision",
    "to_review",
    "batch_name",
    "encoding",
    "delimiter",
    "output_format",
)


CoderSource = Coder | Predictor | Callable[[], Coder]


def worker_name() -> str:
    """A name for this process's runner, unique across hosts and restarts."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobQueue:
    """Submitting, reading, deleting and purging jobs; runs nothing (see :class:`JobRunner`)."""

    def __init__(
        self,
        settings: Settings,
        coder: CoderSource | None,
        sessions: sessionmaker[Session],
    ) -> None:
        self.settings = settings
        self._coder_source = coder
        self.sessions = sessions
        self.root = Path(settings.resolved_jobs_dir())
        self._wake = threading.Event()
        self._built_coder: Coder | None = None

    # --- life cycle (nothing to run here) ---------------------------------------------------

    def start(self) -> None:
        """Nothing runs in a queue without a runner."""

    def stop(self, timeout: float = 30.0) -> None:
        """Nothing to stop."""

    @property
    def running(self) -> bool:
        """False: jobs queued here are run by ``iccs worker`` processes."""
        return False

    def _coder(self) -> Coder:
        src = self._coder_source
        if src is None:
            raise TypeError("this job queue has no coder")
        if isinstance(src, Coder):
            return src
        if isinstance(src, Predictor):
            if self._built_coder is None:
                self._built_coder = Coder(src)
            return self._built_coder
        coder = src()
        if not isinstance(coder, Coder):
            raise TypeError("the coder factory must return a Coder")
        return coder

    def can_queue_reviews(self) -> bool:
        """True when the coder has a review store (``to_review`` jobs need one)."""
        try:
            return self._coder().queue is not None
        except Exception:  # no model yet: the job would fail anyway, say no
            return False

    # --- paths ------------------------------------------------------------------------------

    def path(self, stored: str) -> Path:
        """A path from the jobs table: relative to the jobs folder (absolute in old rows)."""
        p = Path(stored)
        return p if p.is_absolute() else self.root / p

    def folder(self, job: Job) -> Path:
        """The folder of a job's files (upload, result, checkpoint)."""
        return self.path(job.input_path).parent

    # --- submitting and reading -------------------------------------------------------------

    def submit(
        self,
        filename: str,
        source: BinaryIO,
        options: dict[str, Any],
        created_by: str | None = None,
    ) -> Job:
        """Store an upload and queue it; the header is checked now so bad files fail fast."""
        from service.bulk import io as bio  # pyarrow: loaded when the first job comes

        safe_name = Path(filename or "upload").name
        in_fmt = bio.file_format(Path(safe_name))
        opts = {k: options.get(k) for k in OPTION_KEYS}
        if not opts.get("text_column"):
            raise InvalidInput("text_column is required.")
        out_fmt = opts.get("output_format") or in_fmt
        if out_fmt not in bio.FORMATS:
            raise InvalidInput(
                f"output_format must be one of {', '.join(bio.FORMATS)}.", output_format=out_fmt
            )
        opts["output_format"] = out_fmt
        opts["to_review"] = bool(opts.get("to_review"))
        if opts.get("encoding"):
            # Whatever the upload's format: a wrong option is a 422 now, not a failed job later.
            bio.check_encoding(str(opts["encoding"]))
        # The cap changes the output (and the checkpoint): the job keeps this instance's, so
        # every worker that takes it codes it alike.
        opts["max_text_length"] = self.settings.max_text_length
        self._check_quota(created_by)
        job_id = str(uuid.uuid4())
        folder = self.root / job_id
        folder.mkdir(parents=True)
        suffix = Path(safe_name).suffix.lower()
        input_name = f"{job_id}/input{suffix}"
        try:
            self._save(source, self.root / input_name)
            reader = bio.open_reader(
                self.root / input_name,
                opts.get("encoding"),
                opts.get("delimiter"),
                max_decompressed_bytes=self.settings.max_decompressed_bytes,
            )
            for key, flag in (
                ("text_column", "text_column"),
                ("id_column", "id_column"),
                ("code_column", "code_column"),
            ):
                if opts.get(key):
                    opts[key] = bio.resolve_column(reader.columns, str(opts[key]), flag)
            if not opts.get("batch_name"):
                opts["batch_name"] = f"job {job_id[:8]} {safe_name}"
            job = Job(
                id=job_id,
                status=QUEUED,
                filename=safe_name[:300],
                input_path=input_name,
                output_path=f"{job_id}/result{bio.FORMATS[out_fmt].extension}",
                options=opts,
                rows_done=0,
                counts={},
                created_by=created_by,
                created_at=utcnow(),
                attempts=0,
            )
            with self.sessions() as s, s.begin():
                s.add(job)
        except BaseException:
            # No row, no files: an upload is never left behind without its job.
            shutil.rmtree(folder, ignore_errors=True)
            raise
        log.info("job %s queued (%s, %s)", job_id, in_fmt, reader.description)
        self._wake.set()
        return job

    def _check_quota(self, created_by: str | None) -> None:
        limit = self.settings.max_active_jobs_per_key
        if not limit or created_by is None:
            return
        active = self.active_jobs(created_by)
        if active >= limit:
            raise QuotaExceeded(
                f"This key has {active} jobs queued or running; the limit is {limit}. "
                "Submit more when some have finished.",
                limit=limit,
                active=active,
                retry_after=max(1, int(self.settings.job_lease_seconds)),
            )

    def active_jobs(self, created_by: str) -> int:
        """Jobs of one key that are queued or running."""
        with self.sessions() as s:
            n = s.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.created_by == created_by, Job.status.in_((QUEUED, RUNNING)))
            )
        return int(n or 0)

    def _save(self, source: BinaryIO, path: Path) -> None:
        limit = self.settings.max_upload_bytes
        written = 0
        with path.open("wb") as out:
            while block := source.read(1 << 20):
                written += len(block)
                if written > limit:
                    raise UploadTooLarge(f"The file is larger than {limit} bytes.", limit=limit)
                out.write(block)

    def get(self, job_id: str) -> Job:
        """A job; :class:`NotFound` when there is none."""
        with self.sessions() as s:
            job = s.get(Job, job_id)
        if job is None:
            raise NotFound("No such job.", job_id=job_id)
        return job

    def result_path(self, job_id: str) -> Path:
        """The coded file of a finished job; :class:`Conflict` while it is not done."""
        job = self.get(job_id)
        if job.purged_at is not None:
            raise Gone("The job's files were removed by retention.", job_id=job_id)
        output = self.path(job.output_path) if job.output_path else None
        if job.status != DONE or output is None or not output.exists():
            raise Conflict(
                f"The job is {job.status}; its result is not ready.",
                job_id=job_id,
                status=job.status,
            )
        return output

    def wait(self, job_id: str, timeout: float = 60.0, interval: float = 0.05) -> Job:
        """Block until the job is done or failed (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status in FINISHED or time.monotonic() > deadline:
                return job
            time.sleep(interval)

    # --- deleting and purging ---------------------------------------------------------------

    def delete(self, job_id: str) -> None:
        """Remove a job that is not running: its files, then its row."""
        with self.sessions() as s, s.begin():
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound("No such job.", job_id=job_id)
            # Conditional, so a worker that claims the job at this moment wins or loses cleanly.
            gone = s.execute(delete(Job).where(Job.id == job_id, Job.status != RUNNING)).rowcount  # type: ignore[attr-defined]
            if not gone:
                raise Conflict(
                    "The job is running; delete it once it is done or failed.",
                    job_id=job_id,
                    status=RUNNING,
                )
        self._remove_folder(job)
        log.info("job %s deleted", job_id)

    def purge(self, older_than: timedelta, now: datetime | None = None) -> int:
        """Remove the files of jobs finished before ``now - older_than``, and orphaned uploads.

        Rows and counts stay (``purged_at`` is set). An orphan is a folder in the jobs folder
        that no job row names, older than the cut-off (and than an hour, so an upload being
        stored right now is safe). Answers how many folders were removed.
        """
        now = now or utcnow()
        cutoff = now - older_than
        removed = 0
        with self.sessions() as s:
            old = s.scalars(
                select(Job).where(
                    Job.status.in_(FINISHED),
                    Job.finished_at < cutoff,
                    Job.purged_at.is_(None),
                )
            ).all()
        for job in old:
            removed += self._remove_folder(job)
            with self.sessions() as s, s.begin():
                s.execute(update(Job).where(Job.id == job.id).values(purged_at=now))
        if self.root.is_dir():
            orphan_cutoff = min(cutoff, now - ORPHAN_GRACE).timestamp()
            folders = {p.name: p for p in self.root.iterdir() if p.is_dir()}
            with self.sessions() as s:
                known = set(s.scalars(select(Job.id).where(Job.id.in_(list(folders)))).all())
            for name, folder in folders.items():
                if name not in known and folder.stat().st_mtime < orphan_cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
        log.info("purge: removed the files of %d job folder(s)", removed)
        return removed

    def _remove_folder(self, job: Job) -> int:
        folder = self.folder(job)
        # Only ever a job's own folder, whatever an old row says.
        if folder.name != job.id or not folder.exists():
            return 0
        shutil.rmtree(folder, ignore_errors=True)
        return 1


def purge_jobs(settings: Settings, older_than: timedelta) -> int:
    """Remove the files of finished jobs older than ``older_than`` and orphaned uploads.

    Job rows and their counts stay. Opens the database of ``settings`` (migrating it first).
    Answers how many job folders were removed.
    """
    from service.review.store import init_db

    engine = init_db(settings.resolved_database_url())
    try:
        return JobQueue(settings, None, session_factory(engine)).purge(older_than)
    finally:
        engine.dispose()


class _Lease:
    """A worker's claim on one running job, renewed by a heartbeat thread while it runs."""

    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self.runner = runner
        self.job_id = job_id
        self.seconds = runner.settings.job_lease_seconds
        self.lost = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._last_ok = time.monotonic()
        self._progress: dict[str, Any] = {}
        self._thread = threading.Thread(
            target=self._beat, name=f"iccs-job-lease-{job_id[:8]}", daemon=True
        )

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(self.seconds)

    def progress(self, done: int, total: int | None) -> None:
        """Record progress and write it with a lease renewal."""
        self._progress = {"rows_done": done, "rows_total": total}
        self.renew()

    def _beat(self) -> None:
        while not self._done.wait(self.seconds / 4):
            self.renew()

    def renew(self) -> None:
        """Extend the lease; mark it lost when another worker holds the job now."""
        if self.lost.is_set():
            return
        with self._lock:
            try:
                values = {**self._progress, "lease_expires_at": self.runner.lease_until()}
                with self.runner.sessions() as s, s.begin():
                    held = s.execute(
                        update(Job)
                        .where(
                            Job.id == self.job_id,
                            Job.lease_owner == self.runner.worker_id,
                            Job.status == RUNNING,
                        )
                        .values(**values)
                    ).rowcount  # type: ignore[attr-defined]
            except Exception as exc:  # the database is away: keep coding while the lease lasts
                log.warning("job %s: lease not renewed (%s)", self.job_id, type(exc).__name__)
                # Stop before the lease can have expired: another worker may claim it then.
                if time.monotonic() - self._last_ok > self.seconds * 0.75:
                    self.lost.set()
                return
            if held:
                self._last_ok = time.monotonic()
            else:
                log.warning("job %s: another worker holds it now; stopping here", self.job_id)
                self.lost.set()


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
        with _Lease(self, job_id) as lease:
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
        to_review=bool(opts.get("to_review")),
        batch_name=opts.get("batch_name"),
        origin="job",
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


__all__ = [
    "DONE",
    "FAILED",
    "JOB_STATUSES",
    "QUEUED",
    "RUNNING",
    "JobQueue",
    "JobRunner",
    "UploadTooLarge",
    "job_options",
    "open_jobs",
    "purge_jobs",
]
