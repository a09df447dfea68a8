"""Starts the whole topology (infra/local/run.py) once for the session on free ports, with the
virtual clock, and stops it; every wait polls with a deadline, and a watchdog ends the session."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

HERE = Path(__file__).resolve().parent
LOCAL = HERE.parent
REPO = LOCAL.parents[1]
EVENTS = REPO / "events"

START_TIMEOUT_S = 90  # moto, the stand-up and six cold starts
SESSION_TIMEOUT_S = float(os.environ.get("FOLLOWUP_INFRA_TEST_TIMEOUT", "300"))
STEP_TIMEOUT_S = 15  # one wait for an effect to show


_CHILDREN: list[subprocess.Popen] = []


def pytest_configure(config) -> None:
    """The session's watchdog: whatever hangs, the topology and the session end."""

    def watchdog() -> None:
        time.sleep(SESSION_TIMEOUT_S)
        sys.stderr.write(f"\ninfra/local tests: over {SESSION_TIMEOUT_S:.0f} s; stopping\n")
        for p in _CHILDREN:
            p.kill()
        os._exit(3)

    threading.Thread(target=watchdog, name="watchdog", daemon=True).start()


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def poll(what: str, probe: Callable[[], Any], timeout: float = STEP_TIMEOUT_S, every: float = 0.2) -> Any:
    """``probe()`` until it returns something truthy; fails naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"{what}: not within {timeout:.0f} s (last probe: {last!r})")


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """Signed requests to the front (SPEC §5) and the control endpoints."""

    def __init__(self, url: str, secret: str):
        self.url = url
        self.secret = secret

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 35) -> Response:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, raw, hs = r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, raw, hs = e.code, e.read(), dict(e.headers)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return Response(status, parsed, {k.lower(): v for k, v in hs.items()})

    def sign(self, raw: bytes, secret: str | None = None, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        mac = hmac.new((secret or self.secret).encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        return {"X-Timestamp": ts, "X-Signature": f"v1={mac}"}

    def post(self, path: str, envelope: dict[str, Any] | bytes, base64: bool = False, secret: str | None = None) -> Response:
        raw = envelope if isinstance(envelope, bytes) else json.dumps(envelope, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **self.sign(raw, secret)}
        if base64:
            headers["X-Local-Base64"] = "1"
        return self.request("POST", path, raw, headers)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.request(method, f"/_local/{path}", json.dumps(body).encode() if body is not None else None,
                         {"Content-Type": "application/json"} if body is not None else {}, timeout=120)
        assert r.status == 200, f"{method} /_local/{path}: {r.status} {r.body}"
        return r.body


class Running:
    def __init__(self, proc: subprocess.Popen, api: Api, log_dir: Path):
        self.proc = proc
        self.api = api
        self.log_dir = log_dir

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tails(self, lines: int = 30) -> str:
        out = []
        for f in sorted(self.log_dir.glob("*.log")) + [self.log_dir / "topology.err"]:
            if f.exists():
                tail = f.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"---- {f.name}\n" + "\n".join(tail))
        return "\n".join(out)


#: The `SmsSenderId` parameter the topology is stood up with.
SENDER_ID = "FollowUpLocal"


@pytest.fixture(scope="session")
def topology(tmp_path_factory) -> Running:
    log_dir = tmp_path_factory.mktemp("topology-logs")
    secret = "test-" + secrets.token_hex(12)
    err = open(log_dir / "topology.err", "wb")
    proc = subprocess.Popen(
        [sys.executable, str(LOCAL / "run.py"), "--addr", "127.0.0.1:0", "--moto-port", "0", "--virtual-clock", "now",
         "--secret", secret, "--log-dir", str(log_dir), "--exit-with-parent",
         # A sender id other than the default, so the test sees the parameter reach the functions.
         "--parameter", f"SmsSenderId={SENDER_ID}",
         "--policy", str(Path(__file__).with_name("policy.toml"))],
        stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, cwd=REPO,
    )

    _CHILDREN.append(proc)

    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in iter(proc.stdout.readline, b"")], daemon=True).start()
    got: dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT_S
    while not {"front", "webhook secret"} <= got.keys():
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            proc.kill()
            err.close()
            pytest.fail(f"the topology did not start: {(log_dir / 'topology.err').read_text(errors='replace')[-3000:]}")
        try:
            line = lines.get(timeout=min(left, 0.5)).decode().strip()
        except queue.Empty:
            continue
        key, _, value = line.partition(": ")
        got[key] = value
    assert got["webhook secret"] == secret
    running = Running(proc, Api(got["front"], secret), log_dir)
    yield running
    running.stop()
    err.close()


@pytest.fixture
def api(topology: Running) -> Api:
    return topology.api


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed and "topology" in item.funcargs:
        rep.sections.append(("topology logs (tails)", item.funcargs["topology"].log_tails()))
