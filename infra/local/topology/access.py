"""IAM enforced on moto: each function calls AWS with a session of its own execution role, as on
Lambda, so a grant the template lacks fails the call that needs it, here rather than after a deploy.

Once the stack stands (its roles and their policies created from the transformed template), an
operator user is made for the topology's own calls (firing schedules, reading queues), each
function's role is assumed through STS for that function, and moto's check is switched on
(``POST /moto-api/reset-auth``). From then on moto refuses a call signed by an unknown key, with
a bad signature, or that the caller's policies do not allow; ``moto_iam.py`` (installed in moto's
process) hands the check the resource each call names. infra/local/README.md lists what is checked.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("access")

OPERATOR = "followup-local-operator"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def environment(self) -> dict[str, str]:
        """The variables Lambda sets for its execution role's session."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    def boto(self) -> dict[str, Any]:
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key,
                "aws_session_token": self.session_token}


# moto's own dummies: any key is accepted while IAM is not enforced.
DUMMY_CREDENTIALS = Credentials("testing", "testing", "testing")


@dataclass
class Access:
    """Who calls moto: the topology's operator and each function's role session."""

    enforced: bool
    operator: Credentials
    functions: dict[str, Credentials]  # by function name
    roles: dict[str, str]  # function name -> its execution role's ARN

    def describe(self) -> dict[str, Any]:
        return {"enforced": self.enforced, "operator": {"user": OPERATOR, **self.operator.boto()} if self.enforced else None,
                "roles": self.roles}


def switch_on(endpoint: str) -> None:
    """moto checks every call from now on (no more unchecked calls)."""
    # Plain text: moto reads the count from the raw body, which Flask leaves empty for a form.
    req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            raise RuntimeError(f"moto did not switch IAM on: {r.status}")


def unenforced(functions: dict[str, Any]) -> Access:
    return Access(False, DUMMY_CREDENTIALS, {name: DUMMY_CREDENTIALS for name in functions},
                  {name: spec.role_arn for name, spec in functions.items()})


def enforce(stack, client) -> Access:
    """Makes the operator, assumes each function's role, and switches moto's IAM check on.
    ``client`` makes boto3 clients on moto with credentials moto accepts before the switch."""
    iam, sts = client("iam"), client("sts")
    iam.create_user(UserName=OPERATOR)
    iam.put_user_policy(UserName=OPERATOR, PolicyName="operator", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=OPERATOR)["AccessKey"]
    operator = Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    functions, roles = {}, {}
    for name, spec in stack.functions.items():
        if not spec.role_arn:
            raise RuntimeError(f"{name} has no execution role in the template")
        # Lambda's sessions last as long as the role allows; moto does not expire them.
        session = sts.assume_role(RoleArn=spec.role_arn, RoleSessionName=name[:64])["Credentials"]
        functions[name] = Credentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
        roles[name] = spec.role_arn

    switch_on(stack.endpoint)
    log.info("IAM enforced on moto: %d functions on their own roles", len(functions))
    return Access(True, operator, functions, roles)
