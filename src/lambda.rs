//! The Lambda side of the binary: configuration and clients built once per container, then the
//! runtime loop hands every invocation to the one [`Handler`]. Kept out of `main.rs` so the
//! binary only dispatches.
//!
//! What an operator gets per invocation, all on stdout (Lambda ships it to CloudWatch Logs):
//! logs (crate::logs: JSON when the function's log format is JSON, level from
//! `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`), inside lambda_runtime's span carrying the request and
//! trace ids; one `invocation summary` line; and the EMF lines CloudWatch turns into metrics
//! (crate::metrics).

use crate::clevertap::client::{ClientBuildError, HttpTimeouts, HttpTransport};
use crate::config::{Config, WebhookMode, vars};
use crate::credentials::{SecretsManagerSource, SettingsSource, secrets_client};
use crate::deadletter::{DeadLetterSink, SqsDeadLetterQueue, sqs_client};
use crate::delivery::{Delivery, DeliveryPolicy};
use crate::entrypoints::{CleverTapApi, Handler, HandlerError, Shape};
use crate::queue::SqsEventQueue;
use crate::visibility::SqsVisibility;
use bytes::Bytes;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{LambdaEvent, LambdaInvocation, service_fn};
use serde::de::IgnoredAny;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Why the container could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("could not build the CleverTap HTTP client")]
    HttpClient(#[from] ClientBuildError),
    #[error("could not start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("invalid {0}: Lambda sets it for every function; it is missing or not a number")]
    RuntimeEnvironment(&'static str),
    #[error("the Lambda runtime loop failed: {0}")]
    Loop(lambda_runtime::Error),
}

impl StartError {
    /// Stable snake_case code, for the log line.
    pub const fn code(&self) -> &'static str {
        match self {
            StartError::Config(_) => "invalid_configuration",
            StartError::HttpClient(_) => "http_client_failed",
            StartError::Runtime(_) => "async_runtime_failed",
            StartError::RuntimeEnvironment(_) => "invalid_lambda_environment",
            StartError::Loop(_) => "runtime_loop_failed",
        }
    }
}

/// Variables Lambda itself sets, which the runtime library reads (and would panic without).
const LAMBDA_VARIABLES: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Checks Lambda's own variables up front, so a broken environment is a message, not a panic.
fn check_lambda_environment(lookup: impl Fn(&str) -> Option<String>) -> Result<(), StartError> {
    for name in LAMBDA_VARIABLES {
        let value = lookup(name).ok_or(StartError::RuntimeEnvironment(name))?;
        if name == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" && value.trim().parse::<i32>().is_err() {
            return Err(StartError::RuntimeEnvironment(name));
        }
    }
    Ok(())
}

/// The binary started without a subcommand: run the Lambda runtime loop, or explain why not.
pub fn main() -> ExitCode {
    if std::env::var_os(vars::AWS_LAMBDA_RUNTIME_API).is_none() {
        eprintln!(
            "rudder-clevertap: {} is not set, so this is not a Lambda container.\n\
             Run `rudder-clevertap --help` for the commands (invoke, transform, dead-letters).",
            vars::AWS_LAMBDA_RUNTIME_API
        );
        return ExitCode::from(2);
    }
    // stdout, JSON when AWS_LAMBDA_LOG_FORMAT=JSON, level from AWS_LAMBDA_LOG_LEVEL or RUST_LOG.
    crate::logs::init_lambda_subscriber();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(&StartError::Config(e)),
    };
    if let Err(e) = check_lambda_environment(|name| std::env::var(name).ok()) {
        return fail(&e);
    }
    tune_allocator();
    // One thread: Lambda runs one invocation at a time, and the work of one is a CPU-bound
    // transform then I/O; worker threads would only add their own malloc arenas and start-up.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&StartError::Runtime(e)),
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Blocks of this size and more get their own mapping, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// glibc's malloc raises its mmap threshold to the size of the largest block freed (up to
/// 32 MiB). After the first big SQS batch (the runtime reads a 10,000-message payload of ~14 MB,
/// then its text copy), later payloads of that size would come from the heap, which keeps them
/// after free and fragments, so the peak would grow from one invocation to the next. A fixed
/// threshold (glibc's initial one) keeps every large block in its own mapping
/// (BENCHMARKS.md, "Whole path").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets a malloc parameter; it is called before any other thread
    // exists, and a refusal (return value 0) just leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Gives the memory the invocation freed back to the system before the next payload arrives:
/// what glibc keeps of a 10,000-message batch would otherwise add to the next one's peak.
/// Costs a few milliseconds after such a batch, microseconds after a small one
/// (BENCHMARKS.md, "Whole path").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim only returns free memory to the system; it takes malloc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

fn fail(e: &StartError) -> ExitCode {
    tracing::error!(code = e.code(), error = %e, "start-up failed");
    eprintln!("rudder-clevertap: {e}");
    ExitCode::from(2)
}

/// Builds the clients once, and serves invocations until Lambda stops.
pub async fn run(config: Config) -> Result<(), StartError> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let settings = SecretsManagerSource::new(
        secrets_client(&sdk),
        config.secret_prefix.clone(),
        config.secrets_ttl,
    )
    .with_capacity(config.settings_cache_size)
    .with_stale_for(config.secrets_stale);
    let delivery = Delivery::new(
        HttpTransport::new(HttpTimeouts::default())?,
        DeliveryPolicy::from_config(&config),
    );
    let sqs = sqs_client(&sdk);
    let dead_letters = config
        .dead_letter_queue_url
        .as_deref()
        .map(|url| SqsDeadLetterQueue::new(sqs.clone(), url));
    let events_queue = match (config.webhook_mode, &config.events_queue_url) {
        (WebhookMode::Queue, Some(url)) => Some(SqsEventQueue::new(sqs.clone(), url.clone())),
        _ => None,
    };
    tracing::info!(
        secret_prefix = %config.secret_prefix,
        default_destination = config.default_destination_id.as_ref().map(|d| d.as_str()),
        dead_letter_queue = dead_letters.is_some(),
        rejected_events = rejected_events(config.dead_letter_queue_url.as_deref()),
        max_concurrent_requests = config.max_concurrent_requests,
        max_items_per_body = config.max_items_per_body,
        webhook_mode = config.webhook_mode.as_str(),
        visibility_backoff_base_s = config.visibility_backoff_base.as_secs(),
        visibility_backoff_cap_s = config.visibility_backoff_cap.as_secs(),
        circuit_failure_threshold = config.circuit_failure_threshold,
        "container ready"
    );
    let handler = Handler::new(config, settings, delivery, dead_letters)
        .with_visibility(SqsVisibility::new(sqs.clone()));
    match events_queue {
        Some(queue) => serve(handler.with_events_queue(std::sync::Arc::new(queue))).await,
        None => serve(handler).await,
    }
}

/// What becomes of rejected events, for the start-up line (docs/contracts.md §3).
fn rejected_events(dead_letter_queue_url: Option<&str>) -> String {
    match dead_letter_queue_url {
        Some(url) => format!(
            "dead-lettered to {url}; an event whose dead letter is not written is retried \
             (dead_letter_failed)"
        ),
        None => "not dead-lettered: DEAD_LETTER_QUEUE_URL is not set. Rejected SQS messages are \
                 reported for retry (the source queue's redrive policy keeps them); rejected \
                 webhook events are answered rejected and kept nowhere"
            .to_owned(),
    }
}

/// The runtime loop around one handler. lambda_runtime wraps each invocation in a span carrying
/// its `requestId`, so every line below carries it.
pub async fn serve<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: Handler<S, C, D>,
) -> Result<(), StartError> {
    let handler = &handler;
    let slot = PayloadSlot::default();
    let taken = slot.clone();
    let cold = std::sync::atomic::AtomicBool::new(true);
    let cold = &cold;
    let service = service_fn(move |event: LambdaEvent<IgnoredAny>| {
        let payload = taken.take();
        async move {
            let started = Instant::now();
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let invocation = handler.handle(payload, deadline).await;
            let kind = invocation.shape.map_or("unknown", Shape::as_str);
            let metrics = handler.take_metrics();
            let code = invocation.answer.as_ref().err().map(HandlerError::code);
            let cold_start = cold.swap(false, std::sync::atomic::Ordering::Relaxed);
            crate::logs::after_invocation(&event.context, &handler.config, cold_start).write(
                kind,
                &metrics,
                code,
                started.elapsed(),
            );
            trim_heap();
            invocation.answer
        }
    });
    lambda_runtime::Runtime::new(service)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(RawPayload { slot })
        .run()
        .await
        .map_err(StartError::Loop)
}

/// The payload of the invocation in progress, as the Runtime API sent it. Lambda hands a
/// container one invocation at a time, so one slot is enough.
#[derive(Clone, Default)]
struct PayloadSlot(Arc<Mutex<Option<Bytes>>>);

impl PayloadSlot {
    fn put(&self, payload: Bytes) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
    }

    fn take(&self) -> Bytes {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// A layer in front of lambda_runtime's own services: it keeps the payload's bytes for the
/// handler and passes `null` on in their place. lambda_runtime would otherwise read the whole
/// payload as JSON before the handler reads it again: for a 10,000-message batch (14 MB of
/// escape-dense text) that pass alone cost as much CPU as the transform (BENCHMARKS.md, "Whole
/// path"). The handler checks what it reads as it reads it.
struct RawPayload {
    slot: PayloadSlot,
}

impl<S> Layer<S> for RawPayload {
    type Service = RawPayloadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RawPayloadService {
            inner,
            slot: self.slot.clone(),
        }
    }
}

struct RawPayloadService<S> {
    inner: S,
    slot: PayloadSlot,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for RawPayloadService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        let payload = std::mem::replace(&mut invocation.body, Bytes::from_static(b"null"));
        self.slot.put(payload);
        self.inner.call(invocation)
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

/// Logs of the CLI commands (`invoke`, `transform`): stderr, so stdout keeps only the command's
/// output; key/value fields (or JSON lines), filtered by `RUST_LOG` (default `info`). The Lambda
/// runtime loop uses lambda_runtime's own subscriber instead (see [`main`]).
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
    fn a_missing_or_broken_lambda_variable_is_named_instead_of_a_panic() {
        let all = |name: &str| {
            Some(
                if name.ends_with("MEMORY_SIZE") {
                    "128"
                } else {
                    "x"
                }
                .to_owned(),
            )
        };
        assert!(check_lambda_environment(all).is_ok());
        let err = check_lambda_environment(|name| all(name).filter(|_| !name.ends_with("NAME")))
            .unwrap_err();
        assert!(
            err.to_string().contains("AWS_LAMBDA_FUNCTION_NAME"),
            "{err}"
        );
        let err = check_lambda_environment(|name| {
            if name.ends_with("MEMORY_SIZE") {
                Some("lots".into())
            } else {
                all(name)
            }
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "{err}"
        );
    }

    #[test]
    fn a_deadline_in_the_past_is_now() {
        let d = deadline_from_epoch_ms(1_000);
        assert!(d <= Instant::now());
    }
}
