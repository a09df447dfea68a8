//! appointments: POST /v1/appointments and the timers of appointment_watch, reschedule_outreach, second_visit_follow_up and order subjects.
//!
//! Thin by design: the SDK clients and the engine are built once per cold start, then lent
//! to the shared handler for every invocation.

use followup_lambda::{handle, Function, Payload};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    followup_lambda::init_logging();
    let engine = Arc::new(followup_lambda::engine_from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Payload>| {
        let engine = Arc::clone(&engine);
        // Boxed: the engine's future is deep enough to overflow rustc's layout query limit inline.
        async move { Box::pin(handle(&engine, Function::Appointments, event.payload)).await }
    }))
    .await
}
