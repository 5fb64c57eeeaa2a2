//! Why a destination's settings could not be had, and the cache-miss counts a settings source
//! reports: the vocabulary of the settings port (`crate::ports::SettingsSource`), apart from the
//! cache that implements it.

use crate::codes;
use crate::config::NEGATIVE_TTL;
use crate::outcome::Reason;
use crate::settings::{DestinationId, SettingsError};
use std::time::Duration;

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
    pub(super) fn cache_for(&self, ttl: Duration) -> Duration {
        match self {
            CredentialsError::NotFound(_) | CredentialsError::Invalid { .. } => {
                NEGATIVE_TTL.min(ttl)
            }
            // Only the callers already waiting on this fetch share it.
            CredentialsError::Unavailable { .. } => Duration::ZERO,
        }
    }
}

/// How many lookups of one destination were not answered from a cache, and how many were
/// answered with settings past their TTL because Secrets Manager failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMisses {
    /// `None` for unauthenticated lookups of destinations whose settings were never read
    /// successfully: an id anyone may send never becomes a metric dimension.
    pub destination: Option<DestinationId>,
    pub count: u64,
    pub stale: u64,
}
