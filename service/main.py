"""The HTTP service: ``create_app(settings)`` builds the FastAPI app.

The lifespan opens the database (migrating it to the newest schema), loads the model once,
warms it up, and starts the bulk job runner; routes reach all of it through the dependency
aliases in :mod:`service.api.deps`, never through module globals.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from service.api.deps import AuthMiddleware, Services
from service.api.errors import install_error_handlers
from service.api.health import router as health_router
from service.api.limits import BodyLimitMiddleware, RateLimiter, UploadSlots
from service.api.observability import (
    Metrics,
    RequestContextMiddleware,
    TextFingerprint,
    fingerprint_secret,
)
from service.api.ui import router as ui_router
from service.api.v1.classify import router as classify_router
from service.api.v1.jobs import router as jobs_router
from service.api.v1.models import router as models_router
from service.api.v1.reviews import router as reviews_router
from service.api.v1.taxonomy import router as taxonomy_router
from service.auth import KeyStore
from service.bulk.jobs import open_jobs
from service.coding import Coder, ReviewQueue, ReviewRequest
from service.config import Settings, get_settings
from service.db import make_engine, session_factory, utcnow
from service.models.decided import DecidedRow
from service.models.predictor import load_predictor
from service.models.registry import Registry
from service.review.rescoring import ValuedQueue, embeddings_of
from service.review.store import ReviewStore, init_db
from service.taxonomy import TAXONOMY_VERSION

log = logging.getLogger(__name__)

API_DESCRIPTION = """
Codes free-text offence records to the UNODC International Classification of Crime for
Statistical Purposes (ICCS v1.0), says how sure it is (calibrated confidence), codes
automatically what it is sure of (backing off to a broader level when needed) and queues the
rest for human review.

Send an API key as `Authorization: Bearer KEY` (create one with `iccs keys create`).
Every error has the shape `{"error", "detail", "status", "context"}`.
"""


class SerialEnqueue:
    """The review store with its writes from this process taken one at a time (SQLite).

    SQLite has one writer at a time, and a writer that finds the database locked sleeps with
    growing back-off; under concurrent requests that sleeping makes a long latency tail.
    Waiting on a lock in-process instead wakes the next writer as soon as the last commits.
    """

    def __init__(self, store: ReviewStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    def enqueue(self, items: Sequence[ReviewRequest], source: str | None = None) -> list[int]:
        """:meth:`ReviewStore.enqueue` under the lock."""
        with self._lock:
            return self.store.enqueue(items, source=source)

    def memory_lookup_items(self, text_keys: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        """Reads need no lock (WAL readers never wait for the writer)."""
        return self.store.memory_lookup_items(text_keys)

    def decided_examples(self, since: datetime | None = None) -> list[DecidedRow]:
        """A read: no lock."""
        return self.store.decided_examples(since)


def start_services(services: Services) -> None:
    """Open the database, load and warm up the model, start the job runner."""
    settings = services.settings
    start = time.perf_counter()
    if not settings.database_url:
        settings.ensure_state_dir()
    engine = init_db(
        make_engine(settings.resolved_database_url(), settings.db_busy_timeout_seconds)
    )
    services.engine = engine
    services.sessions = session_factory(engine)
    services.keys = KeyStore(services.sessions, cache_seconds=settings.key_cache_seconds)
    key = settings.log_fingerprint_key
    secret = fingerprint_secret(key.get_secret_value() if key else None, settings.state_dir)
    services.fingerprint = TextFingerprint(secret)
    services.store = ReviewStore(
        engine,
        lease_seconds=settings.review_lease_seconds,
        memory_min_agreeing=settings.memory_min_agreeing,
    )
    predictor = load_predictor(
        settings.registry_dir,
        settings.model_version,
        int8=settings.use_int8,
        target_precision=settings.target_precision,
        threads=settings.inference_threads or None,
        workers=settings.inference_workers or os.cpu_count() or 1,
    )
    # The first ONNX Runtime run allocates its buffers; pay that here, not on a request.
    predictor.classify(["theft of a bicycle"], top_k=1)
    services.predictor = predictor
    services.manifest = services.registry.manifest(predictor.version)
    queue: ReviewQueue = services.store
    if engine.dialect.name == "sqlite":
        queue = SerialEnqueue(services.store)
    # Whatever is queued (API calls, jobs) gets its expected value for the "value" order.
    queue = ValuedQueue(queue, services.store, embeddings_of(predictor))
    services.coder = Coder(predictor, queue, decided_refresh_s=settings.decided_refresh_s)
    # Reviewers' decided examples are encoded once each (thousands take seconds): a thread
    # loads them so the service is ready at once; requests meanwhile code with those loaded.
    threading.Thread(
        target=services.coder.sync_decided, name="decided-examples-load", daemon=True
    ).start()
    services.loaded_at = utcnow()
    services.startup_seconds = time.perf_counter() - start
    services.metrics.model_info.labels(predictor.version, TAXONOMY_VERSION).set(1)
    services.metrics.cold_start.set(services.startup_seconds)
    # Bulk jobs run through the same coder, so they share the model and the review queue;
    # with ICCS_JOB_RUNNER=off this instance only queues them, for `iccs worker` to run.
    services.job_runner = open_jobs(settings, services.coder, services.sessions)
    log.info(
        json.dumps(
            {
                "event": "startup",
                "model_version": predictor.version,
                "int8": predictor.loaded_encoder.int8,
                "encoder": predictor.loaded_encoder.name,
                "multilingual_channel": predictor.loaded_encoder.multilingual,
                "database": engine.dialect.name,
                "seconds": round(services.startup_seconds, 3),
            }
        )
    )


def stop_services(services: Services) -> None:
    """Stop the job runner and close the database pool."""
    if services.job_runner is not None:
        services.job_runner.stop()
    if services.engine is not None:
        services.engine.dispose()
    log.info(json.dumps({"event": "shutdown"}))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app for ``settings`` (default: read from the environment)."""
    settings = settings or get_settings()
    metrics = Metrics()
    services = Services(
        settings=settings,
        metrics=metrics,
        limiter=RateLimiter(settings.rate_limit_per_minute),
        registry=Registry(settings.registry_dir),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        start_services(services)
        try:
            yield
        finally:
            stop_services(services)

    app = FastAPI(
        title="ICCS offence coder",
        version="1",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN; on the origin that serves /review
        # such a script could read a reviewer's key, so they are opt-in (the schema is not).
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    app.state.services = services
    install_error_handlers(app)

    def body_limit(path: str) -> int:
        # Bulk uploads have their own, larger limit; everything else is JSON.
        return settings.max_upload_bytes if path.startswith("/v1/jobs") else settings.max_body_bytes

    # Added innermost first: the request-context middleware wraps the others, so 401s and
    # 413s are counted and logged like any other answer; the key is checked before the body
    # limit, so a client without one never gets a byte of its body read.
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(
        UploadSlots,
        per_key=settings.max_uploads_per_key,
        applies=lambda scope: scope["method"] == "POST" and scope["path"] == "/v1/jobs",
    )
    app.add_middleware(AuthMiddleware, fastapi_app=app)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)

    app.include_router(health_router)
    for router in (classify_router, taxonomy_router, models_router, reviews_router, jobs_router):
        app.include_router(router, prefix="/v1")
    app.include_router(ui_router)
    return app
