"""The API's side of bulk jobs: submit an upload, read, delete and purge jobs (no running).

An upload is stored in ``ICCS_JOBS_DIR/<id>/`` and checked (format, columns, options, limits)
before its row is queued in the ``jobs`` table; a failed submission leaves neither. Paths in
the table are relative to the jobs folder, so every instance may mount it elsewhere.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.coding import Coder
from service.config import Settings
from service.db import Job, session_factory, utcnow
from service.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    UploadTooLarge,
)
from service.models.predictor import Predictor
from service.review.queue import check_review_quota

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED)
FINISHED = (DONE, FAILED)
# An upload folder without a row may be a submission still being stored: purge leaves
# orphans younger than this alone, whatever the cut-off.
ORPHAN_GRACE = timedelta(hours=1)
OPTION_KEYS = (
    "text_column",
    "id_column",
    "code_column",
    "min_precision",
    "table_precision",
    "to_review",
    "batch_name",
    "encoding",
    "delimiter",
    "output_format",
)


CoderSource = Coder | Predictor | Callable[[], Coder]


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
        check_review_quota(self.sessions, created_by, self.settings.max_open_review_items_per_key)
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
                opts["batch_name"] = f"job {job_id[:8]} {safe_name}"[:200]
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
