"""Schemathesis hooks: the request constraints docs/openapi.json states in words, which its schemas
cannot express (info.description, "Checks the schemas cannot express"). A generated webhook
body is brought within them before it is sent; Schemathesis revalidates the edited case, so a
request meant to be invalid stays invalid for another reason or is counted as valid.

- `occurred_at` at most 300 s ahead of the engine's clock (R9.7 v3): a later one is set to now;
- a window's `window_end` after its `window_start` (`data`, `data.resolution`): an end at or
  before the start is set two hours after it;
- visit ids unique within a package (`data.visits[i].visit_id`): a repeated id gets its index.

And one for the credentials: a request generated without a signature header it requires (a
negative case) goes without it. The configured credentials (schemathesis.toml) are put on every
case before it is sent, which would otherwise turn such a case into a signed, valid one.

Loaded by run.py through SCHEMATHESIS_HOOKS=hooks.
"""

import datetime as dt

import schemathesis
from schemathesis.core.mutations import OperatorKind
from schemathesis.core.parameters import ParameterLocation

# The placeholders schemathesis.toml gives as credentials (signing_proxy.py signs the second).
CREDENTIALS = {"X-Timestamp": "0", "X-Signature": "SIGN_ME"}


def _time(value):
    if not isinstance(value, str):
        return None
    try:
        at = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _windows(value):
    if isinstance(value, dict):
        start, end = _time(value.get("window_start")), _time(value.get("window_end"))
        if start is not None and end is not None and end <= start:
            try:
                value["window_end"] = (start + dt.timedelta(hours=2)).isoformat()
            except OverflowError:
                value["window_start"] = (end - dt.timedelta(hours=2)).isoformat()
        for v in value.values():
            _windows(v)
    elif isinstance(value, list):
        for v in value:
            _windows(v)


def _visits(data):
    visits = data.get("visits") if isinstance(data, dict) else None
    if not isinstance(visits, list):
        return
    seen = set()
    for i, visit in enumerate(visits):
        if isinstance(visit, dict) and isinstance(visit.get("visit_id"), str):
            if visit["visit_id"] in seen:
                visit["visit_id"] = f"{visit['visit_id']}-{i}"
            seen.add(visit["visit_id"])


def _removed_credentials(case):
    """The signature headers a negative case was generated without."""
    meta = case.meta
    data = meta.phase.data if meta is not None else None
    if data is None or not meta.generation.mode.is_negative or data.parameter_location != ParameterLocation.HEADER:
        return []
    removed = []
    for mutation in getattr(data, "mutations", ()):
        if mutation.path:
            continue
        if mutation.operator == OperatorKind.REMOVE_REQUIRED_PROPERTY and mutation.parameter:
            removed.append(mutation.parameter)
        elif mutation.operator == OperatorKind.NEGATE_CONSTRAINTS and "required" in mutation.keywords:
            if mutation.parameter:
                removed.append(mutation.parameter)
            elif isinstance(mutation.original_value, list):
                removed.extend(mutation.original_value)
    return [name for name in removed if name in CREDENTIALS]


@schemathesis.hook
def before_call(context, case, kwargs):
    for name in _removed_credentials(case):
        if case.headers is not None and case.headers.get(name) == CREDENTIALS[name]:
            del case.headers[name]
    body = case.body
    if not isinstance(body, dict):
        return
    at = _time(body.get("occurred_at"))
    now = dt.datetime.now(dt.timezone.utc)
    if at is not None and at > now:
        body["occurred_at"] = now.replace(microsecond=0).isoformat()
    _windows(body.get("data"))
    _visits(body.get("data"))
