//! Environment → typed configuration (docs/contracts.md §7). Every variable name and every
//! default lives here, and every value is checked at start-up: a bad value stops the container
//! with a message naming the variable, instead of surfacing later as a puzzling per-message
//! failure.

use crate::settings::{DestinationId, Secret};
use std::path::PathBuf;
use std::time::Duration;

/// Names of the environment variables the function reads (docs/contracts.md §7).
pub mod vars {
    pub const SECRET_PREFIX: &str = "SECRET_PREFIX";
    pub const DEFAULT_DESTINATION_ID: &str = "DEFAULT_DESTINATION_ID";
    pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";
    pub const MAX_CONCURRENT_REQUESTS: &str = "MAX_CONCURRENT_REQUESTS";
    pub const RETRY_BUDGET_SECONDS: &str = "RETRY_BUDGET_SECONDS";
    pub const SECRETS_TTL_SECONDS: &str = "SECRETS_TTL_SECONDS";
    pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
    pub const MAX_ITEMS_PER_BODY: &str = "MAX_ITEMS_PER_BODY";
    pub const CLEVERTAP_ENDPOINT: &str = "CLEVERTAP_ENDPOINT";
    pub const WEBHOOK_MODE: &str = "WEBHOOK_MODE";
    pub const EVENTS_QUEUE_URL: &str = "EVENTS_QUEUE_URL";
    pub const WEBHOOK_DESTINATION_IDS: &str = "WEBHOOK_DESTINATION_IDS";
    pub const WEBHOOK_TOKEN_REFRESH_SECONDS: &str = "WEBHOOK_TOKEN_REFRESH_SECONDS";
    pub const SETTINGS_CACHE_SIZE: &str = "SETTINGS_CACHE_SIZE";
    pub const VISIBILITY_BACKOFF_BASE_SECONDS: &str = "VISIBILITY_BACKOFF_BASE_SECONDS";
    pub const VISIBILITY_BACKOFF_CAP_SECONDS: &str = "VISIBILITY_BACKOFF_CAP_SECONDS";
    pub const VISIBILITY_CONFIG_ERROR_SECONDS: &str = "VISIBILITY_CONFIG_ERROR_SECONDS";
    pub const CIRCUIT_FAILURE_THRESHOLD: &str = "CIRCUIT_FAILURE_THRESHOLD";
    pub const CIRCUIT_COOLDOWN_SECONDS: &str = "CIRCUIT_COOLDOWN_SECONDS";
    pub const SECRETS_STALE_SECONDS: &str = "SECRETS_STALE_SECONDS";
    pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
    pub const METRICS_PER_DESTINATION: &str = "METRICS_PER_DESTINATION";
    pub const RUST_LOG: &str = "RUST_LOG";
    /// Set by Lambda from the function's `LoggingConfig` (crate::lambda::logs).
    pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
    pub const AWS_LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
    /// The invocation's X-Ray trace header, set per invocation by lambda_runtime.
    pub const X_AMZN_TRACE_ID: &str = "_X_AMZN_TRACE_ID";
    /// Offline mode (local runs only): destination settings as a JSON object, instead of
    /// Secrets Manager.
    pub const LOCAL_DESTINATIONS: &str = "LOCAL_DESTINATIONS";
    /// Offline mode: the same JSON object in a file.
    pub const LOCAL_DESTINATIONS_FILE: &str = "LOCAL_DESTINATIONS_FILE";
    /// Offline mode: `true` sends nothing and prints requests and dead letters to stderr.
    pub const DRY_RUN: &str = "DRY_RUN";
    /// Set by Lambda (and `cargo lambda watch`, `sam local`): run the runtime loop.
    pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
}

/// Default secret id prefix (docs/contracts.md §4).
pub const DEFAULT_SECRET_PREFIX: &str = "rudder-clevertap/";
/// Default and bounds of `MAX_CONCURRENT_REQUESTS`: CleverTap allows 15 concurrent requests per
/// account (docs/clevertap-api.md, "Limits"), so one container may never use more.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 5;
pub const MAX_CONCURRENT_REQUESTS_LIMIT: usize = 15;
/// Default retry budget inside one invocation (docs/contracts.md §5).
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(20);
/// Longest retry budget accepted: Lambda's maximum timeout (15 minutes).
pub const MAX_RETRY_BUDGET: Duration = Duration::from_secs(900);
/// Default settings cache lifetime (docs/contracts.md §4).
pub const DEFAULT_SECRETS_TTL: Duration = Duration::from_secs(300);
/// Longest settings cache lifetime accepted (one day): a rotated passcode must arrive eventually.
pub const MAX_SECRETS_TTL: Duration = Duration::from_secs(86_400);
/// Default largest HTTP body (docs/contracts.md §2).
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Largest accepted `MAX_BODY_BYTES`: Lambda's synchronous invocation payload quota (6 MB).
pub const MAX_BODY_BYTES_LIMIT: usize = 6 * 1024 * 1024;
/// Default largest number of items of one webhook body that are processed (docs/contracts.md
/// §2): 10,000 small events are a few MB of work and an answer well under Lambda's 6 MB.
pub const DEFAULT_MAX_ITEMS_PER_BODY: usize = 10_000;
/// Largest accepted `MAX_ITEMS_PER_BODY`: beyond it a body of tiny items no longer fits a
/// 128 MB function.
pub const MAX_ITEMS_PER_BODY_LIMIT: usize = 100_000;
/// Time kept free before the invocation deadline so dead-lettering still fits (docs/contracts.md §5).
pub const SAFETY_MARGIN: Duration = Duration::from_secs(3);
/// First backoff step of a resend within an invocation; doubled per attempt up to
/// [`DEFAULT_BACKOFF_CAP`] (full jitter, docs/contracts.md §5).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Largest backoff step within an invocation.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// How long a missing or unusable secret is remembered (at most the settings TTL), so a fix is
/// seen soon while a batch of 10,000 events for it still costs one `GetSecretValue`.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Default first step of the visibility backoff of an SQS message retried for outage-type
/// trouble: 20 minutes after its first receive, doubled per receive up to
/// [`DEFAULT_VISIBILITY_BACKOFF_CAP`] (docs/contracts.md §3, "Visibility backoff").
pub const DEFAULT_VISIBILITY_BACKOFF_BASE: Duration = Duration::from_secs(1200);
/// Default largest visibility step: 80 minutes. With the template's `MaxReceiveCount` of 30
/// and the jitter floor of 3/4, a message survives at least
/// 3/4 x (1200 + 2400 + 28 x 4800) s = 28.75 h of trouble, and at most 38.3 h pass before SQS
/// dead-letters it, well within the queue's 4-day retention.
pub const DEFAULT_VISIBILITY_BACKOFF_CAP: Duration = Duration::from_secs(4800);
/// Default visibility of a message retried for a configuration error that never heals by
/// itself (no destination, no secret, unusable settings): short and fixed, so such messages
/// reach the dead-letter queue after `MaxReceiveCount` receives, about 30 minutes.
pub const DEFAULT_VISIBILITY_CONFIG_ERROR: Duration = Duration::from_secs(60);
/// Longest visibility timeout accepted: SQS allows 12 hours from the receive, and the
/// function may have run up to 15 minutes of it already.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 3600 - 900);
/// Default number of consecutive whole-request failures of the outage type (5xx, timeout, no
/// connection) that open an account's circuit (docs/contracts.md §5, "Circuit breaker").
pub const DEFAULT_CIRCUIT_FAILURE_THRESHOLD: u32 = 5;
/// The consecutive failures that open a circuit must span at least this long: a blip that fails
/// several concurrent requests at once is left to the call's own resends (20 s budget), so it
/// never sends a batch's messages into the visibility backoff.
pub const CIRCUIT_MIN_FAILING: Duration = Duration::from_secs(10);
/// Largest accepted `CIRCUIT_FAILURE_THRESHOLD`.
pub const MAX_CIRCUIT_FAILURE_THRESHOLD: usize = 1000;
/// Default wait of an open circuit before its first probe (jittered); doubled per failed probe
/// up to [`CIRCUIT_MAX_COOLDOWN_FACTOR`] times this.
pub const DEFAULT_CIRCUIT_COOLDOWN: Duration = Duration::from_secs(30);
/// Longest accepted `CIRCUIT_COOLDOWN_SECONDS`.
pub const MAX_CIRCUIT_COOLDOWN: Duration = Duration::from_secs(3600);
/// The longest cooldown after failed probes, as a multiple of the first.
pub const CIRCUIT_MAX_COOLDOWN_FACTOR: u32 = 10;
/// Default time settings past their TTL keep being served when Secrets Manager fails
/// (docs/contracts.md §4, "Caching").
pub const DEFAULT_SECRETS_STALE: Duration = Duration::from_secs(3600);
/// Longest secret id prefix: Secrets Manager names are at most 512 characters, and a
/// destination id takes up to 128 of them.
pub const MAX_SECRET_PREFIX_LEN: usize = 512 - DestinationId::MAX_LEN;

/// Default least time between two re-reads of a destination's secret forced by a webhook token
/// that does not match the cached one (docs/contracts.md §4, token rotation).
pub const DEFAULT_WEBHOOK_TOKEN_REFRESH: Duration = Duration::from_secs(30);
/// Bounds of `WEBHOOK_TOKEN_REFRESH_SECONDS`: never 0, or every wrong token would cost a
/// `GetSecretValue`.
pub const MIN_WEBHOOK_TOKEN_REFRESH: Duration = Duration::from_secs(1);
pub const MAX_WEBHOOK_TOKEN_REFRESH: Duration = Duration::from_secs(3600);
/// Default and largest number of destinations whose settings one container caches (least
/// recently used evicted).
pub const DEFAULT_SETTINGS_CACHE_SIZE: usize = 1000;
pub const MAX_SETTINGS_CACHE_SIZE: usize = 100_000;

/// Default CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`).
pub const DEFAULT_METRICS_NAMESPACE: &str = "RudderCleverTap";
/// Longest CloudWatch namespace (CloudWatch's own limit).
pub const MAX_METRICS_NAMESPACE_LEN: usize = 255;
/// Default of `METRICS_PER_DESTINATION`: every metric is also emitted per destination (one set
/// of custom metrics per destination; `false` keeps only the function-level set).
pub const DEFAULT_METRICS_PER_DESTINATION: bool = true;
/// Where offline mode reads destination settings (`LOCAL_DESTINATIONS`, `LOCAL_DESTINATIONS_FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalDestinations {
    /// The JSON text itself; it holds passcodes, so Debug shows `<redacted>`.
    Json(Secret),
    File(PathBuf),
}

/// What the webhook does with a request's events (docs/contracts.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookMode {
    /// Deliver them to CleverTap before answering (200 / 400 / 503 with delivery statuses).
    #[default]
    Sync,
    /// Put them on `EVENTS_QUEUE_URL` and answer 202; the queue function delivers them.
    Queue,
}

impl WebhookMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookMode::Sync => "sync",
            WebhookMode::Queue => "queue",
        }
    }
}

/// The function's configuration, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub secret_prefix: String,
    pub default_destination_id: Option<DestinationId>,
    pub dead_letter_queue_url: Option<String>,
    pub max_concurrent_requests: usize,
    pub retry_budget: Duration,
    pub secrets_ttl: Duration,
    pub max_body_bytes: usize,
    /// Items of a webhook body past this many are answered `too_many_items`, unsent.
    pub max_items_per_body: usize,
    /// `CLEVERTAP_ENDPOINT` (tests only), without a trailing slash.
    pub clevertap_endpoint: Option<String>,
    pub webhook_mode: WebhookMode,
    /// `EVENTS_QUEUE_URL`: where the webhook puts events in queue mode.
    pub events_queue_url: Option<String>,
    /// `WEBHOOK_DESTINATION_IDS`: the only destinations the webhook serves (none: all).
    pub webhook_destination_ids: Option<Vec<DestinationId>>,
    pub webhook_token_refresh: Duration,
    pub settings_cache_size: usize,
    /// First step of an SQS message's visibility backoff (whole seconds).
    pub visibility_backoff_base: Duration,
    /// Largest step of the visibility backoff (whole seconds, at least the base).
    pub visibility_backoff_cap: Duration,
    /// Visibility of a message retried for a configuration error (whole seconds).
    pub visibility_config_error: Duration,
    /// Consecutive outage-type failures that open an account's circuit.
    pub circuit_failure_threshold: u32,
    /// First cooldown of an open circuit.
    pub circuit_cooldown: Duration,
    /// How long expired settings are served while Secrets Manager fails.
    pub secrets_stale: Duration,
    /// CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
    /// Whether metrics are emitted per destination as well as per function.
    pub metrics_per_destination: bool,
    /// Offline mode: settings from here instead of Secrets Manager (never the default).
    pub local_destinations: Option<LocalDestinations>,
    /// Offline mode: send nothing, print what would be sent (never the default).
    pub dry_run: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            secret_prefix: DEFAULT_SECRET_PREFIX.to_owned(),
            default_destination_id: None,
            dead_letter_queue_url: None,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            retry_budget: DEFAULT_RETRY_BUDGET,
            secrets_ttl: DEFAULT_SECRETS_TTL,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_items_per_body: DEFAULT_MAX_ITEMS_PER_BODY,
            clevertap_endpoint: None,
            webhook_mode: WebhookMode::Sync,
            events_queue_url: None,
            webhook_destination_ids: None,
            webhook_token_refresh: DEFAULT_WEBHOOK_TOKEN_REFRESH,
            settings_cache_size: DEFAULT_SETTINGS_CACHE_SIZE,
            visibility_backoff_base: DEFAULT_VISIBILITY_BACKOFF_BASE,
            visibility_backoff_cap: DEFAULT_VISIBILITY_BACKOFF_CAP,
            visibility_config_error: DEFAULT_VISIBILITY_CONFIG_ERROR,
            circuit_failure_threshold: DEFAULT_CIRCUIT_FAILURE_THRESHOLD,
            circuit_cooldown: DEFAULT_CIRCUIT_COOLDOWN,
            secrets_stale: DEFAULT_SECRETS_STALE,
            metrics_namespace: DEFAULT_METRICS_NAMESPACE.to_owned(),
            metrics_per_destination: DEFAULT_METRICS_PER_DESTINATION,
            local_destinations: None,
            dry_run: false,
        }
    }
}

/// A variable holds a value the function cannot run with. The message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            variable,
            problem: problem.into(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (the environment, or a map in tests). An unset or empty
    /// variable takes its default (CloudFormation passes empty strings for unset parameters).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let defaults = Config::default();
        let whole_seconds = |name: &'static str, default: Duration, min: usize| match get(name) {
            Some(v) => parse_int(name, &v, min, MAX_VISIBILITY_TIMEOUT.as_secs() as usize)
                .map(|n| Duration::from_secs(n as u64)),
            None => Ok(default),
        };
        let visibility_backoff_base = whole_seconds(
            vars::VISIBILITY_BACKOFF_BASE_SECONDS,
            defaults.visibility_backoff_base,
            1,
        )?;
        let visibility_backoff_cap = whole_seconds(
            vars::VISIBILITY_BACKOFF_CAP_SECONDS,
            defaults.visibility_backoff_cap,
            1,
        )?;
        if visibility_backoff_cap < visibility_backoff_base {
            return Err(ConfigError::new(
                vars::VISIBILITY_BACKOFF_CAP_SECONDS,
                format!(
                    "must be at least {} ({} s)",
                    vars::VISIBILITY_BACKOFF_BASE_SECONDS,
                    visibility_backoff_base.as_secs()
                ),
            ));
        }
        let config = Config {
            visibility_backoff_base,
            visibility_backoff_cap,
            visibility_config_error: whole_seconds(
                vars::VISIBILITY_CONFIG_ERROR_SECONDS,
                defaults.visibility_config_error,
                0,
            )?,
            circuit_failure_threshold: match get(vars::CIRCUIT_FAILURE_THRESHOLD) {
                Some(v) => parse_int(
                    vars::CIRCUIT_FAILURE_THRESHOLD,
                    &v,
                    1,
                    MAX_CIRCUIT_FAILURE_THRESHOLD,
                )? as u32,
                None => defaults.circuit_failure_threshold,
            },
            circuit_cooldown: match get(vars::CIRCUIT_COOLDOWN_SECONDS) {
                Some(v) => parse_seconds(vars::CIRCUIT_COOLDOWN_SECONDS, &v, MAX_CIRCUIT_COOLDOWN)?,
                None => defaults.circuit_cooldown,
            },
            secrets_stale: match get(vars::SECRETS_STALE_SECONDS) {
                Some(v) => parse_seconds(vars::SECRETS_STALE_SECONDS, &v, MAX_SECRETS_TTL)?,
                None => defaults.secrets_stale,
            },
            secret_prefix: match get(vars::SECRET_PREFIX) {
                Some(v) => parse_secret_prefix(&v)?,
                None => defaults.secret_prefix,
            },
            default_destination_id: get(vars::DEFAULT_DESTINATION_ID)
                .map(|v| {
                    DestinationId::parse(v.trim())
                        .map_err(|e| ConfigError::new(vars::DEFAULT_DESTINATION_ID, e.to_string()))
                })
                .transpose()?,
            dead_letter_queue_url: get(vars::DEAD_LETTER_QUEUE_URL)
                .map(|v| parse_url(vars::DEAD_LETTER_QUEUE_URL, &v))
                .transpose()?,
            max_concurrent_requests: match get(vars::MAX_CONCURRENT_REQUESTS) {
                Some(v) => parse_int(
                    vars::MAX_CONCURRENT_REQUESTS,
                    &v,
                    1,
                    MAX_CONCURRENT_REQUESTS_LIMIT,
                )?,
                None => defaults.max_concurrent_requests,
            },
            retry_budget: match get(vars::RETRY_BUDGET_SECONDS) {
                Some(v) => parse_seconds(vars::RETRY_BUDGET_SECONDS, &v, MAX_RETRY_BUDGET)?,
                None => defaults.retry_budget,
            },
            secrets_ttl: match get(vars::SECRETS_TTL_SECONDS) {
                Some(v) => parse_seconds(vars::SECRETS_TTL_SECONDS, &v, MAX_SECRETS_TTL)?,
                None => defaults.secrets_ttl,
            },
            max_body_bytes: match get(vars::MAX_BODY_BYTES) {
                Some(v) => parse_int(vars::MAX_BODY_BYTES, &v, 1, MAX_BODY_BYTES_LIMIT)?,
                None => defaults.max_body_bytes,
            },
            max_items_per_body: match get(vars::MAX_ITEMS_PER_BODY) {
                Some(v) => parse_int(vars::MAX_ITEMS_PER_BODY, &v, 1, MAX_ITEMS_PER_BODY_LIMIT)?,
                None => defaults.max_items_per_body,
            },
            clevertap_endpoint: get(vars::CLEVERTAP_ENDPOINT)
                .map(|v| parse_endpoint(&v))
                .transpose()?,
            webhook_mode: match get(vars::WEBHOOK_MODE) {
                Some(v) => parse_mode(&v)?,
                None => defaults.webhook_mode,
            },
            events_queue_url: get(vars::EVENTS_QUEUE_URL)
                .map(|v| parse_url(vars::EVENTS_QUEUE_URL, &v))
                .transpose()?,
            webhook_destination_ids: get(vars::WEBHOOK_DESTINATION_IDS)
                .map(|v| parse_destination_list(&v))
                .transpose()?,
            webhook_token_refresh: match get(vars::WEBHOOK_TOKEN_REFRESH_SECONDS) {
                Some(v) => parse_refresh(&v)?,
                None => defaults.webhook_token_refresh,
            },
            metrics_namespace: match get(vars::METRICS_NAMESPACE) {
                Some(v) => parse_namespace(&v)?,
                None => defaults.metrics_namespace,
            },
            metrics_per_destination: match get(vars::METRICS_PER_DESTINATION) {
                Some(v) => parse_bool(vars::METRICS_PER_DESTINATION, &v)?,
                None => defaults.metrics_per_destination,
            },
            settings_cache_size: match get(vars::SETTINGS_CACHE_SIZE) {
                Some(v) => parse_int(vars::SETTINGS_CACHE_SIZE, &v, 1, MAX_SETTINGS_CACHE_SIZE)?,
                None => defaults.settings_cache_size,
            },
            local_destinations: match (
                get(vars::LOCAL_DESTINATIONS),
                get(vars::LOCAL_DESTINATIONS_FILE),
            ) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        vars::LOCAL_DESTINATIONS,
                        format!("set it or {}, not both", vars::LOCAL_DESTINATIONS_FILE),
                    ));
                }
                (Some(json), None) => Some(LocalDestinations::Json(Secret::new(json))),
                (None, Some(path)) => Some(LocalDestinations::File(path.trim().into())),
                (None, None) => None,
            },
            dry_run: match get(vars::DRY_RUN) {
                Some(v) => parse_bool(vars::DRY_RUN, &v)?,
                None => defaults.dry_run,
            },
        };
        config.refuse_offline_with_aws_queues()?;
        if config.webhook_mode == WebhookMode::Queue && config.events_queue_url.is_none() {
            return Err(ConfigError::new(
                vars::WEBHOOK_MODE,
                format!(
                    "queue needs {} (the queue the events go to)",
                    vars::EVENTS_QUEUE_URL
                ),
            ));
        }
        Ok(config)
    }

    /// Offline mode: settings from a local source, or a dry run (docs/contracts.md §7).
    pub fn is_offline(&self) -> bool {
        self.local_destinations.is_some() || self.dry_run
    }

    /// Offline mode next to a queue on AWS is a deployed function with local-run variables
    /// left in: a dry run would ack events it never sent, local settings would bypass the
    /// secrets. Refused, naming both variables.
    fn refuse_offline_with_aws_queues(&self) -> Result<(), ConfigError> {
        let offline = if self.dry_run {
            vars::DRY_RUN
        } else if let Some(LocalDestinations::Json(_)) = self.local_destinations {
            vars::LOCAL_DESTINATIONS
        } else if self.local_destinations.is_some() {
            vars::LOCAL_DESTINATIONS_FILE
        } else {
            return Ok(());
        };
        let queues = [
            (vars::DEAD_LETTER_QUEUE_URL, &self.dead_letter_queue_url),
            (vars::EVENTS_QUEUE_URL, &self.events_queue_url),
        ];
        for (variable, url) in queues {
            if let Some(url) = url.as_deref().filter(|u| is_aws_url(u)) {
                return Err(ConfigError::new(
                    offline,
                    format!(
                        "offline mode is for local runs and is refused next to a queue on AWS \
                         ({variable}={url}); unset {offline} in a deployed function, or point \
                         {variable} at a local emulator or leave it empty"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the webhook serves `destination` (`WEBHOOK_DESTINATION_IDS`; unset: every one).
    pub fn webhook_allows(&self, destination: &DestinationId) -> bool {
        self.webhook_destination_ids
            .as_ref()
            .is_none_or(|allowed| allowed.contains(destination))
    }
}

/// A CloudWatch namespace: 1 to 255 printable ASCII characters, not AWS's own `AWS/` prefix.
fn parse_namespace(value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let printable = value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if !printable || value.len() > MAX_METRICS_NAMESPACE_LEN {
        return Err(ConfigError::new(
            vars::METRICS_NAMESPACE,
            format!("expected 1 to {MAX_METRICS_NAMESPACE_LEN} printable ASCII characters"),
        ));
    }
    if value.to_ascii_uppercase().starts_with("AWS/") {
        return Err(ConfigError::new(
            vars::METRICS_NAMESPACE,
            "namespaces starting with AWS/ are reserved for AWS services",
        ));
    }
    Ok(value.to_owned())
}

/// An AWS service URL (`*.amazonaws.com`, `*.amazonaws.com.cn`, `*.api.aws`).
fn is_aws_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("").to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    ["amazonaws.com", "amazonaws.com.cn", "api.aws"]
        .iter()
        .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")))
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::new(
            variable,
            format!("expected true or false, got {value:?}"),
        )),
    }
}

fn parse_mode(value: &str) -> Result<WebhookMode, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "sync" => Ok(WebhookMode::Sync),
        "queue" => Ok(WebhookMode::Queue),
        _ => Err(ConfigError::new(
            vars::WEBHOOK_MODE,
            format!("expected sync or queue, got {value:?}"),
        )),
    }
}

/// A comma-separated list of destination ids (blanks around and between commas ignored).
fn parse_destination_list(value: &str) -> Result<Vec<DestinationId>, ConfigError> {
    let mut ids: Vec<DestinationId> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id = DestinationId::parse(part).map_err(|e| {
            ConfigError::new(
                vars::WEBHOOK_DESTINATION_IDS,
                format!("{e} (in a comma-separated list)"),
            )
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn parse_refresh(value: &str) -> Result<Duration, ConfigError> {
    let variable = vars::WEBHOOK_TOKEN_REFRESH_SECONDS;
    let d = parse_seconds(variable, value, MAX_WEBHOOK_TOKEN_REFRESH)?;
    if d < MIN_WEBHOOK_TOKEN_REFRESH {
        return Err(ConfigError::new(
            variable,
            format!(
                "expected seconds from {} to {}, got {value:?}",
                MIN_WEBHOOK_TOKEN_REFRESH.as_secs(),
                MAX_WEBHOOK_TOKEN_REFRESH.as_secs()
            ),
        ));
    }
    Ok(d)
}

/// `CLEVERTAP_ENDPOINT`: an `https://` URL, or `http://` on a loopback address (a test's mock),
/// so the passcode can never travel in clear text over a network.
fn parse_endpoint(value: &str) -> Result<String, ConfigError> {
    let url = parse_url(vars::CLEVERTAP_ENDPOINT, value)?;
    if url.starts_with("https://") {
        return Ok(url);
    }
    let rest = url.strip_prefix("http://").unwrap_or("");
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if is_loopback_authority(authority) {
        Ok(url)
    } else {
        Err(ConfigError::new(
            vars::CLEVERTAP_ENDPOINT,
            format!(
                "expected an https:// URL, or http:// on a loopback address (127.0.0.0/8, [::1], localhost), got {url:?}"
            ),
        ))
    }
}

/// `host[:port]` naming this machine: 127.0.0.0/8, `[::1]` or `localhost`, without user info.
fn is_loopback_authority(authority: &str) -> bool {
    if authority.contains('@') {
        return false;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return false,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    port_ok && host_ok
}

fn parse_secret_prefix(value: &str) -> Result<String, ConfigError> {
    // Secrets Manager names: letters, digits and /_+=.@- (AWS Secrets Manager quotas).
    let ok_chars = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
    if !ok_chars {
        return Err(ConfigError::new(
            vars::SECRET_PREFIX,
            "may only hold letters, digits and / _ + = . @ -",
        ));
    }
    if value.len() > MAX_SECRET_PREFIX_LEN {
        return Err(ConfigError::new(
            vars::SECRET_PREFIX,
            format!("longer than {MAX_SECRET_PREFIX_LEN} characters"),
        ));
    }
    Ok(value.to_owned())
}

fn parse_int(
    variable: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            variable,
            format!("expected a whole number from {min} to {max}, got {value:?}"),
        )),
    }
}

/// Whole or decimal seconds (`20`, `0.5`), from 0 to `max`.
fn parse_seconds(
    variable: &'static str,
    value: &str,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let err = || {
        ConfigError::new(
            variable,
            format!(
                "expected seconds from 0 to {}, got {value:?}",
                max.as_secs()
            ),
        )
    };
    let secs: f64 = value.trim().parse().map_err(|_| err())?;
    if !secs.is_finite() || secs < 0.0 || secs > max.as_secs_f64() {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_url(variable: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !value.contains(' ') => {
            Ok(value.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError::new(
            variable,
            format!("expected an http(s) URL, got {value:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn an_empty_environment_gives_the_documented_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.secret_prefix, "rudder-clevertap/");
        assert_eq!(c.default_destination_id, None);
        assert_eq!(c.dead_letter_queue_url, None);
        assert_eq!(c.max_concurrent_requests, 5);
        assert_eq!(c.retry_budget, Duration::from_secs(20));
        assert_eq!(c.secrets_ttl, Duration::from_secs(300));
        assert_eq!(c.max_body_bytes, 5 * 1024 * 1024);
        assert_eq!(c.max_items_per_body, 10_000);
        assert_eq!(c.clevertap_endpoint, None);
        assert_eq!(c.webhook_mode, WebhookMode::Sync);
        assert_eq!(c.events_queue_url, None);
        assert_eq!(c.webhook_destination_ids, None);
        assert_eq!(c.webhook_token_refresh, Duration::from_secs(30));
        assert_eq!(c.settings_cache_size, 1000);
        assert_eq!(c.visibility_backoff_base, Duration::from_secs(1200));
        assert_eq!(c.visibility_backoff_cap, Duration::from_secs(4800));
        assert_eq!(c.visibility_config_error, Duration::from_secs(60));
        assert_eq!(c.circuit_failure_threshold, 5);
        assert_eq!(c.circuit_cooldown, Duration::from_secs(30));
        assert_eq!(c.secrets_stale, Duration::from_secs(3600));
        assert_eq!(c.metrics_namespace, "RudderCleverTap");
        assert!(c.metrics_per_destination);
    }

    #[test]
    fn the_metrics_namespace_and_per_destination_switch_are_read_and_checked() {
        let c = parse(&[
            ("METRICS_NAMESPACE", "Team/Rudder"),
            ("METRICS_PER_DESTINATION", "FALSE"),
        ])
        .unwrap();
        assert_eq!(c.metrics_namespace, "Team/Rudder");
        assert!(!c.metrics_per_destination);
        for bad in ["AWS/Lambda", "tab\there", &"n".repeat(256)] {
            let err = parse(&[("METRICS_NAMESPACE", bad)]).unwrap_err();
            assert_eq!(err.variable, "METRICS_NAMESPACE", "{bad}");
        }
        let err = parse(&[("METRICS_PER_DESTINATION", "yes")]).unwrap_err();
        assert_eq!(err.variable, "METRICS_PER_DESTINATION");
        assert!(err.to_string().contains("true or false"), "{err}");
    }

    #[test]
    fn every_variable_is_read_from_its_documented_name() {
        let c = parse(&[
            ("SECRET_PREFIX", "prod/ct/"),
            ("DEFAULT_DESTINATION_ID", "dest-1"),
            (
                "DEAD_LETTER_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
            ),
            ("MAX_CONCURRENT_REQUESTS", "15"),
            ("RETRY_BUDGET_SECONDS", "0.5"),
            ("SECRETS_TTL_SECONDS", "0"),
            ("MAX_BODY_BYTES", "1024"),
            ("MAX_ITEMS_PER_BODY", "100000"),
            ("CLEVERTAP_ENDPOINT", "http://127.0.0.1:9000/"),
            ("VISIBILITY_BACKOFF_BASE_SECONDS", "1"),
            ("VISIBILITY_BACKOFF_CAP_SECONDS", "4"),
            ("VISIBILITY_CONFIG_ERROR_SECONDS", "0"),
            ("CIRCUIT_FAILURE_THRESHOLD", "3"),
            ("CIRCUIT_COOLDOWN_SECONDS", "0.025"),
            ("SECRETS_STALE_SECONDS", "0"),
        ])
        .unwrap();
        assert_eq!(c.visibility_backoff_base, Duration::from_secs(1));
        assert_eq!(c.visibility_backoff_cap, Duration::from_secs(4));
        assert_eq!(c.visibility_config_error, Duration::ZERO);
        assert_eq!(c.circuit_failure_threshold, 3);
        assert_eq!(c.circuit_cooldown, Duration::from_millis(25));
        assert_eq!(c.secrets_stale, Duration::ZERO);
        assert_eq!(c.secret_prefix, "prod/ct/");
        assert_eq!(c.default_destination_id.unwrap().as_str(), "dest-1");
        assert_eq!(
            c.dead_letter_queue_url.as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/dlq")
        );
        assert_eq!(c.max_concurrent_requests, 15);
        assert_eq!(c.retry_budget, Duration::from_millis(500));
        assert_eq!(c.secrets_ttl, Duration::ZERO);
        assert_eq!(c.max_body_bytes, 1024);
        assert_eq!(c.max_items_per_body, 100_000);
        assert_eq!(
            c.clevertap_endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = parse(&[
            ("DEFAULT_DESTINATION_ID", ""),
            ("DEAD_LETTER_QUEUE_URL", " "),
        ])
        .unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn each_bad_value_is_an_error_naming_its_variable() {
        let cases = [
            ("MAX_CONCURRENT_REQUESTS", "0"),
            ("MAX_CONCURRENT_REQUESTS", "16"),
            ("MAX_CONCURRENT_REQUESTS", "five"),
            ("RETRY_BUDGET_SECONDS", "-1"),
            ("RETRY_BUDGET_SECONDS", "NaN"),
            ("RETRY_BUDGET_SECONDS", "901"),
            ("SECRETS_TTL_SECONDS", "1e9"),
            ("MAX_BODY_BYTES", "0"),
            ("MAX_BODY_BYTES", "7000000"),
            ("MAX_ITEMS_PER_BODY", "0"),
            ("MAX_ITEMS_PER_BODY", "100001"),
            ("DEFAULT_DESTINATION_ID", "a/b"),
            ("DEAD_LETTER_QUEUE_URL", "sqs://queue"),
            ("CLEVERTAP_ENDPOINT", "api.clevertap.com"),
            ("SECRET_PREFIX", "bad prefix"),
            ("WEBHOOK_MODE", "async"),
            ("WEBHOOK_MODE", "queue"),
            ("EVENTS_QUEUE_URL", "queue-name"),
            ("WEBHOOK_DESTINATION_IDS", "dest-a,a/b"),
            ("WEBHOOK_TOKEN_REFRESH_SECONDS", "0"),
            ("WEBHOOK_TOKEN_REFRESH_SECONDS", "3601"),
            ("SETTINGS_CACHE_SIZE", "0"),
            ("SETTINGS_CACHE_SIZE", "100001"),
            ("VISIBILITY_BACKOFF_BASE_SECONDS", "0"),
            ("VISIBILITY_BACKOFF_BASE_SECONDS", "1.5"),
            ("VISIBILITY_BACKOFF_CAP_SECONDS", "43200"),
            ("VISIBILITY_BACKOFF_CAP_SECONDS", "60"),
            ("VISIBILITY_CONFIG_ERROR_SECONDS", "-1"),
            ("CIRCUIT_FAILURE_THRESHOLD", "0"),
            ("CIRCUIT_COOLDOWN_SECONDS", "3601"),
            ("SECRETS_STALE_SECONDS", "86401"),
        ];
        for (name, value) in cases {
            let err = parse(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}");
            assert!(
                err.to_string().starts_with(&format!("invalid {name}:")),
                "{err}"
            );
        }
    }

    #[test]
    fn queue_mode_reads_its_queue_and_the_webhook_settings_their_variables() {
        let c = parse(&[
            ("WEBHOOK_MODE", " Queue "),
            (
                "EVENTS_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/events",
            ),
            ("WEBHOOK_DESTINATION_IDS", " dest-a, dest-b,,dest-a "),
            ("WEBHOOK_TOKEN_REFRESH_SECONDS", "2.5"),
            ("SETTINGS_CACHE_SIZE", "7"),
        ])
        .unwrap();
        assert_eq!(c.webhook_mode, WebhookMode::Queue);
        assert_eq!(
            c.events_queue_url.as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/events")
        );
        let ids: Vec<&str> = c
            .webhook_destination_ids
            .as_ref()
            .unwrap()
            .iter()
            .map(DestinationId::as_str)
            .collect();
        assert_eq!(ids, ["dest-a", "dest-b"]);
        assert!(c.webhook_allows(&DestinationId::parse("dest-b").unwrap()));
        assert!(!c.webhook_allows(&DestinationId::parse("dest-c").unwrap()));
        assert!(Config::default().webhook_allows(&DestinationId::parse("dest-c").unwrap()));
        assert_eq!(c.webhook_token_refresh, Duration::from_millis(2500));
        assert_eq!(c.settings_cache_size, 7);
        let err = parse(&[("WEBHOOK_MODE", "queue")]).unwrap_err();
        assert!(err.to_string().contains("EVENTS_QUEUE_URL"), "{err}");
    }

    #[test]
    fn the_clevertap_endpoint_is_https_or_plain_http_on_a_loopback_address_only() {
        for ok in [
            "https://api.clevertap.com",
            "https://10.0.0.1:8443/x",
            "http://127.0.0.1:9000",
            "http://127.9.9.9/",
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://[::1]:9000/base",
        ] {
            let c = parse(&[("CLEVERTAP_ENDPOINT", ok)]);
            assert!(c.is_ok(), "{ok}: {c:?}");
        }
        for bad in [
            "http://api.clevertap.com",
            "http://10.0.0.1:9000",
            "http://127.0.0.1.evil.example/",
            "http://127.0.0.1@evil.example/",
            "http://localhost.evil.example",
            "http://[::2]:9000",
            "http://127.0.0.1:90x0",
            "ftp://127.0.0.1",
        ] {
            let err = parse(&[("CLEVERTAP_ENDPOINT", bad)]).unwrap_err();
            assert_eq!(err.variable, "CLEVERTAP_ENDPOINT", "{bad}");
        }
    }

    #[test]
    fn the_delivery_policy_keeps_at_least_three_seconds_for_dead_lettering() {
        let c = parse(&[("CLEVERTAP_ENDPOINT", "http://127.0.0.1:1")]).unwrap();
        let p = crate::delivery::DeliveryPolicy::from_config(&c);
        assert!(p.safety_margin >= Duration::from_secs(3));
        assert_eq!(p.max_concurrent_requests, 5);
        assert_eq!(p.endpoint_override.as_deref(), Some("http://127.0.0.1:1"));
    }

    #[test]
    fn offline_mode_is_off_unless_asked_for() {
        let c = parse(&[]).unwrap();
        assert!(!c.is_offline());
        assert_eq!(c.local_destinations, None);
        assert!(!c.dry_run);
        let c = parse(&[(vars::DRY_RUN, "false"), (vars::LOCAL_DESTINATIONS, " ")]).unwrap();
        assert!(!c.is_offline());
    }

    #[test]
    fn offline_settings_come_from_the_variable_or_the_file_and_never_show_in_debug() {
        let c = parse(&[
            (vars::LOCAL_DESTINATIONS, r#"{"d":{"passcode":"pc-77"}}"#),
            (vars::DRY_RUN, "true"),
        ])
        .unwrap();
        assert!(c.is_offline() && c.dry_run);
        assert!(matches!(
            c.local_destinations,
            Some(LocalDestinations::Json(_))
        ));
        assert!(!format!("{c:?}").contains("pc-77"), "{c:?}");
        let c = parse(&[(vars::LOCAL_DESTINATIONS_FILE, "events/x.json")]).unwrap();
        assert_eq!(
            c.local_destinations,
            Some(LocalDestinations::File("events/x.json".into()))
        );
        let err = parse(&[
            (vars::LOCAL_DESTINATIONS, "{}"),
            (vars::LOCAL_DESTINATIONS_FILE, "f.json"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, vars::LOCAL_DESTINATIONS);
        let err = parse(&[(vars::DRY_RUN, "maybe")]).unwrap_err();
        assert_eq!(err.variable, vars::DRY_RUN);
        assert!(err.to_string().contains("maybe"), "{err}");
    }

    #[test]
    fn offline_mode_next_to_a_queue_on_aws_is_refused() {
        let aws = "https://sqs.eu-west-1.amazonaws.com/123456789012/rudder-clevertap-dlq";
        let err =
            parse(&[(vars::DRY_RUN, "true"), (vars::DEAD_LETTER_QUEUE_URL, aws)]).unwrap_err();
        assert_eq!(err.variable, vars::DRY_RUN);
        assert!(
            err.to_string().contains(vars::DEAD_LETTER_QUEUE_URL),
            "{err}"
        );
        let err = parse(&[
            (vars::LOCAL_DESTINATIONS_FILE, "d.json"),
            (vars::WEBHOOK_MODE, "queue"),
            (
                vars::EVENTS_QUEUE_URL,
                "https://sqs.cn-north-1.amazonaws.com.cn/1/q",
            ),
        ])
        .unwrap_err();
        assert_eq!(err.variable, vars::LOCAL_DESTINATIONS_FILE);
        assert!(err.to_string().contains(vars::EVENTS_QUEUE_URL), "{err}");
        // A local emulator's queue is fine, and so is a real queue without offline mode.
        for url in [
            "http://127.0.0.1:5000/123456789012/dlq",
            "http://172.17.0.1:5000/1/q",
        ] {
            assert!(parse(&[(vars::DRY_RUN, "true"), (vars::DEAD_LETTER_QUEUE_URL, url)]).is_ok());
        }
        assert!(parse(&[(vars::DEAD_LETTER_QUEUE_URL, aws)]).is_ok());
        assert!(is_aws_url("https://SQS.us-east-1.AmazonAWS.com./1/q"));
        assert!(!is_aws_url("https://amazonaws.com.example.org/1/q"));
        assert!(!is_aws_url("https://notamazonaws.com/1/q"));
    }
}
