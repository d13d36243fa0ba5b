"""GET /v1/models and the active model: registry entries and their metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ModelSummary(BaseModel):
    """A registered model version."""

    version: str = Field(description="Registry version.", examples=["20250101-120000"])
    created_at: str | None = Field(
        description="When it was trained.", examples=["2025-01-01T12:00:00+00:00"]
    )
    promoted: bool = Field(description="True for the promoted (active) version.", examples=[True])
    serving: bool = Field(
        description="True for the version this process has loaded.", examples=[True]
    )
    complete: bool = Field(
        description="True when its binaries are built on this machine.", examples=[True]
    )
    metrics_summary: dict[str, Any] = Field(
        description="Headline evaluation metrics from the manifest.",
        examples=[{"accuracy_class": 0.86, "ece": 0.03}],
    )


class ModelsResponse(BaseModel):
    """Registered models."""

    promoted: str | None = Field(description="The promoted version.", examples=["20250101-120000"])
    serving: str = Field(description="The version this process serves.", examples=["20250101-1"])
    models: list[ModelSummary] = Field(description="Every registered version, oldest first.")


class ActiveModelResponse(BaseModel):
    """The model this process serves, with its decision thresholds."""

    version: str = Field(description="Registry version.", examples=["20250101-120000"])
    promoted: bool = Field(
        description="False when a newer version was promoted after this process started "
        "(restart to serve it) or `model_version` pins another one.",
        examples=[True],
    )
    taxonomy_version: str = Field(description="Version of ICCS.", examples=["ICCS v1.0"])
    created_at: str | None = Field(description="When it was trained.", examples=["2025-01-01"])
    target_precision: float = Field(
        description="Precision of automatic coding the thresholds are for: the service's "
        "default, or the `min_precision` asked for.",
        examples=[0.95],
    )
    thresholds: dict[str, float | None] = Field(
        description="Confidence threshold per level (1..4) at that precision; above 1 when no "
        "confidence reaches it at that level (nothing is auto-coded there).",
        examples=[{"2": 0.81, "3": 0.88, "4": 0.93}],
    )
    table_threshold: float | None = Field(
        description="Top-code confidence at which an entry of a national list coded as a "
        "correspondence table with this target (`table_precision` of a job, "
        "`iccs classify-file --table-precision`) is auto-coded; null when the model has no "
        "table thresholds (built before them) or no confidence reaches the target.",
        examples=[0.81],
    )
    reject_threshold: float | None = Field(
        description='Probability of "not an offence" at which a record is rejected at this '
        "target (rejecting reaches the target precision on the held-out national lists; never "
        "below 0.5); null when no probability reaches it, so content is never rejected and "
        "such records go to review.",
        examples=[0.97],
    )
    int8: bool = Field(
        description="True when the int8-quantised encoder is loaded (an entry that ships none "
        "is served with fp32 even when `ICCS_USE_INT8` asks for int8).",
        examples=[False],
    )
    encoder: Literal["fp32", "int8"] = Field(
        description="The encoder loaded: fp32 or int8.", examples=["fp32"]
    )
    multilingual_channel: str | None = Field(
        description="The multilingual embedding channel joined to the encoder (null: none).",
        examples=["usem3"],
    )
    metrics_summary: dict[str, Any] = Field(
        description="Headline evaluation metrics from the manifest.",
        examples=[{"accuracy_class": 0.86, "ece": 0.03}],
    )
    loaded_at: datetime | None = Field(description="When this process loaded the model.")
