//! Destination settings from AWS Secrets Manager, cached per warm container (docs/contracts.md §4).
//!
//! A batch of 10,000 events for one destination must cost one `GetSecretValue`, not 10,000:
//! entries are cached for `SECRETS_TTL_SECONDS` (a missing or unusable secret for 30 s, so a
//! fix is seen soon), and concurrent lookups of one destination share a single fetch
//! (single-flight through a per-destination `OnceCell`). A 401/403 from CleverTap drops the
//! entry at once. Every failure is a `retry` (it is never the event's fault) and is logged
//! with the destination id, never with a value from the secret.

use crate::codes;
use crate::config::{DEFAULT_SETTINGS_CACHE_SIZE, NEGATIVE_TTL};
use crate::lru::LruMap;
use crate::outcome::Reason;
use crate::settings::{DestinationId, DestinationSettings, SettingsError};
use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// Whole `GetSecretValue` call, retries included: a stuck Secrets Manager must not eat the
/// invocation.
pub const SECRETS_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt of the call.
pub const SECRETS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// TCP + TLS connect to Secrets Manager.
pub const SECRETS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a destination's settings could not be had. Never the event's fault: always a `retry`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    #[error("no secret for destination {0}")]
    NotFound(DestinationId),
    #[error("Secrets Manager unavailable for destination {destination}: {detail}")]
    Unavailable {
        destination: DestinationId,
        detail: String,
    },
    #[error("secret of destination {destination} is unusable: {source}")]
    Invalid {
        destination: DestinationId,
        source: SettingsError,
    },
}

impl CredentialsError {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            CredentialsError::NotFound(_) => codes::SECRET_NOT_FOUND,
            CredentialsError::Unavailable { .. } => codes::SECRETS_UNAVAILABLE,
            CredentialsError::Invalid { source, .. } => source.code(),
        }
    }

    /// The `retry` reason events of this destination get.
    pub fn reason(&self) -> Reason {
        Reason::new(self.code(), self.to_string())
    }

    /// How long this failure is remembered before Secrets Manager is asked again.
    fn cache_for(&self, ttl: Duration) -> Duration {
        match self {
            CredentialsError::NotFound(_) | CredentialsError::Invalid { .. } => {
                NEGATIVE_TTL.min(ttl)
            }
            // Only the callers already waiting on this fetch share it.
            CredentialsError::Unavailable { .. } => Duration::ZERO,
        }
    }
}

/// Where destination settings come from.
pub trait SettingsSource: Send + Sync {
    fn settings(
        &self,
        destination: &DestinationId,
    ) -> impl Future<Output = Result<Arc<DestinationSettings>, CredentialsError>> + Send;

    /// Drops a cached entry (CleverTap answered 401/403 with it).
    fn invalidate(&self, destination: &DestinationId);

    /// Per destination, how many lookups since the last call were not answered from a cache
    /// (each one a `GetSecretValue`), for the `SecretsCacheMiss` metric. Sources without a
    /// cache report none.
    fn take_cache_misses(&self) -> Vec<CacheMisses> {
        Vec::new()
    }
}

/// How many lookups of one destination were not answered from a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMisses {
    pub destination: DestinationId,
    pub count: u64,
}

/// The timeouts every Secrets Manager call gets.
pub fn secrets_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(SECRETS_OPERATION_TIMEOUT)
        .operation_attempt_timeout(SECRETS_ATTEMPT_TIMEOUT)
        .connect_timeout(SECRETS_CONNECT_TIMEOUT)
        .build()
}

/// The Secrets Manager client configuration from the shared SDK config, with
/// [`secrets_timeouts`]. Tests add interceptors to it.
pub fn secrets_client_config(sdk: &SdkConfig) -> aws_sdk_secretsmanager::config::Builder {
    aws_sdk_secretsmanager::config::Builder::from(sdk).timeout_config(secrets_timeouts())
}

/// The Secrets Manager client, built once per container.
pub fn secrets_client(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(secrets_client_config(sdk).build())
}

type Fetched = Result<Arc<DestinationSettings>, CredentialsError>;

/// One destination's cache slot: filled once by whoever comes first, shared by the rest.
#[derive(Default)]
struct Slot {
    cell: OnceCell<(Fetched, Instant)>,
}

/// Settings from Secrets Manager, secret id = prefix + destination id, cached for at most
/// `SETTINGS_CACHE_SIZE` destinations (least recently used evicted).
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    ttl: Duration,
    slots: Mutex<LruMap<DestinationId, Arc<Slot>>>,
    /// Secrets Manager calls per destination since the last `take_cache_misses` (one entry per
    /// destination, so bounded like the cache itself).
    misses: Mutex<HashMap<DestinationId, u64>>,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: String, ttl: Duration) -> Self {
        SecretsManagerSource {
            client,
            prefix,
            ttl,
            slots: Mutex::new(LruMap::new(DEFAULT_SETTINGS_CACHE_SIZE)),
            misses: Mutex::new(HashMap::new()),
        }
    }

    /// The same source caching at most `destinations` destinations (`SETTINGS_CACHE_SIZE`).
    pub fn with_capacity(self, destinations: usize) -> Self {
        SecretsManagerSource {
            slots: Mutex::new(LruMap::new(destinations)),
            ..self
        }
    }

    /// How many destinations the cache holds now (bounded by its capacity).
    pub fn cached_destinations(&self) -> usize {
        self.slots().len()
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, LruMap<DestinationId, Arc<Slot>>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current slot of `destination`, or a fresh one when there is none.
    fn slot(&self, destination: &DestinationId) -> Arc<Slot> {
        self.slots()
            .get_or_insert_with(destination.clone(), Arc::default)
            .clone()
    }

    /// Replaces `stale` with a fresh slot, unless someone already did.
    fn replace(&self, destination: &DestinationId, stale: &Arc<Slot>) -> Arc<Slot> {
        let mut slots = self.slots();
        let current = slots.get_or_insert_with(destination.clone(), Arc::default);
        if Arc::ptr_eq(current, stale) {
            *current = Arc::new(Slot::default());
        }
        current.clone()
    }

    async fn fetch(&self, destination: &DestinationId) -> (Fetched, Instant) {
        *self
            .misses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(destination.clone())
            .or_default() += 1;
        let secret_id = format!("{}{}", self.prefix, destination.as_str());
        let result = self.fetch_secret(destination, &secret_id).await;
        let expires = Instant::now()
            + match &result {
                Ok(_) => self.ttl,
                Err(e) => e.cache_for(self.ttl),
            };
        match &result {
            Ok(_) => tracing::debug!(destination = %destination, "destination settings fetched"),
            Err(e) => tracing::error!(
                destination = %destination,
                code = e.code(),
                error = %e,
                "destination settings unavailable"
            ),
        }
        (result, expires)
    }

    async fn fetch_secret(&self, destination: &DestinationId, secret_id: &str) -> Fetched {
        let output = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                let not_found = e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception());
                if not_found {
                    CredentialsError::NotFound(destination.clone())
                } else {
                    // The error of a GetSecretValue call never holds the secret's value.
                    CredentialsError::Unavailable {
                        destination: destination.clone(),
                        detail: DisplayErrorContext(&e).to_string(),
                    }
                }
            })?;
        let text = output
            .secret_string()
            .ok_or_else(|| CredentialsError::Invalid {
                destination: destination.clone(),
                source: SettingsError::Malformed {
                    detail: "the secret has no SecretString".into(),
                },
            })?;
        DestinationSettings::from_json(text)
            .map(Arc::new)
            .map_err(|source| CredentialsError::Invalid {
                destination: destination.clone(),
                source,
            })
    }
}

impl SettingsSource for SecretsManagerSource {
    async fn settings(&self, destination: &DestinationId) -> Fetched {
        let mut slot = self.slot(destination);
        // At most two rounds: a stale entry is replaced once; the fresh slot is then filled by
        // this call or by a concurrent one, and used whatever its age.
        for round in 0..2 {
            let (result, expires) = slot.cell.get_or_init(|| self.fetch(destination)).await;
            if round == 1 || Instant::now() < *expires {
                return result.clone();
            }
            slot = self.replace(destination, &slot);
        }
        // Unreachable: the loop returns in its second round.
        Err(CredentialsError::Unavailable {
            destination: destination.clone(),
            detail: "settings cache gave no answer".into(),
        })
    }

    fn invalidate(&self, destination: &DestinationId) {
        if self.slots().remove(destination).is_some() {
            tracing::info!(destination = %destination, "cached destination settings dropped");
        }
    }

    fn take_cache_misses(&self) -> Vec<CacheMisses> {
        std::mem::take(
            &mut *self
                .misses
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
        .into_iter()
        .map(|(destination, count)| CacheMisses { destination, count })
        .collect()
    }
}

/// A bad entry of a `--destinations` file.
#[derive(Debug, thiserror::Error)]
pub enum StaticSourceError {
    #[error("destinations file is not a JSON object of destination id to settings: {detail}")]
    NotAnObject { detail: String },
    #[error(
        "destinations file: {id:?} is not a valid destination id (1 to 128 of A-Z a-z 0-9 _ . -)"
    )]
    InvalidId { id: String },
    #[error("destinations file: settings of destination {destination} are unusable: {source}")]
    Invalid {
        destination: DestinationId,
        source: SettingsError,
    },
}

/// Settings from a fixed map (the `invoke --destinations FILE` command and tests).
#[derive(Debug, Clone, Default)]
pub struct StaticSource {
    destinations: HashMap<DestinationId, Arc<DestinationSettings>>,
}

impl StaticSource {
    pub fn new(destinations: HashMap<DestinationId, Arc<DestinationSettings>>) -> Self {
        StaticSource { destinations }
    }

    /// Parses `{ "dest-id": {settings...}, ... }`. Errors name the destination id, never a value.
    pub fn from_json(text: &str) -> Result<Self, StaticSourceError> {
        let raw: HashMap<String, Box<serde_json::value::RawValue>> = serde_json::from_str(text)
            .map_err(|e| StaticSourceError::NotAnObject {
                // Category and position only: serde's text can quote values.
                detail: format!(
                    "{:?} error at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                )
                .to_lowercase(),
            })?;
        let mut destinations = HashMap::with_capacity(raw.len());
        for (id, settings) in raw {
            let destination =
                DestinationId::parse(&id).map_err(|_| StaticSourceError::InvalidId {
                    id: id.chars().take(DestinationId::MAX_LEN).collect(),
                })?;
            let settings = DestinationSettings::from_json(settings.get()).map_err(|source| {
                StaticSourceError::Invalid {
                    destination: destination.clone(),
                    source,
                }
            })?;
            destinations.insert(destination, Arc::new(settings));
        }
        Ok(StaticSource { destinations })
    }

    pub fn len(&self) -> usize {
        self.destinations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.destinations.is_empty()
    }
}

impl SettingsSource for StaticSource {
    async fn settings(&self, destination: &DestinationId) -> Fetched {
        self.destinations
            .get(destination)
            .cloned()
            .ok_or_else(|| CredentialsError::NotFound(destination.clone()))
    }

    fn invalidate(&self, _destination: &DestinationId) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DestinationId {
        DestinationId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_static_source_serves_its_destinations_and_not_found_for_others() {
        let source = StaticSource::from_json(
            r#"{"dest-1": {"accountId":"A1","passcode":"pc-secret-1","region":"in1"},
                "dest-2": {"accountId":"A2","passcode":"pc-secret-2"}}"#,
        )
        .unwrap();
        assert_eq!(source.len(), 2);
        let one = source.settings(&id("dest-1")).await.unwrap();
        assert_eq!(one.account_id, "A1");
        let err = source.settings(&id("dest-3")).await.unwrap_err();
        assert_eq!(err.reason().code, "secret_not_found");
    }

    #[test]
    fn a_bad_static_entry_names_the_destination_and_never_a_value() {
        let err = StaticSource::from_json(
            r#"{"ok": {"accountId":"A","passcode":"p"}, "dest-bad": {"passcode":"pc-secret-9"}}"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("dest-bad"), "{text}");
        assert!(text.contains("no accountId"), "{text}");
        assert!(!text.contains("pc-secret-9"), "{text}");

        let err =
            StaticSource::from_json(r#"{"a/b": {"accountId":"A","passcode":"p"}}"#).unwrap_err();
        assert!(matches!(err, StaticSourceError::InvalidId { .. }), "{err}");

        let err = StaticSource::from_json(r#"["pc-secret-9"]"#).unwrap_err();
        assert!(
            matches!(err, StaticSourceError::NotAnObject { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("pc-secret-9"));
    }

    #[test]
    fn every_credentials_error_is_a_retry_code_naming_the_destination() {
        let d = id("dest-7");
        let cases = [
            (CredentialsError::NotFound(d.clone()), "secret_not_found"),
            (
                CredentialsError::Unavailable {
                    destination: d.clone(),
                    detail: "timeout".into(),
                },
                "secrets_unavailable",
            ),
            (
                CredentialsError::Invalid {
                    destination: d.clone(),
                    source: SettingsError::MissingPasscode,
                },
                "secret_missing_passcode",
            ),
        ];
        for (err, code) in cases {
            let reason = err.reason();
            assert_eq!(reason.code, code);
            assert!(reason.message.contains("dest-7"), "{}", reason.message);
        }
    }

    #[test]
    fn missing_secrets_are_remembered_briefly_and_outages_not_at_all() {
        let ttl = Duration::from_secs(300);
        assert_eq!(
            CredentialsError::NotFound(id("d")).cache_for(ttl),
            NEGATIVE_TTL
        );
        assert_eq!(
            CredentialsError::NotFound(id("d")).cache_for(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        let outage = CredentialsError::Unavailable {
            destination: id("d"),
            detail: String::new(),
        };
        assert_eq!(outage.cache_for(ttl), Duration::ZERO);
    }
}
