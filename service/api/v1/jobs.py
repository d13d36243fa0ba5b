"""POST /v1/jobs, GET /v1/jobs/{id}, GET /v1/jobs/{id}/result: bulk files over HTTP.

The route stores the upload and queues it with the :class:`service.bulk.jobs.JobRunner` that
the lifespan started; the runner codes it in the background with the same engine as
``iccs classify-file``. A job is visible to the key that created it and to admin keys.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from service.api.deps import ServicesDep, SettingsDep, Submitter
from service.api.v1.responses import error_responses
from service.auth import MANAGE, Principal
from service.bulk.jobs import JobRunner
from service.db import Job
from service.errors import InvalidInput, NotFound, ServiceNotReady

router = APIRouter(prefix="/jobs", tags=["jobs"])
_MEDIA = {
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
}


def get_job_runner(services: ServicesDep) -> JobRunner:
    """The app's job runner; 503 when the lifespan has not started one."""
    runner = services.job_runner
    if runner is None:
        raise ServiceNotReady("job queue", "The bulk job runner is not running.")
    assert isinstance(runner, JobRunner)
    return runner


JobRunnerDep = Annotated[JobRunner, Depends(get_job_runner)]


class JobCounts(BaseModel):
    """Row counts by status of a finished job."""

    auto: int = Field(0, description="Rows coded automatically.", examples=[81234])
    review: int = Field(0, description="Rows whose text needs a reviewer.", examples=[15800])
    rejected: int = Field(0, description="Unusable or non-offence rows.", examples=[2966])


class JobResponse(BaseModel):
    """State of a bulk job."""

    id: str = Field(description="Job id.", examples=["3f1c2a8e-5b7d-4a11-9c1e-2b0f6f6d1e42"])
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued -> running -> done | failed.", examples=["running"]
    )
    filename: str = Field(description="Name of the uploaded file.", examples=["crimes_2019.csv"])
    rows_done: int = Field(description="Rows coded so far.", examples=[40000])
    rows_total: int | None = Field(
        description="Rows in the file (estimated from line breaks for CSV until done).",
        examples=[100000],
    )
    progress: float | None = Field(
        description="rows_done / rows_total, 0..1; null while unknown.", examples=[0.4]
    )
    counts: JobCounts | None = Field(description="Rows by status, once done.")
    distinct_texts: int | None = Field(
        description="Distinct normalised texts classified, once done.", examples=[4210]
    )
    dedupe_ratio: float | None = Field(
        description="Rows per distinct text, once done.", examples=[23.8]
    )
    model_version: str | None = Field(
        description="Model that coded the file, once done.", examples=["20260101-120000-a1b2c3"]
    )
    error: str | None = Field(
        description="Why the job failed (code: message).",
        examples=["file_format_error: Column 'text' is not in the file."],
    )
    options: dict[str, Any] = Field(
        description="The options the job runs with.",
        examples=[{"text_column": "offence", "output_format": "csv"}],
    )
    created_at: datetime = Field(description="When the job was submitted (UTC).")
    started_at: datetime | None = Field(description="When coding (last) started.")
    finished_at: datetime | None = Field(description="When the job ended.")
    result_url: str | None = Field(
        description="Where to download the coded file, once done.",
        examples=["/v1/jobs/3f1c2a8e-5b7d-4a11-9c1e-2b0f6f6d1e42/result"],
    )


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
        options=dict(job.options or {}),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result_url=f"/v1/jobs/{job.id}/result" if job.status == "done" else None,
    )


def _visible_job(runner: JobRunner, job_id: str, principal: Principal) -> Job:
    job = runner.get(job_id)
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
    runner: JobRunnerDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV, TSV, XLSX or Parquet file.")],
    text_column: Annotated[str, Form(description="Column holding the offence text.")],
    id_column: Annotated[str | None, Form(description="Record id column.")] = None,
    code_column: Annotated[
        str | None, Form(description="The agency's own offence code column.")
    ] = None,
    min_precision: Annotated[
        float | None, Form(description="Target precision of automatic coding.")
    ] = None,
    to_review: Annotated[bool, Form(description="Queue the review rows for reviewers.")] = False,
    batch_name: Annotated[str | None, Form(description="Batch name of queued reviews.")] = None,
    encoding: Annotated[str | None, Form(description="CSV encoding (default: detected).")] = None,
    delimiter: Annotated[str | None, Form(description="CSV delimiter (default: sniffed).")] = None,
    output_format: Annotated[
        Literal["csv", "xlsx", "parquet"] | None,
        Form(description="Format of the result (default: that of the upload)."),
    ] = None,
) -> JobResponse:
    """Store the file and queue it; answers 202 with the job, whose status you then poll.

    The header is checked at once: a missing column fails here (422) naming the columns found.
    """
    if min_precision is not None:
        settings.check_min_precision(min_precision)
    if to_review and not runner.can_queue_reviews():
        raise InvalidInput("This service has no review store to queue reviews in.")
    options = {
        "text_column": text_column,
        "id_column": id_column or None,
        "code_column": code_column or None,
        "min_precision": min_precision,
        "to_review": to_review,
        "batch_name": batch_name or None,
        "encoding": encoding or None,
        "delimiter": delimiter or None,
        "output_format": output_format,
    }
    job = runner.submit(file.filename or "upload", file.file, options, created_by=principal.name)
    return job_response(job)


@router.get(
    "/{job_id}",
    response_model=JobResponse,
    summary="Status, progress and counts of a job",
    responses=error_responses(401, 403, 404, 429, 503),
)
def get_job(job_id: str, principal: Submitter, runner: JobRunnerDep) -> JobResponse:
    """The job's state; poll it until `status` is `done` or `failed`."""
    return job_response(_visible_job(runner, job_id, principal))


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    summary="Download the coded file of a finished job",
    responses={
        **error_responses(401, 403, 404, 429, 503),
        409: {"description": "The job is not done yet (or failed)."},
        200: {"description": "The coded file: every input column plus the contract columns."},
    },
)
def get_result(job_id: str, principal: Submitter, runner: JobRunnerDep) -> FileResponse:
    """The coded file (format of the upload unless the job asked for another)."""
    job = _visible_job(runner, job_id, principal)
    path = runner.result_path(job.id)
    stem = Path(job.filename).stem or "result"
    return FileResponse(
        path,
        media_type=_MEDIA.get(path.suffix, "application/octet-stream"),
        filename=f"{stem}.coded{path.suffix}",
    )
