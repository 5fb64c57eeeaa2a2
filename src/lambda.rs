//! The Lambda side of the binary: configuration and clients built once per container, then the
//! runtime loop hands every invocation to the one [`Handler`]. Kept out of `main.rs` so the
//! binary only dispatches.

use crate::config::{Config, vars};
use crate::credentials::SettingsSource;
// TEMPORARY until the delivery branch is merged: stand-ins with the same names.
use crate::deadletter::{DeadLetterSink, SqsDeadLetterQueue, sqs_client};
use crate::delivery::Delivery;
use crate::entrypoints::{Handler, Upload};
use crate::pending::{HttpTimeouts, HttpTransport, SecretsManagerSource, secrets_client};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Why the container could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("could not build the CleverTap HTTP client")]
    HttpClient(#[from] crate::pending::ClientBuildError),
    #[error("could not start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("the Lambda runtime loop failed: {0}")]
    Loop(lambda_runtime::Error),
}

/// The binary started without a subcommand: run the Lambda runtime loop, or explain why not.
pub fn main() -> ExitCode {
    if std::env::var_os(vars::AWS_LAMBDA_RUNTIME_API).is_none() {
        eprintln!(
            "rudder-clevertap: {} is not set, so this is not a Lambda container.\n\
             Run `rudder-clevertap --help` for the commands (invoke, transform).",
            vars::AWS_LAMBDA_RUNTIME_API
        );
        return ExitCode::from(2);
    }
    init_tracing(true);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&StartError::Runtime(e)),
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &StartError) -> ExitCode {
    tracing::error!(error = %e, "start-up failed");
    eprintln!("rudder-clevertap: {e}");
    ExitCode::from(2)
}

/// Reads the configuration, builds the clients once, and serves invocations until Lambda stops.
pub async fn run() -> Result<(), StartError> {
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let settings = SecretsManagerSource::new(
        secrets_client(&sdk),
        config.secret_prefix.clone(),
        config.secrets_ttl,
    );
    let delivery = Delivery::new(
        HttpTransport::new(HttpTimeouts::default())?,
        config.delivery_policy(),
    );
    let dead_letters = config
        .dead_letter_queue_url
        .as_deref()
        .map(|url| SqsDeadLetterQueue::new(sqs_client(&sdk), url));
    tracing::info!(
        secret_prefix = %config.secret_prefix,
        default_destination = config.default_destination_id.as_ref().map(|d| d.as_str()),
        dead_letter_queue = dead_letters.is_some(),
        max_concurrent_requests = config.max_concurrent_requests,
        "container ready"
    );
    serve(Handler::new(config, settings, delivery, dead_letters)).await
}

/// The runtime loop around one handler. A payload that is not JSON at all is answered by the
/// runtime itself with an error; everything else reaches the handler.
pub async fn serve<S: SettingsSource, U: Upload, D: DeadLetterSink>(
    handler: Handler<S, U, D>,
) -> Result<(), StartError> {
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        let answer = handler.handle(event.payload, deadline).await;
        emit_metrics(
            &event.context.env_config.function_name,
            handler.take_metrics(),
        );
        answer
    }))
    .await
    .map_err(StartError::Loop)
}

/// Writes the invocation's counters to stdout as CloudWatch EMF lines (crate::metrics): Lambda
/// ships them to CloudWatch Logs, which turns them into metrics without an API call.
fn emit_metrics(function: &str, metrics: crate::metrics::InvocationMetrics) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut out = std::io::stdout().lock();
    for doc in metrics.emf_documents(function, now_ms) {
        let _ = writeln!(out, "{doc}");
    }
}

/// The invocation deadline (`Lambda-Runtime-Deadline-Ms`, ms since the epoch) as a monotonic
/// instant; a deadline in the past is now.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + left
}

/// Logs go to stderr as key/value fields (JSON lines inside Lambda), filtered by `RUST_LOG`
/// (default `info`).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(vars::RUST_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder.compact().without_time().try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_in_the_future_keeps_its_distance() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = deadline_from_epoch_ms(now_ms + 10_000);
        let left = d - Instant::now();
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
    }

    #[test]
    fn a_deadline_in_the_past_is_now() {
        let d = deadline_from_epoch_ms(1_000);
        assert!(d <= Instant::now());
    }
}
