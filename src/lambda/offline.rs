//! Offline mode of the Lambda runtime loop (docs/contracts.md §7): under `sam local invoke`,
//! `cargo lambda watch` or any local Runtime API, destination settings can come from
//! `LOCAL_DESTINATIONS` / `LOCAL_DESTINATIONS_FILE` instead of Secrets Manager, and `DRY_RUN`
//! sends nothing, printing requests and dead letters as `invoke --dry-run` does (its stand-ins
//! are reused here). Never the default; crate::config refuses it next to a queue on AWS.

use super::StartError;
use super::runtime_loop::serve;
use crate::aws::dead_letter_queue::{SqsDeadLetterQueue, sqs_client};
use crate::aws::events_queue::SqsEventQueue;
use crate::aws::sqs_visibility::SqsVisibility;
use crate::clevertap::client::{HttpTimeouts, HttpTransport};
use crate::cli::invoke::{DryRunTransport, Either, PrintDeadLetters, PrintQueue};
use crate::config::{Config, ConfigError, LocalDestinations, WebhookMode, vars};
use crate::credentials::{SecretsManagerSource, StaticSource, secrets_client};
use crate::delivery::{Delivery, DeliveryPolicy};
use crate::handler::Handler;
use crate::ports::AnyEventQueue;
use std::sync::Arc;

/// The runtime loop with the offline stand-ins where the configuration asks for them; AWS
/// clients are built only for what still needs AWS.
pub async fn run(config: Config) -> Result<(), StartError> {
    let local = config
        .local_destinations
        .as_ref()
        .map(StaticSource::from_local)
        .transpose()?;
    let queue_mode = config.webhook_mode == WebhookMode::Queue;
    let needs_aws = local.is_none()
        || (!config.dry_run && (config.dead_letter_queue_url.is_some() || queue_mode));
    let sdk = match needs_aws {
        true => Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await),
        false => None,
    };
    let settings = match (local, &sdk) {
        (Some(local), _) => Either::Left(local),
        (None, Some(sdk)) => Either::Right(
            SecretsManagerSource::new(
                secrets_client(sdk),
                config.secret_prefix.clone(),
                config.secrets_ttl,
            )
            .with_capacity(config.settings_cache_size)
            .with_stale_for(config.secrets_stale),
        ),
        (None, None) => unreachable_settings()?,
    };
    let transport = match config.dry_run {
        true => Either::Left(DryRunTransport),
        false => Either::Right(HttpTransport::new(HttpTimeouts::default())?),
    };
    let sqs = sdk.as_ref().map(sqs_client);
    let dead_letters = match (&config.dead_letter_queue_url, &sqs) {
        _ if config.dry_run => Either::Left(PrintDeadLetters),
        (Some(url), Some(sqs)) => Either::Right(Some(SqsDeadLetterQueue::new(sqs.clone(), url))),
        _ => Either::Right(None),
    };
    let events_queue: Option<Arc<dyn AnyEventQueue>> = match (&config.events_queue_url, &sqs) {
        _ if !queue_mode => None,
        _ if config.dry_run => Some(Arc::new(PrintQueue)),
        (Some(url), Some(sqs)) => Some(Arc::new(SqsEventQueue::new(sqs.clone(), url.clone()))),
        _ => None,
    };
    tracing::warn!(
        code = "offline_mode",
        settings = match &config.local_destinations {
            Some(LocalDestinations::Json(_)) => vars::LOCAL_DESTINATIONS,
            Some(LocalDestinations::File(_)) => vars::LOCAL_DESTINATIONS_FILE,
            None => "Secrets Manager",
        },
        dry_run = config.dry_run,
        webhook_mode = config.webhook_mode.as_str(),
        "container ready in offline mode: for local runs only"
    );
    let delivery = Delivery::new(transport, DeliveryPolicy::from_config(&config));
    let mut handler = Handler::new(config, settings, delivery, dead_letters);
    // A dry run changes no message's visibility: the sample events' receipt handles are fake.
    if let (false, Some(sqs)) = (handler.config.dry_run, sqs) {
        handler = handler.with_visibility(SqsVisibility::new(sqs));
    }
    match events_queue {
        Some(queue) => serve(handler.with_events_queue(queue)).await,
        None => serve(handler).await,
    }
}

/// `needs_aws` is true whenever there are no local settings, so this is never reached; an
/// error instead of a panic all the same.
fn unreachable_settings<T>() -> Result<T, StartError> {
    Err(StartError::Config(ConfigError {
        variable: vars::LOCAL_DESTINATIONS,
        problem: "no destination settings source".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{DestinationId, Secret};

    #[test]
    fn local_settings_load_from_the_variable_and_errors_never_quote_a_value() {
        let json = r#"{"web":{"accountId":"A","passcode":"pc-1","region":"in1"}}"#;
        let source = StaticSource::from_local(&LocalDestinations::Json(Secret::new(json))).unwrap();
        let id = DestinationId::parse("web").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let settings = rt.block_on(crate::ports::SettingsSource::settings(&source, &id));
        assert!(settings.is_ok());

        let bad = r#"{"web":{"accountId":"A","passcode":"pc-secret-2","region":"mars"}}"#;
        let err = StaticSource::from_local(&LocalDestinations::Json(Secret::new(bad))).unwrap_err();
        assert_eq!(err.variable, vars::LOCAL_DESTINATIONS);
        assert!(!err.to_string().contains("pc-secret-2"), "{err}");
        assert!(err.to_string().contains("web"), "{err}");
    }

    #[test]
    fn a_missing_local_file_is_named() {
        let path = std::path::PathBuf::from("/nonexistent/destinations.json");
        let err = StaticSource::from_local(&LocalDestinations::File(path)).unwrap_err();
        assert_eq!(err.variable, vars::LOCAL_DESTINATIONS_FILE);
        assert!(
            err.to_string().contains("/nonexistent/destinations.json"),
            "{err}"
        );
    }
}
