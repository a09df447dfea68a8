"""EventBridge Scheduler and EventBridge rules on one machine.

Scheduler: the schedules live on moto, placed and deleted by the functions themselves through the
Scheduler API. Moto stores them but never fires them; ``SchedulerService`` does: when a
schedule's ``at(...)`` time comes it invokes the function its target names, asynchronously as
Scheduler does, with the target's ``Input`` exactly, then deletes the schedule
(``ActionAfterCompletion: DELETE``). A target that names no function of the stack goes to the
target's dead-letter queue, as Scheduler's does once its retries are spent.

Time: with the real clock, schedules fire when they fall due. With the virtual clock, time moves
only when told (``advance``), and each move fires every schedule due up to then, in due order,
one after the other. Only the firing follows the virtual clock: the functions read the real wall
clock, so a timer fired "three days early" is decided at the real time it arrives.

Rules: the stack's scheduled EventBridge rules (read back from moto) are delivered on their real
``cron``/``rate`` schedule, and on demand; each target gets the rule's ``Input`` when it has one,
else an EventBridge "Scheduled Event".
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import botocore.exceptions

from .runtime import LambdaService

log = logging.getLogger("timers")

POLL_S = 1.0
MAX_FIRINGS_PER_MOVE = 10_000
FIRST_ATTEMPT_WAIT_S = 330.0  # the longest function timeout, plus a cold start


def utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def parse_time(text: str) -> datetime:
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def iso(t: datetime) -> str:
    return utc(t).isoformat().replace("+00:00", "Z")


class Clock:
    """The time schedules and rules fire by: the wall clock, or a virtual one moved by hand."""

    def __init__(self, virtual_start: datetime | None = None):
        self.virtual = virtual_start is not None
        self._now = utc(virtual_start) if virtual_start else None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        if not self.virtual:
            return datetime.now(timezone.utc)
        with self._lock:
            return self._now

    def move_to(self, t: datetime) -> None:
        with self._lock:
            if t > self._now:
                self._now = t


# ---- schedule expressions -----------------------------------------------------------------------

_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.*)\)")


def at_time(expression: str, tz_name: str | None) -> datetime | None:
    m = _AT.fullmatch(expression.strip())
    if not m:
        return None
    naive = datetime.fromisoformat(m.group(1))
    if not tz_name or tz_name.upper() == "UTC":
        return naive.replace(tzinfo=timezone.utc)
    from zoneinfo import ZoneInfo

    return naive.replace(tzinfo=ZoneInfo(tz_name)).astimezone(timezone.utc)


_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i + 1 for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}


def _cron_field(text: str, lo: int, hi: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The values one cron field allows; None for ``?`` (no constraint from this field)."""
    if text == "?":
        return None
    out: set[int] = set()
    for part in text.split(","):
        if re.search(r"[LW#]", part):
            raise ValueError(f"cron field {text!r}: L, W and # are not supported locally")
        step = 1
        if "/" in part:
            part, s = part.split("/", 1)
            step = int(s)
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            x, y = part.split("-", 1)
            a, b = _cron_value(x, names), _cron_value(y, names)
        else:
            a = _cron_value(part, names)
            b = hi if step > 1 else a
        out.update(range(a, b + 1, step))
    return out


def _cron_value(text: str, names: dict[str, int] | None) -> int:
    t = text.strip().upper()
    if names and t in names:
        return names[t]
    return int(t)


@dataclass
class Cron:
    minutes: set[int]
    hours: set[int]
    days: set[int] | None
    months: set[int]
    weekdays: set[int] | None  # 1 = Sunday ... 7 = Saturday
    years: set[int]

    @staticmethod
    def parse(body: str) -> "Cron":
        f = body.split()
        if len(f) != 6:
            raise ValueError(f"cron({body}) needs 6 fields")
        return Cron(
            minutes=_cron_field(f[0], 0, 59) or set(range(60)),
            hours=_cron_field(f[1], 0, 23) or set(range(24)),
            days=_cron_field(f[2], 1, 31),
            months=_cron_field(f[3], 1, 12, _MONTHS) or set(range(1, 13)),
            weekdays=_cron_field(f[4], 1, 7, _DAYS),
            years=_cron_field(f[5], 1970, 2199) or set(range(1970, 2200)),
        )

    def next_after(self, t: datetime) -> datetime | None:
        t = utc(t).replace(second=0, microsecond=0)
        day = t.date()
        for _ in range(366 * 8):
            aws_dow = (day.weekday() + 1) % 7 + 1
            if (day.year in self.years and day.month in self.months
                    and (self.days is None or day.day in self.days)
                    and (self.weekdays is None or aws_dow in self.weekdays)):
                for h in sorted(self.hours):
                    for m in sorted(self.minutes):
                        c = datetime(day.year, day.month, day.day, h, m, tzinfo=timezone.utc)
                        if c > t:
                            return c
            day += timedelta(days=1)
        return None


def next_occurrence(expression: str, after: datetime, origin: datetime) -> datetime | None:
    """The first time a rule's schedule fires after ``after`` (rates count from ``origin``)."""
    m = _RATE.fullmatch(expression.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2).rstrip("s")
        period = timedelta(minutes=n) * {"minute": 1, "hour": 60, "day": 1440}[unit]
        k = max(0, int((after - origin) / period) + 1)
        return origin + k * period
    m = _CRON.fullmatch(expression.strip())
    if m:
        return Cron.parse(m.group(1)).next_after(after)
    return None


# ---- Scheduler ----------------------------------------------------------------------------------


@dataclass
class _Known:
    modified: Any
    at: datetime | None
    expression: str
    state: str
    created: float


class SchedulerService:
    def __init__(self, scheduler, sqs, group: str, lambdas: LambdaService, clock: Clock):
        self.scheduler = scheduler
        self.sqs = sqs
        self.group = group
        self.lambdas = lambdas
        self.clock = clock
        self._lock = threading.Lock()  # one firing pass at a time
        self._known: dict[str, _Known] = {}
        self._done: set[tuple[str, str]] = set()  # fired schedules kept after completion (ActionAfterCompletion NONE)
        self.fired_total = 0
        self.failed_total = 0
        self.history: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading the group

    def _refresh(self) -> None:
        seen: set[str] = set()
        token = None
        while True:
            args: dict[str, Any] = {"GroupName": self.group, "MaxResults": 100}
            if token:
                args["NextToken"] = token
            page = self.scheduler.list_schedules(**args)
            for s in page.get("Schedules", []):
                name = s["Name"]
                seen.add(name)
                modified = s.get("LastModificationDate")
                k = self._known.get(name)
                if k is None or k.modified != modified:
                    try:
                        full = self.scheduler.get_schedule(GroupName=self.group, Name=name)
                    except botocore.exceptions.ClientError:
                        continue  # deleted meanwhile
                    expr = full.get("ScheduleExpression", "")
                    created = full.get("CreationDate")
                    self._known[name] = _Known(
                        modified=modified,
                        at=at_time(expr, full.get("ScheduleExpressionTimezone")),
                        expression=expr,
                        state=full.get("State", "ENABLED"),
                        created=created.timestamp() if hasattr(created, "timestamp") else 0.0,
                    )
                    if self._known[name].at is None:
                        log.warning("schedule %s: %s is not a one-time at() expression; not fired locally", name, expr)
                else:
                    k.state = s.get("State", k.state)
            token = page.get("NextToken")
            if not token:
                break
        for name in list(self._known):
            if name not in seen:
                del self._known[name]

    def _due(self, upto: datetime) -> list[tuple[datetime, float, str]]:
        self._refresh()
        return sorted(
            (k.at, k.created, name) for name, k in self._known.items()
            if k.at is not None and k.at <= upto and k.state == "ENABLED" and (name, k.expression) not in self._done
        )

    def pending(self) -> list[dict[str, Any]]:
        """Every schedule of the group, soonest first, with its target and input."""
        out = []
        with self._lock:
            self._refresh()
            items = sorted(self._known.items(), key=lambda kv: (kv[1].at or datetime.max.replace(tzinfo=timezone.utc), kv[0]))
        for name, k in items:
            try:
                full = self.scheduler.get_schedule(GroupName=self.group, Name=name)
            except botocore.exceptions.ClientError:
                continue
            target = full.get("Target", {})
            fn = self.lambdas.by_arn(target.get("Arn", ""))
            try:
                payload = json.loads(target.get("Input") or "null")
            except ValueError:
                payload = target.get("Input")
            out.append({
                "name": name,
                "expression": k.expression,
                "at": iso(k.at) if k.at else None,
                "state": k.state,
                "target": target.get("Arn"),
                "function": fn.spec.name if fn else None,
                "input": payload,
            })
        return out

    # -- firing

    def _fire(self, name: str, at: datetime) -> dict[str, Any]:
        try:
            s = self.scheduler.get_schedule(GroupName=self.group, Name=name)
        except botocore.exceptions.ClientError:
            self._known.pop(name, None)
            return {"name": name, "at": iso(at), "skipped": "deleted before it fired"}
        target = s.get("Target", {})
        payload = (target.get("Input") or "{}").encode()
        arn = target.get("Arn", "")
        fn = self.lambdas.by_arn(arn)
        record: dict[str, Any] = {"name": name, "at": iso(at), "target": arn, "function": fn.spec.name if fn else None}
        if fn is None:
            self._dead_letter(s, "ResourceNotFoundException", f"no function {arn} in this stack")
            record.update(ok=False, error={"errorType": "ResourceNotFoundException", "errorMessage": f"no function {arn}"},
                          dead_lettered=True)
        else:
            ev = fn.invoke_event(payload, source=f"scheduler:{self.group}/{name}")
            ev.first_done.wait(FIRST_ATTEMPT_WAIT_S)
            first = ev.first
            record["ok"] = bool(first and first.ok)
            if first is not None:
                record["result" if first.ok else "error"] = first.result_json()
        if s.get("ActionAfterCompletion") == "DELETE":
            try:
                self.scheduler.delete_schedule(GroupName=self.group, Name=name)
            except botocore.exceptions.ClientError:
                pass
            self._known.pop(name, None)
        else:
            self._done.add((name, s.get("ScheduleExpression", "")))
        self.fired_total += 1
        if not record.get("ok"):
            self.failed_total += 1
        self.history.append(record)
        del self.history[:-500]
        log.info("schedule %s fired into %s: %s", name, record["function"], "ok" if record.get("ok") else record.get("error"))
        return record

    def _dead_letter(self, s: dict[str, Any], code: str, message: str) -> None:
        dlq = ((s.get("Target") or {}).get("DeadLetterConfig") or {}).get("Arn")
        if not dlq:
            log.error("schedule %s: %s (no dead-letter queue)", s.get("Name"), message)
            return
        name = dlq.rsplit(":", 1)[-1]
        account = dlq.split(":")[4]
        url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        attr = lambda v: {"DataType": "String", "StringValue": str(v)}  # noqa: E731
        self.sqs.send_message(QueueUrl=url, MessageBody=(s.get("Target") or {}).get("Input") or "{}", MessageAttributes={
            "ERROR_CODE": attr(code), "ERROR_MESSAGE": attr(message), "SCHEDULE_ARN": attr(s.get("Arn", "")),
            "TARGET_ARN": attr((s.get("Target") or {}).get("Arn", "")), "RETRY_ATTEMPTS": attr(0),
        })

    def fire_due(self, upto: datetime, move_clock: bool) -> list[dict[str, Any]]:
        """Fires every schedule due by ``upto``, soonest first; those the firings place too."""
        records = []
        with self._lock:
            for _ in range(MAX_FIRINGS_PER_MOVE):
                due = self._due(upto)
                if not due:
                    break
                at, _, name = due[0]
                if move_clock:
                    self.clock.move_to(at)
                records.append(self._fire(name, at))
            if move_clock:
                self.clock.move_to(upto)
        return records

    def advance(self, to: datetime) -> list[dict[str, Any]]:
        if not self.clock.virtual:
            raise RuntimeError("the clock is real")
        return self.fire_due(to, move_clock=True)

    # -- the real clock

    def start(self) -> None:
        if self.clock.virtual:
            return
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.fire_due(self.clock.now(), move_clock=False)
            except Exception as e:  # moto going away at shutdown, a transient error
                if not self._stop.is_set():
                    log.warning("scheduler poll failed: %s", e)

    def stop(self) -> None:
        self._stop.set()


# ---- EventBridge rules ----------------------------------------------------------------------------


@dataclass
class Rule:
    logical_id: str
    name: str
    arn: str
    schedule: str | None
    state: str
    targets: list[dict[str, Any]]
    aliases: set[str] = field(default_factory=set)
    next_at: datetime | None = None
    deliveries: int = 0


class RulesService:
    def __init__(self, events, rules: list[Rule], lambdas: LambdaService, clock: Clock, account: str, region: str):
        self.events = events
        self.rules = rules
        self.lambdas = lambdas
        self.clock = clock
        self.account = account
        self.region = region
        self.origin = datetime.now(timezone.utc).replace(microsecond=0)
        self._stop = threading.Event()

    @staticmethod
    def read(events, stack) -> list[Rule]:
        """The stack's rules as EventBridge holds them (moto), with the names they answer to."""
        functions = stack.resources_of("AWS::Lambda::Function")
        out = []
        for logical in stack.resources_of("AWS::Events::Rule"):
            name = stack.physical_id(logical)
            d = events.describe_rule(Name=name)
            targets = events.list_targets_by_rule(Rule=name).get("Targets", [])
            aliases = {logical, name, logical.lower(), name.lower()}
            for f in functions:
                # SAM names a function's rule <function logical id><event name>.
                if logical.startswith(f) and len(logical) > len(f):
                    aliases.add(logical[len(f):])
                    aliases.add(logical[len(f):].lower())
            out.append(Rule(logical, name, d["Arn"], d.get("ScheduleExpression"), d.get("State", "ENABLED"), targets, aliases))
        return out

    def find(self, name: str) -> Rule | None:
        for r in self.rules:
            if name in r.aliases or name.lower() in r.aliases:
                return r
        return None

    def event_for(self, rule: Rule, target: dict[str, Any], at: datetime) -> bytes:
        if target.get("Input") is not None:
            return target["Input"].encode()
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": utc(at).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [rule.arn],
            "detail": {},
        }
        if target.get("InputPath"):
            for key in target["InputPath"].lstrip("$").strip(".").split("."):
                if key:
                    event = event.get(key) if isinstance(event, dict) else None
        if target.get("InputTransformer"):
            log.warning("rule %s: InputTransformer is not applied locally; the event goes as is", rule.name)
        return json.dumps(event).encode()

    def deliver(self, rule: Rule, at: datetime, wait: bool) -> list[dict[str, Any]]:
        out = []
        events = []
        for target in rule.targets:
            fn = self.lambdas.by_arn(target.get("Arn", ""))
            payload = self.event_for(rule, target, at)
            rec: dict[str, Any] = {"target": target.get("Arn"), "function": fn.spec.name if fn else None,
                                   "event": json.loads(payload)}
            if fn is None:
                rec.update(ok=False, error={"errorType": "ResourceNotFoundException", "errorMessage": "no such function"})
            else:
                events.append((rec, fn.invoke_event(payload, source=f"rule:{rule.name}")))
            out.append(rec)
        rule.deliveries += 1
        if wait:
            for rec, ev in events:
                ev.first_done.wait(FIRST_ATTEMPT_WAIT_S)
                first = ev.first
                rec["ok"] = bool(first and first.ok)
                if first is not None:
                    rec["result" if first.ok else "error"] = first.result_json()
        return out

    def start(self) -> None:
        now = datetime.now(timezone.utc)
        for r in self.rules:
            r.next_at = next_occurrence(r.schedule, now, self.origin) if r.schedule and r.state == "ENABLED" else None
        threading.Thread(target=self._run, name="rules", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            now = datetime.now(timezone.utc)
            for r in self.rules:
                if r.next_at is not None and r.next_at <= now:
                    log.info("rule %s fires (%s)", r.name, r.schedule)
                    try:
                        self.deliver(r, r.next_at, wait=False)
                    except Exception as e:
                        log.warning("rule %s: delivery failed: %s", r.name, e)
                    r.next_at = next_occurrence(r.schedule, now, self.origin)

    def describe(self) -> list[dict[str, Any]]:
        return [{
            "logical_id": r.logical_id, "name": r.name, "arn": r.arn, "schedule": r.schedule, "state": r.state,
            "aliases": sorted(a for a in r.aliases if a not in (r.logical_id.lower(), r.name.lower())),
            "next_at": iso(r.next_at) if r.next_at else None, "deliveries": r.deliveries,
            "targets": [{"arn": t.get("Arn"), "input": t.get("Input")} for t in r.targets],
        } for r in self.rules]

    def stop(self) -> None:
        self._stop.set()
