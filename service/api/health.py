"""GET /healthz, /readyz and /metrics: for load balancers, orchestrators and Prometheus.

No API key: probes and scrapers run without one, and none of these answers carries records.
``/metrics`` (request mix, model version) is meant for an internal scraper: set
``ICCS_OPEN_METRICS=false`` to require a key (any role) there too.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import text

from service.api.deps import MetricsReader, ServicesDep
from service.api.v1.responses import error_responses
from service.api.v1.schemas import HealthResponse
from service.errors import DatabaseUnavailable, ModelNotReady, ServiceNotReady

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="The process is up")
async def healthz() -> HealthResponse:
    """Answers 200 as long as the process serves HTTP.

    Async, so it never waits for a worker thread: those are shared with classify and review
    calls, and a liveness probe stuck behind long batches would restart a healthy server.
    """
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=HealthResponse,
    summary="Ready to classify",
    responses=error_responses(503),
)
def readyz(services: ServicesDep) -> HealthResponse:
    """200 when the model is loaded, the database answers and the job runner (if any) runs."""
    if services.predictor is None:
        raise ModelNotReady("The model is not loaded.")
    if services.engine is None:
        raise DatabaseUnavailable("The database is not open.")
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready"
        raise DatabaseUnavailable(
            "The database does not answer.", error=type(exc).__name__
        ) from exc
    if services.store is not None and not services.store.ping():
        raise DatabaseUnavailable("The review tables are not reachable.")
    checks = {"model": services.predictor.version, "database": "ok", "job_runner": "off"}
    if services.settings.job_runner == "embedded":
        # This instance is meant to run bulk jobs: a runner that stopped or died is not ready.
        if not getattr(services.job_runner, "running", False):
            raise ServiceNotReady("job runner", "This instance's bulk job runner is not running.")
        checks["job_runner"] = "running"
    return HealthResponse(status="ok", checks=checks)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(services: ServicesDep, _: MetricsReader) -> Response:
    """Request counts and latency by route and status, classifications, model version."""
    return Response(services.metrics.render(), media_type=services.metrics.content_type)
