"""The Lambda service for the six functions: one instance (child process) per function behind a
Lambda Runtime API emulator, synchronous (RequestResponse) and asynchronous (Event) invocations.

Each function binary runs exactly as on Lambda: ``lambda_runtime`` polls
``GET /2018-06-01/runtime/invocation/next`` at ``AWS_LAMBDA_RUNTIME_API`` and answers with
``POST .../invocation/{id}/response`` or ``.../error``; a boot failure is reported on
``POST /2018-06-01/runtime/init/error``. One function has one instance, so its invocations are
serialised, as one Lambda execution environment serialises them. An invocation that outlives the
function's ``Timeout`` fails with ``Sandbox.Timedout`` and the instance is replaced (a cold start
on the next invocation), as Lambda does; so does an instance whose process exits.

Asynchronous invocations (what EventBridge Scheduler and EventBridge rules make) are queued per
function and retried twice on error, one and then two minutes later, as Lambda's default
asynchronous retry policy does; an event that still fails goes to the function's dead-letter
queue (``DeadLetterConfig``) with the ``RequestID``, ``ErrorCode`` and ``ErrorMessage`` attributes.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import queue
import re
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Sequence

from .access import DUMMY_CREDENTIALS, Credentials
from .httpio import QuietServer, read_body
from .procs import LineSink, stop_process
from .stack import FunctionSpec

log = logging.getLogger("lambda")

API = "/2018-06-01/runtime"
INIT_TIMEOUT_S = 10.0  # Lambda's limit on the init phase
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # synchronous invocation payload limit
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)  # Lambda's asynchronous retries: 2, about 1 and 2 minutes apart
ASYNC_MAX_EVENT_AGE_S = 6 * 3600


def trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


class Invocation:
    """One request to a function: its payload, and when done, its response or its error."""

    def __init__(self, payload: bytes, source: str):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.source = source
        self.trace = trace_id()
        self.created = time.time()
        self.dispatched: float | None = None
        self.deadline: float | None = None
        self.done = threading.Event()
        self.response: bytes | None = None
        self.error: dict[str, str] | None = None
        self.error_kind: str | None = None  # "function" (the handler said so) or "service" (timeout, exit, ...)
        self._lock = threading.Lock()

    def finish(self, response: bytes | None = None, error: dict[str, str] | None = None, kind: str = "function") -> bool:
        with self._lock:
            if self.done.is_set():
                return False
            self.response, self.error = response, error
            self.error_kind = kind if error else None
            self.done.set()
            return True

    @property
    def ok(self) -> bool:
        return self.done.is_set() and self.error is None

    def result_json(self) -> Any:
        if self.error is not None:
            return {"errorType": self.error.get("errorType"), "errorMessage": self.error.get("errorMessage")}
        try:
            return json.loads(self.response or b"null")
        except ValueError:
            return (self.response or b"").decode("utf-8", "replace")


class AsyncEvent:
    """An event invocation: retried on error, dead-lettered when the retries are spent."""

    def __init__(self, payload: bytes, source: str):
        self.payload = payload
        self.source = source
        self.received = time.time()
        self.attempts: list[Invocation] = []
        self.first_done = threading.Event()
        self.settled = threading.Event()  # succeeded, or dead-lettered
        self.dead_lettered = False

    @property
    def first(self) -> Invocation | None:
        return self.attempts[0] if self.attempts else None


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_RuntimeApiServer"

    def log_message(self, fmt: str, *args: Any) -> None:  # the function's own log says enough
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _status(self, status: int, body: Any = None) -> None:
        self._send(status, json.dumps(body if body is not None else {"status": "OK"}).encode())

    def do_GET(self) -> None:
        inst = self.server.instance
        if self.path != f"{API}/invocation/next":
            return self._status(404, {"errorType": "InvalidRoute", "errorMessage": self.path})
        inv = inst.function.next_for(inst)
        if inv is None:
            # The instance is being shut down: no more events for this process.
            self.close_connection = True
            return self._status(410, {"errorType": "Local.InstanceStopped", "errorMessage": "instance stopped"})
        spec = inst.function.spec
        headers = {
            "Lambda-Runtime-Aws-Request-Id": inv.id,
            "Lambda-Runtime-Deadline-Ms": str(int((inv.deadline or time.time()) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": spec.arn,
            "Lambda-Runtime-Trace-Id": inv.trace,
        }
        try:
            self._send(200, inv.payload, headers)
        except OSError:
            inst.function.requeue(inst, inv)
            raise

    def do_POST(self) -> None:
        inst = self.server.instance
        try:
            body = read_body(self.rfile, self.headers, limit=MAX_RESPONSE_BYTES + 1)
        except ValueError as e:
            return self._status(400, {"errorType": "InvalidRequest", "errorMessage": str(e)})
        if self.path == f"{API}/init/error":
            inst.init_error = _diagnostic(body, self.headers.get("Lambda-Runtime-Function-Error-Type"), "Runtime.InitError")
            log.error("%s: init error: %s", inst.function.spec.name, inst.init_error)
            return self._status(202)
        m = re.fullmatch(rf"{API}/invocation/([^/]+)/(response|error)", self.path)
        if not m:
            return self._status(404, {"errorType": "InvalidRoute", "errorMessage": self.path})
        request_id, kind = m.groups()
        if kind == "response":
            if len(body) > MAX_RESPONSE_BYTES:
                inst.function.complete(inst, request_id, error={
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."})
                return self._status(413, {"errorType": "RequestEntityTooLarge", "errorMessage": "response too large"})
            status = inst.function.complete(inst, request_id, response=body)
        else:
            error = _diagnostic(body, self.headers.get("Lambda-Runtime-Function-Error-Type"), "Unhandled")
            status = inst.function.complete(inst, request_id, error=error)
        if status == 202:
            return self._status(202)
        return self._status(400, {"errorType": "InvalidRequestID", "errorMessage": f"unknown or finished request {request_id}"})


def _diagnostic(body: bytes, header_type: str | None, default_type: str) -> dict[str, str]:
    try:
        d = json.loads(body or b"{}")
    except ValueError:
        d = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(d, dict):
        d = {"errorMessage": str(d)}
    return {"errorType": str(d.get("errorType") or header_type or default_type), "errorMessage": str(d.get("errorMessage", ""))}


class _RuntimeApiServer(QuietServer):
    def __init__(self, instance: "Instance"):
        self.instance = instance
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)


class Instance:
    """One execution environment: the function's process and the Runtime API it polls."""

    def __init__(self, function: "LocalFunction", generation: int):
        self.function = function
        self.generation = generation
        self.alive = True
        self.ready = False  # polled for its first event: init is over
        self.init_error: dict[str, str] | None = None
        self.current: Invocation | None = None
        self.started = time.monotonic()
        self.server = _RuntimeApiServer(self)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                         name=f"runtime-api-{function.short}", daemon=True).start()
        env = function.environment(f"127.0.0.1:{self.port}")
        self.proc = subprocess.Popen([*function.emulator, str(function.binary)], env=env, cwd=str(function.binary.parent),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     # Its own session: a Ctrl-C on the terminal reaches the topology, which
                                     # stops the instances itself; an orphan exits when its Runtime API is gone.
                                     start_new_session=True)
        function.sink.forward(function.short, self.proc.stdout)
        threading.Thread(target=self._watch, name=f"instance-{function.short}", daemon=True).start()

    def _watch(self) -> None:
        code = self.proc.wait()
        self.function.instance_exited(self, code)
        self.server.shutdown()
        self.server.server_close()

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        stop_process(self.proc, grace=2.0)


class LocalFunction:
    """One function of the stack, as the Lambda service runs it."""

    def __init__(self, spec: FunctionSpec, binary: Path, endpoint: str, region: str, sink: LineSink,
                 dead_letter: Callable[["LocalFunction", AsyncEvent, Invocation], None],
                 emulator: Sequence[str] = (), credentials: Credentials | None = None):
        self.spec = spec
        self.binary = binary
        self.emulator = tuple(emulator)  # e.g. qemu-user for a binary built for another machine
        self.credentials = credentials or DUMMY_CREDENTIALS
        self.endpoint = endpoint
        self.region = region
        self.sink = sink
        self.short = spec.binary
        self._dead_letter = dead_letter
        self.cond = threading.Condition()
        self.pending: deque[Invocation] = deque()
        self.instance: Instance | None = None
        self.generation = 0
        self.stopping = False
        self.stats = {"invocations": 0, "errors": 0, "timeouts": 0, "cold_starts": 0, "dead_lettered": 0}
        self._last_spawn = 0.0
        self._respawn_timer: threading.Timer | None = None
        self._events: queue.Queue[AsyncEvent | None] = queue.Queue()
        self._retry_timers: set[threading.Timer] = set()
        self._event_worker = threading.Thread(target=self._run_events, name=f"events-{self.short}", daemon=True)
        self._event_worker.start()

    # -- the environment Lambda gives the process

    def environment(self, runtime_api: str) -> dict[str, str]:
        """The function's own variables (from the template) and those the Lambda service sets."""
        env = dict(self.spec.environment)
        day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
        lc = self.spec.logging_config
        env.update({
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{day}/[$LATEST]{secrets.token_hex(16)}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            # The execution role's credentials, as on Lambda: a session of the function's own role
            # when IAM is enforced on moto (access.py), dummy ones when it is not.
            **self.credentials.environment(),
            # Not set on Lambda: points the SDK clients at the emulator (AwsSettings honours it).
            "AWS_ENDPOINT_URL": self.endpoint,
            "_HANDLER": "bootstrap",
            "LAMBDA_TASK_ROOT": str(self.binary.parent),
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        })
        if lc.get("LogFormat"):
            env["AWS_LAMBDA_LOG_FORMAT"] = lc["LogFormat"]
        if lc.get("LogFormat") == "JSON" and lc.get("ApplicationLogLevel"):
            env["AWS_LAMBDA_LOG_LEVEL"] = lc["ApplicationLogLevel"]
        return env

    # -- instances

    def start(self) -> None:
        with self.cond:
            self._ensure_instance()

    def _ensure_instance(self) -> None:
        """With the lock held: an instance exists or is starting."""
        if self.stopping or (self.instance is not None and self.instance.alive) or self._respawn_timer is not None:
            return
        # An instance that keeps dying is not restarted in a tight loop.
        wait = max(0.0, self._last_spawn + 1.0 - time.monotonic())
        if wait > 0:
            self._respawn_timer = threading.Timer(wait, self._respawn)
            self._respawn_timer.daemon = True
            self._respawn_timer.start()
            return
        self._spawn()

    def _respawn(self) -> None:
        with self.cond:
            self._respawn_timer = None
            if self.pending:
                self._ensure_instance()

    def _spawn(self) -> None:
        self.generation += 1
        self._last_spawn = time.monotonic()
        self.stats["cold_starts"] += 1
        self.instance = Instance(self, self.generation)
        log.info("%s: cold start (instance %d, pid %d)", self.spec.name, self.generation, self.instance.proc.pid)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not (self.instance and self.instance.ready):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.spec.name} did not poll for an event within {timeout:.0f} s")
                if self.instance is None or not self.instance.alive:
                    err = self.instance.init_error if self.instance else None
                    raise RuntimeError(f"{self.spec.name} exited during init: {err or 'see its log'}")
                self.cond.wait(min(left, 0.2))

    def instance_exited(self, inst: Instance, code: int) -> None:
        with self.cond:
            inst.alive = False
            if not self.stopping:
                log.warning("%s: instance %d exited with status %s", self.spec.name, inst.generation, code)
            cur = inst.current
            if cur is not None and not cur.done.is_set():
                cur.finish(error={"errorType": "Runtime.ExitError",
                                  "errorMessage": f"RequestId: {cur.id} Error: Runtime exited with error: exit status {code}"},
                           kind="service")
            elif not inst.ready and self.pending and not self.stopping:
                # The invocation that asked for this cold start fails with the init error.
                inv = self.pending.popleft()
                err = inst.init_error or {"errorType": "Runtime.ExitError",
                                          "errorMessage": f"RequestId: {inv.id} Error: Runtime exited during init: exit status {code}"}
                inv.finish(error=err, kind="service")
            inst.current = None
            if self.instance is inst:
                self.instance = None
            if self.pending and not self.stopping:
                self._ensure_instance()
            self.cond.notify_all()

    # -- the Runtime API's side

    def next_for(self, inst: Instance) -> Invocation | None:
        with self.cond:
            if not inst.ready:
                inst.ready = True
                self.cond.notify_all()
            if inst.current is not None and not inst.current.done.is_set():
                inst.current.finish(error={"errorType": "Runtime.InvalidState",
                                           "errorMessage": "the runtime asked for the next event without answering this one"},
                                    kind="service")
            inst.current = None
            while True:
                if not inst.alive or self.stopping or self.instance is not inst:
                    return None
                if self.pending:
                    inv = self.pending.popleft()
                    break
                self.cond.wait(0.5)
            inv.dispatched = time.time()
            inv.deadline = inv.dispatched + self.spec.timeout_s
            inst.current = inv
            self.stats["invocations"] += 1
            return inv

    def requeue(self, inst: Instance, inv: Invocation) -> None:
        with self.cond:
            if inst.current is inv:
                inst.current = None
            if not inv.done.is_set():
                self.pending.appendleft(inv)
                self.cond.notify_all()

    def complete(self, inst: Instance, request_id: str, response: bytes | None = None,
                 error: dict[str, str] | None = None) -> int:
        with self.cond:
            inv = inst.current
            if inv is None or inv.id != request_id:
                return 400
            inst.current = None
            if error:
                self.stats["errors"] += 1
                log.warning("%s: invocation %s failed: %s", self.spec.name, request_id, error)
            inv.finish(response=response, error=error, kind="function")
            self.cond.notify_all()
            return 202

    def check_deadlines(self) -> None:
        """Ends an invocation past the function's Timeout, and an init past Lambda's limit."""
        with self.cond:
            inst = self.instance
            if inst is None or not inst.alive:
                return
            inv = inst.current
            now = time.time()
            if inv is not None and inv.deadline is not None and now > inv.deadline:
                # Unanswered past the Timeout (even if its caller stopped waiting): the instance goes.
                self.stats["timeouts"] += 1
                self.stats["errors"] += 1
                inv.finish(error={"errorType": "Sandbox.Timedout",
                                  "errorMessage": f"RequestId: {inv.id} Error: Task timed out after {self.spec.timeout_s:.2f} seconds"},
                           kind="service")
                inst.current = None
                inst.alive = False  # hands out no further event while it dies
                log.error("%s: invocation %s timed out after %d s; replacing the instance", self.spec.name, inv.id, self.spec.timeout_s)
                inst.kill()
                if self.pending:
                    self._ensure_instance()
            elif not inst.ready and time.monotonic() - inst.started > INIT_TIMEOUT_S:
                inst.init_error = {"errorType": "Runtime.InitTimeout",
                                   "errorMessage": f"init did not finish within {INIT_TIMEOUT_S:.0f} s"}
                log.error("%s: init timed out; replacing the instance", self.spec.name)
                inst.kill()

    # -- invocations

    def invoke(self, payload: bytes, source: str, wait: float | None = None) -> Invocation:
        """A synchronous invocation. ``wait`` bounds how long the caller waits (queue and run); on
        expiry a queued invocation is withdrawn and one running is left to finish or time out."""
        inv = Invocation(payload, source)
        with self.cond:
            if self.stopping:
                inv.finish(error={"errorType": "Local.Stopping", "errorMessage": "the topology is stopping"}, kind="service")
                return inv
            self.pending.append(inv)
            self._ensure_instance()
            self.cond.notify_all()
        if not inv.done.wait(wait):
            with self.cond:
                if inv in self.pending:
                    self.pending.remove(inv)
            inv.finish(error={"errorType": "Local.CallerTimeout",
                              "errorMessage": f"no answer within {wait:.0f} s"}, kind="service")
        return inv

    def invoke_event(self, payload: bytes, source: str) -> AsyncEvent:
        """An asynchronous (Event) invocation; the caller may wait on ``first_done``."""
        ev = AsyncEvent(payload, source)
        self._events.put(ev)
        return ev

    def _run_events(self) -> None:
        while True:
            ev = self._events.get()
            if ev is None:
                return
            # Bounded by the function's timeout: the deadline check ends a longer run.
            inv = self.invoke(ev.payload, ev.source, wait=self.spec.timeout_s + INIT_TIMEOUT_S + 30)
            ev.attempts.append(inv)
            ev.first_done.set()
            if inv.ok:
                ev.settled.set()
                continue
            n = len(ev.attempts)
            if self.stopping:
                ev.settled.set()
                continue
            if n <= len(ASYNC_RETRY_DELAYS_S) and time.time() - ev.received < ASYNC_MAX_EVENT_AGE_S:
                delay = ASYNC_RETRY_DELAYS_S[n - 1]
                log.warning("%s: event from %s failed (%s); retry %d in %.0f s", self.spec.name, ev.source,
                            inv.error, n, delay)
                t = threading.Timer(delay, self._retry, (ev,))
                t.daemon = True
                self._retry_timers.add(t)
                t.start()
            else:
                self.stats["dead_lettered"] += 1
                ev.dead_lettered = True
                try:
                    self._dead_letter(self, ev, inv)
                finally:
                    ev.settled.set()

    def _retry(self, ev: AsyncEvent) -> None:
        self._retry_timers = {t for t in self._retry_timers if t.is_alive()}
        if not self.stopping:
            self._events.put(ev)

    def queued(self) -> int:
        with self.cond:
            return len(self.pending) + self._events.qsize()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            inst = self.instance
            for inv in self.pending:
                inv.finish(error={"errorType": "Local.Stopping", "errorMessage": "the topology is stopping"}, kind="service")
            self.pending.clear()
            if self._respawn_timer:
                self._respawn_timer.cancel()
            self.cond.notify_all()
        for t in list(self._retry_timers):
            t.cancel()
        self._events.put(None)
        if inst is not None:
            inst.stop()

    def describe(self) -> dict[str, Any]:
        with self.cond:
            inst = self.instance
            return {
                "name": self.spec.name,
                "arn": self.spec.arn,
                "binary": str(self.binary),
                "command": [*self.emulator, str(self.binary)],
                "memory_mb": self.spec.memory_mb,
                "timeout_s": self.spec.timeout_s,
                "dead_letter_arn": self.spec.dead_letter_arn,
                "pid": inst.proc.pid if inst and inst.alive else None,
                "runtime_api": f"127.0.0.1:{inst.port}" if inst and inst.alive else None,
                "queued": len(self.pending),
                **self.stats,
            }


class LambdaService:
    """Every function of the stack, and the deadline watch over their invocations."""

    def __init__(self, functions: dict[str, LocalFunction]):
        self.functions = functions
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watch_deadlines, name="lambda-deadlines", daemon=True)
        self._watch.start()

    def _watch_deadlines(self) -> None:
        while not self._stop.wait(0.1):
            for f in self.functions.values():
                f.check_deadlines()

    def by_arn(self, arn: str) -> LocalFunction | None:
        """The function an invocation names: its ARN (qualified or not) or its name; another
        account's or region's ARN names none of these."""
        for f in self.functions.values():
            if arn in (f.spec.arn, f.spec.name) or arn.startswith(f.spec.arn + ":"):
                return f
        return None

    def start(self, ready_timeout: float = 30.0) -> None:
        for f in self.functions.values():
            f.start()
        for f in self.functions.values():
            f.wait_ready(ready_timeout)

    def stop(self) -> None:
        self._stop.set()
        threads = [threading.Thread(target=f.stop) for f in self.functions.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)


def binary_path(bin_dir: Path, spec: FunctionSpec, shipped: bool = False) -> Path:
    """The function's executable: ``<bin_dir>/<binary>`` of a host build, or, ``shipped``, the
    ``bootstrap`` of its release zip unpacked to ``<bin_dir>/<binary>/`` (what Lambda runs)."""
    p = bin_dir / spec.binary / "bootstrap" if shipped else bin_dir / spec.binary
    if not (p.is_file() and os.access(p, os.X_OK)):
        how = "make test-shipped unpacks make build's zips there" if shipped else f"build it with cargo build -p followup-fn-{spec.binary}"
        raise FileNotFoundError(f"{p}: no function binary; {how}")
    return p


_ELF_MACHINES = {62: "x86_64", 183: "aarch64"}  # e_machine


def elf_machine(binary: Path) -> str | None:
    """The machine an ELF executable is built for (``x86_64``, ``aarch64``), or None."""
    with open(binary, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return None
    return _ELF_MACHINES.get(int.from_bytes(head[18:20], "little" if head[5] == 1 else "big"))


def default_emulator(binary: Path) -> tuple[str, ...]:
    """What runs ``binary`` on this machine: nothing for its own architecture; for an aarch64
    binary on another host, qemu-user (``qemu-aarch64-static``, Debian's qemu-user-static) with
    the aarch64 glibc of Debian's libc6-arm64-cross as its library root."""
    machine = elf_machine(binary)
    if machine is None or machine == platform.machine():
        return ()
    qemu = shutil.which(f"qemu-{machine}-static") or shutil.which(f"qemu-{machine}")
    if qemu is None:
        raise FileNotFoundError(f"{binary} is built for {machine}: install qemu-user-static to run it here")
    root = Path(f"/usr/{machine}-linux-gnu")
    return (qemu, "-L", str(root)) if root.is_dir() else (qemu,)
