"""template.yaml as SAM deploys it: least privilege proven against the code, every parameter used.

The template is transformed exactly as a deploy transforms it (samtranslator). For each of the six
functions, the AWS API actions its code can call (listed next to the adapters in
shared/src/adapters/aws, composed per function by `followup_lambda::Function::grants`, printed by
`cargo run -p followup-lambda --example grants`) are compared with what its role is granted, both
ways: every call granted, nothing granted that is never called, no `*` resource.

What the Lambda service itself does with a function's role is not a call of the code, and is
allowed beside it: writing the function's logs (AWSLambdaBasicExecutionRole) and sending a failed
asynchronous event to the function's dead-letter queue.
"""

import json
import os
import subprocess

# The transform asks for a region (pseudo parameters); no credentials, no call to AWS.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
from pathlib import Path

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


class NoManagedPolicies:
    """The template names no AWS managed policy by name; SAM's own are ARNs already."""

    def load(self):
        return {}


def transformed():
    template = yaml_parse((ROOT / "template.yaml").read_text())
    # `sam package` uploads each function's code and writes its S3 location before the transform.
    for rid, r in template["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = f"s3://followup-artifacts/{rid}.zip"
    return transform(template, {}, NoManagedPolicies())


def code_grants():
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "followup-lambda", "--example", "grants"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {name: {(g["action"], g["resource"]) for g in grants} for name, grants in json.loads(out).items()}


def classify(resource, not_resource=False):
    """The template resource a policy statement's Resource names, as the grants name it."""
    if not_resource:
        # sns:Publish to anything that is not a topic: SMS to a phone number, which has no ARN.
        if resource == {"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}:
            return "phone_numbers"
        return f"unknown NotResource {resource}"
    if resource == "*":
        return "*"
    if resource == {"Fn::GetAtt": ["Table", "Arn"]}:
        return "table"
    if resource == {"Fn::Sub": "${Table.Arn}/index/pending"}:
        return "pending_index"
    if resource == {"Fn::Sub": "${Table.Arn}/index/subjects"}:
        return "subjects_index"
    if resource == {"Fn::Sub": "${Table.Arn}/index/due"}:
        return "due_index"
    if resource == {"Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*"}:
        return "schedules"
    if resource == {"Fn::GetAtt": ["SchedulerInvokeRole", "Arn"]}:
        return "scheduler_role"
    if resource == {"Ref": "OpsTopic"}:
        return "ops_topic"
    if resource == {"Fn::GetAtt": ["FunctionDeadLetterQueue", "Arn"]}:
        return "function_dlq"
    if resource == {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${WebhookSecretName}-??????"}:
        return "webhook_secret"
    return f"unknown {json.dumps(resource)}"


def statements(resources, role_id):
    """Every Allow statement of a role: its inline policies and the template's managed policies it attaches."""
    role = resources[role_id]["Properties"]
    docs = [p["PolicyDocument"] for p in role.get("Policies", [])]
    for arn in role.get("ManagedPolicyArns", []):
        if arn == BASIC_EXECUTION:
            continue
        assert isinstance(arn, dict) and "Ref" in arn, f"{role_id} attaches a policy from outside the template: {arn}"
        docs.append(resources[arn["Ref"]]["Properties"]["PolicyDocument"])
    for doc in docs:
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow", f"{role_id}: {st}"
            yield st


def granted(resources, role_id):
    pairs = set()
    for st in statements(resources, role_id):
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if "NotResource" in st:
            targets = [classify(st["NotResource"], not_resource=True)]
        else:
            res = st["Resource"]
            targets = [classify(r) for r in (res if isinstance(res, list) else [res])]
        for action in actions:
            for target in targets:
                pairs.add((action, target))
    return pairs


def functions(resources):
    """Function name (as `Function::name`) → its role's logical id."""
    out = {}
    for rid, r in resources.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        name = r["Properties"]["FunctionName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        out[name] = r["Properties"]["Role"]["Fn::GetAtt"][0]
    return out


@pytest.fixture(scope="module")
def cfn():
    return transformed()


def test_each_function_is_granted_exactly_what_its_code_calls(cfn):
    resources = cfn["Resources"]
    code = code_grants()
    roles = functions(resources)
    assert sorted(roles) == sorted(code), "one role per function of the code"
    problems = []
    for name, role in sorted(roles.items()):
        have = granted(resources, role)
        # The Lambda service sends a failed asynchronous event to the function's DLQ with its role.
        have.discard(("sqs:SendMessage", "function_dlq"))
        for action, target in sorted(have):
            if target == "*" or target.startswith("unknown"):
                problems.append(f"{name}: {action} on {target}")
        missing = code[name] - have
        extra = have - code[name]
        problems += [f"{name}: calls {a} on {r}, not granted" for a, r in sorted(missing)]
        problems += [f"{name}: granted {a} on {r}, never called" for a, r in sorted(extra)]
    assert not problems, "\n".join(problems)


def test_every_parameter_reaches_something(cfn):
    template = yaml_parse((ROOT / "template.yaml").read_text())
    text = json.dumps(cfn)
    for name in template.get("Parameters", {}):
        used = json.dumps({"Ref": name}) in text or "${" + name + "}" in text
        assert used, f"parameter {name} reaches nothing"


def test_the_sender_id_parameter_reaches_every_function_that_sends_sms(cfn):
    code = code_grants()
    for rid, r in cfn["Resources"].items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        name = r["Properties"]["FunctionName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        env = r["Properties"]["Environment"]["Variables"]
        if ("sns:Publish", "phone_numbers") in code[name]:
            assert env.get("FOLLOWUP_SMS_SENDER_ID") == {"Ref": "SmsSenderId"}, f"{name}: {env}"


def test_every_function_that_sends_sms_reads_and_writes_the_daily_sms_count():
    """SPEC §4 (v3): the daily cap is counted in the table by whichever function sends, so each
    one that may send an SMS may read a number's counter (`GetItem`) and write it in its commit's
    transaction (a `Put`, which IAM checks as `PutItem`); the test above holds the template to it."""
    code = code_grants()
    senders = [name for name, grants in code.items() if ("sns:Publish", "phone_numbers") in grants]
    assert senders, "some function sends SMS"
    for name in senders:
        for action in ("dynamodb:GetItem", "dynamodb:PutItem"):
            assert (action, "table") in code[name], f"{name} sends SMS but cannot {action} its daily count"


def test_the_dashboard_body_is_infra_dashboard_json():
    template = yaml_parse((ROOT / "template.yaml").read_text())
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert json.loads(body) == json.loads((ROOT / "infra" / "dashboard.json").read_text())




def test_the_webhook_secret_is_never_in_a_functions_configuration(cfn):
    """The functions read the secret from Secrets Manager; the template gives them its name only."""
    for rid, r in cfn["Resources"].items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        env = r["Properties"]["Environment"]["Variables"]
        assert "FOLLOWUP_WEBHOOK_SECRET" not in env, f"{rid}: {env}"
        assert "resolve:secretsmanager" not in json.dumps(env), f"{rid}: {env}"
        assert env["FOLLOWUP_WEBHOOK_SECRET_NAME"] == {"Ref": "WebhookSecretName"}, f"{rid}: {env}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
