//! Webhook authentication, the security boundary of the HTTP entry point, kept alone so it can
//! be reviewed alone. The caller proves it holds the destination's `webhookToken` with
//! `Authorization: Bearer <token>`, compared in constant time, before the body is looked at.
//! Every refusal looks the same to the caller (a 401 never says why, and means nothing was sent
//! to CleverTap); only Secrets Manager being down is a 503, as it is a retry, not a verdict.

use super::{Reply, codes};
use crate::credentials::{CredentialsError, SettingsSource};
use crate::settings::{DestinationId, DestinationSettings};
use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::http::header::AUTHORIZATION;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The destination's settings if the caller holds its webhook token.
pub(super) async fn authenticate<S: SettingsSource>(
    source: &S,
    headers: &HeaderMap,
    destination: &DestinationId,
) -> Result<Arc<DestinationSettings>, Reply> {
    let Some(token) = bearer_token(headers) else {
        return Err(Reply::unauthorized());
    };
    let settings = match source.settings(destination).await {
        Ok(s) => s,
        Err(e @ CredentialsError::Unavailable { .. }) => {
            tracing::warn!(destination = %destination, code = e.code(), error = %e, "settings unavailable");
            // The caller is not authenticated yet: the detail stays in the log.
            return Err(Reply::error(
                503,
                codes::SECRETS_UNAVAILABLE,
                "destination settings are unavailable for now; retry later",
            ));
        }
        Err(e) => {
            tracing::warn!(destination = %destination, code = %e.reason().code, "webhook refused: no usable settings");
            return Err(Reply::unauthorized());
        }
    };
    let Some(expected) = &settings.webhook_token else {
        tracing::warn!(destination = %destination, code = codes::UNAUTHORIZED, "webhook refused: destination has no webhookToken");
        return Err(Reply::unauthorized());
    };
    if bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(settings)
    } else {
        tracing::warn!(destination = %destination, code = codes::UNAUTHORIZED, "webhook refused: wrong token");
        Err(Reply::unauthorized())
    }
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
}
