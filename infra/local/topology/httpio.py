"""Small HTTP helpers shared by the servers (standard library only)."""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from typing import IO, Any


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a peer goes away."""

    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)):
            return
        logging.getLogger("http").error("request from %s failed", client_address, exc_info=True)


def read_body(rfile: IO[bytes], headers, limit: int) -> bytes:
    """The request body, by Content-Length or chunked transfer coding; ValueError past ``limit``."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        out = bytearray()
        while True:
            line = rfile.readline(65537)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Trailers, up to the blank line.
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            if len(out) + size > limit:
                raise ValueError(f"body over {limit} bytes")
            out += rfile.read(size)
            rfile.readline(3)  # CRLF after the chunk
    length = int(headers.get("Content-Length") or 0)
    if length > limit:
        raise ValueError(f"body over {limit} bytes")
    return rfile.read(length) if length else b""


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float = 10.0) -> tuple[int, Any]:
    """One request; the status and the body parsed as JSON (or text when it is not JSON)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")
