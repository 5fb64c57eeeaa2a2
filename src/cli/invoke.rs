//! `rudder-clevertap invoke [--destinations FILE] [--dry-run] LAMBDA_EVENT.json`
//! (docs/contracts.md §1): runs the real handler once on a Lambda event file, through the same
//! entry point as the Lambda runtime loop, so the whole path can be tried on any machine. Stdout
//! holds only the handler's JSON response; logs and dry-run output go to stderr.

use crate::aws::dead_letter_queue::{SqsDeadLetterQueue, sqs_client};
use crate::aws::events_queue::SqsEventQueue;
use crate::clevertap::client::{HttpTimeouts, HttpTransport};
use crate::clevertap::request;
use crate::clevertap::transport::{ApiRequest, HttpReply, TransportError};
use crate::config::{Config, WebhookMode};
use crate::credentials::CredentialsError;
use crate::credentials::{SecretsManagerSource, StaticSource, secrets_client};
use crate::dead_letters::letter::{DeadLetter, DeadLetterError};
use crate::delivery::{Delivery, DeliveryPolicy};
use crate::handler::Handler;
use crate::ports::Transport;
use crate::ports::{AnyEventQueue, DeadLetterSink, EventQueue, SettingsSource};
use crate::queue::{EnqueueError, QueuedMessage};
use crate::settings::{DestinationId, DestinationSettings};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The deadline `invoke` gives the handler: generous, as no Lambda timeout applies.
pub const INVOKE_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// Destination settings as a JSON object (destination id -> settings, docs/contracts.md §4), used
    /// instead of Secrets Manager.
    #[arg(long, value_name = "FILE")]
    pub destinations: Option<PathBuf>,
    /// Send nothing: print each CleverTap request (passcode redacted) and each dead letter to
    /// stderr; records count as delivered.
    #[arg(long)]
    pub dry_run: bool,
    /// A Lambda event: an SQS batch, or an API Gateway (v1, v2) or Function URL request.
    #[arg(value_name = "LAMBDA_EVENT.json")]
    pub event: PathBuf,
}

/// Exit status: 0 the handler answered (the answer says what happened), 1 the handler returned
/// an error (printed as Lambda's `{"errorType", "errorMessage"}`), 2 usage, an unreadable file,
/// invalid destinations or configuration.
pub fn main(args: InvokeArgs) -> ExitCode {
    crate::lambda::init_tracing(false);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rudder-clevertap invoke: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(args))
}

/// Either of two implementations of a port, chosen at start-up.
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A: SettingsSource, B: SettingsSource> SettingsSource for Either<A, B> {
    async fn settings(
        &self,
        destination: &DestinationId,
    ) -> Result<Arc<DestinationSettings>, CredentialsError> {
        match self {
            Either::Left(a) => a.settings(destination).await,
            Either::Right(b) => b.settings(destination).await,
        }
    }

    async fn settings_unauthenticated(
        &self,
        destination: &DestinationId,
    ) -> Result<Arc<DestinationSettings>, CredentialsError> {
        match self {
            Either::Left(a) => a.settings_unauthenticated(destination).await,
            Either::Right(b) => b.settings_unauthenticated(destination).await,
        }
    }

    async fn reread(
        &self,
        destination: &DestinationId,
        since: tokio::time::Instant,
    ) -> Result<Arc<DestinationSettings>, CredentialsError> {
        match self {
            Either::Left(a) => a.reread(destination, since).await,
            Either::Right(b) => b.reread(destination, since).await,
        }
    }

    fn invalidate(&self, destination: &DestinationId) {
        match self {
            Either::Left(a) => a.invalidate(destination),
            Either::Right(b) => b.invalidate(destination),
        }
    }

    fn take_cache_misses(&self) -> Vec<crate::credentials::CacheMisses> {
        match self {
            Either::Left(a) => a.take_cache_misses(),
            Either::Right(b) => b.take_cache_misses(),
        }
    }
}

impl<A: Transport, B: Transport> Transport for Either<A, B> {
    async fn post(&self, request: ApiRequest<'_>) -> Result<HttpReply, TransportError> {
        match self {
            Either::Left(a) => a.post(request).await,
            Either::Right(b) => b.post(request).await,
        }
    }
}

impl<A: DeadLetterSink, B: DeadLetterSink> DeadLetterSink for Either<A, B> {
    async fn send(
        &self,
        letters: &[DeadLetter],
        stop: tokio::time::Instant,
    ) -> Vec<Result<(), DeadLetterError>> {
        match self {
            Either::Left(a) => a.send(letters, stop).await,
            Either::Right(b) => b.send(letters, stop).await,
        }
    }
}

async fn run(mut args: InvokeArgs) -> ExitCode {
    let usage = |message: String| {
        eprintln!("rudder-clevertap invoke: {message}");
        ExitCode::from(2)
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return usage(e.to_string()),
    };
    let event_text = match tokio::fs::read_to_string(&args.event).await {
        Ok(t) => t,
        Err(e) => return usage(format!("cannot read {}: {e}", args.event.display())),
    };
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&event_text) {
        return usage(format!("{} is not JSON: {e}", args.event.display()));
    }
    let payload = bytes::Bytes::from(event_text);

    // The offline variables mean here what they mean in the runtime loop (lambda/offline.rs).
    args.dry_run |= config.dry_run;
    let local = (config.local_destinations.as_ref()).filter(|_| args.destinations.is_none());
    let queue_mode = config.webhook_mode == WebhookMode::Queue;
    let needs_aws = (args.destinations.is_none() && local.is_none())
        || (!args.dry_run && (config.dead_letter_queue_url.is_some() || queue_mode));
    let sdk = if needs_aws {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };

    let settings = match (&args.destinations, &sdk) {
        (None, _) if local.is_some() => match local.map(StaticSource::from_local) {
            Some(Ok(s)) => Either::Left(s),
            Some(Err(e)) => return usage(e.to_string()),
            None => return usage("no destination settings".into()),
        },
        (Some(path), _) => {
            let text = match tokio::fs::read_to_string(path).await {
                Ok(t) => t,
                Err(e) => return usage(format!("cannot read {}: {e}", path.display())),
            };
            match StaticSource::from_json(&text) {
                Ok(s) => Either::Left(s),
                Err(e) => return usage(format!("{}: {e}", path.display())),
            }
        }
        (None, Some(sdk)) => Either::Right(SecretsManagerSource::new(
            secrets_client(sdk),
            config.secret_prefix.clone(),
            config.secrets_ttl,
        )),
        (None, None) => return usage("no destination settings".into()),
    };
    let transport = if args.dry_run {
        Either::Left(DryRunTransport)
    } else {
        match HttpTransport::new(HttpTimeouts::default()) {
            Ok(t) => Either::Right(t),
            Err(e) => return usage(format!("cannot build the HTTP client: {e}")),
        }
    };
    let dead_letters = match (&config.dead_letter_queue_url, &sdk) {
        _ if args.dry_run => Either::Left(PrintDeadLetters),
        (Some(url), Some(sdk)) => {
            Either::Right(Some(SqsDeadLetterQueue::new(sqs_client(sdk), url)))
        }
        _ => Either::Right(None),
    };
    let events_queue: Option<Arc<dyn AnyEventQueue>> = match (&config.events_queue_url, &sdk) {
        _ if !queue_mode => None,
        _ if args.dry_run => Some(Arc::new(PrintQueue)),
        (Some(url), Some(sdk)) => Some(Arc::new(SqsEventQueue::new(sqs_client(sdk), url.clone()))),
        _ => None,
    };
    let delivery = Delivery::new(transport, DeliveryPolicy::from_config(&config));
    let mut handler = Handler::new(config, settings, delivery, dead_letters);
    if let Some(queue) = events_queue {
        handler = handler.with_events_queue(queue);
    }

    let invocation = handler
        .handle(payload, Instant::now() + INVOKE_DEADLINE)
        .await;
    match invocation.answer {
        Ok(response) => {
            println!("{}", pretty(&response));
            ExitCode::SUCCESS
        }
        Err(e) => {
            let diagnostic = json!({"errorType": e.code(), "errorMessage": e.to_string()});
            println!("{}", pretty(&diagnostic));
            ExitCode::from(1)
        }
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A transport that sends nothing: it prints the request it would send to stderr, the passcode
/// redacted, and answers as CleverTap does when every record is accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct DryRunTransport;

impl DryRunTransport {
    /// What would be sent, as JSON, with the passcode redacted (the view `transform` prints).
    pub fn describe(api_request: &ApiRequest<'_>) -> Value {
        let url = format!("{}{}", api_request.base_url, api_request.path);
        let mut view = String::with_capacity(api_request.body.len() + 256);
        request::write_view_head(&mut view, &url, api_request.account_id);
        match std::str::from_utf8(&api_request.body) {
            Ok(body) if serde_json::from_str::<&RawValue>(body).is_ok() => view.push_str(body),
            _ => crate::json::writer::write_str(
                &mut view,
                &String::from_utf8_lossy(&api_request.body),
            ),
        }
        view.push('}');
        serde_json::from_str(&view).unwrap_or(Value::Null)
    }
}

impl Transport for DryRunTransport {
    async fn post(&self, request: ApiRequest<'_>) -> Result<HttpReply, TransportError> {
        let described = Self::describe(&request);
        let sent = ["d", "identity"]
            .iter()
            .find_map(|k| described["body"].get(k).and_then(Value::as_array))
            .map_or(0, Vec::len);
        eprintln!(
            "dry-run: would send this CleverTap request:\n{}",
            pretty(&described)
        );
        let reply = json!({"status": "success", "processed": sent, "unprocessed": []});
        Ok(HttpReply {
            status: 200,
            body: reply.to_string().into(),
        })
    }
}

/// A dead-letter queue that sends nothing: it prints each letter to stderr and reports it sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintDeadLetters;

impl DeadLetterSink for PrintDeadLetters {
    async fn send(
        &self,
        letters: &[DeadLetter],
        _stop: tokio::time::Instant,
    ) -> Vec<Result<(), DeadLetterError>> {
        for letter in letters {
            let attributes: serde_json::Map<String, Value> = letter
                .attributes()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            let shown = json!({"body": letter.body, "attributes": attributes});
            eprintln!(
                "dry-run: would dead-letter this message:\n{}",
                pretty(&shown)
            );
        }
        letters.iter().map(|_| Ok(())).collect()
    }
}

/// An events queue that sends nothing (queue mode under `--dry-run`): it prints each message to
/// stderr and reports it queued.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintQueue;

impl EventQueue for PrintQueue {
    async fn send(
        &self,
        messages: &[QueuedMessage],
        _stop: Instant,
    ) -> Vec<Result<(), EnqueueError>> {
        for message in messages {
            let attributes: serde_json::Map<String, Value> = message
                .attributes()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            let shown = json!({"body": message.body, "attributes": attributes});
            eprintln!("dry-run: would queue this message:\n{}", pretty(&shown));
        }
        messages.iter().map(|_| Ok(())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    #[tokio::test]
    async fn a_dry_run_request_answers_success_for_every_record_and_hides_the_passcode() {
        let passcode = Secret::new("pc-secret-9");
        let request = ApiRequest {
            base_url: "https://in1.api.clevertap.com",
            path: crate::clevertap::endpoint::UPLOAD_PATH,
            account_id: "ACC",
            passcode: &passcode,
            body: r#"{"d":[{"type":"event"},{"type":"profile"}]}"#.into(),
            max_reply_bytes: 1024,
        };
        let shown = DryRunTransport::describe(&request).to_string();
        assert!(!shown.contains("pc-secret-9"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("https://in1.api.clevertap.com/1/upload"));
        let reply = DryRunTransport.post(request).await.unwrap();
        assert_eq!(reply.status, 200);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            body,
            json!({"status": "success", "processed": 2, "unprocessed": []})
        );
    }

    #[tokio::test]
    async fn a_printed_queued_message_counts_as_queued() {
        let message = QueuedMessage {
            body: "{}".into(),
            destination_id: "d".into(),
            source_request_id: Some("req".into()),
            deduplication_id: None,
            one_event: true,
        };
        let results =
            EventQueue::send(&PrintQueue, std::slice::from_ref(&message), Instant::now()).await;
        assert!(matches!(results.as_slice(), [Ok(())]));
    }

    #[tokio::test]
    async fn a_printed_dead_letter_counts_as_sent() {
        let letter = DeadLetter::new(
            "{}".into(),
            &crate::outcome::Reason::new("c", "m"),
            crate::dead_letters::letter::Origin {
                destination_id: Some("d"),
                source_message_id: Some("id"),
                message_group_id: None,
            },
        );
        let results = PrintDeadLetters
            .send(&[letter], tokio::time::Instant::now())
            .await;
        assert!(matches!(results.as_slice(), [Ok(())]));
    }
}
