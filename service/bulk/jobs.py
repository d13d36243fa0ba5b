"""Bulk jobs submitted over HTTP: durable queue in the database, files under the state dir.

A :class:`JobRunner` runs queued jobs one at a time in a background thread, through the same
engine as ``iccs classify-file``. Job state lives in the ``jobs`` table and each job's files in
``<state_dir>/jobs/<id>/``, so a restart loses nothing: on start the runner puts jobs that were
running back in the queue, and the engine's checkpoint lets them continue where they stopped.
A failing job is marked ``failed`` with its error; the runner and the service carry on.

Several service instances may share one database: a job is claimed with a conditional
update, so only one runner takes it. (A runner that starts re-queues *every* running job,
which is right for one instance; with several, give only one of them a runner.)
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.coding import Coder
from service.config import Settings
from service.db import Job, utcnow
from service.errors import Conflict, ICCSError, InvalidInput, NotFound, UploadTooLarge
from service.models.predictor import Predictor

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED)
# Smaller chunks than the CLI's: progress over HTTP moves visibly on a modest file.
JOB_CHUNK_ROWS = 10_000
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


class JobRunner:
    """Runs queued jobs in a background thread; survives restarts through the database."""

    def __init__(
        self,
        settings: Settings,
        coder: CoderSource,
        sessions: sessionmaker[Session],
        *,
        poll_seconds: float = 2.0,
        chunk_rows: int = JOB_CHUNK_ROWS,
    ) -> None:
        self.settings = settings
        self._coder_source = coder
        self.sessions = sessions
        self.poll_seconds = poll_seconds
        self.chunk_rows = chunk_rows
        self.root = Path(settings.state_dir) / "jobs"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._built_coder: Coder | None = None

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Re-queue jobs a previous process left running, then start the worker thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with self.sessions() as s, s.begin():
            res = s.execute(update(Job).where(Job.status == RUNNING).values(status=QUEUED))
            n = res.rowcount  # type: ignore[attr-defined]
        if n:
            log.info("re-queued %d job(s) left running by a previous process", n)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="iccs-job-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current chunk; an unfinished job resumes on the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _coder(self) -> Coder:
        src = self._coder_source
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

    # --- submitting and reading -----------------------------------------------------------

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
        if out_fmt not in ("csv", "xlsx", "parquet"):
            raise InvalidInput("output_format must be csv, xlsx or parquet.", output_format=out_fmt)
        opts["output_format"] = out_fmt
        opts["to_review"] = bool(opts.get("to_review"))
        job_id = str(uuid.uuid4())
        folder = self.root / job_id
        folder.mkdir(parents=True)
        suffix = Path(safe_name).suffix.lower()
        input_path = folder / f"input{suffix}"
        try:
            self._save(source, input_path)
            reader = bio.open_reader(input_path, opts.get("encoding"), opts.get("delimiter"))
            for key, flag in (
                ("text_column", "text_column"),
                ("id_column", "id_column"),
                ("code_column", "code_column"),
            ):
                if opts.get(key):
                    opts[key] = bio.resolve_column(reader.columns, str(opts[key]), flag)
            if not opts.get("batch_name"):
                opts["batch_name"] = f"job {job_id[:8]} {safe_name}"
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = Job(
            id=job_id,
            status=QUEUED,
            filename=safe_name[:300],
            input_path=str(input_path),
            output_path=str(folder / f"result.{_EXT[out_fmt]}"),
            options=opts,
            rows_done=0,
            counts={},
            created_by=created_by,
            created_at=utcnow(),
        )
        with self.sessions() as s, s.begin():
            s.add(job)
        log.info("job %s queued (%s, %s)", job_id, in_fmt, reader.description)
        self._wake.set()
        return job

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
        if job.status != DONE or not job.output_path or not Path(job.output_path).exists():
            raise Conflict(
                f"The job is {job.status}; its result is not ready.",
                job_id=job_id,
                status=job.status,
            )
        return Path(job.output_path)

    # --- the worker -----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._claim_next()
            except Exception:  # the database may be briefly unavailable; try again later
                log.exception("job runner could not read the queue")
                job_id = None
            if job_id is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self._run(job_id)

    def _claim_next(self) -> str | None:
        with self.sessions() as s, s.begin():
            candidates = s.scalars(
                select(Job.id).where(Job.status == QUEUED).order_by(Job.created_at).limit(5)
            ).all()
            for job_id in candidates:
                claimed = s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == QUEUED)
                    .values(status=RUNNING, started_at=utcnow(), error=None)
                ).rowcount  # type: ignore[attr-defined]
                if claimed:
                    return str(job_id)
        return None

    def _run(self, job_id: str) -> None:
        from service.bulk.engine import BulkOptions, Interrupted, classify_file

        job = self.get(job_id)
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
            chunk_rows=self.chunk_rows,
        )

        def progress(done: int, total: int | None) -> None:
            self._update(job_id, rows_done=done, rows_total=total)

        log.info("job %s started", job_id)
        try:
            summary = classify_file(
                Path(job.input_path),
                Path(str(job.output_path)),
                options,
                self._coder(),
                progress=progress,
                should_stop=self._stop.is_set,
            )
        except Interrupted:
            log.info("job %s paused by shutdown; it resumes on the next start", job_id)
            self._update(job_id, status=QUEUED)
            return
        except ICCSError as exc:
            log.warning("job %s failed: %s", job_id, exc.code)
            self._update(
                job_id, status=FAILED, error=f"{exc.code}: {exc.message}", finished_at=utcnow()
            )
            return
        except Exception:  # one job's bug must not take the runner down
            log.exception("job %s failed", job_id)
            self._update(
                job_id,
                status=FAILED,
                error="internal_error: the job failed; see the service log.",
                finished_at=utcnow(),
            )
            return
        self._update(
            job_id,
            status=DONE,
            rows_done=summary.rows,
            rows_total=summary.rows,
            counts=summary.as_dict(),
            finished_at=utcnow(),
        )
        log.info("job %s done: %d rows", job_id, summary.rows)

    def _update(self, job_id: str, **values: Any) -> None:
        with self.sessions() as s, s.begin():
            s.execute(update(Job).where(Job.id == job_id).values(**values))

    def wait(self, job_id: str, timeout: float = 60.0, interval: float = 0.05) -> Job:
        """Block until the job is done or failed (for tests and scripts)."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while True:
                job = self.get(job_id)
                if job.status in (DONE, FAILED) or deadline.is_set():
                    return job
                deadline.wait(interval)
        finally:
            timer.cancel()


_EXT = {"csv": "csv", "xlsx": "xlsx", "parquet": "parquet"}
