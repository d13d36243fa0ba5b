"""Request limits: body size and uploads in progress (ASGI middleware), a per-key rate limit."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_body
from service.errors import RateLimited


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.

    An HTTPException, because FastAPI turns any other error raised while it reads the body
    into a 400; this way the error handlers answer 413 in the one shape.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")
        self.limit = limit


class BodyLimitMiddleware:
    """Answers 413 for bodies over the limit, by Content-Length or while streaming.

    Content-Length is checked first so an honest oversized request costs nothing; the
    streamed count catches chunked bodies and clients that understate the length.
    ``limit_for(path)`` lets file uploads have their own, larger limit.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await _send_413(send, limit)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_413(send, limit)


class UploadSlots:
    """At most ``per_key`` uploads streaming at once for each key (0: no cap).

    Runs after authentication (it reads the key name the auth middleware left in the scope)
    and before the body is read: the upload over the cap gets 429 without a byte received.
    A slot is held until the answer is sent. All in the event loop, so no lock is needed.
    """

    retry_after = 5

    def __init__(self, app: ASGIApp, per_key: int, applies: Callable[[Scope], bool]) -> None:
        self.app = app
        self.per_key = per_key
        self.applies = applies
        self._active: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        key = scope.get("state", {}).get("principal_name")
        if scope["type"] != "http" or self.per_key <= 0 or key is None or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        if self._active.get(key, 0) >= self.per_key:
            await _send_error(
                send,
                429,
                error_body(
                    "rate_limited",
                    f"This key already has {self.per_key} uploads in progress.",
                    429,
                    {"uploads_in_progress": self.per_key, "retry_after": self.retry_after},
                ),
                [(b"retry-after", str(self.retry_after).encode())],
            )
            return
        self._active[key] = self._active.get(key, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self._active[key] - 1
            if left:
                self._active[key] = left
            else:
                del self._active[key]


async def _send_413(send: Send, limit: int) -> None:
    await _send_error(
        send,
        413,
        error_body(
            "payload_too_large",
            f"The request body is larger than {limit} bytes.",
            413,
            {"limit_bytes": limit},
        ),
    )


async def _send_error(
    send: Send,
    status: int,
    error: dict[str, object],
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    # Connection: close, since the request's body is left unread.
    body = json.dumps(error).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """At most ``per_minute`` records per key in any 60-second window (0 disables it).

    A request costs its number of records (a batch of 1,000 costs 1,000; any other call 1),
    so the limit bounds the work a key can ask for, not the number of calls. A single call
    that costs more than the whole limit is let into an empty window (and then fills it),
    so a key whose limit is below ``max_batch_size`` can still send full batches, slowly.

    In-process: each worker process counts its own requests, so with N workers a key gets up
    to N times the limit; one worker per container is the deployment this assumes.
    """

    window = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        # Per key: (time, cost) of each charge in the window, and their total cost.
        self._hits: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, key: str, cost: int = 1) -> None:
        """Charge ``cost`` records to ``key``; raise :class:`RateLimited` when over the limit."""
        if self.per_minute <= 0 or cost <= 0:
            return
        cost = min(cost, self.per_minute)
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            total = self._totals.get(key, 0)
            while hits and hits[0][0] <= now - self.window:
                total -= hits.popleft()[1]
            self._totals[key] = total
            if total + cost > self.per_minute:
                # When enough of the window's charges expire for this one to fit.
                freed, until = total + cost - self.per_minute, hits[0][0]
                for at, spent in hits:
                    freed -= spent
                    until = at
                    if freed <= 0:
                        break
                retry_after = max(1, int(until + self.window - now + 0.999))
                raise RateLimited(
                    f"More than {self.per_minute} records per minute for this key.",
                    limit_per_minute=self.per_minute,
                    retry_after=retry_after,
                )
            hits.append((now, cost))
            self._totals[key] = total + cost
