"""The HTTP API (API Gateway, payload format 2.0) on 127.0.0.1.

Routes come from the HTTP API's OpenAPI body in the transformed template (what SAM generated from
each function's ``HttpApi`` events): method and path, path parameters such as
``/v1/cases/{case_id}``, ``ANY``, and the ``$default`` route. Matching follows API Gateway: the
most specific path first, a route's own method before ``ANY``, then ``$default``. Each request
goes to its function as the payload 2.0 event and the function's ``statusCode`` / ``headers`` /
``body`` come back as the HTTP response; a function error is API Gateway's 500 and no answer in
30 s (the integration timeout) its 503.

Routes with the ``AWS_IAM`` authorizer (the case routes) are passed through unsigned here: the
local front checks no SigV4 signature and adds no ``requestContext.authorizer``. The webhook
routes carry their own HMAC signature, which the functions check as on AWS.

Request paths under ``/_local/`` never reach the HTTP API: they are this topology's control
endpoints (clock, rules, SMS, commands; see the README).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from .httpio import QuietServer, read_body
from .runtime import LambdaService, LocalFunction

log = logging.getLogger("front")

INTEGRATION_TIMEOUT_S = 30.0  # HTTP API's maximum
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # HTTP API's payload limit
BASE64_REQUEST_HEADER = "x-local-base64"  # "1": hand the body to the function base64-encoded

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@dataclass
class Route:
    key: str  # "POST /v1/appointments", "GET /v1/cases/{case_id}", "$default"
    method: str  # upper case, or ANY
    path: str | None  # None for $default
    regex: re.Pattern | None
    params: list[str]
    greedy: bool
    function: LocalFunction
    iam: bool  # the route takes the AWS_IAM authorizer on AWS
    payload_version: str

    def specificity(self) -> tuple:
        # Fewer variables, no greedy variable, a longer literal path and an own method win.
        literal = len(re.sub(r"\{[^}]*\}", "", self.path or ""))
        return (self.greedy, len(self.params), -literal, self.method == "ANY")


def _function_arn(uri: str) -> str:
    m = re.search(r"/functions/(.+?)/invocations", uri)
    return m.group(1) if m else uri


def routes_from_openapi(body: dict[str, Any], lambdas: LambdaService) -> list[Route]:
    routes = []
    for path, item in (body.get("paths") or {}).items():
        for method, op in item.items():
            if method.lower() in _METHODS:
                m = method.upper()
            elif method == "x-amazon-apigateway-any-method":
                m = "ANY"
            else:
                continue
            integ = op.get("x-amazon-apigateway-integration") or {}
            arn = _function_arn(integ.get("uri", ""))
            fn = lambdas.by_arn(arn)
            if fn is None:
                raise ValueError(f"route {m} {path} integrates {arn}, which is no function of the stack")
            iam = any("AWS_IAM" in s for s in op.get("security") or [])
            version = str(integ.get("payloadFormatVersion", "2.0"))
            if path == "$default" or op.get("isDefaultRoute"):
                routes.append(Route("$default", "ANY", None, None, [], False, fn, iam, version))
                continue
            params, greedy = [], False
            pattern = ""
            for part in re.split(r"(\{[^}]+\})", path):
                v = re.fullmatch(r"\{([^}+]+)(\+?)\}", part)
                if v:
                    params.append(v.group(1))
                    if v.group(2):
                        greedy = True
                        pattern += f"(?P<{_group(v.group(1))}>.+)"
                    else:
                        pattern += f"(?P<{_group(v.group(1))}>[^/]+)"
                else:
                    pattern += re.escape(part)
            key = f"{m} {path}"
            routes.append(Route(key, m, path, re.compile(pattern), params, greedy, fn, iam, version))
    return routes


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def match(routes: list[Route], method: str, path: str) -> tuple[Route | None, dict[str, str]]:
    best: tuple[tuple, Route, dict[str, str]] | None = None
    for r in routes:
        if r.regex is None or r.method not in (method, "ANY"):
            continue
        m = r.regex.fullmatch(path)
        if not m:
            continue
        params = {p: urllib.parse.unquote(m.group(_group(p))) for p in r.params}
        if best is None or r.specificity() < best[0]:
            best = (r.specificity(), r, params)
    if best:
        return best[1], best[2]
    for r in routes:
        if r.key == "$default":
            return r, {}
    return None, {}


class Front:
    def __init__(self, host: str, port: int, routes: list[Route], api_id: str, account: str, region: str,
                 control: Callable[[str, str, str, bytes], tuple[int, Any]]):
        self.routes = routes
        self.api_id = api_id
        self.account = account
        self.region = region
        self.control = control
        self.domain = f"{api_id}.execute-api.{region}.amazonaws.com"
        front = self

        class Handler(_FrontHandler):
            pass

        Handler.front = front
        self.server = QuietServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="front", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def event(self, route: Route, params: dict[str, str], method: str, raw_path: str, raw_query: str,
              headers: list[tuple[str, str]], body: bytes, source_ip: str, force_base64: bool) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        request_id = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")[:16]
        merged: dict[str, str] = {}
        cookies: list[str] = []
        for k, v in headers:
            k = k.lower()
            if k == BASE64_REQUEST_HEADER:
                continue
            if k == "cookie":
                cookies.extend(c.strip() for c in v.split(";") if c.strip())
                continue
            merged[k] = f"{merged[k]},{v}" if k in merged else v
        merged["host"] = self.domain
        merged.setdefault("x-forwarded-for", source_ip)
        merged.setdefault("x-forwarded-port", "443")
        merged.setdefault("x-forwarded-proto", "https")
        merged.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}")
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.key,
            "rawPath": raw_path,
            "rawQueryString": raw_query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = merged
        if raw_query:
            qs: dict[str, str] = {}
            for k, v in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
                qs[k] = f"{qs[k]},{v}" if k in qs else v
            event["queryStringParameters"] = qs
        event["requestContext"] = {
            "accountId": self.account,
            "apiId": self.api_id,
            "domainName": self.domain,
            "domainPrefix": self.api_id,
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        }
        if params:
            event["pathParameters"] = params
        if body:
            # API Gateway base64-encodes a body it cannot pass as text.
            is_text = not force_base64
            if is_text:
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    is_text = False
            event["body"] = text if is_text else base64.b64encode(body).decode()
            event["isBase64Encoded"] = not is_text
        else:
            event["isBase64Encoded"] = False
        return event


def response_from(result: Any) -> tuple[int, dict[str, str], list[str], bytes]:
    """An HTTP API payload 2.0 response: a dict with statusCode, or any JSON (then 200, as JSON)."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for k, vs in (result.get("multiValueHeaders") or {}).items():
            headers[str(k)] = ",".join(str(v) for v in vs)
        body = result.get("body")
        if body is None:
            raw = b""
        elif result.get("isBase64Encoded"):
            raw = base64.b64decode(body)
        else:
            raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        return int(result["statusCode"]), headers, list(result.get("cookies") or []), raw
    return 200, {"content-type": "application/json"}, [], json.dumps(result).encode()


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    front: Front

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, cookies: list[str] | None = None,
              request_id: str | None = None) -> None:
        self.send_response(status)
        hs = {k.lower(): v for k, v in (headers or {}).items()}
        hs.setdefault("content-type", "application/json")
        for k, v in hs.items():
            if k in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(k, v)
        for c in cookies or []:
            self.send_header("set-cookie", c)
        if request_id:
            self.send_header("apigw-requestid", request_id)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode())

    def _handle(self) -> None:
        f = self.front
        split = urllib.parse.urlsplit(self.path)
        raw_path, raw_query = split.path or "/", split.query
        try:
            body = read_body(self.rfile, self.headers, MAX_REQUEST_BYTES)
        except ValueError:
            self.close_connection = True
            return self._json(413, {"message": "Request Entity Too Large"})
        if raw_path == "/_local" or raw_path.startswith("/_local/"):
            status, obj = f.control(self.command, raw_path, raw_query, body)
            return self._json(status, obj)
        route, params = match(f.routes, self.command, raw_path)
        if route is None:
            return self._json(404, {"message": "Not Found"})
        # route.iam: on AWS the request must be SigV4-signed by a caller the IAM authorizer allows;
        # locally it is passed through unsigned (see the module docstring).
        force_b64 = (self.headers.get(BASE64_REQUEST_HEADER) or "").strip().lower() in ("1", "true", "yes")
        event = f.event(route, params, self.command, raw_path, raw_query, list(self.headers.items()), body,
                        self.client_address[0], force_b64)
        request_id = event["requestContext"]["requestId"]
        inv = route.function.invoke(json.dumps(event).encode(), source=f"http:{route.key}", wait=INTEGRATION_TIMEOUT_S)
        if inv.error is not None:
            if inv.error.get("errorType") == "Local.CallerTimeout":
                return self._send(503, b'{"message":"Service Unavailable"}', request_id=request_id)
            return self._send(500, b'{"message":"Internal Server Error"}', request_id=request_id)
        try:
            result = json.loads(inv.response or b"null")
            status, headers, cookies, raw = response_from(result)
        except (ValueError, TypeError, KeyError) as e:
            log.error("%s answered a malformed response: %s", route.function.spec.name, e)
            return self._send(500, b'{"message":"Internal Server Error"}', request_id=request_id)
        self._send(status, raw, headers, cookies, request_id)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle
