//! The smallest `lambda_runtime` function, echoing its event: the yardstick `make footprint`
//! holds a real function's cold start against (built with the same `lambda` profile). It is
//! an example of this crate, so no template resource and no `make build` zip ever ships it.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

// The same runtime flavour as the functions (one thread), so the two cold starts compare like for like.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<Value, Error>(event.payload) })).await
}
