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

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import iccs_error_body
from service.api.limits import RateLimiter
from service.api.observability import Metrics
from service.auth import CLASSIFY, MANAGE, READ, REVIEW, KeyStore, Principal
from service.coding import Coder
from service.config import Settings
from service.errors import ICCSError, ModelNotReady, RateLimited, ServiceNotReady
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
    # The keyed fingerprint of a text for log lines (see observability.TextFingerprint).
    fingerprint: Callable[[str], str] | None = None


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
        raise ServiceNotReady("review store", "The review store is not open yet.")
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

# Where AuthMiddleware leaves its verdict in the request scope's state.
_CHECKED = "auth_checked"
_PRINCIPAL = "principal"


@dataclass(frozen=True)
class AuthRule:
    """What a route asks of its caller: a permission, maybe waived by a boolean setting."""

    action: str
    open_setting: str | None = None


def authenticate(
    services: Services, key: str | None, rule: AuthRule, state: dict[str, Any]
) -> Principal | None:
    """Verify ``key``, count it against the rate limit and check the role ``rule`` asks for.

    Requests without a key pass as ``None`` when ``rule.open_setting`` is on; a request that
    does send a key is still checked.
    """
    if key is None and rule.open_setting and getattr(services.settings, rule.open_setting):
        return None
    if services.keys is None:
        raise ServiceNotReady("key store", "The key store is not open yet.")
    principal = services.keys.verify(key)
    # Recorded before the role check so the access log names refused callers too.
    state["principal_name"] = principal.name
    services.limiter.check(principal.name)
    return principal.require(rule.action)


def authorize(action: str, open_setting: str | None = None) -> Callable[..., Principal | None]:
    """Dependency: the caller, authenticated and allowed ``action`` (see :func:`authenticate`).

    In the app, :class:`AuthMiddleware` has already done the check before the body was read
    and the dependency only hands on its verdict; an app without the middleware (a test app
    over one router) gets the same check here.
    """
    rule = AuthRule(action, open_setting)

    def dependency(
        request: Request, services: ServicesDep, credentials: Credentials
    ) -> Principal | None:
        state = request.scope.setdefault("state", {})
        if state.get(_CHECKED) == rule:
            principal: Principal | None = state.get(_PRINCIPAL)
            return principal
        key = credentials.credentials.strip() if credentials else None
        return authenticate(services, key, rule, state)

    dependency.auth_rule = rule  # type: ignore[attr-defined]
    return dependency


def route_rule(route: BaseRoute) -> AuthRule | None:
    """The auth rule a route declares through its dependencies (None: an open route)."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        dep = stack.pop()
        rule = getattr(dep.call, "auth_rule", None)
        if isinstance(rule, AuthRule):
            return rule
        stack.extend(dep.dependencies)
    return None


class AuthMiddleware:
    """Checks the key and the role before the route reads the request body.

    FastAPI reads and parses a body (a 500 MB upload, 5 MB of JSON) before it solves any
    dependency, so a key checked in a dependency comes too late: an unauthenticated client
    would make the server receive all of it first. This middleware finds the route the
    request will reach, takes the auth rule that route declares (the ``Submitter`` /
    ``Reviewer`` / ``Admin`` / ``Reader`` alias in its signature: one source of truth), and
    answers 401/403 without touching ``receive``. The verdict rides in the scope's state so
    the route's dependency does not check twice.
    """

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._rules: list[tuple[RouteContext, AuthRule | None]] | None = None

    def rule_for(self, scope: Scope) -> AuthRule | None:
        """The rule of the route that fully matches ``scope`` (None when none does)."""
        if self._rules is None:
            # Built on the first request, when every router has been included.
            self._rules = [
                (rc, route_rule(rc.original_route))
                for rc in iter_route_contexts(self.fastapi_app.router.routes)
            ]
        for route, rule in self._rules:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.rule_for(scope)
        if rule is None:
            await self.app(scope, receive, send)
            return
        services: Services = self.fastapi_app.state.services
        state = scope.setdefault("state", {})
        try:
            principal = await run_in_threadpool(
                authenticate, services, _bearer_key(scope), rule, state
            )
        except ICCSError as exc:
            headers = {"Connection": "close"} if _has_body(scope) else {}
            if exc.http_status == 401:
                headers["WWW-Authenticate"] = "Bearer"
            if isinstance(exc, RateLimited):
                headers["Retry-After"] = str(exc.context.get("retry_after", 1))
            response = JSONResponse(iccs_error_body(exc), exc.http_status, headers=headers)
            await response(scope, receive, send)
            return
        state[_CHECKED] = rule
        state[_PRINCIPAL] = principal
        await self.app(scope, receive, send)


def _bearer_key(scope: Scope) -> str | None:
    # The same reading as HTTPBearer: scheme "Bearer" (any case), then the credentials.
    for name, value in scope["headers"]:
        if name == b"authorization":
            header = bytes(value).decode("latin-1")
            scheme, _, credentials = header.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


Submitter = Annotated[Principal, Depends(authorize(CLASSIFY))]
Reviewer = Annotated[Principal, Depends(authorize(REVIEW))]
Admin = Annotated[Principal, Depends(authorize(MANAGE))]
Reader = Annotated[Principal | None, Depends(authorize(READ, open_setting="open_read_routes"))]
MetricsReader = Annotated[Principal | None, Depends(authorize(READ, open_setting="open_metrics"))]
