"""The topology's parts on their own: the Runtime API emulator with a stand-in function (a Python
script speaking the Runtime API), Scheduler on both clocks, asynchronous retries and the
dead-letter queue on moto, cron and rate rules, the intrinsic functions and the route table."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import botocore.exceptions
import pytest

from conftest import poll

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from topology import access, runtime, stack  # noqa: E402
from topology.front import match, routes_from_openapi  # noqa: E402
from topology.procs import LineSink, MotoServer  # noqa: E402
from topology.runtime import LambdaService, LocalFunction  # noqa: E402
from topology.stack import FunctionSpec, Physical, Resolver  # noqa: E402
from topology.timers import Clock, SchedulerService, next_occurrence  # noqa: E402

STAND_IN = """\
#!{python}
import json, os, sys, time, urllib.request, urllib.error
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"

def post(path, body, headers=None):
    urllib.request.urlopen(urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                                  headers=headers or {{}}))

if os.environ.get("STAND_IN_INIT") == "error":
    post("/init/error", {{"errorType": "Boot.NoConfig", "errorMessage": "no config"}})
    sys.exit(1)
while True:
    try:
        r = urllib.request.urlopen(base + "/invocation/next")
    except urllib.error.URLError:
        sys.exit(0)
    rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
    headers = {{k: r.headers[k] for k in ("Lambda-Runtime-Aws-Request-Id", "Lambda-Runtime-Deadline-Ms",
                                         "Lambda-Runtime-Invoked-Function-Arn", "Lambda-Runtime-Trace-Id")}}
    event = json.loads(r.read())
    with open(os.environ["STAND_IN_RECORD"], "a") as f:
        f.write(json.dumps(event) + "\\n")
    do = event.get("do") if isinstance(event, dict) else None
    if do == "sleep":
        time.sleep(event["secs"])
    if do == "exit":
        os._exit(event.get("code", 2))
    if do == "fail":
        post("/invocation/" + rid + "/error", {{"errorType": "Stand.In", "errorMessage": "asked to fail"}},
             {{"Lambda-Runtime-Function-Error-Type": "Stand.In"}})
        continue
    post("/invocation/" + rid + "/response", {{"event": event, "headers": headers, "env": dict(os.environ)}})
"""


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(sys.executable, 0, LineSink(tmp_path_factory.mktemp("moto-logs")))
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture
def make_function(tmp_path, moto):
    made: list[LambdaService] = []

    def make(name: str = "stand-in", timeout_s: int = 2, env: dict[str, str] | None = None,
             dead_letter_arn: str | None = None) -> tuple[LocalFunction, Path]:
        script = tmp_path / f"{name}.py"
        script.write_text(STAND_IN.format(python=sys.executable))
        script.chmod(0o755)
        record = tmp_path / f"{name}.events"
        spec = FunctionSpec(logical_id="StandIn", name=name,
                            arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}", binary=script.name,
                            memory_mb=128, timeout_s=timeout_s,
                            environment={"STAND_IN_RECORD": str(record), **(env or {})}, dead_letter_arn=dead_letter_arn,
                            logging_config={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"})
        service: LambdaService | None = None

        def dead_letter(fn, ev, inv):
            sqs = stack.clients_for(moto.endpoint)("sqs")
            url = sqs.get_queue_url(QueueName=fn.spec.dead_letter_arn.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=ev.payload.decode(), MessageAttributes={
                "ErrorMessage": {"DataType": "String", "StringValue": inv.error["errorMessage"]}})

        fn = LocalFunction(spec, script, moto.endpoint, "us-east-1", LineSink(tmp_path / "logs"), dead_letter)
        service = LambdaService({name: fn})
        made.append(service)
        return fn, record

    yield make
    for s in made:
        s.stop()


def invoke(fn: LocalFunction, event) -> runtime.Invocation:
    return fn.invoke(json.dumps(event).encode(), source="test", wait=20)


def test_the_runtime_api_hands_out_events_and_takes_answers(make_function):
    fn, _ = make_function(env={"FOLLOWUP_TABLE": "t"})
    fn.start()
    fn.wait_ready(10)
    inv = invoke(fn, {"hello": "world"})
    assert inv.ok, inv.error
    out = json.loads(inv.response)
    assert out["event"] == {"hello": "world"}
    assert out["headers"]["Lambda-Runtime-Aws-Request-Id"] == inv.id
    assert out["headers"]["Lambda-Runtime-Invoked-Function-Arn"] == fn.spec.arn
    assert out["headers"]["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    deadline_ms = int(out["headers"]["Lambda-Runtime-Deadline-Ms"])
    assert 0 < deadline_ms / 1000 - time.time() <= fn.spec.timeout_s
    env = out["env"]
    assert env["FOLLOWUP_TABLE"] == "t" and env["AWS_LAMBDA_FUNCTION_NAME"] == "stand-in"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128" and env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == "us-east-1" and env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert "HOME" not in env, "the function gets the template's environment and Lambda's, nothing inherited"

    failed = invoke(fn, {"do": "fail"})
    assert failed.error == {"errorType": "Stand.In", "errorMessage": "asked to fail"}
    assert invoke(fn, {"after": "error"}).ok


def test_a_timeout_or_an_exit_fails_the_invocation_and_replaces_the_instance(make_function):
    fn, _ = make_function(timeout_s=1)
    started = time.monotonic()
    slow = invoke(fn, {"do": "sleep", "secs": 30})
    assert slow.error["errorType"] == "Sandbox.Timedout", slow.error
    assert time.monotonic() - started < 10
    assert invoke(fn, {"after": "timeout"}).ok
    crashed = invoke(fn, {"do": "exit", "code": 3})
    assert crashed.error["errorType"] == "Runtime.ExitError" and "exit status 3" in crashed.error["errorMessage"]
    assert invoke(fn, {"after": "exit"}).ok
    assert fn.stats["cold_starts"] == 3 and fn.stats["timeouts"] == 1


def test_an_init_error_fails_the_invocation_that_started_the_instance(make_function):
    fn, _ = make_function(env={"STAND_IN_INIT": "error"})
    inv = invoke(fn, {"never": "handled"})
    assert inv.error == {"errorType": "Boot.NoConfig", "errorMessage": "no config"}


def test_an_event_that_keeps_failing_is_retried_then_dead_lettered(make_function, moto, monkeypatch):
    monkeypatch.setattr(runtime, "ASYNC_RETRY_DELAYS_S", (0.1, 0.1))
    sqs = stack.clients_for(moto.endpoint)("sqs")
    url = sqs.create_queue(QueueName="stand-in-dlq")["QueueUrl"]
    fn, record = make_function(dead_letter_arn="arn:aws:sqs:us-east-1:123456789012:stand-in-dlq")
    ev = fn.invoke_event(json.dumps({"do": "fail", "n": 1}).encode(), source="test")
    assert ev.settled.wait(20)
    assert len(ev.attempts) == 3 and ev.dead_lettered
    assert len(record.read_text().splitlines()) == 3
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(got[0]["Body"]) == {"do": "fail", "n": 1}
    assert got[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == "asked to fail"


def _place(scheduler, group: str, name: str, at: datetime, arn: str, payload: dict) -> None:
    scheduler.create_schedule(
        Name=name, GroupName=group, ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC", FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
        Target={"Arn": arn, "RoleArn": "arn:aws:iam::123456789012:role/r", "Input": json.dumps(payload)})


def test_schedules_fire_on_the_real_clock_and_are_deleted(make_function, moto):
    client = stack.clients_for(moto.endpoint)
    scheduler = client("scheduler")
    scheduler.create_schedule_group(Name="real-clock")
    fn, record = make_function()
    service = SchedulerService(scheduler, client("sqs"), "real-clock", LambdaService({fn.spec.name: fn}), Clock())
    _place(scheduler, "real-clock", "soon", datetime.now(timezone.utc) + timedelta(seconds=1), fn.spec.arn, {"n": "soon"})
    _place(scheduler, "real-clock", "later", datetime.now(timezone.utc) + timedelta(hours=1), fn.spec.arn, {"n": "later"})
    service.start()
    try:
        poll("the due schedule fired", lambda: record.exists() and record.read_text())
        assert [json.loads(l) for l in record.read_text().splitlines()] == [{"n": "soon"}]
        left = poll("the fired schedule deleted",
                    lambda: [s["Name"] for s in scheduler.list_schedules(GroupName="real-clock")["Schedules"]] == ["later"])
        assert left
    finally:
        service.stop()


def test_the_virtual_clock_fires_what_falls_due_in_due_order(make_function, moto):
    client = stack.clients_for(moto.endpoint)
    scheduler = client("scheduler")
    scheduler.create_schedule_group(Name="virtual-clock")
    fn, record = make_function()
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    clock = Clock(start)
    service = SchedulerService(scheduler, client("sqs"), "virtual-clock", LambdaService({fn.spec.name: fn}), clock)
    for name, hours in (("third", 3), ("first", 1), ("second", 2)):
        _place(scheduler, "virtual-clock", name, start + timedelta(hours=hours), fn.spec.arn, {"n": name})
    assert service.advance(start + timedelta(minutes=150)) and clock.now() == start + timedelta(minutes=150)
    assert [json.loads(l)["n"] for l in record.read_text().splitlines()] == ["first", "second"]
    assert [r["name"] for r in service.advance(start + timedelta(hours=5))] == ["third"]


def test_rule_schedules():
    origin = datetime(2026, 4, 9, 10, 0, tzinfo=timezone.utc)
    assert next_occurrence("cron(5 22 * * ? *)", datetime(2026, 4, 9, 22, 5, tzinfo=timezone.utc), origin) == \
        datetime(2026, 4, 10, 22, 5, tzinfo=timezone.utc)
    # 2026-04-10 is a Friday; MON-FRI skips to Monday.
    assert next_occurrence("cron(0 9 ? * MON-FRI *)", datetime(2026, 4, 10, 9, 0, tzinfo=timezone.utc), origin) == \
        datetime(2026, 4, 13, 9, 0, tzinfo=timezone.utc)
    assert next_occurrence("cron(0/15 * * * ? *)", datetime(2026, 4, 9, 10, 7, tzinfo=timezone.utc), origin) == \
        datetime(2026, 4, 9, 10, 15, tzinfo=timezone.utc)
    assert next_occurrence("rate(5 minutes)", datetime(2026, 4, 9, 10, 7, tzinfo=timezone.utc), origin) == \
        datetime(2026, 4, 9, 10, 10, tzinfo=timezone.utc)


def test_intrinsic_functions_resolve_as_cloudformation_does():
    template = {
        "Parameters": {"Name": {"Type": "String", "Default": "app"}, "Topic": {"Type": "String", "Default": ""}},
        "Conditions": {"HasTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Topic"}, ""]}]}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    }
    r = Resolver(template, {}, "stack-x")
    r.physical["Queue"] = Physical("https://q", {"Arn": "arn:aws:sqs:us-east-1:123456789012:q"})
    r.dynamic = lambda service, key: f"<{service}:{key}>"
    assert r.value({"Fn::Sub": "${AWS::StackName}-${Name}-${Queue.Arn}-${!Literal}"}) == \
        "stack-x-app-arn:aws:sqs:us-east-1:123456789012:q-${Literal}"
    assert r.value({"Fn::Sub": ["${A}.${AWS::URLSuffix}", {"A": {"Ref": "Queue"}}]}) == "https://q.amazonaws.com"
    assert r.value({"Actions": {"Fn::If": ["HasTopic", [{"Ref": "Topic"}], {"Ref": "AWS::NoValue"}]}, "K": 1}) == {"K": 1}
    assert r.value({"Fn::Sub": "{{resolve:secretsmanager:${Name}/secret:SecretString}}"}) == \
        "<secretsmanager:app/secret:SecretString>"
    assert r.value({"Fn::Join": ["/", [{"Fn::GetAtt": ["Queue", "Arn"]}, {"Fn::Select": [1, ["a", "b"]]}]]}) == \
        "arn:aws:sqs:us-east-1:123456789012:q/b"


def test_routes_match_as_the_http_api_does(make_function):
    fn, _ = make_function()
    integ = {"x-amazon-apigateway-integration": {"uri": f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn.spec.arn}/invocations",
                                                 "payloadFormatVersion": "2.0"}}
    body = {"paths": {
        "/v1/cases": {"get": {**integ, "security": [{"AWS_IAM": []}]}},
        "/v1/cases/{case_id}": {"get": integ},
        "/v1/cases/special": {"get": integ},
        "/v1/{proxy+}": {"x-amazon-apigateway-any-method": integ},
        "$default": {"x-amazon-apigateway-any-method": {**integ, "isDefaultRoute": True}},
    }}
    routes = routes_from_openapi(body, LambdaService({fn.spec.name: fn}))
    assert match(routes, "GET", "/v1/cases")[0].iam
    assert (lambda m: (m[0].key, m[1]))(match(routes, "GET", "/v1/cases/o1-O%2F1")) == \
        ("GET /v1/cases/{case_id}", {"case_id": "o1-O/1"})
    assert match(routes, "GET", "/v1/cases/special")[0].key == "GET /v1/cases/special"
    assert match(routes, "POST", "/v1/cases/x")[0].key == "ANY /v1/{proxy+}"
    assert match(routes, "GET", "/elsewhere")[0].key == "$default"


def test_the_template_transforms_and_every_function_has_its_binary_and_route():
    cfn = stack.transform(Path(__file__).resolve().parents[3] / "template.yaml", {})
    resources = cfn["Resources"]
    functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) == 6
    binaries = {r["Metadata"]["BuildProperties"]["Binary"] for r in functions.values()}
    assert binaries == {"appointments", "cancellation-request", "call-attempt", "package-payment", "package-expiry", "cases"}
    apis = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    paths = apis[0]["Properties"]["Body"]["paths"]
    assert {"/v1/appointments", "/v1/cancellations", "/v1/calls", "/v1/packages", "/v1/cases", "/v1/cases/{case_id}", "$default"} <= set(paths)


def _denied(call) -> str:
    """The refusal's code (moto answers a JSON service's refusal in XML, which boto3 leaves unread)."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    error = e.value.response["Error"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, error
    found = re.search(r"<Code>(\w+)</Code>", error.get("Message", ""))
    return found.group(1) if found else error["Code"]


def test_iam_on_moto_refuses_what_a_role_does_not_grant(tmp_path):
    """moto with IAM switched on, as the topology runs it (access.py, moto_iam.py): a role's session
    may make exactly the calls its policies grant, on the resources they name, a DynamoDB
    transaction checked item by item; anything else is refused, as is an unknown key."""
    server = MotoServer(sys.executable, 0, LineSink(tmp_path / "logs"), iam=True)
    server.wait_ready()
    try:
        admin = stack.clients_for(server.endpoint)
        ddb, iam = admin("dynamodb"), admin("iam")
        for table in ("cases", "other"):
            ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        secret_arn = admin("secretsmanager").create_secret(Name="hook/secret", SecretString="s")["ARN"]
        admin("secretsmanager").create_secret(Name="hook/secret-other", SecretString="o")
        topic, other_topic = (admin("sns").create_topic(Name=n)["TopicArn"] for n in ("ops", "elsewhere"))
        admin("scheduler").create_schedule_group(Name="timers")
        table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/cases"
        grants = [
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": table_arn},
            # The template's pattern: Secrets Manager appends six characters to the name.
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hook/secret-??????"},
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
            {"Effect": "Allow", "Action": "sns:Publish", "NotResource": "arn:aws:sns:*:*:*"},
            {"Effect": "Allow", "Action": "scheduler:CreateSchedule",
             "Resource": "arn:aws:scheduler:us-east-1:123456789012:schedule/timers/*"},
        ]
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]
        iam.put_role_policy(RoleName="fn", PolicyName="grants",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": grants}))
        session = admin("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="fn")["Credentials"]
        access.switch_on(server.endpoint)

        fn = stack.clients_for(server.endpoint, credentials={
            "aws_access_key_id": session["AccessKeyId"], "aws_secret_access_key": session["SecretAccessKey"],
            "aws_session_token": session["SessionToken"]})
        ddb, secrets, sns, scheduler = fn("dynamodb"), fn("secretsmanager"), fn("sns"), fn("scheduler")
        key = {"pk": {"S": "a"}}
        ddb.put_item(TableName="cases", Item=key)
        assert ddb.get_item(TableName="cases", Key=key)["Item"] == key
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "cases", "Item": {"pk": {"S": "b"}}}}])
        assert secrets.get_secret_value(SecretId="hook/secret")["ARN"] == secret_arn
        sns.publish(TopicArn=topic, Message="command")
        sns.publish(PhoneNumber="+201000000000", Message="sms")
        _place(scheduler, "timers", "t1", datetime.now(timezone.utc) + timedelta(hours=1),
               "arn:aws:lambda:us-east-1:123456789012:function:f", {})

        assert _denied(lambda: ddb.get_item(TableName="other", Key=key)) == "AccessDenied"
        assert _denied(lambda: ddb.query(TableName="cases", KeyConditionExpression="pk = :a",
                                         ExpressionAttributeValues={":a": {"S": "a"}})) == "AccessDenied"
        # A transaction's Update needs UpdateItem, which the role does not grant.
        assert _denied(lambda: ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "cases", "Item": {"pk": {"S": "c"}}}},
            {"Update": {"TableName": "cases", "Key": key, "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "1"}}}}])) == "AccessDenied"
        assert _denied(lambda: secrets.get_secret_value(SecretId="hook/secret-other")) == "AccessDenied"
        assert _denied(lambda: sns.publish(TopicArn=other_topic, Message="x")) == "AccessDenied"
        assert _denied(lambda: scheduler.delete_schedule(Name="t1", GroupName="timers")) == "AccessDenied"
        stranger = stack.clients_for(server.endpoint, credentials={"aws_access_key_id": "AKIAUNKNOWN0000000000",
                                                                    "aws_secret_access_key": "x"})
        assert _denied(lambda: stranger("dynamodb").get_item(TableName="cases", Key=key)) == "InvalidClientTokenId"
    finally:
        server.stop()
