"""Request ids, Prometheus metrics, the one structured log line per request, text fingerprints.

Metrics live in a registry owned by each app, so two apps in one process (tests, a restart
in the same interpreter) never share or double-register counters. Routes are labelled by
their template (``/v1/taxonomy/{code}``), never the raw path, to keep label sets bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("service.api.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
REQUEST_ID_HEADER = "x-request-id"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The service's Prometheus metrics, in their own registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "iccs_http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "iccs_http_request_duration_seconds",
            "HTTP request latency by method, route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.classifications = Counter(
            "iccs_classifications_total",
            "Classified records by decision status and source (model or review memory).",
            ["status", "source"],
            registry=self.registry,
        )
        self.rescoring = Counter(
            "iccs_review_rescoring_total",
            "Re-scoring passes over a list's pending items after a review decision, by "
            "outcome (ok, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "iccs_model_info",
            "The loaded model: 1 for the version being served.",
            ["model_version", "taxonomy_version"],
            registry=self.registry,
        )
        self.cold_start = Gauge(
            "iccs_startup_seconds",
            "Seconds the last startup took to load the model and open the database.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The exposition text for GET /metrics."""
        return generate_latest(self.registry)


class TextFingerprint:
    """Short keyed fingerprint of a text for the logs: HMAC-SHA256 with a secret.

    Operators can tell that two log lines are about the same text without the text being
    logged. A bare hash would let anyone who reads the logs test candidate texts ("ASSLT
    W/DW" is short and common); without the secret they cannot.
    """

    length = 16  # hex characters: 64 bits

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __call__(self, text: str) -> str:
        """The fingerprint of ``text``."""
        data = text.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()[: self.length]


FINGERPRINT_KEY_FILE = "fingerprint.key"


def fingerprint_secret(configured: str | None, state_dir: Path) -> bytes:
    """The configured secret, or this installation's own (made once in ``state_dir``, 0600)."""
    if configured:
        return configured.encode("utf-8")
    path = state_dir / FINGERPRINT_KEY_FILE
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made by an earlier start (or a concurrent one)
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    for _ in range(50):  # a concurrent first start may still be writing it
        text = path.read_text("ascii").strip()
        if text:
            return bytes.fromhex(text)
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty; delete it to make a new secret.")


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched`` (keeps label sets bounded)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return "unmatched"
    # An included router's route knows only its own part ("/classify"); the include prefix
    # ("/v1") is the leading segments of the real path, which never hold parameters here.
    own = template.strip("/").split("/") if template.strip("/") else []
    real = str(scope.get("path", "")).strip("/").split("/")
    prefix = real[: max(0, len(real) - len(own))]
    return "/" + "/".join(prefix + own) if prefix or own else "/"


class RequestContextMiddleware:
    """Gives each request an id, times it, counts it and logs one structured line.

    Routes add their own fields (model version, decision, code, confidence, text fingerprint
    and length: never the text) to ``request.state.log_fields``.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        fields: dict[str, Any] = {}
        state["log_fields"] = fields
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            labels = (scope["method"], route, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(elapsed)
            line = {
                "request_id": request_id,
                "method": scope["method"],
                "route": route,
                "http_status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "key": state.get("principal_name"),
                **fields,
            }
            access_log.info(json.dumps(line, separators=(",", ":"), default=str))


def _incoming_request_id(scope: Scope) -> str | None:
    # A caller's id is echoed only when it is short and plain, so it is safe to log.
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            return text if _REQUEST_ID_RE.match(text) else None
    return None
