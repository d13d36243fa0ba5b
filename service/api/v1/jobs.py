"""POST /v1/jobs, GET and DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/result: bulk files over HTTP.

The route stores the upload in the jobs folder and queues it (:class:`JobQueue`); a runner codes
it in the background with the same engine as ``iccs classify-file``: a thread of the API
(``ICCS_JOB_RUNNER=embedded``) or ``iccs worker`` processes. A job is visible to the key that
created it and to admin keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from fastapi.responses import FileResponse

from service.api.deps import ServicesDep, SettingsDep, Submitter
from service.api.v1.responses import error_responses
from service.api.v1.schemas import JobCounts, JobResponse, StorableStr
from service.auth import MANAGE, Principal
from service.bulk.jobs import JobQueue
from service.db import Job
from service.errors import InvalidInput, NotFound, ServiceNotReady

router = APIRouter(prefix="/jobs", tags=["jobs"])


def get_jobs(services: ServicesDep) -> JobQueue:
    """The app's job queue (with its runner when this instance runs one); 503 before startup."""
    jobs = services.job_runner
    if jobs is None:
        raise ServiceNotReady("job queue", "The bulk job queue is not open.")
    assert isinstance(jobs, JobQueue)
    return jobs


JobsDep = Annotated[JobQueue, Depends(get_jobs)]


def job_response(job: Job) -> JobResponse:
    """The API view of a job row."""
    summary = job.counts or {}
    counts = summary.get("counts")
    total = job.rows_total
    progress = None
    if total:
        progress = round(min(job.rows_done / total, 1.0), 4)
    elif job.status == "done":
        progress = 1.0
    return JobResponse(
        id=job.id,
        status=job.status,
        filename=job.filename,
        rows_done=job.rows_done,
        rows_total=total,
        progress=progress,
        counts=JobCounts(**counts) if counts else None,
        distinct_texts=summary.get("distinct_texts"),
        dedupe_ratio=summary.get("dedupe_ratio"),
        model_version=summary.get("model_version"),
        error=job.error,
        attempts=job.attempts or 0,
        options=dict(job.options or {}),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        purged_at=job.purged_at,
        result_url=(
            f"/v1/jobs/{job.id}/result" if job.status == "done" and job.purged_at is None else None
        ),
    )


def _visible_job(jobs: JobQueue, job_id: str, principal: Principal) -> Job:
    job = jobs.get(job_id)
    # Results hold offence texts: other keys get the same 404 as for an unknown id.
    if job.created_by != principal.name and not principal.can(MANAGE):
        raise NotFound("No such job.", job_id=job_id)
    return job


@router.post(
    "",
    status_code=202,
    response_model=JobResponse,
    summary="Submit a file for bulk coding",
    responses=error_responses(401, 403, 413, 422, 429, 503),
)
def create_job(
    principal: Submitter,
    jobs: JobsDep,
    settings: SettingsDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="CSV, TSV, XLSX or Parquet file.")],
    text_column: Annotated[str, Form(description="Column holding the offence text.")],
    id_column: Annotated[str | None, Form(description="Record id column.")] = None,
    code_column: Annotated[
        str | None, Form(description="The agency's own offence code column.")
    ] = None,
    min_precision: Annotated[
        float | None, Form(description="Target precision of automatic coding.")
    ] = None,
    table_precision: Annotated[
        float | None,
        Form(
            description="The file is a national offence list coded as a correspondence table "
            "that reviewers finish (with to_review): the precision the finished table must "
            "reach. Entries whose top code clears the model's table threshold are auto-coded."
        ),
    ] = None,
    to_review: Annotated[bool, Form(description="Queue the review rows for reviewers.")] = False,
    batch_name: Annotated[
        StorableStr | None,
        Form(
            max_length=200,
            description="Batch name of queued reviews (up to 200 characters, no NUL).",
        ),
    ] = None,
    encoding: Annotated[str | None, Form(description="CSV encoding (default: detected).")] = None,
    delimiter: Annotated[str | None, Form(description="CSV delimiter (default: sniffed).")] = None,
    output_format: Annotated[
        str | None,
        Form(
            max_length=40,
            description="Format of the result, by name: one of the service's file formats "
            "(csv, xlsx, parquet; an unknown name is a 422 naming them). Default: that of "
            "the upload.",
        ),
    ] = None,
) -> JobResponse:
    """Store the file and queue it; answers 202 with the job, whose status you then poll.

    The header is checked at once: a missing column fails here (422) naming the columns found.
    A key with `ICCS_MAX_ACTIVE_JOBS_PER_KEY` jobs queued or running gets 429
    `job_quota_exceeded` until one of them finishes.
    """
    if min_precision is not None:
        settings.check_min_precision(min_precision)
    if table_precision is not None:
        settings.check_min_precision(table_precision, field="table_precision")
        if services.predictor is not None:  # the worker checks again, with its own model
            services.predictor.thresholds.table_at(table_precision)
    if to_review and not jobs.can_queue_reviews():
        raise InvalidInput("This service has no review store to queue reviews in.")
    options = {
        "text_column": text_column,
        "id_column": id_column or None,
        "code_column": code_column or None,
        "min_precision": min_precision,
        "table_precision": table_precision,
        "to_review": to_review,
        "batch_name": batch_name or None,
        "encoding": encoding or None,
        "delimiter": delimiter or None,
        "output_format": output_format or None,
    }
    job = jobs.submit(file.filename or "upload", file.file, options, created_by=principal.name)
    return job_response(job)


@router.get(
    "/{job_id}",
    response_model=JobResponse,
    summary="Status, progress and counts of a job",
    responses=error_responses(401, 403, 404, 429, 503),
)
def get_job(job_id: str, principal: Submitter, jobs: JobsDep) -> JobResponse:
    """The job's state; poll it until `status` is `done` or `failed`."""
    return job_response(_visible_job(jobs, job_id, principal))


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    summary="Download the coded file of a finished job",
    responses={
        **error_responses(401, 403, 404, 429, 503),
        409: {"description": "The job is not done yet (or failed)."},
        410: {"description": "Retention removed the job's files."},
        200: {"description": "The coded file: every input column plus the contract columns."},
    },
)
def get_result(job_id: str, principal: Submitter, jobs: JobsDep) -> FileResponse:
    """The coded file (format of the upload unless the job asked for another)."""
    from service.bulk.io import media_type  # pyarrow: loaded when the first result is fetched

    job = _visible_job(jobs, job_id, principal)
    path = jobs.result_path(job.id)
    stem = Path(job.filename).stem or "result"
    return FileResponse(
        path,
        media_type=media_type(path.suffix),
        filename=f"{stem}.coded{path.suffix}",
    )


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a job and its files",
    responses={
        **error_responses(401, 403, 404, 429, 503),
        409: {"description": "The job is running; delete it once it is done or failed."},
    },
)
def delete_job(job_id: str, principal: Submitter, jobs: JobsDep) -> Response:
    """Remove the job's upload, result and checkpoint, then the job (its key or an admin key)."""
    jobs.delete(_visible_job(jobs, job_id, principal).id)
    return Response(status_code=204)
