//! appointments: POST /v1/appointments and the timers of appointment_watch, reschedule_outreach, second_visit_follow_up and order subjects.
//!
//! Thin by design: `followup_lambda::run` builds the SDK clients and the engine once per cold
//! start, then lends them to the shared handler for every invocation.

use followup_lambda::Function;

// Lambda hands an instance one event at a time: one thread, and no worker threads to start during init.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    followup_lambda::run(Function::Appointments).await
}
