//! call-attempt: POST /v1/calls (call outcomes from the phone system).
//!
//! Thin by design: `followup_lambda::run` builds the SDK clients and the engine once per cold
//! start, then lends them to the shared handler for every invocation.

use followup_lambda::Function;

// Lambda hands an instance one event at a time: one thread, and no worker threads to start during init.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    followup_lambda::run(Function::CallAttempt).await
}
