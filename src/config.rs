//! Environment → typed configuration (docs/contracts.md §7). Every variable name and every
//! default lives here, and every value is checked at start-up: a bad value stops the container
//! with a message naming the variable, instead of surfacing later as a puzzling per-message
//! failure.

use crate::settings::DestinationId;
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
    pub const RUST_LOG: &str = "RUST_LOG";
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
/// Longest secret id prefix: Secrets Manager names are at most 512 characters, and a
/// destination id takes up to 128 of them.
pub const MAX_SECRET_PREFIX_LEN: usize = 512 - DestinationId::MAX_LEN;

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
        Ok(Config {
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
                .map(|v| parse_url(vars::CLEVERTAP_ENDPOINT, &v))
                .transpose()?,
        })
    }
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
        ])
        .unwrap();
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
    fn the_delivery_policy_keeps_at_least_three_seconds_for_dead_lettering() {
        let c = parse(&[("CLEVERTAP_ENDPOINT", "http://127.0.0.1:1")]).unwrap();
        let p = crate::delivery::DeliveryPolicy::from_config(&c);
        assert!(p.safety_margin >= Duration::from_secs(3));
        assert_eq!(p.max_concurrent_requests, 5);
        assert_eq!(p.endpoint_override.as_deref(), Some("http://127.0.0.1:1"));
    }
}
