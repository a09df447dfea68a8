"""template.yaml stood up on the local AWS emulator, the way a deploy would.

The SAM template goes through SAM's own transform (``samtranslator``, what CloudFormation runs
for ``Transform: AWS::Serverless-2016-10-31``) into plain CloudFormation. Every resource moto
can hold is then created on moto from that template's own properties, with CloudFormation's
intrinsic functions (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::If`` and the conditions, ...) and
the ``{{resolve:secretsmanager:...}}`` dynamic reference resolved as CloudFormation resolves them.

What moto cannot run is held by this process and named as CloudFormation would name it: the
Lambda functions (child processes behind a Runtime API, see ``runtime.py``), the HTTP API
(``front.py``) and the Lambda permissions that let API Gateway and EventBridge invoke them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.config
import botocore.exceptions

log = logging.getLogger("stack")

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
STACK_NAME = "followup-local"

NO_VALUE = object()  # AWS::NoValue: the property is left out


class StackError(Exception):
    pass


# ---- the transform ------------------------------------------------------------------------------


def transform(template_path: Path, parameters: dict[str, str], region: str = REGION) -> dict[str, Any]:
    """template.yaml as CloudFormation sees it after the SAM transform.

    ``sam package`` replaces each function's local ``CodeUri`` with the S3 location it uploaded the
    build to before the transform runs; the same is done here with a placeholder bucket (the code
    itself runs from the local build, never from S3).
    """
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
    from samtranslator.yaml_helper import yaml_parse

    sam = yaml_parse(template_path.read_text())
    for logical, resource in sam.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str) \
                and not props["CodeUri"].startswith("s3://"):
            props["CodeUri"] = f"s3://local-artifacts/{logical}.zip"
    params = dict(parameters)
    to_py27_compatible_template(sam, params)
    session = boto3.session.Session(region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    translator = Translator(None, Parser(), boto_session=session)
    # The managed policy map is only read for AWS managed policy *names* in Policies; this
    # template names its policies by Ref or policy template.
    out = translator.translate(sam, parameter_values=params, get_managed_policy_map=lambda: {})
    return undo_mark_unicode_str_in_template(out)


# ---- intrinsic functions ------------------------------------------------------------------------


@dataclass
class Physical:
    """What a resource answers to ``Ref`` and ``Fn::GetAtt``."""

    ref: Any
    attrs: dict[str, Any] = field(default_factory=dict)
    held_by: str = "moto"  # or "local": run by this process, not by moto


_SUB_VAR = re.compile(r"\$\{([^}]*)\}")
_DYNAMIC_REF = re.compile(r"\{\{resolve:([a-z-]+):(.*?)\}\}")


class Resolver:
    """CloudFormation's intrinsic functions over one template and its stack's pseudo parameters."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str], stack_name: str,
                 region: str = REGION, account: str = ACCOUNT):
        self.template = template
        self.stack_name = stack_name
        self.region = region
        self.account = account
        self.params: dict[str, Any] = {}
        for name, decl in (template.get("Parameters") or {}).items():
            if name in parameters:
                value: Any = parameters[name]
            elif "Default" in decl:
                value = decl["Default"]
            else:
                raise StackError(f"parameter {name} has no value and no Default")
            if decl.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else []
            self.params[name] = value
        stack_id = f"arn:{PARTITION}:cloudformation:{region}:{account}:stack/{stack_name}/" \
                   f"{hashlib.sha1(stack_name.encode()).hexdigest()[:8]}-0000-0000-0000-000000000000"
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": PARTITION,
            "AWS::StackName": stack_name,
            "AWS::StackId": stack_id,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::NotificationARNs": [],
        }
        self.physical: dict[str, Physical] = {}
        self._conditions: dict[str, bool] = {}
        self.dynamic: Callable[[str, str], str] | None = None  # resolves {{resolve:service:key}}

    # -- conditions

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            decls = self.template.get("Conditions") or {}
            if name not in decls:
                raise StackError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(decls[name]))
        return self._conditions[name]

    def resource_enabled(self, logical: str) -> bool:
        cond = self.template["Resources"][logical].get("Condition")
        return cond is None or self.condition(cond)

    # -- Ref and GetAtt

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name].ref
        if name in self.template.get("Resources", {}):
            raise StackError(f"Ref {name} before it exists (or its Condition is false)")
        raise StackError(f"Ref to unknown {name}")

    def get_att(self, logical: str, attr: str) -> Any:
        if logical not in self.physical:
            raise StackError(f"Fn::GetAtt {logical}.{attr} before {logical} exists")
        attrs = self.physical[logical].attrs
        if attr not in attrs:
            raise StackError(f"{logical} has no attribute {attr} (has {sorted(attrs)})")
        return attrs[attr]

    # -- the functions

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            fn = self._FUNCTIONS.get(key)
            if fn is not None:
                return fn(self, arg)
        out = {}
        for k, v in node.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def _ref(self, arg):
        return self.ref(arg)

    def _get_att(self, arg):
        if isinstance(arg, str):
            logical, attr = arg.split(".", 1)
        else:
            logical, attr = arg[0], self.resolve(arg[1])
        return self.get_att(logical, attr)

    def _sub(self, arg):
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def one(m: re.Match) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            name = name.strip()
            if name in variables:
                value = variables[name]
            elif "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                value = self.get_att(logical, attr)
            else:
                value = self.ref(name)
            if isinstance(value, (list, dict)) or value is NO_VALUE:
                raise StackError(f"Fn::Sub ${{{name}}} is not a string")
            return str(value)

        return _SUB_VAR.sub(one, text)

    def _join(self, arg):
        sep, items = arg
        items = self.resolve(items)
        return self.resolve(sep).join(str(i) for i in items)

    def _select(self, arg):
        index, items = self.resolve(arg[0]), self.resolve(arg[1])
        return items[int(index)]

    def _split(self, arg):
        sep, text = arg
        return self.resolve(text).split(self.resolve(sep))

    def _if(self, arg):
        name, yes, no = arg
        return self.resolve(yes if self.condition(name) else no)

    def _equals(self, arg):
        a, b = (self.resolve(x) for x in arg)
        return a == b

    def _not(self, arg):
        return not self.resolve(arg[0])

    def _and(self, arg):
        return all(self.resolve(x) for x in arg)

    def _or(self, arg):
        return any(self.resolve(x) for x in arg)

    def _condition(self, arg):
        return self.condition(arg)

    def _find_in_map(self, arg):
        m, top, second = (self.resolve(x) for x in arg)
        return self.template["Mappings"][m][top][second]

    def _base64(self, arg):
        return base64.b64encode(str(self.resolve(arg)).encode()).decode()

    def _get_azs(self, arg):
        region = self.resolve(arg) or self.region
        return [f"{region}{z}" for z in "abcdef"]

    def _unsupported(self, arg):
        raise StackError(f"intrinsic function not available locally: {arg!r}")

    _FUNCTIONS: dict[str, Callable[["Resolver", Any], Any]] = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Condition": _condition,
        "Fn::FindInMap": _find_in_map,
        "Fn::Base64": _base64,
        "Fn::GetAZs": _get_azs,
        "Fn::ImportValue": _unsupported,
    }

    # -- dynamic references, resolved last, as CloudFormation does at create time

    def value(self, node: Any) -> Any:
        """``node`` fully resolved, dynamic references included."""
        return self._dynamic(self.resolve(node))

    def _dynamic(self, v: Any) -> Any:
        if isinstance(v, str) and "{{resolve:" in v:
            if self.dynamic is None:
                raise StackError(f"a dynamic reference with no resolver: {v}")
            return _DYNAMIC_REF.sub(lambda m: self.dynamic(m.group(1), m.group(2)), v)
        if isinstance(v, list):
            return [self._dynamic(x) for x in v]
        if isinstance(v, dict):
            return {k: self._dynamic(x) for k, x in v.items()}
        return v

    # -- dependencies

    def dependencies(self, logical: str) -> set[str]:
        resources = self.template["Resources"]
        found: set[str] = set()

        def walk(n: Any) -> None:
            if isinstance(n, list):
                for x in n:
                    walk(x)
            elif isinstance(n, dict):
                for k, v in n.items():
                    if k == "Ref" and isinstance(v, str) and v in resources:
                        found.add(v)
                    elif k == "Fn::GetAtt":
                        name = v.split(".", 1)[0] if isinstance(v, str) else v[0]
                        if name in resources:
                            found.add(name)
                    elif k == "Fn::Sub":
                        text = v[0] if isinstance(v, list) else v
                        for m in _SUB_VAR.finditer(text):
                            name = m.group(1).split(".", 1)[0].strip()
                            if name in resources:
                                found.add(name)
                        walk(v[1] if isinstance(v, list) else None)
                    else:
                        walk(v)

        r = resources[logical]
        walk(r.get("Properties"))
        deps = r.get("DependsOn") or []
        found.update([deps] if isinstance(deps, str) else deps)
        found.discard(logical)
        return found


# ---- the stack ---------------------------------------------------------------------------------


@dataclass
class FunctionSpec:
    """One AWS::Lambda::Function of the transformed template, as the Lambda service would run it."""

    logical_id: str
    name: str
    arn: str
    binary: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    dead_letter_arn: str | None
    logging_config: dict[str, str] = field(default_factory=dict)
    role_arn: str | None = None  # its execution role


@dataclass
class Stack:
    name: str
    region: str
    account: str
    endpoint: str
    template: dict[str, Any]
    resolver: Resolver
    functions: dict[str, FunctionSpec]  # by function name
    http_apis: dict[str, dict[str, Any]]  # logical id -> {"id": api id, "body": resolved OpenAPI}
    physical: dict[str, Physical]
    skipped: dict[str, str]  # logical id -> why it is not on moto
    outputs: dict[str, Any]

    def physical_id(self, logical: str) -> Any:
        return self.physical[logical].ref

    def resources_of(self, rtype: str) -> list[str]:
        return [k for k, r in self.template["Resources"].items() if r["Type"] == rtype and k in self.physical]


def clients_for(endpoint: str, region: str = REGION, credentials: dict[str, Any] | None = None):
    """boto3 clients on moto; with moto's dummy credentials unless ``credentials`` (boto3's
    keyword arguments) name a principal, which moto needs once IAM is enforced."""
    session = boto3.session.Session(**(credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}),
                                    region_name=region)
    cfg = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)

    def client(service: str):
        return session.client(service, endpoint_url=endpoint, config=cfg)

    return client


def _generated_name(stack: str, logical: str, max_len: int, lower: bool = False) -> str:
    """A physical name as CloudFormation generates it: stack-logical-SUFFIX, within the service's limit."""
    digest = hashlib.sha256(f"{stack}/{logical}".encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    suffix = "".join(alphabet[b % len(alphabet)] for b in digest[:12])
    budget = max_len - len(suffix) - 2
    head_stack, head_logical = stack, logical
    if len(head_stack) + len(head_logical) + 1 > budget:
        head_logical = head_logical[: max(1, budget - len(head_stack) - 1)]
        head_stack = head_stack[: max(1, budget - len(head_logical) - 1)]
    name = f"{head_stack}-{head_logical}-{suffix}"
    return name.lower() if lower else name


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    t = props.get("Tags") or []
    if isinstance(t, dict):
        return [{"Key": k, "Value": str(v)} for k, v in t.items()]
    return [{"Key": x["Key"], "Value": str(x["Value"])} for x in t]


class Provisioner:
    """Creates each resource of the transformed template on moto, in dependency order."""

    def __init__(self, template: dict[str, Any], resolver: Resolver, endpoint: str, stack_name: str):
        self.t = template
        self.r = resolver
        self.endpoint = endpoint
        self.stack = stack_name
        self.client = clients_for(endpoint, resolver.region)
        self.functions: dict[str, FunctionSpec] = {}
        self.http_apis: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self.r.dynamic = self._resolve_dynamic

    def c(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.client(service)
        return self._clients[service]

    def _resolve_dynamic(self, service: str, key: str) -> str:
        if service in ("secretsmanager",):
            # secret-id:SecretString:json-key:version-stage:version-id (a secret id may be an ARN, with colons)
            if key.startswith("arn:"):
                parts = key.split(":")
                secret_id, rest = ":".join(parts[:7]), parts[7:]
            else:
                secret_id, *rest = key.split(":")
            rest += [""] * (4 - len(rest))
            _string, json_key, stage, version = rest[:4]
            args: dict[str, Any] = {"SecretId": secret_id}
            if version:
                args["VersionId"] = version
            elif stage:
                args["VersionStage"] = stage
            value = self.c("secretsmanager").get_secret_value(**args)["SecretString"]
            return str(json.loads(value)[json_key]) if json_key else value
        if service in ("ssm", "ssm-secure"):
            name, _, version = key.partition(":")
            pname = f"{name}:{version}" if version else name
            return self.c("ssm").get_parameter(Name=pname, WithDecryption=True)["Parameter"]["Value"]
        raise StackError(f"dynamic reference {{{{resolve:{service}:...}}}} is not supported locally")

    def order(self) -> list[str]:
        resources = self.t["Resources"]
        done: list[str] = []
        seen: set[str] = set()
        visiting: set[str] = set()

        def visit(n: str) -> None:
            if n in seen:
                return
            if n in visiting:
                raise StackError(f"dependency cycle through {n}")
            visiting.add(n)
            for d in sorted(self.r.dependencies(n)):
                visit(d)
            visiting.discard(n)
            seen.add(n)
            done.append(n)

        for name in resources:
            visit(name)
        return done

    def run(self) -> None:
        for logical in self.order():
            res = self.t["Resources"][logical]
            if not self.r.resource_enabled(logical):
                self.skipped[logical] = f"Condition {res['Condition']} is false"
                continue
            handler = self._HANDLERS.get(res["Type"])
            if handler is None:
                self.skipped[logical] = f"{res['Type']} is not emulated locally"
                log.warning("skipping %s (%s): not emulated locally", logical, res["Type"])
                continue
            props = res.get("Properties") or {}
            self.r.physical[logical] = handler(self, logical, props, res)
            log.debug("created %s %s -> %s", res["Type"], logical, self.r.physical[logical].ref)

    # -- one handler per resource type

    def _managed_policy(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("ManagedPolicyName") or _generated_name(self.stack, logical, 128)
        args = {"PolicyName": name, "PolicyDocument": json.dumps(p["PolicyDocument"]), "Path": p.get("Path", "/")}
        if p.get("Description"):
            args["Description"] = p["Description"]
        arn = self.c("iam").create_policy(**args)["Policy"]["Arn"]
        iam = self.c("iam")
        for role in p.get("Roles") or []:
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        for user in p.get("Users") or []:
            iam.attach_user_policy(UserName=user, PolicyArn=arn)
        for group in p.get("Groups") or []:
            iam.attach_group_policy(GroupName=group, PolicyArn=arn)
        return Physical(arn, {"PolicyArn": arn})

    def _role(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("RoleName") or _generated_name(self.stack, logical, 64)
        iam = self.c("iam")
        args = {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(p["AssumeRolePolicyDocument"]),
                "Path": p.get("Path", "/")}
        for k in ("Description", "MaxSessionDuration", "PermissionsBoundary"):
            if k in p:
                args[k] = p[k]
        if p.get("Tags"):
            args["Tags"] = _tags(p)
        role = iam.create_role(**args)["Role"]
        for policy in p.get("Policies") or []:
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                PolicyDocument=json.dumps(policy["PolicyDocument"]))
        for arn in p.get("ManagedPolicyArns") or []:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return Physical(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _table(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("TableName") or _generated_name(self.stack, logical, 255)
        args: dict[str, Any] = {"TableName": name, "AttributeDefinitions": p["AttributeDefinitions"],
                                "KeySchema": p["KeySchema"], "BillingMode": p.get("BillingMode", "PROVISIONED")}
        for k in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput", "StreamSpecification",
                  "TableClass", "DeletionProtectionEnabled"):
            if k in p:
                args[k] = p[k]
        sse = p.get("SSESpecification")
        if sse:
            # CloudFormation's SSEEnabled is the API's Enabled.
            args["SSESpecification"] = {k: v for k, v in {"Enabled": sse.get("SSEEnabled"), "SSEType": sse.get("SSEType"),
                                                          "KMSMasterKeyId": sse.get("KMSMasterKeyId")}.items()
                                        if v is not None}
        if p.get("Tags"):
            args["Tags"] = _tags(p)
        ddb = self.c("dynamodb")
        desc = ddb.create_table(**args)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        pitr = p.get("PointInTimeRecoverySpecification")
        if pitr:
            ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=pitr)
        attrs = {"Arn": desc["TableArn"]}
        if desc.get("LatestStreamArn"):
            attrs["StreamArn"] = desc["LatestStreamArn"]
        return Physical(name, attrs)

    def _schedule_group(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("Name") or _generated_name(self.stack, logical, 64)
        args: dict[str, Any] = {"Name": name}
        if p.get("Tags"):
            args["Tags"] = _tags(p)
        arn = self.c("scheduler").create_schedule_group(**args)["ScheduleGroupArn"]
        return Physical(name, {"Arn": arn})

    def _topic(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        fifo = str(p.get("FifoTopic", "false")).lower() == "true"
        name = p.get("TopicName") or _generated_name(self.stack, logical, 256 - (5 if fifo else 0)) + (".fifo" if fifo else "")
        attributes = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in p.items()
                      if k in ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication",
                               "SignatureVersion", "TracingConfig")}
        args: dict[str, Any] = {"Name": name, "Attributes": attributes}
        if p.get("Tags"):
            args["Tags"] = _tags(p)
        sns = self.c("sns")
        arn = sns.create_topic(**args)["TopicArn"]
        for sub in p.get("Subscription") or []:
            sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
        return Physical(arn, {"TopicArn": arn, "TopicName": name})

    def _queue(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        fifo = bool(p.get("FifoQueue"))
        name = p.get("QueueName") or _generated_name(self.stack, logical, 80 - (5 if fifo else 0)) + (".fifo" if fifo else "")
        attributes = {}
        for k, v in p.items():
            if k in ("QueueName", "Tags"):
                continue
            if isinstance(v, (dict, list)):
                v = json.dumps(v)
            elif isinstance(v, bool):
                v = str(v).lower()
            attributes[k] = str(v)
        args: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if p.get("Tags"):
            args["tags"] = {t["Key"]: t["Value"] for t in _tags(p)}
        sqs = self.c("sqs")
        url = sqs.create_queue(**args)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _alarm(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("AlarmName") or _generated_name(self.stack, logical, 255)
        args = {k: v for k, v in p.items() if k != "AlarmName"}
        args["AlarmName"] = name
        try:
            self.c("cloudwatch").put_metric_alarm(**args)
        except (botocore.exceptions.ClientError, botocore.exceptions.ParamValidationError) as e:
            # An alarm watches metrics nothing emits locally; it must not stop the stand-up.
            log.warning("alarm %s not created on moto: %s", logical, e)
            self.skipped[logical] = f"moto refused it: {e}"
        arn = f"arn:{PARTITION}:cloudwatch:{self.r.region}:{self.r.account}:alarm:{name}"
        return Physical(name, {"Arn": arn})

    def _dashboard(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("DashboardName") or _generated_name(self.stack, logical, 255)
        self.c("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=p["DashboardBody"])
        return Physical(name, {})

    def _log_group(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("LogGroupName") or _generated_name(self.stack, logical, 512)
        logs = self.c("logs")
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in p:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
        arn = f"arn:{PARTITION}:logs:{self.r.region}:{self.r.account}:log-group:{name}:*"
        return Physical(name, {"Arn": arn})

    def _rule(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("Name") or _generated_name(self.stack, logical, 64)
        args: dict[str, Any] = {"Name": name, "State": p.get("State", "ENABLED")}
        for k in ("ScheduleExpression", "Description", "RoleArn", "EventBusName"):
            if k in p:
                args[k] = p[k]
        if "EventPattern" in p:
            args["EventPattern"] = json.dumps(p["EventPattern"]) if not isinstance(p["EventPattern"], str) else p["EventPattern"]
        events = self.c("events")
        arn = events.put_rule(**args)["RuleArn"]
        targets = p.get("Targets") or []
        if targets:
            events.put_targets(Rule=name, Targets=targets, **({"EventBusName": p["EventBusName"]} if "EventBusName" in p else {}))
        return Physical(name, {"Arn": arn})

    def _function(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        name = p.get("FunctionName") or _generated_name(self.stack, logical, 64)
        arn = f"arn:{PARTITION}:lambda:{self.r.region}:{self.r.account}:function:{name}"
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") or "bootstrap"
        env = {k: str(v) for k, v in ((p.get("Environment") or {}).get("Variables") or {}).items()}
        self.functions[name] = FunctionSpec(
            logical_id=logical,
            name=name,
            arn=arn,
            binary=binary,
            memory_mb=int(p.get("MemorySize", 128)),
            timeout_s=int(p.get("Timeout", 3)),
            environment=env,
            dead_letter_arn=(p.get("DeadLetterConfig") or {}).get("TargetArn"),
            logging_config=dict(p.get("LoggingConfig") or {}),
            role_arn=p.get("Role"),
        )
        self.skipped[logical] = "run locally (runtime.py): moto runs Lambda code only in Docker"
        return Physical(name, {"Arn": arn}, held_by="local")

    def _permission(self, logical, props, res) -> Physical:
        self.skipped[logical] = "the local front and rules invoke the functions directly"
        return Physical(f"{self.stack}-{logical}", {}, held_by="local")

    def _http_api(self, logical, props, res) -> Physical:
        api_id = hashlib.sha256(f"{self.stack}/{logical}".encode()).hexdigest()[:10]
        self.r.physical[logical] = Physical(api_id, {"ApiId": api_id}, held_by="local")  # the Body may name itself
        body = self.r.value(props.get("Body") or {})
        self.http_apis[logical] = {"id": api_id, "body": body}
        self.skipped[logical] = "served locally by the front (front.py)"
        endpoint = f"https://{api_id}.execute-api.{self.r.region}.{URL_SUFFIX}"
        return Physical(api_id, {"ApiId": api_id, "ApiEndpoint": endpoint}, held_by="local")

    def _stage(self, logical, props, res) -> Physical:
        p = self.r.value(props)
        self.skipped[logical] = "served locally by the front (front.py)"
        return Physical(p.get("StageName", "$default"), {}, held_by="local")

    _HANDLERS: dict[str, Callable[["Provisioner", str, dict, dict], Physical]] = {
        "AWS::IAM::ManagedPolicy": _managed_policy,
        "AWS::IAM::Role": _role,
        "AWS::DynamoDB::Table": _table,
        "AWS::Scheduler::ScheduleGroup": _schedule_group,
        "AWS::SNS::Topic": _topic,
        "AWS::SQS::Queue": _queue,
        "AWS::CloudWatch::Alarm": _alarm,
        "AWS::CloudWatch::Dashboard": _dashboard,
        "AWS::Logs::LogGroup": _log_group,
        "AWS::Events::Rule": _rule,
        "AWS::Lambda::Function": _function,
        "AWS::Lambda::Permission": _permission,
        "AWS::ApiGatewayV2::Api": _http_api,
        "AWS::ApiGatewayV2::Stage": _stage,
    }


def stand_up(template_path: Path, endpoint: str, webhook_secret: str, stack_name: str = STACK_NAME,
             parameters: dict[str, str] | None = None, region: str = REGION, account: str = ACCOUNT) -> Stack:
    """Transforms template.yaml and creates its resources on the moto server at ``endpoint``."""
    parameters = dict(parameters or {})
    cfn = transform(template_path, parameters, region)
    resolver = Resolver(copy.deepcopy(cfn), parameters, stack_name, region, account)
    client = clients_for(endpoint, region)

    # Made before a deploy, never by the template: the webhook secret under WebhookSecretName.
    secret_name = resolver.params.get("WebhookSecretName")
    if secret_name:
        client("secretsmanager").create_secret(Name=secret_name, SecretString=webhook_secret,
                                               Description="webhook HMAC secret (local test value)")

    p = Provisioner(cfn, resolver, endpoint, stack_name)
    p.run()
    outputs = {}
    for name, out in (cfn.get("Outputs") or {}).items():
        if "Condition" in out and not resolver.condition(out["Condition"]):
            continue
        outputs[name] = resolver.value(out["Value"])
    return Stack(
        name=stack_name,
        region=region,
        account=account,
        endpoint=endpoint,
        template=cfn,
        resolver=resolver,
        functions=p.functions,
        http_apis=p.http_apis,
        physical=resolver.physical,
        skipped=p.skipped,
        outputs=outputs,
    )
