"""moto's IAM access control, made to evaluate the calls the functions make as AWS does.

moto (with ``INITIAL_NO_AUTH_ACTION_COUNT``, or ``POST /moto-api/reset-auth``) checks each call's
SigV4 signature and its action (``<signing name>:<operation>``) against the caller's policies, but
hands its check the resource ``*`` for most services, so a statement scoped to an ARN never
matches; it reads ``?`` in a policy as a regular expression, ignores ``NotResource``, and
recomputes the signature of a form POST or a body-less request over something other than the
body that was signed. Installed into moto's server process (``moto_server.py``, when
``FOLLOWUP_MOTO_IAM`` is set), this module gives the check, for the services the functions call:

- DynamoDB: the table's ARN (``.../index/<name>`` for a ``Query`` or ``Scan`` of an index); a
  ``TransactWriteItems`` or ``TransactGetItems`` is checked as AWS authorizes it, each item as its
  own action (``PutItem``, ``UpdateItem``, ``DeleteItem``, ``ConditionCheckItem``, ``GetItem``) on
  its own table, and a batch as ``BatchWriteItem``/``BatchGetItem`` on each table it names;
- Secrets Manager: the secret's full ARN (with the six characters Secrets Manager appends);
- SNS ``Publish``: the topic's ARN (``*`` for an SMS to a phone number, which has none);
- Scheduler: ``arn:...:schedule/<group>/<name>`` and ``arn:...:schedule-group/<name>``;

and policy matching with IAM's wildcards (``*``, ``?``) and ``NotResource``, and the signature
recomputed over the body as it came (``keep_raw_body`` wraps moto's WSGI app to keep it). Other
services keep moto's own choice (SQS and IAM name their resource; the rest ``*``). See
infra/local/README.md for what is still not checked.
"""
from __future__ import annotations

import io
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote

_TRANSACT_WRITE = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def _json(response) -> dict[str, Any]:
    try:
        body = json.loads(response.raw_body or b"{}")
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


def _arn(response, service: str, resource: str) -> str:
    from moto.utilities.utils import get_partition

    return f"arn:{get_partition(response.region)}:{service}:{response.region}:{response.current_account}:{resource}"


def _table(response, name: str, index: str | None = None) -> str:
    arn = name if name.startswith("arn:") else _arn(response, "dynamodb", f"table/{name}")
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(response, action: str) -> list[tuple[str, str]]:
    body = _json(response)
    if action == "TransactWriteItems":
        checks = []
        for item in body.get("TransactItems") or []:
            for kind, op in item.items():
                checks.append((_TRANSACT_WRITE.get(kind, action), _table(response, op.get("TableName", ""))))
        return checks
    if action == "TransactGetItems":
        return [("GetItem", _table(response, item.get("Get", {}).get("TableName", "")))
                for item in body.get("TransactItems") or []]
    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, _table(response, name)) for name in body.get("RequestItems") or {}]
    if body.get("TableName"):
        index = body.get("IndexName") if action in ("Query", "Scan") else None
        return [(action, _table(response, body["TableName"], index))]
    return [(action, "*")]


def _secretsmanager(response, action: str) -> list[tuple[str, str]]:
    secret_id = _json(response).get("SecretId")
    if not secret_id:
        return [(action, "*")]
    if secret_id.startswith("arn:"):
        return [(action, secret_id)]
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        return [(action, secretsmanager_backends[response.current_account][response.region].describe_secret(secret_id).arn)]
    except Exception:  # no such secret: AWS refuses a caller without the grant before it looks
        return [(action, _arn(response, "secretsmanager", f"secret:{secret_id}"))]


def _sns(response, action: str) -> list[tuple[str, str]]:
    query = response.querystring or {}  # the query string and the form body
    arn = (query.get("TopicArn") or query.get("TargetArn") or [""])[0]
    return [(action, arn or "*")]


def _scheduler(response, action: str) -> list[tuple[str, str]]:
    parts = [unquote(p) for p in response.path.split("/") if p]
    query = parse_qs(response.parsed_url.query) if hasattr(response, "parsed_url") else {}
    if len(parts) == 2 and parts[0] == "schedules":
        group = _json(response).get("GroupName") or (query.get("groupName") or ["default"])[0]
        return [(action, _arn(response, "scheduler", f"schedule/{group}/{parts[1]}"))]
    if len(parts) == 2 and parts[0] == "schedule-groups":
        return [(action, _arn(response, "scheduler", f"schedule-group/{parts[1]}"))]
    return [(action, "*")]


_RESOURCES = {"dynamodb": _dynamodb, "secretsmanager": _secretsmanager, "sns": _sns, "scheduler": _scheduler}


_request = threading.local()  # the body of the request this thread serves, as it came


def keep_raw_body(app):
    """WSGI middleware: each request's body as it came, for the signature check."""

    def kept(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        _request.body = body
        try:
            return app(environ, start_response)
        finally:
            _request.body = None

    return kept


def iam_glob(pattern: str, value: str) -> re.Match[str] | None:
    """IAM's matching: ``*`` any run of characters, ``?`` exactly one, everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.match(f"^{regex}$", value, re.DOTALL)


def install() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicyStatement, IAMRequestBase, PermissionResult

    IAMPolicyStatement._match = staticmethod(iam_glob)

    # moto signs its copy of a request over the parsed parameters when it has no body: a form
    # POST's body is consumed by parsing, a DELETE's parameters are in its query string. Either
    # way the signature never matched one an SDK other than boto3 made; the body as it came does.
    create_request = IAMRequestBase._create_aws_request

    def create_aws_request(self):
        raw = getattr(_request, "body", None)
        if raw is None:
            return create_request(self)
        kept = self._body, self._data
        self._body = self._data = raw
        try:
            return create_request(self)
        finally:
            self._body, self._data = kept

    IAMRequestBase._create_aws_request = create_aws_request

    statement_permits = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
        if "NotResource" not in self._statement:
            return statement_permits(self, action, resource, principal, incoming_condition_values)
        # A statement that applies to every resource except those NotResource names.
        if self._check_element_matches("NotResource", resource):
            return PermissionResult.NEUTRAL
        scoped = {k: v for k, v in self._statement.items() if k != "NotResource"}
        scoped["Resource"] = "*"
        return statement_permits(IAMPolicyStatement(scoped), action, "*", principal, incoming_condition_values)

    IAMPolicyStatement.is_action_permitted = is_action_permitted

    check = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def authenticate_and_authorize(self, resource: str = "*") -> None:
        derive = _RESOURCES.get(getattr(self, "service_name", None) or "")
        if derive is None:
            return check(self, resource)
        action = self._get_action()
        asked = derive(self, action) or [(action, resource)]
        get_action = self._get_action
        try:
            for one_action, one_resource in asked:
                self._get_action = lambda a=one_action: a
                check(self, one_resource)
        finally:
            self._get_action = get_action

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authenticate_and_authorize
