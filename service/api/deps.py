"""Dependency aliases: how routes reach the model, the stores and the caller's identity.

Everything lives on ``app.state.services`` (built by the lifespan in ``service.main``), never in
module globals, so each app built by ``create_app`` is independent. Dependencies that only read
attributes are ``async``: FastAPI runs sync dependencies in its thread pool, a hop that costs more
than the lookup itself on every request.

Auth for routers (``service/api/v1/*.py`` and the review/bulk routers)::

    @router.post("/things")
    def make(principal: Submitter) -> ...     # 401 without a valid key, 403 for other roles

``Submitter`` needs the ``classify`` permission, ``Reviewer`` ``review``, ``Admin`` ``manage``,
``Reader`` any valid key (or none when ``open_read_routes`` is set). Admin keys pass all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from service.api.limits import RateLimiter
from service.api.observability import Metrics
from service.auth import CLASSIFY, MANAGE, READ, REVIEW, KeyStore, Principal
from service.coding import Coder
from service.config import Settings
from service.errors import ModelNotReady
from service.models.predictor import Predictor
from service.models.registry import Registry


@dataclass
class Services:
    """What the lifespan builds once per app and the routes share."""

    settings: Settings
    metrics: Metrics
    limiter: RateLimiter
    registry: Registry
    engine: Engine | None = None
    sessions: sessionmaker[Any] | None = None
    keys: KeyStore | None = None
    store: Any = None  # service.review.store.ReviewStore
    predictor: Predictor | None = None
    coder: Coder | None = None
    job_runner: Any = None  # service.bulk JobRunner when the bulk package is installed
    startup_seconds: float | None = None
    loaded_at: datetime | None = None
    manifest: dict[str, Any] = field(default_factory=dict)  # of the served model
    extra: dict[str, Any] = field(default_factory=dict)


async def get_services(request: Request) -> Services:
    """The app's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    """The app's settings."""
    return services.settings


async def get_predictor(services: ServicesDep) -> Predictor:
    """The loaded model; 503 when the lifespan has not loaded one."""
    if services.predictor is None:
        raise ModelNotReady("The model is not loaded yet.")
    return services.predictor


async def get_coder(services: ServicesDep) -> Coder:
    """The coder (decision memory + model + review queue)."""
    if services.coder is None:
        raise ModelNotReady("The model is not loaded yet.")
    return services.coder


async def get_store(services: ServicesDep) -> Any:
    """The review store (``service.review.store.ReviewStore``)."""
    if services.store is None:
        raise ModelNotReady("The review store is not open yet.")
    return services.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
CoderDep = Annotated[Coder, Depends(get_coder)]
StoreDep = Annotated[Any, Depends(get_store)]


# auto_error=False: a missing key must reach KeyStore.verify and get the one error shape.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key from `iccs keys create`, sent as `Authorization: Bearer KEY`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def authorize(action: str, open_setting: str | None = None) -> Callable[..., Principal | None]:
    """Dependency: verify the key, count it against the rate limit, check the role.

    ``open_setting`` names a boolean setting that, when true, lets requests without a key
    through (they get ``None`` as principal); a request that does send a key is still checked.
    """

    def dependency(
        request: Request, services: ServicesDep, credentials: Credentials
    ) -> Principal | None:
        key = credentials.credentials.strip() if credentials else None
        if key is None and open_setting and getattr(services.settings, open_setting):
            return None
        if services.keys is None:
            raise ModelNotReady("The key store is not open yet.")
        principal = services.keys.verify(key)
        # Recorded before the role check so the access log names refused callers too.
        request.state.principal_name = principal.name
        services.limiter.check(principal.name)
        return principal.require(action)

    return dependency


Submitter = Annotated[Principal, Depends(authorize(CLASSIFY))]
Reviewer = Annotated[Principal, Depends(authorize(REVIEW))]
Admin = Annotated[Principal, Depends(authorize(MANAGE))]
Reader = Annotated[Principal | None, Depends(authorize(READ, open_setting="open_read_routes"))]
