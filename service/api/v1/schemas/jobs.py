"""POST /v1/jobs and GET /v1/jobs/{id}: a bulk job's state, progress and counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


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
    attempts: int = Field(
        description="Times a worker started the job (a job whose worker died is resumed by "
        "another; after ICCS_JOB_MAX_ATTEMPTS starts it fails).",
        examples=[1],
    )
    options: dict[str, Any] = Field(
        description="The options the job runs with.",
        examples=[{"text_column": "offence", "output_format": "csv"}],
    )
    created_at: datetime = Field(description="When the job was submitted (UTC).")
    started_at: datetime | None = Field(description="When coding (last) started.")
    finished_at: datetime | None = Field(description="When the job ended.")
    purged_at: datetime | None = Field(
        None, description="When retention removed the job's files (the counts stay)."
    )
    result_url: str | None = Field(
        description="Where to download the coded file, once done.",
        examples=["/v1/jobs/3f1c2a8e-5b7d-4a11-9c1e-2b0f6f6d1e42/result"],
    )
