"""A signing reverse proxy in front of followup-local, as a webhook sender signs.

Every request is forwarded as it came (method, path, query, headers, raw body), except that a
request whose `X-Signature` is the placeholder `SIGN_ME` (what the contract test's configuration
sends as its credentials) and that carries an `X-Timestamp` has both replaced by a valid signature
of its raw body at the current wall clock: what a well-behaved sender does. Any other request,
with a missing, made-up or malformed signature, is forwarded unchanged, so the service's 401 for
it is what the caller sees. Standard library only.

    python3 signing_proxy.py UPSTREAM_URL [--secret S]   # prints its own URL on the first line
"""

import argparse
import hashlib
import hmac
import http.client
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# The credentials tests/contract/schemathesis.toml gives: the placeholder this proxy signs.
SIGN_ME = "SIGN_ME"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def resign(headers: list[tuple[str, str]], body: bytes, secret: str) -> list[tuple[str, str]]:
    """The headers with a valid signature, when they ask for one (`X-Signature: SIGN_ME`)."""
    named = {k.lower(): v for k, v in headers}
    if named.get("x-signature") != SIGN_ME or "x-timestamp" not in named:
        return headers
    now = str(int(time.time()))
    kept = [(k, v) for k, v in headers if k.lower() not in ("x-timestamp", "x-signature")]
    return kept + [("X-Timestamp", now), ("X-Signature", sign(secret, now, body))]


def handler_for(upstream: str, secret: str):
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host", "content-length"}]
            headers = resign(headers, body, secret)
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", target.netloc)
                for k, v in headers:
                    conn.putheader(k, v)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                answer = conn.getresponse()
                payload = answer.read()
            finally:
                conn.close()
            self.send_response_only(answer.status, answer.reason)
            for k, v in answer.getheaders():
                if k.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def __getattr__(self, name):
            # Every method, including TRACE and made-up ones, goes upstream as it is.
            if name.startswith("do_"):
                return self.forward
            raise AttributeError(name)

    return Handler


def serve(upstream: str, secret: str, addr=("127.0.0.1", 0)) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(addr, handler_for(upstream, secret))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream")
    parser.add_argument("--secret", default="local-dev-secret")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = serve(args.upstream, args.secret, ("127.0.0.1", args.port))
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
