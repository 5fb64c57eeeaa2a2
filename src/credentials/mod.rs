//! Destination settings from AWS Secrets Manager, cached per warm container (docs/contracts.md §4).
//!
//! A batch of 10,000 events for one destination must cost one `GetSecretValue`, not 10,000:
//! entries are cached for `SECRETS_TTL_SECONDS` (a missing or unusable secret for 30 s, so a
//! fix is seen soon), and concurrent lookups of one destination share a single fetch
//! (single-flight through a per-destination `OnceCell`). A 401/403 from CleverTap drops the
//! entry at once. Every failure is a `retry` (it is never the event's fault) and is logged
//! with the destination id, never with a value from the secret.
//!
//! While Secrets Manager fails (`secrets_unavailable`), settings past their TTL keep being
//! served for `SECRETS_STALE_SECONDS` more (stale), asking Secrets Manager again every 30 s at
//! most; a missing or unusable secret is never papered over. A lookup never uses a second
//! fetch when one was made while it waited, whatever its answer, so one invocation asks
//! Secrets Manager at most once per destination.
//!
//! The webhook looks settings up before the caller is authenticated: those lookups of
//! destinations not cached go through `unknown` (their own small negative cache and a bounded
//! rate of calls), and a wrong token's re-read ([`SettingsSource::reread`]) replaces cached
//! settings only with settings read successfully. Their counts name only destinations whose
//! settings were read successfully, so an id anyone may send never becomes a metric dimension.

pub mod error;
mod unknown;

pub use unknown::{UNKNOWN_CACHE_SIZE, UNKNOWN_LOOKUP_BURST, UNKNOWN_LOOKUPS_PER_MINUTE};

pub use error::{CacheMisses, CredentialsError};

use crate::config::{ConfigError, LocalDestinations, vars};
use crate::config::{DEFAULT_SECRETS_STALE, DEFAULT_SETTINGS_CACHE_SIZE, NEGATIVE_TTL};
use crate::lru::LruMap;
use crate::ports::SettingsSource;
use crate::settings::{DestinationId, DestinationSettings, SettingsError};
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use std::collections::HashMap;
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
/// HTTP attempts of one call (the SDK's standard retry, set here rather than left to its
/// default): two attempts of 2 s fit in the 5 s of the whole call.
pub const SECRETS_MAX_ATTEMPTS: u32 = 2;

/// The timeouts every Secrets Manager call gets.
pub fn secrets_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(SECRETS_OPERATION_TIMEOUT)
        .operation_attempt_timeout(SECRETS_ATTEMPT_TIMEOUT)
        .connect_timeout(SECRETS_CONNECT_TIMEOUT)
        .build()
}

/// The retries every Secrets Manager call gets: [`SECRETS_MAX_ATTEMPTS`] attempts.
pub fn secrets_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(SECRETS_MAX_ATTEMPTS)
}

/// The Secrets Manager client configuration from the shared SDK config, with
/// [`secrets_timeouts`] and [`secrets_retries`]. Tests add interceptors to it.
pub fn secrets_client_config(sdk: &SdkConfig) -> aws_sdk_secretsmanager::config::Builder {
    aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(secrets_timeouts())
        .retry_config(secrets_retries())
}

/// The Secrets Manager client, built once per container.
pub fn secrets_client(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(secrets_client_config(sdk).build())
}

type Fetched = Result<Arc<DestinationSettings>, CredentialsError>;

/// Good settings to fall back on while Secrets Manager fails, and until when.
#[derive(Clone)]
struct Fallback {
    settings: Arc<DestinationSettings>,
    until: Instant,
}

/// What one fetch left for the lookups of its slot.
struct Entry {
    result: Fetched,
    expires: Instant,
    /// Settings to serve if the next fetch fails for Secrets Manager's reasons.
    fallback: Option<Fallback>,
    /// `result` is the fallback, served past its TTL.
    stale: bool,
    /// When the fetch that made it ended.
    read_at: Instant,
}

/// One destination's cache slot: filled once by whoever comes first, shared by the rest.
#[derive(Default)]
struct Slot {
    cell: OnceCell<Entry>,
    /// What the slot this one replaced could fall back on.
    fallback: Option<Fallback>,
}

/// Per destination, lookups that asked Secrets Manager, and lookups answered stale.
#[derive(Default, Clone, Copy)]
struct Counts {
    misses: u64,
    stale: u64,
}

/// Settings from Secrets Manager, secret id = prefix + destination id, cached for at most
/// `SETTINGS_CACHE_SIZE` destinations (least recently used evicted).
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    ttl: Duration,
    /// How long settings past their TTL are served while Secrets Manager fails.
    stale_for: Duration,
    slots: Mutex<LruMap<DestinationId, Arc<Slot>>>,
    /// Unauthenticated lookups of destinations not in `slots`.
    unknown: unknown::Unknown,
    /// Secrets Manager calls and stale answers per destination since the last
    /// `take_cache_misses`: named for destinations of trusted lookups (bounded like the cache
    /// itself) and destinations read successfully; unauthenticated lookups of others under
    /// `None`.
    misses: Mutex<HashMap<Option<DestinationId>, Counts>>,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: String, ttl: Duration) -> Self {
        SecretsManagerSource {
            client,
            prefix,
            ttl,
            stale_for: DEFAULT_SECRETS_STALE,
            slots: Mutex::new(LruMap::new(DEFAULT_SETTINGS_CACHE_SIZE)),
            unknown: unknown::Unknown::default(),
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

    /// Serves settings past their TTL for up to `stale_for` while Secrets Manager fails
    /// (`SECRETS_STALE_SECONDS`; zero never serves stale settings).
    pub fn with_stale_for(mut self, stale_for: Duration) -> Self {
        self.stale_for = stale_for;
        self
    }

    /// Adds to the counts of `destination` (`None`: one whose settings were never read).
    fn count(&self, destination: Option<&DestinationId>, add: impl FnOnce(&mut Counts)) {
        add(self
            .misses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(destination.cloned())
            .or_default());
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

    /// Replaces `expired` with a fresh slot, unless someone already did; the fresh slot keeps
    /// what the expired one could fall back on.
    fn replace(&self, destination: &DestinationId, expired: &Arc<Slot>) -> Arc<Slot> {
        let mut slots = self.slots();
        let current = slots.get_or_insert_with(destination.clone(), Arc::default);
        if Arc::ptr_eq(current, expired) {
            *current = Arc::new(Slot {
                cell: OnceCell::new(),
                fallback: expired.cell.get().and_then(|e| e.fallback.clone()),
            });
        }
        current.clone()
    }

    /// One `GetSecretValue`, counted under the destination's name when `trusted` (a source that
    /// names its destination under IAM, SQS) or when its settings were read successfully, now
    /// or before; otherwise without a name.
    async fn fetch(
        &self,
        destination: &DestinationId,
        fallback: Option<Fallback>,
        trusted: bool,
    ) -> Entry {
        let secret_id = format!("{}{}", self.prefix, destination.as_str());
        let result = self.fetch_secret(destination, &secret_id).await;
        let now = Instant::now();
        let known = trusted || result.is_ok() || fallback.is_some();
        self.count(known.then_some(destination), |c| c.misses += 1);
        if result.is_ok() {
            self.unknown.forget(destination);
        }
        match result {
            Ok(settings) => {
                tracing::debug!(destination = %destination, "destination settings fetched");
                Entry {
                    fallback: Some(Fallback {
                        settings: Arc::clone(&settings),
                        until: now + self.ttl + self.stale_for,
                    }),
                    result: Ok(settings),
                    expires: now + self.ttl,
                    stale: false,
                    read_at: now,
                }
            }
            Err(e @ CredentialsError::Unavailable { .. }) => match fallback {
                Some(fallback) if now < fallback.until => {
                    tracing::warn!(
                        destination = %destination,
                        code = e.code(),
                        error = %e,
                        stale_until_s = (fallback.until - now).as_secs(),
                        "Secrets Manager failed: serving the destination's settings past their TTL"
                    );
                    Entry {
                        result: Ok(Arc::clone(&fallback.settings)),
                        // Ask again soon, never past the end of the stale period.
                        expires: (now + NEGATIVE_TTL.min(self.ttl)).min(fallback.until),
                        fallback: Some(fallback),
                        stale: true,
                        read_at: now,
                    }
                }
                _ => self.failed(destination, e, now),
            },
            Err(e) => self.failed(destination, e, now),
        }
    }

    fn failed(&self, destination: &DestinationId, e: CredentialsError, now: Instant) -> Entry {
        tracing::error!(
            destination = %destination,
            code = e.code(),
            error = %e,
            "destination settings unavailable"
        );
        Entry {
            expires: now + e.cache_for(self.ttl),
            result: Err(e),
            fallback: None,
            stale: false,
            read_at: now,
        }
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

impl SecretsManagerSource {
    /// The slot of `destination` if the cache holds one.
    fn cached(&self, destination: &DestinationId) -> Option<Arc<Slot>> {
        self.slots().get(destination).cloned()
    }

    /// Puts settings read successfully in the cache, in a slot of their own.
    fn install(&self, destination: &DestinationId, entry: Entry) {
        self.slots().insert(
            destination.clone(),
            Arc::new(Slot {
                fallback: entry.fallback.clone(),
                cell: OnceCell::from(entry),
            }),
        );
    }

    /// A destination the cache holds nothing for, looked up for a caller not authenticated:
    /// one call from the shared bucket, its settings cached if read, a negative answer kept
    /// apart (`unknown`), an outage not kept at all.
    async fn look_up_unknown(&self, destination: &DestinationId) -> Fetched {
        if !self.unknown.try_spend() {
            tracing::warn!(
                destination = %destination,
                code = crate::codes::SECRETS_UNAVAILABLE,
                per_minute = UNKNOWN_LOOKUPS_PER_MINUTE,
                "destination settings not read: unauthenticated lookups of destinations not cached are over their rate"
            );
            return Err(CredentialsError::Unavailable {
                destination: destination.clone(),
                detail: "too many unauthenticated lookups of destinations not cached".into(),
            });
        }
        let entry = self.fetch(destination, None, false).await;
        let result = entry.result.clone();
        match &result {
            Ok(_) => self.install(destination, entry),
            Err(CredentialsError::Unavailable { .. }) => {}
            Err(e) => self
                .unknown
                .remember(destination, e.clone(), e.cache_for(self.ttl)),
        }
        result
    }
}

impl SettingsSource for SecretsManagerSource {
    async fn settings(&self, destination: &DestinationId) -> Fetched {
        let asked = Instant::now();
        let mut slot = self.slot(destination);
        // At most two rounds: an expired entry read before this lookup began is replaced once;
        // an entry read since (by this lookup or one it waited on) is used whatever its age or
        // answer, so a failed read is never repeated by the same lookup.
        for round in 0..2 {
            let entry = slot
                .cell
                .get_or_init(|| self.fetch(destination, slot.fallback.clone(), true))
                .await;
            if round == 1 || entry.read_at >= asked || Instant::now() < entry.expires {
                if entry.stale {
                    self.count(Some(destination), |c| c.stale += 1);
                }
                return entry.result.clone();
            }
            slot = self.replace(destination, &slot);
        }
        // Unreachable: the loop returns in its second round.
        Err(CredentialsError::Unavailable {
            destination: destination.clone(),
            detail: "settings cache gave no answer".into(),
        })
    }

    async fn settings_unauthenticated(&self, destination: &DestinationId) -> Fetched {
        if self.cached(destination).is_some() {
            return self.settings(destination).await;
        }
        if let Some((error, _)) = self.unknown.get(destination) {
            return Err(error);
        }
        self.look_up_unknown(destination).await
    }

    async fn reread(&self, destination: &DestinationId, since: Instant) -> Fetched {
        let slot = self.cached(destination);
        let entry = slot.as_ref().and_then(|s| s.cell.get());
        if let Some(entry) = entry
            && entry.read_at >= since
        {
            return entry.result.clone();
        }
        if let Some((error, read_at)) = self.unknown.get(destination)
            && read_at >= since
        {
            return Err(error);
        }
        let fallback = entry
            .and_then(|e| e.fallback.clone())
            .or_else(|| slot.as_ref().and_then(|s| s.fallback.clone()));
        let Some(fallback) = fallback else {
            // Never read successfully: as any unauthenticated lookup of an unknown destination.
            return self.look_up_unknown(destination).await;
        };
        let fresh = self.fetch(destination, Some(fallback), true).await;
        if fresh.stale {
            // Secrets Manager failed (logged by `fetch`): the cache stays as it was, stale
            // settings included, and the token cannot be checked against a fresh read.
            return Err(CredentialsError::Unavailable {
                destination: destination.clone(),
                detail: "the secret could not be read again".into(),
            });
        }
        // A missing or unusable secret answers its error; only good settings replace the
        // cached ones.
        let result = fresh.result.clone();
        if result.is_ok() {
            tracing::info!(destination = %destination, "destination settings read again");
            self.install(destination, fresh);
        }
        result
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
        .map(|(destination, c)| CacheMisses {
            destination,
            count: c.misses,
            stale: c.stale,
        })
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

    /// Offline mode's settings (docs/contracts.md §7): the JSON of `LOCAL_DESTINATIONS` or the
    /// file of `LOCAL_DESTINATIONS_FILE`. Errors name the variable or the file, never a value
    /// (the text holds passcodes).
    pub fn from_local(local: &LocalDestinations) -> Result<Self, ConfigError> {
        let (variable, text) = match local {
            LocalDestinations::Json(json) => (vars::LOCAL_DESTINATIONS, json.expose().to_owned()),
            LocalDestinations::File(path) => (
                vars::LOCAL_DESTINATIONS_FILE,
                std::fs::read_to_string(path).map_err(|e| ConfigError {
                    variable: vars::LOCAL_DESTINATIONS_FILE,
                    problem: format!("cannot read {}: {e}", path.display()),
                })?,
            ),
        };
        Self::from_json(&text).map_err(|e| ConfigError {
            variable,
            problem: e.to_string(),
        })
    }

    /// Parses `{ "dest-id": {settings...}, ... }`. Errors name the destination id, never a value.
    pub fn from_json(text: &str) -> Result<Self, StaticSourceError> {
        let raw: HashMap<String, Box<serde_json::value::RawValue>> = serde_json::from_str(text)
            .map_err(|e| StaticSourceError::NotAnObject {
                detail: crate::settings::json_error_without_text(&e),
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
