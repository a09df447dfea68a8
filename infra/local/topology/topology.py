"""The deployed topology on one machine: moto, the stack on it, the six functions, the HTTP API,
Scheduler and the EventBridge rules, plus the control endpoints under ``/_local/``."""

from __future__ import annotations

import json
import logging
import secrets
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import access
from . import stack as stackmod
from .front import Front, routes_from_openapi
from .observe import OpsObserver, SmsLog, peek_queue
from .procs import LineSink, MotoServer
from .runtime import AsyncEvent, Invocation, LambdaService, LocalFunction, binary_path, default_emulator
from .timers import Clock, RulesService, SchedulerService, iso, parse_time

log = logging.getLogger("topology")

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Options:
    template: Path = REPO / "template.yaml"
    bin_dir: Path = REPO / "target" / "debug"
    host: str = "127.0.0.1"
    port: int = 0
    moto_port: int = 0
    stack_name: str = stackmod.STACK_NAME
    secret: str | None = None
    virtual_start: datetime | None = None  # None: the real clock
    log_dir: Path | None = None
    python: str = sys.executable
    parameters: dict[str, str] | None = None
    moto_access_log: bool = False
    policy: Path | None = None  # the policy file every function reads (FOLLOWUP_CONFIG); None: the SPEC's
    # bin_dir holds make build's zips unpacked (<binary>/bootstrap), not a host build's binaries.
    shipped: bool = False
    emulator: tuple[str, ...] | None = None  # what runs each binary; None: chosen by its architecture
    iam: bool = True  # each function on its own role's session, moto's IAM check on (access.py)


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error": {"code": code, "message": message}}


class Topology:
    def __init__(self, opts: Options):
        self.opts = opts
        self.secret = opts.secret or secrets.token_hex(16)
        self.sink = LineSink(opts.log_dir)
        self.moto: MotoServer | None = None
        self.lambdas: LambdaService | None = None
        self.front: Front | None = None
        self.scheduler: SchedulerService | None = None
        self.rules: RulesService | None = None
        self.clock = Clock(opts.virtual_start)
        self._stopped = threading.Event()

    # -- start and stop

    def start(self) -> None:
        o = self.opts
        self.moto = MotoServer(o.python, o.moto_port, self.sink, o.moto_access_log, iam=o.iam)
        self.moto.wait_ready()
        endpoint = self.moto.endpoint
        self.stack = stackmod.stand_up(o.template, endpoint, self.secret, o.stack_name, o.parameters)
        if o.iam:
            self.access = access.enforce(self.stack, stackmod.clients_for(endpoint, self.stack.region))
        else:
            self.access = access.unenforced(self.stack.functions)
        client = stackmod.clients_for(endpoint, self.stack.region, self.access.operator.boto())
        self.sqs, self.sns = client("sqs"), client("sns")

        functions = {}
        for name, spec in self.stack.functions.items():
            if o.policy:
                spec.environment["FOLLOWUP_CONFIG"] = str(o.policy.resolve())
            binary = binary_path(o.bin_dir, spec, o.shipped)
            emulator = default_emulator(binary) if o.emulator is None else o.emulator
            functions[name] = LocalFunction(spec, binary, endpoint, self.stack.region, self.sink, self._dead_letter,
                                            emulator=emulator, credentials=self.access.functions[name])
        self.lambdas = LambdaService(functions)

        topics = self.stack.resources_of("AWS::SNS::Topic")
        if len(topics) != 1:
            raise stackmod.StackError(f"expected the one ops topic, found {topics}")
        self.ops = OpsObserver(self.sns, self.sqs, self.stack.physical_id(topics[0]), o.stack_name)
        self.sms = SmsLog(endpoint)

        groups = self.stack.resources_of("AWS::Scheduler::ScheduleGroup")
        if len(groups) != 1:
            raise stackmod.StackError(f"expected the one schedule group, found {groups}")
        self.scheduler = SchedulerService(client("scheduler"), self.sqs, self.stack.physical_id(groups[0]),
                                          self.lambdas, self.clock)
        events = client("events")
        self.rules = RulesService(events, RulesService.read(events, self.stack), self.lambdas, self.clock,
                                  self.stack.account, self.stack.region)

        if len(self.stack.http_apis) != 1:
            raise stackmod.StackError(f"expected one HTTP API, found {sorted(self.stack.http_apis)}")
        (api,) = self.stack.http_apis.values()
        routes = routes_from_openapi(api["body"], self.lambdas)
        self.front = Front(o.host, o.port, routes, api["id"], self.stack.account, self.stack.region, self.control)

        self.lambdas.start()
        self.scheduler.start()
        self.rules.start()
        self.front.start()
        log.info("topology up: %s (moto %s)", self.front.url, endpoint)

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        for part in (self.front, self.rules, self.scheduler):
            if part is not None:
                try:
                    part.stop()
                except Exception as e:
                    log.warning("stopping %s: %s", type(part).__name__, e)
        if self.lambdas is not None:
            self.lambdas.stop()
        if self.moto is not None:
            self.moto.stop()

    # -- the async invocation's dead-letter queue

    def _dead_letter(self, fn: LocalFunction, ev: AsyncEvent, inv: Invocation) -> None:
        arn = fn.spec.dead_letter_arn
        if not arn:
            log.error("%s: event from %s dropped after its retries (no dead-letter queue): %s", fn.spec.name, ev.source, inv.error)
            return
        error = inv.error or {}
        attrs = {
            "RequestID": {"DataType": "String", "StringValue": inv.id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": (error.get("errorMessage") or error.get("errorType") or "")[:1000] or "error"},
        }
        if arn.split(":")[2] == "sqs":
            url = self.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1], QueueOwnerAWSAccountId=arn.split(":")[4])["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=ev.payload.decode("utf-8", "replace"), MessageAttributes=attrs)
        else:
            self.sns.publish(TopicArn=arn, Message=ev.payload.decode("utf-8", "replace"), MessageAttributes=attrs)
        log.error("%s: event from %s dead-lettered to %s", fn.spec.name, ev.source, arn)

    # -- control endpoints

    def control(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p][1:]  # after "_local"
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return _error(400, "invalid_json", "the body is not JSON")
        if not isinstance(data, dict):
            return _error(400, "invalid_body", "the body is not a JSON object")
        try:
            return self._control(method, parts, urllib.parse.parse_qs(query), data)
        except (ValueError, KeyError) as e:
            return _error(400, "invalid_field", str(e))
        except Exception as e:  # the control plane answers, whatever broke
            log.exception("control %s %s", method, path)
            return _error(500, "internal", f"{type(e).__name__}: {e}")

    def _control(self, method: str, parts: list[str], query: dict, data: dict) -> tuple[int, Any]:
        route = (method, tuple(parts[:1]))
        if route == ("GET", ()) or route == ("GET", ("",)):
            return 200, {"endpoints": [
                "GET /_local/clock", "POST /_local/clock {to | advance_secs}", "GET /_local/schedules",
                "GET /_local/rules", "POST /_local/rules/{name} {time?}", "GET /_local/sms", "GET /_local/commands",
                "GET /_local/dead-letters", "GET /_local/functions", "GET /_local/stack"]}
        if route == ("GET", ("clock",)):
            return 200, {"now": iso(self.clock.now()), "virtual": self.clock.virtual,
                         "fired": self.scheduler.fired_total}
        if route == ("POST", ("clock",)):
            if not self.clock.virtual:
                return _error(404, "no_virtual_clock", "the topology runs on the real clock (start it with --virtual-clock)")
            now = self.clock.now()
            if "to" in data:
                to = parse_time(str(data["to"]))
            elif "advance_secs" in data:
                to = now + timedelta(seconds=float(data["advance_secs"]))
            else:
                return _error(400, "missing_field", "give \"to\" (RFC 3339) or \"advance_secs\"")
            if to < now:
                return _error(422, "invalid_field", f"the clock does not go back: it is {iso(now)}")
            records = self.scheduler.advance(to)
            failed = [r for r in records if not r.get("ok")]
            return 200, {"now": iso(self.clock.now()), "fired": len(records), "failed": len(failed), "firings": records}
        if route == ("GET", ("schedules",)):
            return 200, {"now": iso(self.clock.now()), "schedules": self.scheduler.pending()}
        if route == ("GET", ("rules",)):
            return 200, {"rules": self.rules.describe()}
        if route == ("POST", ("rules",)) and len(parts) == 2:
            rule = self.rules.find(parts[1])
            if rule is None:
                return _error(404, "not_found", f"no rule {parts[1]!r}; GET /_local/rules lists them")
            at = parse_time(str(data["time"])) if data.get("time") else self.clock.now()
            deliveries = self.rules.deliver(rule, at, wait=True)
            return 200, {"rule": rule.name, "deliveries": deliveries, "ok": all(d.get("ok") for d in deliveries)}
        if route == ("GET", ("sms",)):
            return 200, {"messages": self.sms.messages()}
        if route == ("GET", ("commands",)):
            msgs = self.ops.messages()
            return 200, {"commands": [m["message"] for m in msgs], "messages": msgs}
        if route == ("GET", ("dead-letters",)):
            out = {}
            for logical in self.stack.resources_of("AWS::SQS::Queue"):
                out[logical] = peek_queue(self.sqs, self.stack.physical_id(logical))
            return 200, {"queues": out}
        if route == ("GET", ("functions",)):
            return 200, {"functions": [f.describe() for f in self.lambdas.functions.values()]}
        if route == ("GET", ("stack",)):
            return 200, {
                "name": self.stack.name, "region": self.stack.region, "account": self.stack.account,
                "moto": self.stack.endpoint,
                "resources": {k: {"type": self.stack.template["Resources"][k]["Type"], "physical_id": v.ref,
                                  "held_by": v.held_by} for k, v in self.stack.physical.items()},
                "not_on_moto": self.stack.skipped,
                "iam": self.access.describe(),
                "outputs": self.stack.outputs,
                "routes": [{"route": r.key, "function": r.function.spec.name, "iam": r.iam} for r in self.front.routes],
                "environment": {name: {k: ("<secret>" if k == "FOLLOWUP_WEBHOOK_SECRET" else v) for k, v in f.environment.items()}
                                for name, f in self.stack.functions.items()},
            }
        return _error(404, "not_found", f"no control endpoint {method} /_local/{'/'.join(parts)}")
