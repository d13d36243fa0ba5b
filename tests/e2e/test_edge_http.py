"""The HTTP edge over a real socket: what a hostile client can make the server do."""

from __future__ import annotations

import socket
from typing import Any


def _raw_request(port: int, head: str, timeout: float = 10) -> str:
    """Send only a request head (no body) and return what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        data = b""
        try:
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass  # what came so far is the answer (nothing, when the server waits for a body)
    return data.decode("latin-1")


def test_unauthenticated_upload_is_answered_before_any_body_is_sent(live: Any) -> None:
    # The client announces 50 MB and sends none of it: a server that reads the body before
    # the key waits for it (and this times out); one that checks the key first answers 401.
    head = (
        "POST /v1/jobs HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{live.port}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        "Content-Length: 50000000\r\n"
        "\r\n"
    )
    answer = _raw_request(live.port, head)
    assert answer.startswith("HTTP/1.1 401"), answer[:200]
    assert '"error":"unauthenticated"' in answer
    assert "connection: close" in answer.lower()
