//! Start-up: the clients every invocation shares (Secrets Manager, SQS, the CleverTap HTTP client,
//! the delivery gates), built once per container, and the handler they make; the start-up line
//! says how the container is configured.

use super::StartError;
use super::runtime_loop::serve;
use crate::aws::dead_letter_queue::{SqsDeadLetterQueue, sqs_client};
use crate::aws::events_queue::SqsEventQueue;
use crate::aws::sqs_visibility::SqsVisibility;
use crate::clevertap::client::{HttpTimeouts, HttpTransport};
use crate::config::{Config, WebhookMode};
use crate::credentials::{SecretsManagerSource, secrets_client};
use crate::delivery::{Delivery, DeliveryPolicy};
use crate::handler::Handler;

/// Builds the clients once, and serves invocations until Lambda stops.
pub async fn run(config: Config) -> Result<(), StartError> {
    if config.is_offline() {
        return super::offline::run(config).await;
    }
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
