//! Customer SMS and ops commands through SNS, each send claimed once in the table's send log.

use super::dynamo::{encode, Claim, DynamoStore};
use super::error::AwsError;
use crate::domain::calendar::Calendar;
use crate::domain::effects::{Command, Sms};
use crate::ports::{CommandBus, EffectError, SmsSender};
use crate::wire;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

/// The message attribute subscribers filter commands on.
pub const COMMAND_TYPE_ATTRIBUTE: &str = "command_type";
/// The message attribute that names the command's effect: the same on every send of one command,
/// so a subscriber drops the rare repeat of an at-least-once publish (docs/reliability.md).
pub const EFFECT_ID_ATTRIBUTE: &str = "effect_id";

/// One send through the send log: claimed, published, marked sent. A publish the service refused
/// gives the claim back at once; one whose outcome is unknown keeps it for the lease (it may have
/// gone out, so only a later attempt may send again: at least once). A publish that succeeded is
/// done, whether or not the log could then be marked.
async fn send_once<F>(log: &DynamoStore, channel: &str, effect_id: &str, doc: &str, publish: F) -> Result<(), EffectError>
where
    F: std::future::Future<Output = Result<Option<String>, AwsError>>,
{
    let token = match log.claim_send(channel, effect_id, doc).await? {
        Claim::Mine(token) => token,
        Claim::Sent => return Ok(()),
        Claim::InFlight => return Err(EffectError::Transient(format!("{effect_id} is being sent by another invocation"))),
    };
    match publish.await {
        Ok(message_id) => {
            // Sent: the effect is done even if the log cannot say so (its claim then lapses unused).
            if let Err(e) = log.mark_sent(channel, effect_id, message_id.as_deref()).await {
                tracing::warn!(effect_id, error = %e, "sent, but the send log not marked");
            }
            Ok(())
        }
        Err(e) => {
            if e.surely_not_done {
                if let Err(release) = log.release_send(channel, effect_id, &token).await {
                    tracing::warn!(effect_id, error = %release, "send claim not released; its lease frees it");
                }
            }
            Err(e.into())
        }
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, AwsError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| AwsError::invalid("Publish", e.to_string()))
}

/// `SnsSms::send`: `Publish` to a phone number.
pub const SMS: &[super::grants::Grant] = &[super::grants::grant("sns:Publish", super::grants::Resource::PhoneNumbers)];
/// `SnsCommands::publish`: `Publish` to the ops topic.
pub const COMMANDS: &[super::grants::Grant] = &[super::grants::grant("sns:Publish", super::grants::Resource::OpsTopic)];

/// SMS straight to the customer's E.164 number, transactional, under the policy's sender id.
#[derive(Debug, Clone)]
pub struct SnsSms {
    client: Client,
    log: DynamoStore,
    sender_id: String,
}

impl SnsSms {
    pub fn new(client: Client, log: DynamoStore, sender_id: impl Into<String>) -> Self {
        SnsSms { client, log, sender_id: sender_id.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl SmsSender for SnsSms {
    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        // SPEC §4: every send is recorded with its template, body, segments, case and time.
        let doc = encode(sms, "sms").map_err(|e| EffectError::Permanent(e.to_string()))?;
        let publish = async {
            let out = self
                .client
                .publish()
                .phone_number(&sms.to)
                .message(&sms.body)
                .message_attributes("AWS.SNS.SMS.SMSType", string_attribute("Transactional")?)
                .message_attributes("AWS.SNS.SMS.SenderID", string_attribute(&self.sender_id)?)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("Publish SMS", e))?;
            Ok(out.message_id)
        };
        send_once(&self.log, "sms", effect_id, &doc, publish).await
    }
}

/// Commands to the ops topic as `{type, case_id, at, data}` (SPEC §5), with a `command_type` attribute.
#[derive(Debug, Clone)]
pub struct SnsCommands {
    client: Client,
    log: DynamoStore,
    topic_arn: String,
    calendar: Calendar,
}

impl SnsCommands {
    pub fn new(client: Client, log: DynamoStore, topic_arn: impl Into<String>, calendar: Calendar) -> Self {
        SnsCommands { client, log, topic_arn: topic_arn.into(), calendar }
    }
}

impl CommandBus for SnsCommands {
    async fn publish(&self, effect_id: &str, command: &Command) -> Result<(), EffectError> {
        let message = wire::command_view(command, &self.calendar).to_string();
        let publish = async {
            let out = self
                .client
                .publish()
                .topic_arn(&self.topic_arn)
                .message(&message)
                .message_attributes(COMMAND_TYPE_ATTRIBUTE, string_attribute(command.body.kind())?)
                .message_attributes(EFFECT_ID_ATTRIBUTE, string_attribute(effect_id)?)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("Publish command", e))?;
            Ok(out.message_id)
        };
        send_once(&self.log, "cmd", effect_id, &message, publish).await
    }
}
