"""GET /v1/models and /v1/models/active: which models exist and which one answers."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.deps import PredictorDep, Reader, ServicesDep
from service.api.v1.responses import error_responses
from service.api.v1.schemas import ActiveModelResponse, ModelsResponse, ModelSummary
from service.config import HIGHEST_PRECISION, LOWEST_PRECISION
from service.taxonomy import TAXONOMY_VERSION

router = APIRouter(prefix="/models", tags=["models"])


def _created(manifest: dict[str, Any]) -> str | None:
    value = manifest.get("created_at")
    return str(value) if value is not None else None


@router.get(
    "",
    response_model=ModelsResponse,
    summary="Registered model versions",
    responses=error_responses(401, 403, 429, 503),
)
def models(_: Reader, services: ServicesDep, predictor: PredictorDep) -> ModelsResponse:
    """Every version in the registry, the promoted one and the one this process serves."""
    reg = services.registry
    promoted = reg.active()
    out = []
    for version in reg.versions():
        manifest = reg.manifest(version)
        out.append(
            ModelSummary(
                version=version,
                created_at=_created(manifest),
                promoted=version == promoted,
                serving=version == predictor.version,
                complete=reg.is_complete(version),
                metrics_summary=dict(manifest.get("metrics_summary") or {}),
            )
        )
    return ModelsResponse(promoted=promoted, serving=predictor.version, models=out)


@router.get(
    "/active",
    response_model=ActiveModelResponse,
    summary="The model this process serves",
    responses=error_responses(401, 403, 422, 429, 503),
)
def active(
    _: Reader,
    services: ServicesDep,
    predictor: PredictorDep,
    min_precision: Annotated[
        float | None,
        Query(
            ge=LOWEST_PRECISION,
            le=HIGHEST_PRECISION,
            description="Show the thresholds a classify call with this `min_precision` would "
            "use (within the operator's floor and 0.999) instead of the service's default.",
            examples=[0.9],
        ),
    ] = None,
) -> ActiveModelResponse:
    """Version, decision thresholds at the target precision, and headline metrics."""
    manifest = services.manifest
    precision = predictor.default_precision
    if min_precision is not None:
        precision = services.settings.check_min_precision(min_precision)
    thresholds = predictor.thresholds.at(precision)
    table = predictor.thresholds.table_at(precision) if predictor.thresholds.table else None
    reject = predictor.thresholds.reject_at(precision)
    return ActiveModelResponse(
        version=predictor.version,
        promoted=services.registry.active() == predictor.version,
        taxonomy_version=TAXONOMY_VERSION,
        created_at=_created(manifest),
        target_precision=precision,
        thresholds={
            str(level): (round(t, 4) if math.isfinite(t) else None)
            for level, t in sorted(thresholds.items())
        },
        table_threshold=round(table, 4) if table is not None and table <= 1.0 else None,
        reject_threshold=round(reject, 4) if reject <= 1.0 else None,
        int8=predictor.loaded_encoder.int8,
        encoder=predictor.loaded_encoder.name,
        multilingual_channel=predictor.loaded_encoder.multilingual,
        metrics_summary=dict(manifest.get("metrics_summary") or {}),
        loaded_at=services.loaded_at,
    )
