"""A worker's lease on a running job: renewed by a heartbeat thread, lost to a new owner."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from service.bulk.jobs.queue import RUNNING
from service.db import Job

if TYPE_CHECKING:
    from service.bulk.jobs.runner import JobRunner

log = logging.getLogger(__name__)


class Lease:
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

    def __enter__(self) -> Lease:
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
