"""Bulk jobs submitted over HTTP: a durable queue in the database, files in the jobs folder.

:class:`JobQueue` (:mod:`.queue`) is the API's side: it stores an upload in
``ICCS_JOBS_DIR/<id>/`` and queues a row in the ``jobs`` table; it reads, deletes and purges
jobs. :class:`JobRunner` (:mod:`.runner`) adds the worker that codes queued jobs, one at a
time, through the same engine as ``iccs classify-file``, holding each with a :class:`Lease`
(:mod:`.lease`). It runs in a thread of the API process (``ICCS_JOB_RUNNER=embedded``) or in
processes of its own (``iccs worker``, for several instances).

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

from service.bulk.jobs.lease import Lease
from service.bulk.jobs.queue import (
    DONE,
    FAILED,
    FINISHED,
    JOB_STATUSES,
    QUEUED,
    RUNNING,
    CoderSource,
    JobQueue,
    purge_jobs,
)
from service.bulk.jobs.runner import JOB_CHUNK_ROWS, JobRunner, job_options, open_jobs, worker_name
from service.errors import UploadTooLarge

__all__ = [
    "DONE",
    "FAILED",
    "FINISHED",
    "JOB_CHUNK_ROWS",
    "JOB_STATUSES",
    "QUEUED",
    "RUNNING",
    "CoderSource",
    "JobQueue",
    "JobRunner",
    "Lease",
    "UploadTooLarge",
    "job_options",
    "open_jobs",
    "purge_jobs",
    "worker_name",
]
