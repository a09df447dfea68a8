"""What the functions sent, read back from the emulator: SMS and ops commands."""

from __future__ import annotations

import json
import threading
from typing import Any

from .httpio import http_json


class SmsLog:
    """Every SMS moto's SNS "sent" to a phone number, in send order."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def messages(self) -> list[dict[str, Any]]:
        status, data = http_json("GET", f"{self.endpoint}/moto-api/data.json", timeout=30)
        if status != 200 or not isinstance(data, dict):
            raise RuntimeError(f"moto data.json answered {status}")
        return [{"to": m.get("phone_number"), "body": m.get("message"), "message_id": m.get("message_id")}
                for m in (data.get("sns") or {}).get("SMS") or []]


class OpsObserver:
    """An SQS queue subscribed to the ops topic (raw delivery), as a subscriber would read it.

    The queue is the only resource this process adds to the stack; it stands for the dashboard
    and the agents' tools that consume the topic.
    """

    def __init__(self, sns, sqs, topic_arn: str, stack_name: str):
        self.sqs = sqs
        self.topic_arn = topic_arn
        name = f"{stack_name}-ops-observer"
        self.queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.subscription_arn = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn,
                                              Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
        self._lock = threading.Lock()
        self._seen: list[dict[str, Any]] = []

    def messages(self) -> list[dict[str, Any]]:
        """Every message published on the topic so far, in order (the queue is drained into memory)."""
        with self._lock:
            while True:
                got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                               VisibilityTimeout=30, MessageAttributeNames=["All"])
                batch = got.get("Messages") or []
                if not batch:
                    break
                for m in batch:
                    try:
                        body: Any = json.loads(m["Body"])
                    except ValueError:
                        body = m["Body"]
                    attrs = {k: v.get("StringValue") for k, v in (m.get("MessageAttributes") or {}).items()}
                    self._seen.append({"message": body, "attributes": attrs})
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
            return list(self._seen)


def peek_queue(sqs, queue_url: str, limit: int = 100) -> list[dict[str, Any]]:
    """Messages waiting in a queue, left in place (a dead-letter queue, for a test to look at)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(max(1, limit // 10)):
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                  MessageAttributeNames=["All"], AttributeNames=["All"])
        batch = [m for m in got.get("Messages") or [] if m["MessageId"] not in seen]
        if not batch:
            break
        for m in batch:
            seen.add(m["MessageId"])
            out.append({"body": m["Body"],
                        "attributes": {k: v.get("StringValue") for k, v in (m.get("MessageAttributes") or {}).items()}})
    return out
