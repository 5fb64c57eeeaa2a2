//! Webhook authentication, the security boundary of the HTTP entry point, kept alone so it can
//! be reviewed alone. The caller proves it holds one of the destination's webhook tokens
//! (`webhookToken`, or during a rotation the previous one) with `Authorization: Bearer <token>`,
//! compared in constant time with every accepted token, before the body is looked at.
//!
//! Answers (docs/contracts.md §2): 401 for a missing or wrong token (RudderStack gives up on it:
//! nothing would change on a retry), and the same 401, body and all, for a destination without a
//! secret or with an unusable one: before authentication nobody learns which ids exist (the
//! operator reads the reason in the log). Secrets Manager failing is 503 `secrets_unavailable`,
//! whatever the id: the sender retries, so no event is lost. The lookups go through
//! `SettingsSource::settings_unauthenticated`, which keeps unknown ids from evicting or costing
//! without bound.
//!
//! A token that matches none of the settings' tokens may be a rotation this container has not
//! seen yet: the secret is read again (`SettingsSource::reread`, which never drops what is
//! cached), at most once per `WEBHOOK_TOKEN_REFRESH_SECONDS` per destination and never twice in
//! one request, so wrong tokens cannot make this function hammer Secrets Manager. A mismatch
//! within that period is 503 (`webhook_token_unverified`), not 401: the token may belong to a
//! rotation made after the last read, and only a 401 makes RudderStack drop the events. A token
//! that matches none of a fresh read's tokens is 401.

use super::{Reply, codes};
use crate::credentials::{CredentialsError, UNKNOWN_CACHE_SIZE};
use crate::lru::LruMap;
use crate::ports::SettingsSource;
use crate::settings::{DestinationId, DestinationSettings};
use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::http::header::AUTHORIZATION;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::{Choice, ConstantTimeEq};
use tokio::time::Instant;

/// When each destination's secret was last re-read because of a token that did not match: at
/// most as many destinations with settings as the settings cache holds, and apart from them
/// at most `UNKNOWN_CACHE_SIZE` destinations without (so random ids forget no real one's time);
/// least recently used forgotten.
pub(crate) struct TokenRefresh {
    every: Duration,
    last: Mutex<LruMap<DestinationId, Instant>>,
    last_unknown: Mutex<LruMap<DestinationId, Instant>>,
}

impl TokenRefresh {
    pub(crate) fn new(every: Duration, destinations: usize) -> Self {
        TokenRefresh {
            every,
            last: Mutex::new(LruMap::new(destinations)),
            last_unknown: Mutex::new(LruMap::new(UNKNOWN_CACHE_SIZE)),
        }
    }

    /// Whether the secret of `destination` may be re-read now; if so, the time is noted, so
    /// concurrent callers get one re-read between them. `known`: the destination has settings.
    fn try_acquire(&self, destination: &DestinationId, known: bool) -> bool {
        let now = Instant::now();
        let map = if known {
            &self.last
        } else {
            &self.last_unknown
        };
        let mut last = map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = last.get(destination)
            && now.duration_since(*at) < self.every
        {
            return false;
        }
        last.insert(destination.clone(), now);
        true
    }
}

/// The destination's settings if the caller holds one of its webhook tokens. `allowed`: the
/// destination is one `WEBHOOK_DESTINATION_IDS` lets the webhook serve; one it does not is
/// refused as a destination without settings is, without reading any secret.
pub(super) async fn authenticate<S: SettingsSource>(
    source: &S,
    refresh: &TokenRefresh,
    headers: &HeaderMap,
    destination: &DestinationId,
    allowed: bool,
) -> Result<Arc<DestinationSettings>, Reply> {
    let Some(token) = bearer_token(headers) else {
        tracing::warn!(destination = %destination, code = codes::UNAUTHORIZED, "webhook refused: no bearer token");
        return Err(Reply::unauthorized());
    };
    let asked = Instant::now();
    let settings = if allowed {
        usable(
            destination,
            source.settings_unauthenticated(destination).await,
            true,
        )?
    } else {
        tracing::warn!(destination = %destination, code = codes::UNAUTHORIZED, reason = codes::DESTINATION_NOT_ALLOWED, "webhook refused as a wrong token: destination not in WEBHOOK_DESTINATION_IDS");
        None
    };
    if let Some(settings) = &settings
        && accepts(settings, token)
    {
        return Ok(Arc::clone(settings));
    }
    if !refresh.try_acquire(destination, settings.is_some()) {
        // Wrong, or a rotation newer than the last re-read: only a fresh read can tell, and that
        // waits for the period. A retry costs the sender nothing; a 401 would lose its events.
        tracing::warn!(destination = %destination, code = codes::WEBHOOK_TOKEN_UNVERIFIED, "webhook token matches no token of the settings; the secret was read again too recently to read it now");
        return Err(Reply::error(
            503,
            codes::WEBHOOK_TOKEN_UNVERIFIED,
            "the token cannot be checked now; retry later",
        ));
    }
    if !allowed {
        return Err(Reply::unauthorized());
    }
    // Perhaps rotated since this container read the secret: read it once more (not when this
    // request has just read it).
    let again = source.reread(destination, asked).await;
    // A negative answer of this request's own read was logged already.
    let quiet = settings.is_none();
    match usable(destination, again, !quiet)? {
        Some(settings) if accepts(&settings, token) => {
            tracing::info!(destination = %destination, "webhook token matched after reading the secret again");
            Ok(settings)
        }
        Some(settings) => {
            let why = if settings.webhook_tokens().next().is_none() {
                "the destination has no webhookToken"
            } else {
                "wrong token"
            };
            tracing::warn!(destination = %destination, code = codes::UNAUTHORIZED, "webhook refused: {why}");
            Err(Reply::unauthorized())
        }
        // Why was logged by `usable`.
        None => Err(Reply::unauthorized()),
    }
}

/// The destination's settings; `None` (the reason logged, never answered) for a destination
/// without a usable secret, which is refused as a wrong token is; or the 503 its sender retries
/// on while Secrets Manager fails.
fn usable(
    destination: &DestinationId,
    looked_up: Result<Arc<DestinationSettings>, CredentialsError>,
    log_refusal: bool,
) -> Result<Option<Arc<DestinationSettings>>, Reply> {
    match looked_up {
        Ok(settings) => Ok(Some(settings)),
        Err(e @ CredentialsError::Unavailable { .. }) => {
            tracing::warn!(destination = %destination, code = e.code(), error = %e, "webhook answered 503: no usable settings");
            Err(Reply::error(
                503,
                e.code(),
                "destination settings are unavailable for now; retry later",
            ))
        }
        Err(e) => {
            if log_refusal {
                tracing::warn!(destination = %destination, code = codes::UNAUTHORIZED, reason = e.code(), error = %e, "webhook refused as a wrong token: the destination has no usable settings");
            }
            Ok(None)
        }
    }
}

/// Whether `token` is one of the destination's webhook tokens. Every accepted token is compared,
/// in constant time, whatever the earlier comparisons gave.
fn accepts(settings: &DestinationSettings, token: &str) -> bool {
    let mut matched = Choice::from(0);
    for expected in settings.webhook_tokens() {
        matched |= token.as_bytes().ct_eq(expected.expose().as_bytes());
    }
    bool::from(matched)
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::http::HeaderValue;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Token abc"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn every_listed_token_is_accepted_and_nothing_else() {
        let s = DestinationSettings::from_json(
            r#"{"accountId":"A","passcode":"p","webhookToken":["new-tok","mid-tok"],"previousWebhookToken":"old-tok"}"#,
        )
        .unwrap();
        for ok in ["new-tok", "mid-tok", "old-tok"] {
            assert!(accepts(&s, ok), "{ok}");
        }
        for bad in ["", "new-to", "new-tok ", "NEW-TOK", "p"] {
            assert!(!accepts(&s, bad), "{bad:?}");
        }
        let none = DestinationSettings::from_json(r#"{"accountId":"A","passcode":"p"}"#).unwrap();
        assert!(!accepts(&none, "anything"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_destination_s_secret_is_re_read_at_most_once_per_period() {
        let refresh = TokenRefresh::new(Duration::from_secs(30), 2);
        let a = DestinationId::parse("dest-a").unwrap();
        let b = DestinationId::parse("dest-b").unwrap();
        assert!(refresh.try_acquire(&a, true));
        assert!(!refresh.try_acquire(&a, true));
        assert!(
            refresh.try_acquire(&b, true),
            "each destination has its own period"
        );
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(!refresh.try_acquire(&a, true));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(refresh.try_acquire(&a, true));
        // Bounded: a third destination evicts the least recently used one.
        let c = DestinationId::parse("dest-c").unwrap();
        assert!(refresh.try_acquire(&c, true));
        assert!(refresh.last.lock().unwrap().len() <= 2);
    }

    use crate::engine::fakes::{self, FakeHandler, TOKEN, call_http};
    use crate::lambda_events::http_request;
    use serde_json::Value;

    const TRACK: &str = r#"{"type":"track","event":"Viewed","userId":"u-1","messageId":"e-1"}"#;

    async fn post(h: &FakeHandler, destination: &str, token: &str) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        let (status, body, _) = call_http(
            h,
            http_request("POST", Some(destination), Some(&auth), Some(TRACK)),
        )
        .await;
        (status, body)
    }

    fn fetches(h: &FakeHandler, destination: &str) -> usize {
        let fetched = h.settings_source.fetched.lock().unwrap();
        fetched.iter().filter(|d| *d == destination).count()
    }

    fn settings(json: &str) -> Arc<DestinationSettings> {
        Arc::new(DestinationSettings::from_json(json).unwrap())
    }

    #[tokio::test]
    async fn during_a_rotation_the_current_and_the_previous_token_are_accepted_and_a_third_is_not()
    {
        let mut h = fakes::handler();
        h.settings_source.known.insert(
            "dest-r".into(),
            settings(
                r#"{"accountId":"ACC-R","passcode":"p","webhookToken":"tok-new","previousWebhookToken":"tok-old"}"#,
            ),
        );
        assert_eq!(post(&h, "dest-r", "tok-new").await.0, 200);
        assert_eq!(post(&h, "dest-r", "tok-old").await.0, 200);
        let (status, body) = post(&h, "dest-r", "tok-other").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(h.clevertap.calls().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_the_cache_does_not_know_re_reads_the_secret_at_most_once_per_period() {
        let h = fakes::handler();
        // The secret was rotated after this container cached it.
        h.settings_source.rotated.lock().unwrap().insert(
            "dest-a".into(),
            settings(r#"{"accountId":"ACC-A","passcode":"p","webhookToken":"tok-rotated"}"#),
        );
        assert_eq!(
            post(&h, "dest-a", "tok-rotated").await.0,
            200,
            "seen at once"
        );
        assert_eq!(fetches(&h, "dest-a"), 2, "one read, then one re-read");
        // The old token is now wrong; the period has not passed, so no more re-reads, and the
        // answer is "retry later" (it might be a rotation newer than the last read).
        for _ in 0..5 {
            let (status, body) = post(&h, "dest-a", TOKEN).await;
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["error"]["code"], "webhook_token_unverified");
        }
        assert_eq!(
            fetches(&h, "dest-a"),
            7,
            "each request reads the cache once, no re-read"
        );
        assert_eq!(h.settings_source.invalidated.lock().unwrap().len(), 1);
        // After the period, one more re-read for a wrong token: now it is known wrong.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(post(&h, "dest-a", "guess").await.0, 401);
        assert_eq!(h.settings_source.invalidated.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn only_an_outage_is_503_and_a_missing_or_unusable_secret_is_the_wrong_token_s_401() {
        let mut h = fakes::handler();
        h.settings_source.down.push("dest-down".into());
        h.settings_source.malformed.push("dest-bad".into());
        let (status, body) = post(&h, "dest-down", TOKEN).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "secrets_unavailable");
        assert!(
            !body.to_string().contains("connection refused"),
            "no detail: {body}"
        );
        // Before authentication, nobody learns whether an id has a usable secret.
        let (status, wrong_token) = post(&h, "dest-a", "guess").await;
        assert_eq!(status, 401, "{wrong_token}");
        for destination in ["dest-unknown", "dest-bad"] {
            let (status, body) = post(&h, destination, TOKEN).await;
            assert_eq!(status, 401, "{destination}: {body}");
            assert_eq!(body, wrong_token, "{destination}");
        }
        // No token at all: 401 before any secret is read.
        let before = h.settings_source.fetched.lock().unwrap().len();
        let (status, _, response) = call_http(
            &h,
            http_request("POST", Some("dest-down"), None, Some(TRACK)),
        )
        .await;
        assert_eq!(status, 401);
        assert!(response["headers"]["retry-after"].is_null());
        assert_eq!(h.settings_source.fetched.lock().unwrap().len(), before);
        assert!(h.clevertap.calls().is_empty());
    }

    #[tokio::test]
    async fn a_destination_outside_the_allowlist_is_the_wrong_token_s_401_before_any_secret_is_read()
     {
        let mut h = fakes::handler();
        h.config.webhook_destination_ids = Some(vec![DestinationId::parse("dest-b").unwrap()]);
        let (status, wrong_token) = post(&h, "dest-b", "guess").await;
        assert_eq!(status, 401, "{wrong_token}");
        h.settings_source.fetched.lock().unwrap().clear();
        let (status, body) = post(&h, "dest-a", TOKEN).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body, wrong_token, "the answer does not tell the list");
        assert!(h.settings_source.fetched.lock().unwrap().is_empty());
        // Nor does the next one, within the refresh period.
        let listed = post(&h, "dest-b", "guess").await;
        let unlisted = post(&h, "dest-a", TOKEN).await;
        assert_eq!(listed.0, 503, "{}", listed.1);
        assert_eq!(unlisted, listed);
        assert!(h.clevertap.calls().is_empty());
    }
}
